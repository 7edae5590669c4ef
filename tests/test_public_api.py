"""What the package exports, and under which names (in the style of httpx's
`test_exported_members`): a name added, moved or forgotten fails here."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import re
import traceback
import types
import typing
from collections.abc import Iterator

import pytest

import smspartner_async
from smspartner_async import _errors

PUBLIC_MODULES = (
    "smspartner_async",
    "smspartner_async.watch",
    "smspartner_async.contrib.redis",
    "smspartner_async.testing",
)


def _all_modules() -> Iterator[types.ModuleType]:
    yield smspartner_async
    for info in pkgutil.walk_packages(smspartner_async.__path__, "smspartner_async."):
        if info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(smspartner_async).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert len(smspartner_async.__all__) == len(set(smspartner_async.__all__))
    assert set(smspartner_async.__all__) == public | {"__version__"}


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_in_a_public_all_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_every_exception_of_the_package_is_in_the_tree_and_exported() -> None:
    found: dict[str, type[BaseException]] = {}
    for module in _all_modules():
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, smspartner_async.SMSPartnerError):
                found[value.__name__] = value
    assert len(found) >= 16  # the walk did find the tree, contrib's included
    for name, cls in found.items():
        assert getattr(smspartner_async, name) is cls, name
        assert name in smspartner_async.__all__
        assert cls.__module__ == "smspartner_async", name
        in_tree = re.search(rf"^    [│ ]*(└── |├── )?{name}\b", _errors.__doc__ or "", re.M)
        assert in_tree, f"{name} missing from the tree in _errors' docstring"


def test_a_traceback_names_the_public_path() -> None:
    error = smspartner_async.AuthenticationError(1, "bad key")
    line = traceback.format_exception_only(error)[-1]
    assert line.startswith("smspartner_async.AuthenticationError: ")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is smspartner_async.AuthenticationError


def test_redis_errors_are_the_tree_s_own() -> None:
    from smspartner_async.contrib import redis

    assert redis.SharedLimitsUnavailableError is smspartner_async.SharedLimitsUnavailableError
    assert redis.WatchStoreUnavailableError is smspartner_async.WatchStoreUnavailableError
    assert issubclass(
        smspartner_async.SharedLimitsUnavailableError, smspartner_async.ClientStateError
    )


def _classes_in(hint: object) -> Iterator[type]:
    if isinstance(hint, type) and typing.get_origin(hint) is None:
        yield hint
    for arg in typing.get_args(hint):
        if isinstance(arg, list):  # Callable's parameters
            for item in arg:
                yield from _classes_in(item)
        else:
            yield from _classes_in(arg)
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        yield origin


def _reachable() -> set[type]:
    return {
        value
        for name in PUBLIC_MODULES
        for value in vars(importlib.import_module(name)).values()
        if isinstance(value, type)
    }


@pytest.mark.parametrize(
    "cls", [smspartner_async.SMSPartnerClient, smspartner_async.SMSPartnerSyncClient]
)
def test_every_type_in_a_public_signature_is_importable_from_a_public_module(cls: type) -> None:
    from smspartner_async import watch

    names = {**vars(smspartner_async), **vars(watch)}
    reachable = _reachable()
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_") and name != "__init__":
            continue
        hints = typing.get_type_hints(member, localns=names)
        for hint in hints.values():
            for used in _classes_in(hint):
                if used.__module__.startswith("smspartner_async"):
                    assert used in reachable, f"{cls.__name__}.{name} uses {used!r}"
