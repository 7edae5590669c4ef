"""The `WatchStore` contract, checked on both stores; then what only SQLite promises.

These are the rules another store (Redis, Postgres) has to keep: known pairs keep
their state, claims are held until committed (or the store is opened again), a
commit is all or nothing, the outbox keeps commit order, and an acknowledged
change never comes back while an unacknowledged one always does.
"""

from __future__ import annotations

import asyncio
import gc
import mmap
import sqlite3
import threading
from array import array
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from smspartner_async import ClientStateError, DeliveryStatus, InvalidInputError
from smspartner_async.watch import (
    MemoryStore,
    NewPair,
    PairUpdate,
    SettleReason,
    SQLiteStore,
    StatusChange,
    WatchStore,
)
from smspartner_async.watch._hints import HINT_KEEP_MAX, HINT_KEEP_SECONDS, KeptHints
from smspartner_async.watch._store import pack_key

W, D = DeliveryStatus.WAITING, DeliveryStatus.DELIVERED


def pair(n: int, due: float = 10.0, position: int | None = None) -> NewPair:
    return NewPair(f"+336{n:08d}", n, n if position is None else position, 0.0, due)


def change(n: int, sequence: int = 1, status: DeliveryStatus = W) -> StatusChange:
    settled = status.is_final
    return StatusChange(
        n,
        f"+336{n:08d}",
        n,
        status,
        None if sequence == 1 else W,
        settled,
        SettleReason.FINAL if settled else None,
        sequence,
        100.0 + n,
    )


def keep(n: int, due: float, status: DeliveryStatus | None = W, sequence: int = 1) -> PairUpdate:
    return PairUpdate(f"+336{n:08d}", n, due, status, sequence, None)


def settle(n: int, at: float = 50.0, status: DeliveryStatus = D) -> PairUpdate:
    return PairUpdate(f"+336{n:08d}", n, None, status, 1, at)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WatchStore]:
    made: WatchStore = (
        MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    )
    await made.open()
    yield made
    await made.close()


async def reopen(store: WatchStore) -> None:
    await store.close()
    await store.open()


async def claim(store: WatchStore, now: float = 100.0, limit: int = 100) -> list[int]:
    return [p.message_id for p in await store.claim(now=now, limit=limit, lease=60.0)]


async def take(store: WatchStore, limit: int = 100) -> list[str]:
    return [c.id for c in await store.take_changes(now=0.0, limit=limit, lease=60.0)]


def test_both_stores_are_watch_stores(tmp_path: Path) -> None:
    assert isinstance(MemoryStore(), WatchStore)
    assert isinstance(SQLiteStore(tmp_path / "x.db"), WatchStore)


async def test_known_pairs_keep_their_state(store: WatchStore) -> None:
    assert await store.add([pair(1), pair(2), pair(1, position=9)]) == 2  # a repeat in a batch
    assert await store.add([pair(2, due=1.0, position=7), pair(3)]) == 1
    claimed = {p.message_id: p for p in await store.claim(now=100.0, limit=10, lease=60.0)}
    assert sorted(claimed) == [1, 2, 3]
    assert (claimed[1].position, claimed[2].position, claimed[2].due_at) == (1, 2, 10.0)
    await store.commit([settle(1), keep(2, 500.0), keep(3, 500.0)], [])
    assert await store.add([pair(1)]) == 0  # settled: not watched again
    assert await claim(store, now=1000.0) == [2, 3]


async def test_claims_come_due_first_and_are_held_until_committed(store: WatchStore) -> None:
    await store.add([pair(1, due=30.0), pair(2, due=10.0), pair(3, due=20.0), pair(4, due=500.0)])
    assert await store.next_due() == 10.0
    assert await claim(store, now=25.0, limit=1) == [2]
    assert await claim(store, now=25.0) == [3]  # 2 is held; 1 and 4 are not due
    assert await store.next_due() == 10.0  # held pairs are still pending
    assert await claim(store, now=25.0) == []
    await store.commit([keep(2, 40.0, sequence=0)], [])
    assert await claim(store, now=45.0) == [1, 2]
    claimed = await store.claim(now=1000.0, limit=10, lease=60.0)
    assert [(p.message_id, p.status, p.sequence) for p in claimed] == [(4, None, 0)]


async def test_opening_again_releases_what_was_held(store: WatchStore) -> None:
    await store.add([pair(1), pair(2)])
    assert await claim(store) == [1, 2]
    await store.commit([settle(1)], [change(1, status=D)])
    await reopen(store)  # the owner died mid-round: pair 2 comes back as it was
    claimed = await store.claim(now=100.0, limit=10, lease=60.0)
    assert [(p.message_id, p.due_at, p.status) for p in claimed] == [(2, 10.0, None)]


async def test_commit_applies_state_and_appends_changes_in_order(store: WatchStore) -> None:
    await store.add([pair(n) for n in range(1, 5)])
    await claim(store)
    await store.commit(
        [keep(1, 200.0), settle(2), keep(3, 200.0, status=None, sequence=0), keep(4, 150.0)],
        [change(1), change(2, status=D), change(4)],
    )
    assert await store.next_due() == 150.0
    assert await store.prune(settled_before=49.0) == 0
    claimed = await store.claim(now=300.0, limit=10, lease=60.0)
    assert [(p.message_id, p.status, p.sequence) for p in claimed] == [
        (4, W, 1),
        (1, W, 1),
        (3, None, 0),
    ]
    assert await take(store) == ["+33600000001:1:1", "+33600000002:2:1", "+33600000004:4:1"]
    await store.commit([settle(n) for n in (1, 3, 4)], [])
    assert await store.next_due() is None


async def test_the_outbox_hands_out_each_change_until_acknowledged(store: WatchStore) -> None:
    await store.add([pair(n) for n in range(1, 6)])
    await claim(store)
    await store.commit([], [change(n) for n in range(1, 6)])
    first = await store.take_changes(now=0.0, limit=2, lease=60.0)
    assert [c.message_id for c in first] == [1, 2]
    assert first[0] == change(1)  # the change comes back whole
    assert await take(store, limit=2) == ["+33600000003:3:1", "+33600000004:4:1"]  # 1, 2 held
    await store.ack([first[0].id, "not-an-id"])
    await store.ack(["+33600000003:3:1"])  # out of order: 2 is not acknowledged yet
    await reopen(store)
    assert await take(store) == [f"+33600000{n:03d}:{n}:1" for n in (2, 4, 5)]
    await store.ack([f"+33600000{n:03d}:{n}:1" for n in (2, 4, 5)])
    await reopen(store)
    assert await take(store) == []


async def test_prune_forgets_pairs_settled_long_ago(store: WatchStore) -> None:
    await store.add([pair(1), pair(2), pair(3)])
    await claim(store)
    await store.commit([settle(1, at=10.0), settle(2, at=20.0), keep(3, 30.0)], [])
    assert await store.prune(settled_before=15.0) == 1
    assert await store.add([pair(1), pair(2), pair(3)]) == 1  # 1 is new again; 2 and 3 known


def phone(n: int) -> str:
    return f"+336{n:08d}"


async def test_a_hint_makes_a_pending_pair_due_now(store: WatchStore) -> None:
    await store.add([pair(1, due=500.0), pair(2, due=500.0), pair(3, due=50.0)])
    seen = store.bells.due.rung
    assert await store.hint(1, phone(1), now=100.0) == 1
    assert store.bells.due.rung != seen
    assert await store.hint(3, phone(3), now=100.0) == 1  # due already: stays as it was
    assert await store.next_due() == 50.0
    assert await claim(store, now=100.0) == [3, 1]
    assert await store.hint(2, "+33699999999", now=100.0) == 0  # another pair, not added
    assert await claim(store, now=100.0) == []


async def test_a_hint_without_a_phone_reaches_every_recipient_of_the_message(
    store: WatchStore,
) -> None:
    bulk = [NewPair(phone(n), 7, n, 0.0, 500.0) for n in range(1, 4)]
    await store.add([*bulk, pair(8, due=500.0)])
    assert await store.hint(7, now=100.0) == 3
    claimed = await store.claim(now=100.0, limit=10, lease=60.0)
    assert sorted(p.phone_number for p in claimed) == [phone(1), phone(2), phone(3)]
    # Kept for recipients added later, as for a pair not added yet.
    await store.add([NewPair(phone(4), 7, 4, 0.0, 500.0)])
    assert [p.phone_number for p in await store.claim(now=100.0, limit=10, lease=60.0)] == [
        phone(4)
    ]
    # A recipient settled is left out of the next hint.
    await store.commit(
        [PairUpdate(phone(1), 7, None, D, 1, 100.0)]
        + [PairUpdate(phone(n), 7, 500.0, W, 1, None) for n in (2, 3, 4)],
        [],
    )
    assert await store.hint(7, now=200.0) == 3


async def test_a_hint_leaves_a_settled_pair_alone(store: WatchStore) -> None:
    await store.add([pair(1)])
    await claim(store)
    await store.commit([settle(1)], [change(1, status=D)])
    assert await store.hint(1, phone(1), now=100.0) == 0
    assert await store.hint(1, now=100.0) == 0
    assert await store.add([pair(1)]) == 0
    assert await store.next_due() is None


async def test_a_hint_before_the_add_makes_the_pair_due_once_added(store: WatchStore) -> None:
    assert await store.hint(5, phone(5), now=100.0) == 0
    await store.add([pair(5, due=500.0), pair(6, due=500.0)])
    assert await store.next_due() == 100.0
    assert await claim(store, now=100.0) == [5]


async def test_a_hint_kept_for_a_pair_not_added_expires(store: WatchStore) -> None:
    await store.hint(5, phone(5), now=100.0)
    await store.hint(6, now=100.0)
    assert await claim(store, now=100.0 + HINT_KEEP_SECONDS + 1.0) == []  # the clock moved
    await store.add([pair(5, due=5000.0), pair(6, due=5000.0)])
    assert await store.next_due() == 5000.0


async def test_a_held_pair_hinted_is_due_at_the_hint_once_committed(store: WatchStore) -> None:
    await store.add([pair(1), pair(2)])
    assert await claim(store) == [1, 2]
    assert await store.hint(1, phone(1), now=150.0) == 1
    assert await store.hint(2, phone(2), now=150.0) == 1
    await store.commit([keep(1, 500.0), settle(2)], [change(2, status=D)])
    assert await store.next_due() == 150.0
    assert await claim(store, now=150.0) == [1]


async def test_counts_and_the_backlog(store: WatchStore) -> None:
    await store.add([pair(n) for n in range(1, 5)])
    await claim(store)
    await store.commit(
        [keep(1, 200.0), settle(2), keep(3, 200.0, status=None, sequence=0), keep(4, 200.0)],
        [change(1), change(2, status=D), change(4)],
    )
    counts = await store.counts()
    assert dict(counts.pending) == {W: 2, None: 1}
    assert dict(counts.settled) == {D: 1}
    assert await store.unreported() == 3
    taken = await store.take_changes(now=0.0, limit=2, lease=60.0)
    assert await store.unreported() == 3  # taken is not reported
    seen = store.bells.room.rung
    await store.ack([taken[0].id])
    assert await store.unreported() == 2
    assert await store.bells.room.wait(seen, 0.0)  # an ack makes room: it rings


async def test_bells_ring_for_work_and_wait_for_it(store: WatchStore) -> None:
    due, outbox = store.bells.due, store.bells.outbox
    seen = due.rung
    assert not await due.wait(seen, 0.01)  # nothing happened
    waiting = asyncio.ensure_future(due.wait(seen, 5.0))
    await asyncio.sleep(0)
    await store.add([pair(1)])
    assert await waiting  # rung by the add
    seen = outbox.rung
    await claim(store)
    await store.commit([keep(1, 200.0)], [change(1)])
    assert await outbox.wait(seen, 0.0)


# -- SQLite only ------------------------------------------------------------------------------


async def test_sqlite_keeps_everything_across_a_new_store_object(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "s.db")
    await first.open()
    await first.add([pair(1), pair(2)])
    await claim(first)
    await first.commit([keep(1, 77.0), settle(2)], [change(1), change(2, status=D)])
    assert await take(first, limit=1) == ["+33600000001:1:1"]
    await first.ack(["+33600000001:1:1"])
    await first.close()
    second = SQLiteStore(tmp_path / "s.db")
    await second.open()
    try:
        assert await take(second) == ["+33600000002:2:1"]  # acknowledged ones are gone
        claimed = await second.claim(now=100.0, limit=10, lease=60.0)
        assert [(p.message_id, p.due_at, p.status, p.sequence) for p in claimed] == [
            (1, 77.0, W, 1)
        ]
        assert await second.add([pair(2)]) == 0
    finally:
        await second.close()


async def test_sqlite_counts_pairs_by_state_and_last_status(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.add([pair(1), pair(2), pair(3)])
        await claim(store)
        await store.commit([keep(1, 77.0), settle(2)], [change(1), change(2, status=D)])
        counts = await store.counts()  # 3 is held: still pending, never answered
        assert counts.pending == {W: 1, None: 1}
        assert counts.settled == {D: 1}
        assert (counts.total_pending, counts.total_settled) == (2, 1)
    finally:
        await store.close()


async def test_sqlite_file_has_one_owner(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    await first.open()
    try:
        with pytest.raises(ClientStateError, match="in use"):
            await second.open()
    finally:
        await first.close()
    await second.open()  # free again once the owner closed it
    await second.close()
    with pytest.raises(InvalidInputError):
        SQLiteStore(":memory:")


async def test_sqlite_never_runs_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[str] = set()

    class Recording(sqlite3.Connection):
        def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
            threads.add(threading.current_thread().name)
            return super().execute(*args, **kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
            threads.add(threading.current_thread().name)
            return super().executemany(*args, **kwargs)

    real_connect = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda *a, **k: real_connect(*a, factory=Recording, **k)
    )
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    await store.add([pair(1)])
    await claim(store)
    await store.commit([keep(1, 5.0)], [change(1)])
    await take(store)
    await store.ack(["+33600000001:1:1"])
    await store.next_due()
    await store.prune(settled_before=0.0)
    await store.close()
    assert threads and all(name.startswith("smspartner-watch-sqlite") for name in threads)
    assert threading.current_thread().name not in threads


async def test_sqlite_commit_is_all_or_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.add([pair(1), pair(2)])
        await claim(store)
        broken = StatusChange(2, "+33600000002", 2, object(), None, False, None, 1, 1.0)  # type: ignore[arg-type]
        with pytest.raises(sqlite3.Error):
            await store.commit([settle(1), keep(2, 20.0)], [change(1, status=D), broken])
        await reopen(store)
        claimed = await store.claim(now=100.0, limit=10, lease=60.0)
        assert [(p.message_id, p.due_at, p.status) for p in claimed] == [
            (1, 10.0, None),
            (2, 10.0, None),
        ]
        assert await take(store) == []
    finally:
        await store.close()


async def test_sqlite_acknowledgements_survive_without_a_close(tmp_path: Path) -> None:
    """What SIGKILL leaves behind: acknowledgements made, no close, no final transaction."""
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    await store.open()
    await store.add([pair(n) for n in range(1, 4)])
    await claim(store)
    await store.commit([], [change(n) for n in range(1, 4)])
    await take(store)
    await store.ack(["+33600000001:1:1", "+33600000002:2:1"])
    # Simulate the kill: drop the store's lock and handles without its close.
    assert store._executor is not None
    store._executor.submit(store._unmap).result()
    other = SQLiteStore(path)
    await other.open()
    try:
        assert await take(other) == ["+33600000003:3:1"]
    finally:
        await other.close()
        store._executor.shutdown()


def write_marks(path: str, mark: int, check: int) -> None:
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 16) as marks:
        marks[:16] = mark.to_bytes(8, "little") + check.to_bytes(8, "little")


async def test_sqlite_watermark_never_runs_ahead_of_the_database(tmp_path: Path) -> None:
    """A watermark past the last change the database holds (the database lost its last
    commits in a power cut, the companion file did not) is pulled back: the changes found
    again get the positions the lost ones had, and must not be taken for reported."""
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    await store.open()
    await store.add([pair(1), pair(2)])
    await claim(store)
    await store.commit([keep(1, 5.0)], [change(1)])
    await store.close()
    write_marks(f"{path}-acks", 1000, 1000 ^ 0x5D5AC0FFEE15600D)
    await store.open()
    try:
        assert await take(store) == []  # position 1 is below the watermark: reported
        await store.commit([keep(2, 5.0)], [change(2)])  # position 2, which was "acked"
        assert await take(store) == ["+33600000002:2:1"]
    finally:
        await store.close()
    write_marks(f"{path}-acks", 2, 1234)  # torn or foreign: nothing counts as acknowledged
    await store.open()
    try:
        assert await take(store) == ["+33600000002:2:1"]
    finally:
        await store.close()


async def test_sqlite_store_refuses_use_when_closed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with pytest.raises(ClientStateError):
        await store.add([pair(1)])
    await store.open()
    with pytest.raises(ClientStateError):
        await store.open()
    await store.close()
    await store.close()  # twice is fine
    assert "closed" in repr(store)


async def test_memory_store_operations_do_not_suspend() -> None:
    """Atomic by construction: nothing else runs in the middle of a memory store call."""
    store = MemoryStore()
    loop_ran = False

    async def other() -> None:
        nonlocal loop_ran
        loop_ran = True

    task = asyncio.create_task(other())
    await store.add([pair(n) for n in range(1000)])
    await store.claim(now=100.0, limit=1000, lease=1.0)
    await store.commit([settle(n) for n in range(1000)], [change(n) for n in range(1000)])
    assert not loop_ran
    await task


def test_kept_hints_are_bounded_in_number_and_time() -> None:
    kept = KeptHints()
    for n in range(HINT_KEEP_MAX + 5):
        kept.keep(n, phone(n), 100.0)
    assert len(kept) == HINT_KEEP_MAX
    assert kept.due_at(phone(0), 0) is None  # the oldest went first
    assert kept.due_at(phone(HINT_KEEP_MAX), HINT_KEEP_MAX) == 100.0
    assert kept.due_at(phone(HINT_KEEP_MAX), HINT_KEEP_MAX) is None  # used up
    kept.expire(100.0 + HINT_KEEP_SECONDS + 1)
    assert len(kept) == 0


@pytest.mark.parametrize(
    "key",
    [
        ("+33600000001", 1),
        ("+1", 2**63 - 1),
        ("+999999999999999999", 0),  # 18 digits: the most packed
    ],
)
async def test_memory_store_packs_canonical_keys_into_one_int(key: tuple[str, int]) -> None:
    assert type(pack_key(*key)) is int
    store = MemoryStore()
    await store.open()
    await store.add([NewPair(*key, 0, 0.0, 10.0)])
    [claimed] = await store.claim(now=100.0, limit=10, lease=60.0)
    assert (claimed.phone_number, claimed.message_id) == key  # read back exactly


@pytest.mark.parametrize(
    "key",
    [
        ("+033600000001", 1),  # a leading zero would not read back
        ("33600000001", 1),  # no +
        ("+3360000000１", 1),  # a digit int() reads, not ASCII
        ("+33_600", 1),  # int() reads it, it is not digits
        (" +336", 1),
        ("+", 1),
        ("", 1),
        ("+1234567890123456789", 1),  # 19 digits
        ("+336", 2**64),  # past 64 bits
        ("+336", -1),
    ],
)
async def test_memory_store_keeps_other_keys_as_tuples(key: tuple[str, int]) -> None:
    assert pack_key(*key) == key
    store = MemoryStore()
    await store.open()
    await store.add([NewPair(*key, 0, 0.0, 10.0)])
    [claimed] = await store.claim(now=100.0, limit=10, lease=60.0)
    assert (claimed.phone_number, claimed.message_id) == key


async def test_memory_store_gives_the_collector_nothing_to_walk_per_pair() -> None:
    """A million pending pairs must not be a million references for each full collection
    to visit: what grows with the pairs is arrays (whose items are not objects) or
    containers the collector does not track (a dict of ints)."""
    store = MemoryStore()
    await store.open()
    await store.add([pair(n) for n in range(1, 2_001)])
    await store.claim(now=100.0, limit=500, lease=60.0)
    big = {
        name: value
        for name, value in vars(store).items()
        if hasattr(value, "__len__") and len(value) >= 1_000
    }
    assert big  # the columns and the slot index
    walked = [
        name
        for name, value in big.items()
        if not isinstance(value, array | bytearray) and gc.is_tracked(value)
    ]
    assert walked == []


async def test_memory_store_tells_packed_and_unpacked_keys_apart() -> None:
    """A pair whose phone is not canonical lives beside the canonical one, never on it."""
    store = MemoryStore()
    await store.open()
    odd = NewPair("+0033600000001", 1, 0, 0.0, 10.0)
    assert await store.add([pair(1), odd, NewPair("+33600000001", 1, 5, 0.0, 10.0)]) == 2
    claimed = await store.claim(now=100.0, limit=10, lease=60.0)
    assert [(p.phone_number, p.message_id, p.position) for p in claimed] == [
        ("+33600000001", 1, 1),
        ("+0033600000001", 1, 0),
    ]
    await store.commit([PairUpdate("+0033600000001", 1, None, D, 1, 50.0)], [])
    assert await store.add([odd]) == 0
    assert await store.prune(settled_before=60.0) == 1
    assert await store.add([odd]) == 1


async def test_memory_store_reuses_the_slots_of_pruned_pairs() -> None:
    store = MemoryStore()
    await store.open()
    await store.add([pair(n) for n in range(1, 4)])
    await claim(store)
    await store.commit([settle(1), settle(2), keep(3, 500.0)], [])
    assert await store.prune(settled_before=60.0) == 2
    await store.add([pair(7, due=20.0), pair(8, due=20.0)])
    assert len(store._state) == 3  # the two freed slots took the new pairs
    claimed = await store.claim(now=1000.0, limit=10, lease=60.0)
    assert [(p.message_id, p.due_at, p.status) for p in claimed] == [
        (7, 20.0, None),
        (8, 20.0, None),
        (3, 500.0, W),
    ]
    assert await store.add([pair(1)]) == 1  # forgotten: watched anew


async def test_held_pairs_keep_the_earliest_due_time_of_their_claims(store: WatchStore) -> None:
    await store.add([pair(1, due=20.0), pair(2, due=10.0), pair(3, due=30.0), pair(4, due=500.0)])
    assert await claim(store, now=25.0, limit=1) == [2]
    assert await claim(store, now=25.0) == [1]  # a later claim: the earliest stays 10
    assert await store.next_due() == 10.0
    await store.commit([keep(2, 600.0), keep(1, 700.0)], [])
    assert await store.next_due() == 30.0
    assert await claim(store, now=1000.0) == [3, 4, 2, 1]
    assert await store.next_due() == 30.0  # held since: no later than their due times


_VERSION_1 = """
CREATE TABLE pairs (
    phone TEXT NOT NULL, message_id INTEGER NOT NULL, idx INTEGER NOT NULL,
    sent_at REAL NOT NULL, due_at REAL, status TEXT, sequence INTEGER NOT NULL DEFAULT 0,
    settled_at REAL, PRIMARY KEY (phone, message_id)
) WITHOUT ROWID;
CREATE INDEX pairs_due ON pairs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX pairs_message ON pairs (message_id);
CREATE TABLE changes (
    pos INTEGER PRIMARY KEY, phone TEXT NOT NULL, message_id INTEGER NOT NULL,
    idx INTEGER NOT NULL, status TEXT NOT NULL, previous TEXT, settled INTEGER NOT NULL,
    reason TEXT, sequence INTEGER NOT NULL, checked_at REAL NOT NULL, date REAL,
    code INTEGER, message TEXT
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO pairs VALUES ('+33600000003', 3, 0, 2.0, 40.0, 'Waiting', 1, NULL);
INSERT INTO pairs VALUES ('+33600000001', 1, 1, 1.0, 30.0, NULL, 0, NULL);
INSERT INTO pairs VALUES ('+33600000002', 2, 2, 1.0, NULL, 'Delivered', 1, 50.0);
INSERT INTO changes VALUES (7, '+33600000002', 2, 2, 'Delivered', NULL, 1, 'final', 1, 50.0,
    NULL, NULL, NULL);
INSERT INTO meta VALUES ('last_position', 7);
PRAGMA user_version = 1;
"""


async def test_sqlite_opens_a_file_of_the_first_version_with_its_state(tmp_path: Path) -> None:
    """A watch resumed by a newer release goes on where the older one stopped."""
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as db:
        db.executescript(_VERSION_1)
    db.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await take(store) == ["+33600000002:2:1"]
        claimed = await store.claim(now=100.0, limit=10, lease=60.0)
        assert [
            (p.message_id, p.position, p.sent_at, p.due_at, p.status, p.sequence) for p in claimed
        ] == [
            (1, 1, 1.0, 30.0, None, 0),
            (3, 0, 2.0, 40.0, W, 1),
        ]
        assert await store.add([pair(1), pair(2), pair(3), pair(4)]) == 1  # 2 is settled
        await store.commit([settle(1), keep(3, 500.0)], [change(1, status=D)])
        assert await take(store) == ["+33600000001:1:1"]
        assert await store.hint(3, now=200.0) == 1
        assert await claim(store, now=300.0) == [4, 3]
        counts = await store.counts()
        assert (counts.total_pending, counts.settled) == (2, {D: 2})
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "pairs_v1" not in tables and "pairs_message" not in tables


async def test_sqlite_hands_out_dates_in_utc_whether_read_back_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes a consumer keeping up takes come from memory, the others from the file:
    both say the same, dates in UTC."""
    paris = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    utc = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    store = SQLiteStore(tmp_path / "s.db")
    reads: list[int] = []
    read = store._take
    monkeypatch.setattr(
        store, "_take", lambda cursor, *rest: reads.append(cursor) or read(cursor, *rest)
    )
    await store.open()
    try:
        await store.add([pair(1), pair(2), pair(3)])
        await claim(store)
        await store.commit([keep(1, 500.0)], [attrs.evolve(change(1), date=utc)])
        first = await store.take_changes(now=0.0, limit=100, lease=60.0)
        assert reads == []  # from memory
        await store.commit([keep(2, 500.0)], [attrs.evolve(change(2), date=paris)])
        await store.commit([keep(3, 500.0)], [change(3)])
        first += await store.take_changes(now=0.0, limit=100, lease=60.0)
        assert reads == [1]  # from the file: the change dated in another zone, and after it
        await reopen(store)
        again = await store.take_changes(now=0.0, limit=100, lease=60.0)
    finally:
        await store.close()
    assert first == again
    assert [(c.id, c.date, c.date and c.date.tzinfo) for c in first] == [
        ("+33600000001:1:1", utc, UTC),
        ("+33600000002:2:1", utc, UTC),
        ("+33600000003:3:1", None, None),
    ]
