"""`watch()` end to end, in simulated time: exactly the expected changes, full calls, faults.

The scripted API says, for each pair, what the API would answer at each instant
(`tests/test_watch_fakes.py`); the schedule has no rounding (`tolerance=0`), so
every check time below is a plain sum of intervals: 5, 15, 45, 105, 705, 4305,
then every hour, and the last one at 48 hours (172,800 s).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import httpx
import pytest

from smspartner_async import AuthenticationError, DeliveryStatus
from smspartner_async.sandbox import Faults, Sandbox
from smspartner_async.testing import sandbox_client
from smspartner_async.watch import (
    MemoryStore,
    Schedule,
    SettleReason,
    SQLiteStore,
    StatusChange,
    Watcher,
    WatchRound,
    WatchStore,
    watch,
)

from .test_watch_fakes import NOT_FOUND, T0, FakeClock, ScriptedAPI, phone, scripted_client, steps

D, ND, W, KO, UNK = (
    DeliveryStatus.DELIVERED,
    DeliveryStatus.NOT_DELIVERED,
    DeliveryStatus.WAITING,
    DeliveryStatus.FAILED,
    DeliveryStatus.UNKNOWN,
)
FINAL, API_ERROR, EXPIRED = SettleReason.FINAL, SettleReason.API_ERROR, SettleReason.EXPIRED
SCHEDULE = Schedule(intervals=(5, 10, 30, 60, 600, 3600), not_found_grace=300, tolerance=0)
HOURLY = [4305 + 3600 * k for k in range(47)]  # the hourly checks before the 48-hour mark
NEVER_SETTLES = [5, 15, 45, 105, 705, *HOURLY, 172_800]
WINDOW = 172_800


def row(change: StatusChange) -> tuple[object, ...]:
    return (change.checked_at - T0, change.status, change.previous, change.settled, change.reason)


# name: (timeline, sent_at offset from T0 or None for "now", expected changes, expected asks)
SCENARIOS = {
    "delivered at once": (steps((0, "Delivered")), None, [(5, D, None, True, FINAL)], [5]),
    "not delivered": (steps((0, "Not delivered")), None, [(5, ND, None, True, FINAL)], [5]),
    "ko": (steps((0, "ko")), None, [(5, KO, None, True, FINAL)], [5]),
    "delivered after hours": (
        steps((0, "Waiting"), (3 * 3600, "Delivered")),
        None,
        [(5, W, None, False, None), (11_505, D, W, True, FINAL)],
        [5, 15, 45, 105, 705, 4305, 7905, 11_505],
    ),
    "waiting, delivered, waiting again": (
        steps((0, "Waiting"), (10, "Delivered"), (40, "Waiting")),
        None,
        [(5, W, None, False, None), (15, D, W, True, FINAL)],
        [5, 15],
    ),
    "delivered, then waiting": (
        steps((0, "Delivered"), (10, "Waiting")),
        None,
        [(5, D, None, True, FINAL)],
        [5],
    ),
    "not found for minutes, then found": (
        steps((0, NOT_FOUND), (120, "Waiting"), (5000, "Delivered")),
        None,
        [(705, W, None, False, None), (7905, D, W, True, FINAL)],
        [5, 15, 45, 105, 705, 4305, 7905],
    ),
    "never found": (
        steps((0, NOT_FOUND)),
        None,
        [(705, UNK, None, True, API_ERROR)],
        [5, 15, 45, 105, 705],
    ),
    "never settles": (
        steps((0, "Waiting")),
        None,
        [(5, W, None, False, None), (WINDOW, W, W, True, EXPIRED)],
        NEVER_SETTLES,
    ),
    "a status text nobody documents": (
        steps((0, "En cours"), (30, "Delivered")),
        None,
        [(5, UNK, None, False, None), (45, D, UNK, True, FINAL)],
        [5, 15, 45],
    ),
    "found, then not found": (
        steps((0, "Waiting"), (10, NOT_FOUND)),
        None,
        [(5, W, None, False, None), (WINDOW, W, W, True, EXPIRED)],
        NEVER_SETTLES,
    ),
    "sent 47.9 hours ago": (
        steps((0, "Waiting")),
        -(WINDOW - 360),
        [(0, W, None, False, None), (360, W, W, True, EXPIRED)],
        [0, 360],
    ),
    "sent 50 hours ago, still waiting": (
        steps((0, "Waiting")),
        -50 * 3600,
        [(0, W, None, True, EXPIRED)],
        [0],
    ),
    "sent 50 hours ago, delivered": (
        steps((0, "Delivered")),
        -50 * 3600,
        [(0, D, None, True, FINAL)],
        [0],
    ),
}


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: object) -> object:
    def make() -> WatchStore:
        if request.param == "memory":
            return MemoryStore()
        return SQLiteStore(f"{tmp_path}/watch.db")

    return make


async def collect(changes: AsyncIterator[StatusChange]) -> list[StatusChange]:
    async with asyncio.timeout(60):  # a hang guard, not a timing: simulated time is instant
        return [change async for change in changes]


async def test_every_pair_gets_exactly_its_changes_in_order(make_store: object) -> None:
    clock = FakeClock()
    names = list(SCENARIOS)
    api = ScriptedAPI(clock, {phone(i): SCENARIOS[name][0] for i, name in enumerate(names)})
    pairs = [(phone(i), 1000 + i) for i in range(len(names))]
    pairs.append(pairs[0])  # a repeat is watched once, under its first position
    offsets = [SCENARIOS[name][1] for name in names]
    sent = [None if offset is None else T0 + offset for offset in offsets] + [None]
    async with scripted_client(api) as client:
        stream = watch(
            client,
            pairs,
            sent_at=sent,
            schedule=SCHEDULE,
            store=make_store(),  # type: ignore[operator]
            clock=clock,
            sleep=clock.sleep,
        )
        changes = await collect(stream)
        assert not client.is_closed  # the watch never closes the client

    by_pair: defaultdict[int, list[StatusChange]] = defaultdict(list)
    for change in changes:
        by_pair[change.index].append(change)
    assert sorted(by_pair) == list(range(len(names)))  # nobody missing, the repeat not apart
    for i, name in enumerate(names):
        _, _, expected, asked = SCENARIOS[name]
        got = by_pair[i]
        assert [row(c) for c in got] == expected, name
        assert api.asked[phone(i)] == asked, name
        assert [c.sequence for c in got] == list(range(1, len(got) + 1))
        assert all(c.phone_number == phone(i) and c.message_id == 1000 + i for c in got)
    # Across pairs, the stream follows time, and every change has its own id.
    assert [c.checked_at for c in changes] == sorted(c.checked_at for c in changes)
    assert len({c.id for c in changes}) == len(changes)
    error = by_pair[names.index("never found")][0]
    assert (error.code, error.message) == (4, "Numéro introuvable")
    final = by_pair[names.index("delivered at once")][0]
    assert final.date is not None and final.date.timestamp() == 1517934416
    assert clock.now == T0 + WINDOW  # it ran the whole window, in simulated time


async def test_a_pair_sent_later_counts_its_window_from_its_send() -> None:
    clock = FakeClock()
    api = ScriptedAPI(clock, {phone(1): steps((0, "Waiting"))})
    async with scripted_client(api) as client:
        changes = await collect(
            watch(
                client,
                [(phone(1), 1)],
                sent_at=T0 + 1000,
                schedule=SCHEDULE,
                clock=clock,
                sleep=clock.sleep,
            )
        )
    assert [row(c) for c in changes] == [
        (1005, W, None, False, None),
        (1000 + WINDOW, W, W, True, EXPIRED),
    ]


async def test_an_outage_leaves_pairs_pending_and_nothing_is_lost() -> None:
    clock = FakeClock()
    api = ScriptedAPI(clock, {phone(i): steps((0, "Delivered")) for i in range(3)})
    # Every attempt of the first round fails (4 attempts: 1 + 3 retries): an outage.
    api.fail = lambda attempt: httpx.Response(503) if attempt <= 4 else None
    rounds: list[WatchRound] = []
    async with scripted_client(api) as client:
        changes = await collect(
            watch(
                client,
                [(phone(i), 1) for i in range(3)],
                schedule=SCHEDULE,
                clock=clock,
                sleep=clock.sleep,
                on_round=rounds.append,
            )
        )
    # Asked again 10 s later (the first interval, doubled for an outage), then settled.
    assert [r.at - T0 for r in rounds] == [5, 15]
    assert [(r.asked, r.failed, r.changes) for r in rounds] == [(3, 3, 0), (3, 0, 3)]
    assert sorted((c.index, row(c)) for c in changes) == [
        (i, (15, D, None, True, FINAL)) for i in range(3)
    ]


async def test_a_call_failed_for_good_keeps_only_its_pairs_pending() -> None:
    clock = FakeClock()
    api = ScriptedAPI(clock, {phone(i): steps((0, "Delivered")) for i in range(600)})
    # Two calls (500 + 100 pairs) go out at once; the attempts 2 to 5 fail: one call fails
    # for good (its first attempt and 3 retries), the other is answered at its first try.
    api.fail = lambda attempt: httpx.Response(502) if 2 <= attempt <= 5 else None
    rounds: list[WatchRound] = []
    async with scripted_client(api, max_concurrency=1) as client:
        changes = await collect(
            watch(
                client,
                [(phone(i), 1) for i in range(600)],
                schedule=SCHEDULE,
                clock=clock,
                sleep=clock.sleep,
                on_round=rounds.append,
            )
        )
    assert [(r.at - T0, r.asked, r.failed, r.settled) for r in rounds] == [
        (5, 600, 100, 500),
        (10, 100, 0, 100),  # asked again after the first interval, not the next check (15)
    ]
    assert Counter(c.index for c in changes) == dict.fromkeys(range(600), 1)


async def test_a_bad_key_ends_the_watch_with_its_error() -> None:
    clock = FakeClock()
    api = ScriptedAPI(clock, {phone(1): steps((0, "Waiting"))})
    bad_key = httpx.Response(200, json={"success": False, "code": 10, "message": "Clé invalide"})
    api.fail = lambda attempt: bad_key if attempt >= 2 else None
    got: list[StatusChange] = []

    async def consume(stream: AsyncIterator[StatusChange]) -> None:
        async with asyncio.timeout(60):
            async for change in stream:
                got.append(change)

    async with scripted_client(api) as client:
        stream = watch(client, [(phone(1), 1)], schedule=SCHEDULE, clock=clock, sleep=clock.sleep)
        with pytest.raises(AuthenticationError):
            await consume(stream)
    assert [row(c) for c in got] == [(5, W, None, False, None)]  # delivered before the error
    assert api.attempts == 2  # not retried, not asked again


async def test_calls_stay_full_as_the_set_thins() -> None:
    clock = FakeClock()
    sandbox = Sandbox(seed=11, clock=clock)
    pairs = list(sandbox.data.sample_pairs(5_300))
    calls_at_round: list[int] = []
    rounds: list[WatchRound] = []

    def on_round(report: WatchRound) -> None:
        rounds.append(report)
        calls_at_round.append(len(sandbox.stats.pairs_per_call))

    async with sandbox_client(sandbox) as client:
        # Pages of 1,000 pairs (8,000 by default here): a round spans several pages.
        watcher = Watcher(
            client, clock=clock, sleep=clock.sleep, on_round=on_round, page_size=1_000
        )
        async with watcher:
            await watcher.add(pairs)
            changes = await collect(watcher.changes(until_idle=True))

    sizes = sandbox.stats.pairs_per_call
    starts = [0, *calls_at_round[:-1]]
    assert len(rounds) > 10 and rounds[0].asked == 5_300 and rounds[-1].asked < 500
    for report, start, end in zip(rounds, starts, calls_at_round, strict=True):
        made = sizes[start:end]
        assert len(made) == math.ceil(report.asked / 500), report
        assert sum(made) == report.asked
        assert all(size == 500 for size in made[:-1]), made  # only a round's last call is short
    assert len({c.index for c in changes if c.settled}) == 5_300


def outcome(changes: list[StatusChange]) -> dict[int, tuple[DeliveryStatus, SettleReason | None]]:
    """Each pair's final status and reason, after checking its changes make a valid story."""
    by_pair: defaultdict[int, list[StatusChange]] = defaultdict(list)
    for change in changes:
        by_pair[change.index].append(change)
    result = {}
    for index, story in by_pair.items():
        assert [c.sequence for c in story] == list(range(1, len(story) + 1))
        assert [c.settled for c in story] == [False] * (len(story) - 1) + [True]
        assert [c.previous for c in story] == [None, *(c.status for c in story[:-1])]
        assert not any(c.status.is_final for c in story[:-1])  # a final status is the last
        result[index] = (story[-1].status, story[-1].reason)
    return result


async def _sandbox_run(
    faults: Faults | None, n: int = 3_000, on_round: object = None
) -> tuple[list[StatusChange], Sandbox]:
    clock = FakeClock()
    sandbox = Sandbox(seed=5, clock=clock, faults=faults)
    pairs = list(sandbox.data.sample_pairs(n))
    async with sandbox_client(sandbox) as client:
        stream = watch(
            client,
            pairs,
            clock=clock,
            sleep=clock.sleep,
            on_round=on_round,  # type: ignore[arg-type]
        )
        changes = await collect(stream)
    return changes, sandbox


def oracle(sandbox: Sandbox, pairs: list[tuple[str, int]]) -> dict[int, tuple[object, object]]:
    """What each pair must end as, from the sandbox's own data (its statuses settle within
    a minute, or never)."""
    expected: dict[int, tuple[object, object]] = {}
    for index, (number, message_id) in enumerate(pairs):
        record = sandbox.data.status_of(number, message_id, elapsed=WINDOW)
        if record is None:
            expected[index] = (UNK, API_ERROR)
        elif record.status == "Waiting":
            expected[index] = (W, EXPIRED)
        else:
            expected[index] = (DeliveryStatus(record.status), FINAL)
    return expected


async def test_the_sandbox_mix_ends_as_its_data_says() -> None:
    changes, sandbox = await _sandbox_run(None)
    expected = oracle(sandbox, list(sandbox.data.sample_pairs(3_000)))
    reasons = Counter(reason for _, reason in expected.values())
    assert reasons[FINAL] > 2_500 and reasons[API_ERROR] > 30 and reasons[EXPIRED] > 20
    assert outcome(changes) == expected


async def test_faults_during_a_watch_do_not_change_its_outcome() -> None:
    faults = Faults(rate=0.35, kinds=("429", "500", "502", "503", "html", "drop", "truncate"))
    faults.script(["503"] * 40)  # every attempt of the first round fails: an outage
    rounds: list[WatchRound] = []
    changes, sandbox = await _sandbox_run(faults, on_round=rounds.append)
    injected = sandbox.stats.faults
    assert sum(injected.values()) - 40 > 20 and len(injected) >= 5  # 40 scripted, then random
    assert rounds[0].failed == rounds[0].asked == 3_000  # the outage, then recovered
    assert outcome(changes) == oracle(sandbox, list(sandbox.data.sample_pairs(3_000)))


async def test_client_watch_is_the_watch_function_on_that_client() -> None:
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client
    from smspartner_async.watch import SettleReason

    sandbox = Sandbox(seed=4, api_key=None, clock=lambda: 10**9)  # every status long settled
    pairs = [p for p in sandbox.data.sample_pairs(50) if sandbox.data.status_of(*p)][:10]
    async with sandbox_client(sandbox) as client:
        changes = [c async for c in client.watch(pairs)]
    assert sorted(c.index for c in changes if c.settled) == list(range(len(pairs)))
    assert all(c.reason is SettleReason.FINAL for c in changes if c.settled)
