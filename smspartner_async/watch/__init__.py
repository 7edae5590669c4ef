"""Watch (phone, message id) pairs until each one's status has settled, over up to 48 hours.

    from smspartner_async.watch import watch

    async with aclosing(watch(client, pairs)) as changes:
        async for change in changes:        # the first status of each pair, then each new one
            print(change.index, change.status, change.settled, change.reason)

`watch` covers a fixed set of pairs and ends when every one has settled;
`Watcher` runs as long as a service does, takes new pairs after each send, and
hands changes to an iterator or a callback. Their state lives in a `WatchStore`:
`MemoryStore` (the default), `SQLiteStore(path)`, which survives restarts, or
`RedisWatchStore(url)` in `smspartner_async.watch.redis` (the `redis` extra), shared
by a fleet of workers; `WatchStore` documents the contract for other stores.
"""

from ._bell import Bell, Bells
from ._hints import HINT_KEEP_MAX, HINT_KEEP_SECONDS
from ._records import (
    NewPair,
    PairUpdate,
    SettleReason,
    StatusChange,
    StoreCounts,
    WatchedPair,
)
from ._schedule import DEFAULT_INTERVALS, Schedule
from ._sqlite import SQLiteStore
from ._store import MemoryStore, WatchStore
from ._watcher import (
    TAKE,
    Clock,
    OnBatch,
    OnChange,
    OnRound,
    SentAt,
    Sleep,
    Watcher,
    WatchRound,
    watch,
)

__all__ = [
    "DEFAULT_INTERVALS",
    "HINT_KEEP_MAX",
    "HINT_KEEP_SECONDS",
    "TAKE",
    "Bell",
    "Bells",
    "Clock",
    "MemoryStore",
    "NewPair",
    "OnBatch",
    "OnChange",
    "OnRound",
    "PairUpdate",
    "SQLiteStore",
    "Schedule",
    "SentAt",
    "SettleReason",
    "Sleep",
    "StatusChange",
    "StoreCounts",
    "WatchRound",
    "WatchStore",
    "WatchedPair",
    "Watcher",
    "watch",
]
