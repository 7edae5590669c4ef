"""The long-running `Watcher`: pairs added while it runs, callbacks, acknowledgements, stopping.

Simulated time throughout (`FakeClock`), against the scripted API of
`tests/test_watch_fakes.py`, with the schedule of `tests/test_watch.py`: checks
at 5, 15, 45, 105, 705 s... after a send.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from datetime import UTC, datetime

import httpx
import pytest

from smspartner_async import ClientStateError, DeliveryStatus, InvalidInputError
from smspartner_async.watch import (
    Bells,
    MemoryStore,
    PairUpdate,
    SettleReason,
    SQLiteStore,
    StatusChange,
    WatchedPair,
    Watcher,
    watch,
)

from .test_watch import SCHEDULE, collect, row
from .test_watch_fakes import T0, FakeClock, ScriptedAPI, phone, scripted_client, steps

D, W = DeliveryStatus.DELIVERED, DeliveryStatus.WAITING
FINAL = SettleReason.FINAL


def api_for(clock: FakeClock, n: int, *timeline: tuple[float, str]) -> ScriptedAPI:
    return ScriptedAPI(
        clock, {phone(i): steps(*(timeline or ((0, "Delivered"),))) for i in range(n)}
    )


def watcher(client: object, clock: FakeClock, **options: object) -> Watcher:
    return Watcher(
        client,  # type: ignore[arg-type]
        schedule=SCHEDULE,
        clock=clock,
        sleep=clock.sleep,
        **options,  # type: ignore[arg-type]
    )


async def test_adding_only_known_pairs_leaves_the_watcher_idle() -> None:
    # add() of pairs already settled stores nothing and wakes no round: wait_idle() still ends.
    clock = FakeClock()
    seen: list[StatusChange] = []
    async with (
        scripted_client(api_for(clock, 1)) as client,
        watcher(client, clock, on_change=seen.append) as w,
    ):
        assert await w.add([(phone(0), 1)]) == 1
        await asyncio.wait_for(w.wait_idle(), 5)
        assert await w.add([(phone(0), 1)]) == 0
        await asyncio.wait_for(w.wait_idle(), 5)
    assert [c.settled for c in seen] == [True]


async def test_changes_freed_elsewhere_are_taken_without_a_commit_of_ours() -> None:
    # In a shared store, a change another worker took and never acknowledged comes back when
    # its lease lapses, with no ring to say so: the reader looks again after `recheck`.
    class Shared(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.bells = Bells(recheck=0.1)

        async def take_changes(self, *, now: float, limit: int, lease: float) -> list[StatusChange]:
            return (
                []
                if asyncio.get_running_loop().time() < free_at
                else await super().take_changes(now=now, limit=limit, lease=lease)
            )

    store = Shared()
    free_at = asyncio.get_running_loop().time() + 0.3
    lapsed = StatusChange(0, phone(0), 1, D, None, True, FINAL, 1, T0)
    seen: list[StatusChange] = []
    delivered = asyncio.Event()

    def on_change(change: StatusChange) -> None:
        seen.append(change)
        delivered.set()

    clock = FakeClock()
    async with (
        scripted_client(api_for(clock, 1)) as client,
        watcher(client, clock, store=store, on_change=on_change) as w,
    ):
        await store.commit([], [lapsed])  # in the outbox, as if freed by a dead worker
        await asyncio.wait_for(delivered.wait(), 5)
        assert seen == [lapsed]
        assert not w.closed


async def test_a_claim_in_flight_when_the_watcher_stops_ends_before_the_store_closes() -> None:
    # A shared store hands back on close what it knows it holds: a claim cut off mid-way
    # would leave its pairs held for a whole lease. So stopping lets it finish first.
    events: list[str] = []
    started = asyncio.Event()

    class Slow(MemoryStore):
        async def claim(self, *, now: float, limit: int, lease: float) -> list[WatchedPair]:
            due = await self.next_due()
            if due is not None and due <= now:
                started.set()  # a claim that will hold pairs is in flight
            await asyncio.sleep(0.2)  # a round trip to a shared store
            claimed = await super().claim(now=now, limit=limit, lease=lease)
            events.append(f"claimed {len(claimed)}")
            return claimed

        async def close(self) -> None:
            events.append("closed")

    clock = FakeClock()
    async with scripted_client(api_for(clock, 3)) as client:
        w = watcher(client, clock, store=Slow())
        async with w:
            await w.add([(phone(i), 1) for i in range(3)], sent_at=T0 - 100)  # due at once
            await asyncio.wait_for(started.wait(), 5)
    assert events == ["claimed 3", "closed"]


async def test_pairs_added_while_it_runs_reach_the_callback() -> None:
    clock = FakeClock()
    api = ScriptedAPI(
        clock,
        {
            phone(0): steps((0, "Delivered")),
            phone(1): steps((0, "Waiting"), (100, "Delivered")),
            phone(2): steps((0, "Not delivered")),
        },
    )
    seen: list[StatusChange] = []

    async def on_change(change: StatusChange) -> None:
        await asyncio.sleep(0)  # a coroutine callback is awaited
        seen.append(change)

    async with scripted_client(api) as client, watcher(client, clock, on_change=on_change) as w:
        assert await w.add([(phone(0), 1), (phone(1), 1)]) == 2
        await w.wait_idle()
        assert clock.now == T0 + 105
        # Later sends: a pair already settled is not watched again; positions start at 0.
        assert await w.add([(phone(1), 1), (phone(2), 1)]) == 1
        await w.wait_idle()
    assert [(c.phone_number, c.index, row(c)) for c in seen] == [
        (phone(0), 0, (5, D, None, True, FINAL)),
        (phone(1), 1, (5, W, None, False, None)),
        (phone(1), 1, (105, D, W, True, FINAL)),
        (phone(2), 1, (110, DeliveryStatus.NOT_DELIVERED, None, True, FINAL)),
    ]


async def test_a_change_is_acknowledged_only_when_the_next_is_asked_for() -> None:
    clock = FakeClock()
    api = api_for(clock, 3)
    store = MemoryStore()
    async with scripted_client(api) as client:
        async with watcher(client, clock, store=store) as w:
            await w.add([(phone(i), 1) for i in range(3)])
            async with aclosing(w.changes()) as changes:
                first = await anext(changes)  # then left without asking for the next
            again = await collect(_two(w))
            assert again[0] == first  # the change in hand is delivered again
        # A watcher started again on the same store: what was taken but not acknowledged
        # comes back, what was acknowledged does not.
        async with watcher(client, clock, store=store) as w:
            rest = await collect(w.changes(until_idle=True))
    ids = [f"{phone(i)}:1:1" for i in range(3)]
    assert [c.id for c in again] == ids[:2]
    assert [c.id for c in rest] == ids[1:]  # the second was never acknowledged


async def _two(w: Watcher) -> AsyncIterator[StatusChange]:
    """The first two changes, acknowledging the first only."""
    async with aclosing(w.changes()) as changes:
        yield await anext(changes)
        yield await anext(changes)


async def test_a_failing_callback_stops_the_watcher_and_its_change_comes_back() -> None:
    clock = FakeClock()
    api = api_for(clock, 3)
    store = MemoryStore()
    calls: list[str] = []

    def on_change(change: StatusChange) -> None:
        calls.append(change.id)
        if len(calls) == 2:
            raise RuntimeError("the consumer's database is down")

    async def run(client: object) -> None:
        async with watcher(client, clock, store=store, on_change=on_change) as w:
            await w.add([(phone(i), 1) for i in range(3)])
            await w.wait()

    async with scripted_client(api) as client:
        with pytest.raises(RuntimeError, match="database is down"):
            await run(client)
        async with watcher(client, clock, store=store) as w:
            rest = await collect(w.changes(until_idle=True))
    assert [c.id for c in rest] == [*calls[1:], f"{phone(2)}:1:1"]


async def test_closing_the_client_stops_the_watcher_cleanly() -> None:
    clock = FakeClock()
    api = api_for(clock, 2, (0, "Waiting"))
    got: list[StatusChange] = []
    async with scripted_client(api) as client, watcher(client, clock) as w:
        await w.add([(phone(i), 1) for i in range(2)])
        async with asyncio.timeout(60):
            async for change in w.changes():
                got.append(change)
                await client.aclose()
            await w.wait()  # returns: the client was closed, nothing failed
        with pytest.raises(ClientStateError):
            await w.add([(phone(3), 1)])
    assert [row(c) for c in got] == [(5, W, None, False, None)] * 2


async def test_a_round_cut_short_loses_nothing() -> None:
    clock = FakeClock()
    entered, never = asyncio.Event(), asyncio.Event()

    async def stuck(request: httpx.Request) -> httpx.Response:
        entered.set()
        await never.wait()
        raise AssertionError("unreachable")

    store = MemoryStore()
    async with httpx.AsyncClient(transport=httpx.MockTransport(stuck)) as http:
        from smspartner_async import SMSPartnerClient

        async with (
            SMSPartnerClient("k", http_client=http) as client,
            watcher(client, clock, store=store) as w,
        ):
            await w.add([(phone(i), 1) for i in range(3)])
            await entered.wait()  # the round's pairs are claimed, their call in flight
    api = api_for(clock, 3)
    async with scripted_client(api) as client, watcher(client, clock, store=store) as w:
        changes = await collect(w.changes(until_idle=True))
    assert sorted(c.phone_number for c in changes) == [phone(i) for i in range(3)]


async def test_leaving_early_leaves_no_task_and_no_thread(tmp_path: object) -> None:
    clock = FakeClock()
    api = api_for(clock, 5, (0, "Waiting"))
    before = asyncio.all_tasks()
    async with scripted_client(api) as client:
        stream = watch(
            client,
            [(phone(i), 1) for i in range(5)],
            schedule=SCHEDULE,
            store=SQLiteStore(f"{tmp_path}/w.db"),
            clock=clock,
            sleep=clock.sleep,
        )

        first = asyncio.Event()

        async def consume() -> None:
            async with aclosing(stream) as changes:
                async for _ in changes:
                    first.set()
                    await asyncio.Event().wait()  # stuck on the first change: cancelled here

        task = asyncio.create_task(consume())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert asyncio.all_tasks() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("smspartner-watch")]


class CountingStore(MemoryStore):
    """A memory store that measures its outbox: changes committed and not acknowledged."""

    def __init__(self) -> None:
        super().__init__()
        self.unacked = 0
        self.peak = 0

    async def commit(self, updates: Sequence[PairUpdate], changes: Sequence[StatusChange]) -> None:
        await super().commit(updates, changes)
        self.unacked += len(changes)
        self.peak = max(self.peak, self.unacked)

    async def ack(self, change_ids: Sequence[str]) -> None:
        await super().ack(change_ids)
        self.unacked -= len(change_ids)


async def test_a_slow_consumer_holds_polling_back() -> None:
    clock = FakeClock()
    api = api_for(clock, 300)
    store = CountingStore()
    async with scripted_client(api) as client:
        w = watcher(client, clock, store=store, page_size=10, max_backlog=20)
        async with w:
            await w.add([(phone(i), 1) for i in range(300)])
            got = 0
            async with asyncio.timeout(60):
                async for _ in w.changes(until_idle=True):
                    got += 1
                    for _ in range(20):
                        await asyncio.sleep(0)  # slower than the poller
    assert got == 300
    # It reached the bound, and never passed it by more than the two pages in flight.
    assert 20 <= store.peak <= 20 + 2 * 10


async def test_a_pair_is_forgotten_after_its_retention() -> None:
    clock = FakeClock()
    api = ScriptedAPI(
        clock,
        {phone(0): steps((0, "Delivered")), phone(1): steps((0, "Waiting"), (7200, "Delivered"))},
    )
    async with scripted_client(api) as client:
        for retention, added_again in ((3600.0, 1), (None, 0)):
            clock.now = T0
            async with watcher(
                client, clock, retention=retention, on_change=lambda change: None
            ) as w:
                await w.add([(phone(0), 1), (phone(1), 1)])
                await w.wait_idle()  # phone 0 settled at 5 s, phone 1 after two hours
                assert await w.add([(phone(0), 1)]) == added_again


async def test_sent_at_forms_and_bad_input() -> None:
    clock = FakeClock()
    api = api_for(clock, 4, (0, "Waiting"))
    async with scripted_client(api) as client, watcher(client, clock) as w:
        aware = datetime.fromtimestamp(T0 - 1000, tz=UTC)
        assert await w.add([(phone(0), 1), (phone(1), 1)], sent_at=[aware, None]) == 2
        assert await w.add([(phone(2), "7")], sent_at=int(T0) - 2000) == 1
        with pytest.raises(InvalidInputError, match="aware"):
            await w.add([(phone(3), 1)], sent_at=datetime(2025, 1, 1))
        with pytest.raises(InvalidInputError, match="fewer times"):
            await w.add([(phone(3), 1)], sent_at=[])
        with pytest.raises(InvalidInputError, match="more times"):
            await w.add([(phone(3), 1)], sent_at=[T0, T0])
        with pytest.raises(InvalidInputError, match=r"\(item 1\)"):
            await w.add([(phone(3), 1), ("not a phone", 1)])
        with pytest.raises(InvalidInputError):
            await w.add("+33612345678")  # type: ignore[arg-type]
        # Epoch milliseconds, the usual slip: the first check would come in 55,000 years.
        with pytest.raises(InvalidInputError, match="milliseconds"):
            await w.add([(phone(3), 1)], sent_at=int(T0 * 1000))
        with pytest.raises(InvalidInputError, match="milliseconds"):
            await w.add([(phone(3), 1)], sent_at=[datetime.fromtimestamp(T0 + 2 * 86_400, tz=UTC)])
        with pytest.raises(InvalidInputError, match="iterable of times"):
            await w.add([(phone(3), 1)], sent_at="yesterday")  # type: ignore[arg-type]
        assert await w.add([(phone(4), 1)], sent_at=T0 + 60) == 1  # a skewed clock: fine
        first = await anext(aiter(w.changes()))
    # The earliest send is asked first: sent 2,000 s ago, its first check long past.
    assert (first.phone_number, first.checked_at) == (phone(2), T0)


async def test_misuse_is_refused_clearly() -> None:
    clock = FakeClock()
    api = api_for(clock, 1)
    async with scripted_client(api) as client:
        w = watcher(client, clock)
        with pytest.raises(ClientStateError):
            await w.add([(phone(0), 1)])  # not entered
        async with w:
            reader = w.changes()
            await w.add([(phone(0), 1)])
            assert (await anext(reader)).phone_number == phone(0)
            with pytest.raises(ClientStateError):
                await anext(w.changes())  # one reader at a time
            await reader.aclose()
        with pytest.raises(ClientStateError):
            async with w:
                pass  # a watcher runs once
        with pytest.raises(ClientStateError):
            watcher(client, clock, on_change=print).changes()
        with pytest.raises(InvalidInputError):
            watcher(client, clock, page_size=0)


# -- hints and batches ------------------------------------------------------------------------


async def test_a_hint_wakes_the_poller_through_the_store_and_the_pair_is_asked_now() -> None:
    # The watch's own sleep never ends here: only the store's bell can wake the poller.
    clock = FakeClock()
    api = api_for(clock, 2)

    async def never(seconds: float) -> None:
        await asyncio.sleep(3600)

    async with (
        scripted_client(api) as client,
        Watcher(client, schedule=SCHEDULE, clock=clock, sleep=never) as w,
        aclosing(w.changes()) as changes,
    ):
        await w.add([(phone(0), 1), (phone(1), 2)])  # first checks 5 s away: a sleep away
        await asyncio.sleep(0.05)
        assert api.asked == {}
        assert await w.hint("1", phone(0)) == 1
        async with asyncio.timeout(2):
            change = await anext(changes)
        assert (change.phone_number, change.status, change.settled) == (phone(0), D, True)
        assert dict(api.asked) == {phone(0): [0.0]}  # asked at once, the other one not
        assert await w.hint(1, phone(0)) == 0  # settled: a hint changes nothing
        with pytest.raises(InvalidInputError):
            await w.hint("not an id")


async def test_on_batch_gets_changes_in_order_and_acknowledges_each_batch_once() -> None:
    clock = FakeClock()
    batches: list[list[str]] = []
    acks: list[int] = []

    class Counting(MemoryStore):
        async def ack(self, change_ids: Sequence[str]) -> None:
            acks.append(len(change_ids))
            await super().ack(change_ids)

    async with (
        scripted_client(api_for(clock, 30)) as client,
        watcher(
            client,
            clock,
            store=Counting(),
            on_batch=lambda batch: batches.append([c.phone_number for c in batch]),
        ) as w,
    ):
        await w.add([(phone(i), i + 1) for i in range(30)])
        await asyncio.wait_for(w.wait_idle(), 5)
    assert [p for batch in batches for p in batch] == [phone(i) for i in range(30)]
    assert acks == [len(batch) for batch in batches]  # one acknowledgement per batch


async def test_leaving_batches_early_delivers_the_batch_in_hand_again_whole() -> None:
    clock = FakeClock()
    async with (
        scripted_client(api_for(clock, 5)) as client,
        watcher(client, clock) as w,
    ):
        await w.add([(phone(i), i + 1) for i in range(5)])
        async with aclosing(w.batches()) as batches:
            first = await anext(batches)
        assert len(first) == 5
        async with aclosing(w.batches(until_idle=True)) as batches:
            again = [c async for batch in batches for c in batch]
        assert again == first
