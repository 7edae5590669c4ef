"""Names that moved keep working where they were, with a DeprecationWarning."""

from __future__ import annotations

import pytest

pytest.importorskip("redis", reason="needs the redis extra")


def test_the_redis_watch_store_is_still_importable_from_contrib_with_a_warning() -> None:
    from smspartner_async.watch.redis import RedisWatchStore, WatchStoreUnavailableError

    with pytest.warns(DeprecationWarning, match=r"moved to smspartner_async\.watch\.redis"):
        from smspartner_async.contrib.redis import RedisWatchStore as Old
    assert Old is RedisWatchStore
    with pytest.warns(DeprecationWarning, match="WatchStoreUnavailableError"):
        from smspartner_async.contrib.redis import WatchStoreUnavailableError as OldError
    assert OldError is WatchStoreUnavailableError
    import smspartner_async.contrib.redis as contrib

    with pytest.raises(AttributeError):
        _ = contrib.NoSuchName


def test_the_lua_scripts_ship_as_package_data() -> None:
    from importlib import resources

    lua = resources.files("smspartner_async.watch") / "lua"
    names = {entry.name for entry in lua.iterdir() if entry.name.endswith(".lua")}
    assert {"add.lua", "claim.lua", "commit.lua", "hint.lua", "prelude.lua"} <= names
