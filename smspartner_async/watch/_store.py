"""The store interface a watch keeps its state in, and the in-memory store.

A watch's whole state lives in its store, so that a watch can stop and start
again without losing a pair or reporting a settled pair twice: the pending pairs
and when each is next due, the last status reported for each, and an *outbox*
of changes not yet acknowledged by the consumer. A round moves pairs from
"claimed" to "rescheduled" or "settled" and appends its changes to the outbox in
one atomic `commit`; the consumer takes changes from the outbox and acknowledges
each once it is done with it.

`WatchStore` is written so that a store shared by several workers (Redis,
Postgres) can implement it: claims and takes are leases, so two workers never
ask about the same pair in the same round and a crashed worker's pairs come back
when its lease runs out; and every change carries a stable id, so a change
delivered again after a crash can be dropped by the consumer.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .._models import DeliveryStatus
from .._validate import Key
from ._records import NewPair, PairUpdate, StatusChange, WatchedPair

__all__ = ["MemoryStore", "WatchStore"]


@runtime_checkable
class WatchStore(Protocol):
    """Where a watch keeps its pairs, their schedule and the changes not yet reported.

    The contract, for anyone writing a store (every method is a coroutine; times are
    epoch seconds of the watcher's clock):

    - **Pairs** are known by `(phone_number, message_id)`. A pair is *pending* from
      `add` until a `commit` settles it, then *settled* until `prune` forgets it.
    - **Claims are leases.** `claim` hands out pending pairs that are due and not held
      by anyone; the caller holds them until it commits them. A store shared by
      several processes lets a hold lapse after `lease` seconds (its holder is
      presumed dead, and the pairs can be claimed again), and should refuse a commit
      for pairs whose hold has lapsed and been taken over (drop that pair's update and
      changes; the new holder asks again). A store with a single owner (memory,
      SQLite) keeps holds until the commit or until it is opened again.
    - **A commit is atomic**: every update and every change of a round, or none. A
      crash mid-round loses nothing but that round's answers; its pairs are asked
      again.
    - **The outbox** keeps changes in commit order until they are acknowledged.
      `take_changes` hands out changes nobody holds, oldest first (a pair's changes
      come out in its `sequence` order), as a lease like claims; `ack` marks them
      reported: an acknowledged change is never handed out again. An acknowledgement
      must be as durable as the store's commits by the time `ack` returns: the watch
      acknowledges each change before it hands out the next, and a change acknowledged
      and then lost would be reported twice after a crash.
    - **Opening** a single-owner store releases every hold: the previous owner is gone,
      and what it claimed or took and did not finish comes back.

    A `Watcher` calls `open` when it starts and `close` when it stops; a store is used
    by one `Watcher` at a time (a shared store: one per process).
    """

    async def open(self) -> None:
        """Get ready for a watcher (connect, create tables); release stale holds."""

    async def close(self) -> None:
        """Release what `open` took; the state stays for the next `open`."""

    async def add(self, pairs: Sequence[NewPair]) -> int:
        """Start watching the pairs not known yet (neither pending nor settled).

        A known pair keeps its state (its index, schedule, status) whatever the new
        record says; so adding the same pairs again after a restart changes nothing.
        Returns how many pairs were new.
        """
        ...

    async def claim(self, *, now: float, limit: int, lease: float) -> list[WatchedPair]:
        """Up to `limit` pending pairs due at `now` or before, held by nobody, earliest first.

        The caller holds them from then on (see the class docstring for `lease`).
        """
        ...

    async def commit(self, updates: Sequence[PairUpdate], changes: Sequence[StatusChange]) -> None:
        """Apply a round's updates (each releases its pair) and append its changes, atomically.

        An update with `due_at=None` settles its pair: it is never claimed again.
        """

    async def next_due(self) -> float | None:
        """The earliest `due_at` of the pending pairs; None exactly when none is pending.

        Held pairs count as pending (for them, any time no later than their `due_at` will
        do): a round in flight is not the end of a watch.
        """
        ...

    async def take_changes(self, *, now: float, limit: int, lease: float) -> list[StatusChange]:
        """Up to `limit` changes not acknowledged and held by nobody, oldest first; held
        from then on."""
        ...

    async def ack(self, change_ids: Sequence[str]) -> None:
        """Mark changes reported (by `StatusChange.id`); unknown ids are ignored."""

    async def prune(self, *, settled_before: float) -> int:
        """Forget pairs settled before that time (adding one again watches it anew).

        Returns how many were forgotten.
        """
        ...


class _Pending:
    __slots__ = ("due_at", "index", "sent_at", "sequence", "status", "version")

    def __init__(
        self,
        index: int,
        sent_at: float,
        due_at: float,
        status: DeliveryStatus | None,
        sequence: int,
        version: int,
    ) -> None:
        self.index = index
        self.sent_at = sent_at
        self.due_at = due_at
        self.status = status
        self.sequence = sequence
        self.version = version


class MemoryStore:
    """The default store: everything in this process, gone when it exits.

    Pending pairs sit in a heap ordered by due time. An entry is valid while its
    version is the pair's current one: rescheduling pushes a new entry rather than
    moving the old one, and a claimed pair has no valid entry until it is committed
    (or the store is opened again). Memory: about 400 bytes per pending pair, and a
    key and a time per settled pair until `prune` forgets it.
    """

    def __init__(self) -> None:
        self._pending: dict[Key, _Pending] = {}
        self._settled: dict[Key, float] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._versions = itertools.count()
        self._held: set[Key] = set()
        self._held_floor = 0.0  # no later than the due time of any held pair
        self._outbox: deque[StatusChange] = deque()
        self._taken: dict[str, StatusChange] = {}

    def __repr__(self) -> str:
        return (
            f"MemoryStore(pending={len(self._pending)}, settled={len(self._settled)}, "
            f"unreported={len(self._outbox) + len(self._taken)})"
        )

    async def open(self) -> None:
        for key in self._held:
            self._schedule(key, self._pending[key])
        self._held.clear()
        self._outbox.extendleft(reversed(self._taken.values()))
        self._taken.clear()

    async def close(self) -> None:
        return None

    async def add(self, pairs: Sequence[NewPair]) -> int:
        pending, settled = self._pending, self._settled
        added = 0
        for pair in pairs:
            key = (pair.phone_number, pair.message_id)
            if key in pending or key in settled:
                continue
            record = _Pending(pair.position, pair.sent_at, pair.due_at, None, 0, 0)
            pending[key] = record
            self._schedule(key, record)
            added += 1
        return added

    async def claim(self, *, now: float, limit: int, lease: float) -> list[WatchedPair]:
        heap, pending, held = self._heap, self._pending, self._held
        claimed: list[WatchedPair] = []
        while heap and len(claimed) < limit and heap[0][0] <= now:
            _, version, key = heapq.heappop(heap)
            record = pending.get(key)
            if record is None or record.version != version:
                continue  # settled, or rescheduled since this entry was pushed
            record.version = -1  # held: no entry is valid until the commit
            if not held or record.due_at < self._held_floor:
                self._held_floor = record.due_at
            held.add(key)
            claimed.append(
                WatchedPair(
                    key[0],
                    key[1],
                    record.index,
                    record.sent_at,
                    record.due_at,
                    record.status,
                    record.sequence,
                )
            )
        return claimed

    async def commit(self, updates: Sequence[PairUpdate], changes: Sequence[StatusChange]) -> None:
        pending, held = self._pending, self._held
        for update in updates:
            key = (update.phone_number, update.message_id)
            record = pending.get(key)
            if record is None:
                continue
            held.discard(key)
            if update.due_at is None:
                del pending[key]
                self._settled[key] = update.settled_at if update.settled_at is not None else 0.0
                continue
            record.due_at = update.due_at
            record.status = update.status
            record.sequence = update.sequence
            self._schedule(key, record)
        self._outbox.extend(changes)

    async def next_due(self) -> float | None:
        heap, pending = self._heap, self._pending
        while heap:
            _, version, key = heap[0]
            record = pending.get(key)
            if record is not None and record.version == version:
                break
            heapq.heappop(heap)
        due = heap[0][0] if heap else None
        if self._held:
            # Held pairs were due when claimed, and claims take the earliest first.
            floor = self._held_floor
            due = floor if due is None else min(due, floor)
        return due

    async def take_changes(self, *, now: float, limit: int, lease: float) -> list[StatusChange]:
        outbox, taken = self._outbox, self._taken
        batch: list[StatusChange] = []
        while outbox and len(batch) < limit:
            change = outbox.popleft()
            taken[change.id] = change
            batch.append(change)
        return batch

    async def ack(self, change_ids: Sequence[str]) -> None:
        for change_id in change_ids:
            self._taken.pop(change_id, None)

    async def prune(self, *, settled_before: float) -> int:
        old = [key for key, at in self._settled.items() if at < settled_before]
        for key in old:
            del self._settled[key]
        return len(old)

    def _schedule(self, key: Key, record: _Pending) -> None:
        record.version = next(self._versions)
        heapq.heappush(self._heap, (record.due_at, record.version, key))
