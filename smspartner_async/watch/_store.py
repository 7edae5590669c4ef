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
from ._bell import Bells
from ._hints import KeptHints
from ._records import NewPair, PairUpdate, StatusChange, StoreCounts, WatchedPair

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
    - **Bells** (`bells`) tell the watcher's parts that there may be work, whoever made
      it: pairs added, handed back or hinted ring `due`; changes committed or handed
      back ring `outbox`; changes acknowledged ring `room`. A shared store rings for
      what other processes do too, and sets `recheck` to how long a waiter may go
      without looking (what it cannot ring for: a lease running out).
    - **Hints** (`hint`) make pending pairs due now: a delivery report pushed to the
      service says the API has news for them. A hint never changes a status; it moves
      a check earlier, nothing more.

    A `Watcher` calls `open` when it starts and `close` when it stops; a store is used
    by one `Watcher` at a time (a shared store: one per process).
    """

    @property
    def bells(self) -> Bells:
        """Rung when there may be pairs due or changes to take (see the class docstring)."""
        ...

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

    async def hint(self, message_id: int, phone_number: str | None = None, *, now: float) -> int:
        """Make pending pairs due at `now` (the next round asks them); rings `bells.due`.

        With `phone_number`, that pair; without, every pending pair of `message_id` (a
        bulk send has one id for many recipients). A settled pair is left alone. A held
        pair is due at `now` once its round commits it (unless that round settled it).
        A pair not added yet: the hint is kept (`HINT_KEEP_SECONDS` of the watch's
        clock, the latest `HINT_KEEP_MAX`) and the pair is due as soon as it is added;
        a hint without a phone number is kept that way too, for recipients added later.
        Returns how many pending pairs it made due.
        """
        ...

    async def counts(self) -> StoreCounts:
        """Pairs pending and settled (not yet pruned), by the status each last reported.

        For a progress display; may scan the whole store.
        """
        ...

    async def unreported(self) -> int:
        """Changes committed and not yet acknowledged (taken or not): the backlog."""
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
    (or the store is opened again). Memory per pending pair: `benchmarks/watch.py`
    measures it; a settled pair costs a key, a time and a status until `prune`.
    Everything happens in this process, so every change rings its bells at once
    (`recheck` is None).
    """

    def __init__(self) -> None:
        self.bells = Bells()
        self._pending: dict[Key, _Pending] = {}
        self._settled: dict[Key, tuple[float, DeliveryStatus | None]] = {}
        # message id -> its pending phone numbers (one string for a single recipient): a hint
        # without a phone number reaches a bulk send's every recipient. Built at the first
        # such hint, so that a watch that never gets one never pays for it.
        self._by_id: dict[int, str | set[str]] | None = None
        self._heap: list[tuple[float, int, Key]] = []
        self._versions = itertools.count()
        self._held: set[Key] = set()
        self._held_floor = 0.0  # no later than the due time of any held pair
        self._hinted: dict[Key, float] = {}  # held pairs hinted: due then once committed
        self._kept = KeptHints()
        self._outbox: deque[StatusChange] = deque()
        self._taken: dict[str, StatusChange] = {}

    def __repr__(self) -> str:
        return (
            f"MemoryStore(pending={len(self._pending)}, settled={len(self._settled)}, "
            f"unreported={len(self._outbox) + len(self._taken)})"
        )

    async def open(self) -> None:
        hinted = self._hinted
        for key in self._held:
            record = self._pending[key]
            record.due_at = min(record.due_at, hinted.pop(key, record.due_at))
            self._schedule(key, record)
        self._held.clear()
        self._outbox.extendleft(reversed(self._taken.values()))
        self._taken.clear()
        self.bells.due.ring()
        self.bells.outbox.ring()

    async def close(self) -> None:
        return None

    async def add(self, pairs: Sequence[NewPair]) -> int:
        pending, settled, kept, by_id = self._pending, self._settled, self._kept, self._by_id
        added = 0
        for pair in pairs:
            phone, message_id = key = (pair.phone_number, pair.message_id)
            if key in pending or key in settled:
                continue
            due = pair.due_at
            hinted = kept.due_at(phone, message_id)
            if hinted is not None and hinted < due:
                due = hinted
            record = _Pending(pair.position, pair.sent_at, due, None, 0, 0)
            pending[key] = record
            self._schedule(key, record)
            if by_id is not None:
                _index(by_id, phone, message_id)
            added += 1
        if added:
            self.bells.due.ring()
        return added

    async def claim(self, *, now: float, limit: int, lease: float) -> list[WatchedPair]:
        heap, pending, held = self._heap, self._pending, self._held
        self._kept.expire(now)
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
        pending, held, hinted = self._pending, self._held, self._hinted
        for update in updates:
            key = (update.phone_number, update.message_id)
            record = pending.get(key)
            if record is None:
                continue
            held.discard(key)
            hint = hinted.pop(key, None) if hinted else None
            if update.due_at is None:
                del pending[key]
                self._forget_id(key)
                settled_at = update.settled_at if update.settled_at is not None else 0.0
                self._settled[key] = (settled_at, update.status)
                continue
            record.due_at = update.due_at if hint is None else min(update.due_at, hint)
            record.status = update.status
            record.sequence = update.sequence
            self._schedule(key, record)
        if changes:
            self._outbox.extend(changes)
            self.bells.outbox.ring()

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
        taken = self._taken
        before = len(taken)
        for change_id in change_ids:
            taken.pop(change_id, None)
        if len(taken) != before:
            self.bells.room.ring()

    async def prune(self, *, settled_before: float) -> int:
        old = [key for key, (at, _) in self._settled.items() if at < settled_before]
        for key in old:
            del self._settled[key]
        return len(old)

    async def hint(self, message_id: int, phone_number: str | None = None, *, now: float) -> int:
        pending = self._pending
        keys: list[Key]
        if phone_number is None:
            by_id = self._by_id
            if by_id is None:
                self._by_id = by_id = {}
                for phone, key_id in pending:
                    _index(by_id, phone, key_id)
            phones = by_id.get(message_id)
            if phones is None:
                keys = []
            elif isinstance(phones, str):
                keys = [(phones, message_id)]
            else:
                keys = [(phone, message_id) for phone in phones]
            self._kept.keep(message_id, None, now)  # for recipients added later
        else:
            key = (phone_number, message_id)
            if key not in pending:
                if key not in self._settled:
                    self._kept.keep(message_id, phone_number, now)
                return 0
            keys = [key]
        made = 0
        for key in keys:
            record = pending[key]
            if key in self._held:
                self._hinted[key] = min(now, self._hinted.get(key, now))
            elif record.due_at > now:
                record.due_at = now
                self._schedule(key, record)
            made += 1
        if made:
            self.bells.due.ring()
        return made

    async def counts(self) -> StoreCounts:
        pending: dict[DeliveryStatus | None, int] = {}
        for record in self._pending.values():
            pending[record.status] = pending.get(record.status, 0) + 1
        settled: dict[DeliveryStatus, int] = {}
        for _, status in self._settled.values():
            value = status or DeliveryStatus.UNKNOWN
            settled[value] = settled.get(value, 0) + 1
        return StoreCounts(pending, settled)

    async def unreported(self) -> int:
        return len(self._outbox) + len(self._taken)

    def _schedule(self, key: Key, record: _Pending) -> None:
        record.version = next(self._versions)
        heapq.heappush(self._heap, (record.due_at, record.version, key))

    def _forget_id(self, key: Key) -> None:
        by_id = self._by_id
        if by_id is None:
            return
        phone, message_id = key
        phones = by_id.get(message_id)
        if isinstance(phones, set):
            phones.discard(phone)
            if len(phones) == 1:
                by_id[message_id] = phones.pop()
        elif phones is not None:
            del by_id[message_id]


def _index(by_id: dict[int, str | set[str]], phone: str, message_id: int) -> None:
    phones = by_id.get(message_id)
    if phones is None:
        by_id[message_id] = phone
    elif isinstance(phones, str):
        by_id[message_id] = {phones, phone}
    else:
        phones.add(phone)
