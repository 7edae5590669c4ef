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
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

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


# A slot's state (`MemoryStore._state`).
_FREE, _PENDING, _HELD, _SETTLED = 0, 1, 2, 3
# A status as one byte in the store's columns: its position here (None first).
_STATUSES: tuple[DeliveryStatus | None, ...] = (None, *DeliveryStatus)
_STATUS_CODE: dict[DeliveryStatus | None, int] = {s: i for i, s in enumerate(_STATUSES)}
_MID_LIMIT = 1 << 64

#: A pair's key as the memory store files it: one int, or `(phone, message_id)`.
PackedKey: TypeAlias = "int | Key"


def pack_key(phone_number: str, message_id: int) -> PackedKey:
    """A pair's key as one int when the phone is canonical E.164, else `(phone, id)`.

    The memory store keeps a key per pair, pending or settled, as the key of its
    slot index. A `(str, int)` tuple costs three objects; `+<digits>` with no leading
    zero read as a number, shifted above a 64-bit message id, is one int, and reads
    back exactly. Anything else (a phone in another form, an id out of
    range: the store takes what it is given) keeps the tuple, which never equals an
    int. The store keeps the phone's digits and the id in its columns and writes the
    phone back as `+<digits>`. `benchmarks/watch.py` measures the memory per pending
    pair this saves; `tests/test_watch_store.py` checks the round trip and the fallback.
    """
    digits = phone_number[1:]
    if (
        phone_number[:1] == "+"
        and digits.isdigit()
        and digits.isascii()
        and digits[:1] != "0"
        and len(digits) <= 18
        and 0 <= message_id < _MID_LIMIT
    ):
        return int(digits) << 64 | message_id
    return (phone_number, message_id)


class _Bucket:
    """Slot numbers filed under one time, read in the order they were filed."""

    __slots__ = ("head", "slots")

    def __init__(self) -> None:
        self.slots = array("q")
        self.head = 0  # the entries before it are read


class _Timeline:
    """Slot numbers filed under times: a heap of the distinct times, a bucket each.

    Pairs due at once (the schedule puts them on a grid) share one bucket, so a
    million pending pairs cost a slot number each here, not an entry object. An
    entry is not removed when its slot moves to another time: whoever reads a bucket
    checks each slot against the store's columns and skips stale ones.
    """

    __slots__ = ("_buckets", "_times")

    def __init__(self) -> None:
        self._buckets: dict[float, _Bucket] = {}
        self._times: list[float] = []

    def push(self, at: float, slot: int) -> None:
        self.bucket(at).append(slot)

    def bucket(self, at: float) -> array[int]:
        """The slots filed under `at`, to append to."""
        bucket = self._buckets.get(at)
        if bucket is None:
            self._buckets[at] = bucket = _Bucket()
            heapq.heappush(self._times, at)
        return bucket.slots

    def first(self) -> tuple[float, _Bucket] | None:
        """The earliest time and its bucket (whose entries may all be stale)."""
        if not self._times:
            return None
        at = self._times[0]
        return at, self._buckets[at]

    def drop_first(self) -> None:
        del self._buckets[heapq.heappop(self._times)]


class MemoryStore:
    """The default store: everything in this process, gone when it exits.

    Pairs live in columns (`array`s indexed by a slot number per pair) rather than
    an object each, and a pair's key is one int (`pack_key`) in the slot index and two
    numbers in the columns: a pending pair costs a few numbers, and nothing the garbage
    collector has to walk (a collection visits every reference a container holds).
    Pending pairs are filed by due time (`_Timeline`); a settled pair keeps its slot
    (its key, when it settled, its last status) until `prune` frees it for another.
    Memory per pending pair: `benchmarks/watch.py` measures it. Everything happens in
    this process, so every change rings its bells at once (`recheck` is None).
    """

    def __init__(self) -> None:
        self.bells = Bells()
        self._slots: dict[PackedKey, int] = {}  # key -> slot
        # The columns, one entry per slot.
        self._phones = array("q")  # a packed key's phone digits; 0: the key is in `_odd`
        self._message_ids = array("Q")
        self._odd: dict[int, Key] = {}  # slot -> a key `pack_key` leaves as a tuple
        self._index = array("q")
        self._sent = array("d")
        self._due = array("d")  # pending: the next check; settled: when it settled
        self._status = bytearray()  # _STATUS_CODE of the last status reported
        self._sequence = array("q")
        self._state = bytearray()
        self._free = array("q")  # slots of pruned pairs, to reuse
        self._pending = 0
        self._due_at = _Timeline()  # pending slots by due time
        self._settled_at = _Timeline()  # settled slots by settle time, for prune
        # message id -> its pending slots (one int for a single recipient): a hint
        # without a phone number reaches a bulk send's every recipient. Built at the first
        # such hint, so that a watch that never gets one never pays for it.
        self._by_id: dict[int, int | set[int]] | None = None
        self._held: set[int] = set()  # the slots of claimed pairs
        self._held_floor = 0.0  # no later than the due time of any held pair
        self._hinted: dict[int, float] = {}  # held slots hinted: due then once committed
        self._kept = KeptHints()
        self._outbox: deque[StatusChange] = deque()
        self._taken: dict[str, StatusChange] = {}

    def __repr__(self) -> str:
        settled = len(self._slots) - self._pending
        return (
            f"MemoryStore(pending={self._pending}, settled={settled}, "
            f"unreported={len(self._outbox) + len(self._taken)})"
        )

    async def open(self) -> None:
        hinted, due, state = self._hinted, self._due, self._state
        for slot in self._held:
            due[slot] = min(due[slot], hinted.pop(slot, due[slot]))
            state[slot] = _PENDING
            self._due_at.push(due[slot], slot)
        self._held.clear()
        self._outbox.extendleft(reversed(self._taken.values()))
        self._taken.clear()
        self.bells.due.ring()
        self.bells.outbox.ring()

    async def close(self) -> None:
        return None

    async def add(self, pairs: Sequence[NewPair]) -> int:
        if len(self._free) < len(pairs):
            self._grow(len(pairs) - len(self._free))
        slots, kept, by_id, free, odd = self._slots, self._kept, self._by_id, self._free, self._odd
        phones, message_ids, index, sent, due_at, status, sequence, state = (
            self._phones,
            self._message_ids,
            self._index,
            self._sent,
            self._due,
            self._status,
            self._sequence,
            self._state,
        )
        timeline = self._due_at
        added = 0
        filed_at, filing = None, None  # pairs added together mostly share their first check
        for phone, message_id, position, sent_at, due in pairs:
            key = pack_key(phone, message_id)
            if key in slots:
                continue
            if kept:
                hinted = kept.due_at(phone, message_id)
                if hinted is not None and hinted < due:
                    due = hinted
            slot = free.pop()
            if isinstance(key, int):
                phones[slot] = key >> 64
                message_ids[slot] = message_id
            else:
                phones[slot] = 0
                odd[slot] = key
            index[slot] = position
            sent[slot] = sent_at
            due_at[slot] = due
            status[slot] = 0
            sequence[slot] = 0
            state[slot] = _PENDING
            slots[key] = slot
            if due != filed_at or filing is None:
                filed_at, filing = due, timeline.bucket(due)
            filing.append(slot)
            if by_id is not None:
                _index(by_id, message_id, slot)
            added += 1
        if added:
            self._pending += added
            self.bells.due.ring()
        return added

    def _grow(self, count: int) -> None:
        """`count` more slots in every column, free."""
        start = len(self._state)
        for column in (
            self._phones,
            self._message_ids,
            self._index,
            self._sent,
            self._due,
            self._sequence,
        ):
            column.extend(itertools.repeat(0, count))
        self._status.extend(bytes(count))
        self._state.extend(bytes(count))
        self._free.extend(range(start + count - 1, start - 1, -1))  # popped in order

    def _key_of(self, slot: int) -> PackedKey:
        digits = self._phones[slot]
        return digits << 64 | self._message_ids[slot] if digits else self._odd[slot]

    def _pair_of(self, slot: int) -> Key:
        digits = self._phones[slot]
        return (f"+{digits}", self._message_ids[slot]) if digits else self._odd[slot]

    async def claim(self, *, now: float, limit: int, lease: float) -> list[WatchedPair]:
        self._kept.expire(now)
        picked = self._pick(now, limit)
        if not picked:
            return []
        self._held.update(picked)
        column = self._column
        phones: Iterable[str]
        message_ids: Iterable[int]
        if self._odd:
            phones, message_ids = zip(*map(self._pair_of, picked), strict=True)
        else:  # every key packed: the phones are their digits
            phones = map("+%d".__mod__, column(self._phones, picked))
            message_ids = column(self._message_ids, picked)
        return list(
            map(
                WatchedPair._make,
                zip(
                    phones,
                    message_ids,
                    column(self._index, picked),
                    column(self._sent, picked),
                    column(self._due, picked),
                    map(_STATUSES.__getitem__, column(self._status, picked)),
                    column(self._sequence, picked),
                    strict=True,
                ),
            )
        )

    def _pick(self, now: float, limit: int) -> list[int]:
        """Up to `limit` slots due at `now`, earliest first, marked held."""
        timeline, state, due = self._due_at, self._state, self._due
        picked: list[int] = []
        append = picked.append
        while len(picked) < limit:
            first = timeline.first()
            if first is None or first[0] > now:
                break
            at, bucket = first
            entries, head, end = bucket.slots, bucket.head, len(bucket.slots)
            while head < end and len(picked) < limit:
                slot = entries[head]
                head += 1
                if state[slot] != _PENDING or due[slot] != at:
                    continue  # settled, held, or moved since this entry was filed
                state[slot] = _HELD
                append(slot)
            bucket.head = head
            if head == end:
                timeline.drop_first()
        if picked:  # the earliest due of this claim is its first's
            earliest = due[picked[0]]
            self._held_floor = min(self._held_floor, earliest) if self._held else earliest
        return picked

    @staticmethod
    def _column(values: array[Any] | bytearray, slots: list[int]) -> Iterator[Any]:
        return map(values.__getitem__, slots)

    async def commit(self, updates: Sequence[PairUpdate], changes: Sequence[StatusChange]) -> None:
        slots, held, hinted, state = self._slots, self._held, self._hinted, self._state
        due, status, sequence = self._due, self._status, self._sequence
        codes, timeline = _STATUS_CODE, self._due_at
        filed_at, filing = None, None  # a page's pairs mostly share their next check
        for phone, message_id, due_at, last, seq, settled_at in updates:
            slot = slots.get(pack_key(phone, message_id))
            if slot is None or state[slot] == _SETTLED:
                continue
            held.discard(slot)
            hint = hinted.pop(slot, None) if hinted else None
            status[slot] = codes[last]
            sequence[slot] = seq
            if due_at is None:
                at = settled_at if settled_at is not None else 0.0
                state[slot] = _SETTLED
                due[slot] = at
                self._settled_at.push(at, slot)
                self._pending -= 1
                if self._by_id is not None:
                    _forget(self._by_id, message_id, slot)
                continue
            at = due_at if hint is None else min(due_at, hint)
            state[slot] = _PENDING
            due[slot] = at
            if at != filed_at or filing is None:
                filed_at, filing = at, timeline.bucket(at)
            filing.append(slot)
        if changes:
            self._outbox.extend(changes)
            self.bells.outbox.ring()

    async def next_due(self) -> float | None:
        timeline, state, due_at = self._due_at, self._state, self._due
        due: float | None = None
        while (first := timeline.first()) is not None:
            at, bucket = first
            entries, head, end = bucket.slots, bucket.head, len(bucket.slots)
            while head < end and (state[entries[head]] != _PENDING or due_at[entries[head]] != at):
                head += 1  # stale: settled, held or moved since
            bucket.head = head
            if head < end:
                due = at
                break
            timeline.drop_first()
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
        timeline, state, due, slots = self._settled_at, self._state, self._due, self._slots
        forgotten = 0
        while (first := timeline.first()) is not None and first[0] < settled_before:
            at, bucket = first
            for slot in bucket.slots[bucket.head :]:
                if state[slot] != _SETTLED or due[slot] != at:
                    continue
                del slots[self._key_of(slot)]
                self._odd.pop(slot, None)
                state[slot] = _FREE
                self._free.append(slot)
                forgotten += 1
            timeline.drop_first()
        return forgotten

    async def hint(self, message_id: int, phone_number: str | None = None, *, now: float) -> int:
        state = self._state
        found: list[int]
        if phone_number is None:
            by_id = self._by_id
            if by_id is None:
                self._by_id = by_id = {}
                for slot, slot_state in enumerate(state):
                    if slot_state in (_PENDING, _HELD):
                        _index(by_id, self._pair_of(slot)[1], slot)
            slots = by_id.get(message_id)
            if slots is None:
                found = []
            elif isinstance(slots, int):
                found = [slots]
            else:
                found = list(slots)
            self._kept.keep(message_id, None, now)  # for recipients added later
        else:
            known = self._slots.get(pack_key(phone_number, message_id))
            if known is None:
                self._kept.keep(message_id, phone_number, now)
                return 0
            if state[known] == _SETTLED:
                return 0
            found = [known]
        due = self._due
        for slot in found:
            if state[slot] == _HELD:
                self._hinted[slot] = min(now, self._hinted.get(slot, now))
            elif due[slot] > now:
                due[slot] = now
                self._due_at.push(now, slot)
        if found:
            self.bells.due.ring()
        return len(found)

    async def counts(self) -> StoreCounts:
        pending: dict[DeliveryStatus | None, int] = {}
        settled: dict[DeliveryStatus, int] = {}
        for slot_state, code in zip(self._state, self._status, strict=True):
            status = _STATUSES[code]
            if slot_state == _SETTLED:
                value = status or DeliveryStatus.UNKNOWN
                settled[value] = settled.get(value, 0) + 1
            elif slot_state != _FREE:
                pending[status] = pending.get(status, 0) + 1
        return StoreCounts(pending, settled)

    async def unreported(self) -> int:
        return len(self._outbox) + len(self._taken)


def _index(by_id: dict[int, int | set[int]], message_id: int, slot: int) -> None:
    slots = by_id.get(message_id)
    if slots is None:
        by_id[message_id] = slot
    elif isinstance(slots, int):
        by_id[message_id] = {slots, slot}
    else:
        slots.add(slot)


def _forget(by_id: dict[int, int | set[int]], message_id: int, slot: int) -> None:
    slots = by_id.get(message_id)
    if isinstance(slots, set):
        slots.discard(slot)
        if len(slots) == 1:
            by_id[message_id] = slots.pop()
    elif slots == slot:
        del by_id[message_id]
