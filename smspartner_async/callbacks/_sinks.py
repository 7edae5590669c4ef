"""Sinks for a process that receives callbacks and runs no watcher of its own.

In a fleet, the web processes that receive callbacks need not watch: a hint put
into the shared store is seen by every worker's watch, and one of them asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..watch import WatchStore
from ._receiver import HintSink

__all__ = ["store_sink"]


def store_sink(store: WatchStore, *, clock: Callable[[], float] = time.time) -> HintSink:
    """A sink that hints `store` directly (opened by the caller), at `clock`'s time:
    `receiver.feeding(store_sink(RedisWatchStore(url)))` in a web process."""

    async def hint(message_id: int, phone_number: str | None) -> int:
        return await store.hint(message_id, phone_number, now=clock())

    return hint
