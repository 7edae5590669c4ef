"""Callbacks through the receiver into the watch: the same changes as polling alone, sooner.

Simulated time: `PushClock` is the watcher's clock and sleep. A sleep jumps to its
end, unless a callback or an `add` is scheduled before: then time stops there,
the callback goes through the receiver over HTTP (in-process ASGI), its hints
reach the watch, and the sleep ends early, as the store's ring ends the
poller's nap. The API is `ScriptedAPI`: what it says about each pair at each
instant, whatever the callbacks claim.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from smspartner_async.callbacks import CallbackReceiver, PushSchedule
from smspartner_async.watch import Schedule, StatusChange, Watcher

from .test_watch_fakes import T0, FakeClock, ScriptedAPI, phone, scripted_client, steps

TOKEN = "watch-token-0123456789abcdef"
URL = f"http://receiver/dlr/{TOKEN}"
BULK = 900  # one message id, several recipients

Action = Callable[[], Awaitable[Any]]


class PushClock(FakeClock):
    """FakeClock whose sleeps stop at scheduled actions (callbacks, adds) and run them."""

    def __init__(self) -> None:
        super().__init__()
        self._actions: list[tuple[float, int, Action]] = []
        self._order = itertools.count()

    def at(self, seconds: float, action: Action) -> None:
        heapq.heappush(self._actions, (T0 + seconds, next(self._order), action))

    @property
    def idle(self) -> bool:
        return not self._actions

    async def sleep(self, seconds: float) -> None:
        target = self.now + seconds
        if not self._actions or self._actions[0][0] > target:
            await super().sleep(seconds)
            return
        await self.run_next()

    async def run_next(self) -> None:
        """Move to the next scheduled action and run every one due then."""
        self.now = max(self.now, self._actions[0][0])
        while self._actions and self._actions[0][0] <= self.now:
            _, _, action = heapq.heappop(self._actions)
            await action()
        await asyncio.sleep(0)


class Fed:
    """The receiver fed into a watcher, and a way to send it a callback and wait until
    the watch took every hint it named."""

    def __init__(self, receiver: CallbackReceiver, http: httpx.AsyncClient) -> None:
        self.receiver = receiver
        self.http = http
        self.taken = 0
        self._moved = asyncio.Event()

    def sink(self, watcher: Watcher) -> Callable[[int, str | None], Awaitable[int]]:
        async def hint(message_id: int, phone_number: str | None) -> int:
            try:
                return await watcher.hint(message_id, phone_number)
            finally:
                self.taken += 1
                self._moved.set()

        return hint

    async def send(self, method: str, hints: int = 1, **request: Any) -> None:
        expected = self.taken + hints
        before = self.receiver.stats.repeated
        response = await self.http.request(method, URL, **request)
        assert response.status_code == 200, response.text
        expected -= self.receiver.stats.repeated - before
        while self.taken < expected:
            self._moved.clear()
            await asyncio.wait_for(self._moved.wait(), 5)


def timelines() -> dict[str, Any]:
    return {
        phone(0): steps((0, "Waiting"), (30, "Delivered")),
        phone(1): steps((0, "Waiting"), (100, "Not delivered")),
        phone(2): steps((0, "Waiting"), (60, "Delivered")),
        phone(3): steps((0, "Waiting"), (60, "Delivered")),
        phone(4): steps((0, "Delivered")),
        phone(5): steps((0, "Delivered")),
    }


FIRST = [(phone(0), 1), (phone(1), 2), (phone(2), BULK), (phone(3), BULK), (phone(4), 4)]
LATER = [(phone(5), 5)]


def schedule_callbacks(clock: PushClock, fed: Fed) -> None:
    """Callbacks of every kind and spelling, in and out of order, as the scenario says."""
    # The report of p0, by POST JSON, half a second after the API has it.
    clock.at(30.5, lambda: fed.send("POST", json={"messageId": 1, "phoneNumber": phone(0)}))
    # p1: an early, wrong callback (the API still says Waiting), the real one by GET,
    # the same again, and a stale "waiting" one after it (out of order).
    clock.at(50, lambda: fed.send("POST", json={"message_id": 2, "msisdn": phone(1)[1:]}))
    clock.at(100.2, lambda: fed.send("GET", params={"msgId": 2, "number": "0600000001"}))
    clock.at(101, lambda: fed.send("GET", params={"msgId": 2, "number": phone(1)}))
    clock.at(
        102,
        lambda: fed.send("POST", data={"messageId": "2", "to": phone(1), "status": "waiting"}),
    )
    # The bulk message: one callback without a phone number, by form.
    clock.at(60.5, lambda: fed.send("POST", data={"messageId": str(BULK), "status": "delivered"}))
    # p4 settled at its first check: a callback after that is ignored.
    clock.at(20, lambda: fed.send("POST", json={"messageId": 4, "phone_number": phone(4)}))
    # p5, sent at 199 s: its report is pushed before the sender added it (at 200 s).
    clock.at(199.5, lambda: fed.send("POST", json={"messageId": 5, "phoneNumber": phone(5)}))


@asynccontextmanager
async def run_watch(
    schedule: Schedule, *, with_callbacks: bool
) -> AsyncIterator[tuple[list[StatusChange], ScriptedAPI, CallbackReceiver]]:
    clock = PushClock()
    if isinstance(schedule, PushSchedule):
        schedule = PushSchedule(clock=clock)
    api = ScriptedAPI(clock, timelines())
    seen: list[StatusChange] = []
    receiver = CallbackReceiver(TOKEN, flush_delay=0)
    async with (
        scripted_client(api) as client,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.asgi)) as http,
        Watcher(
            client, schedule=schedule, clock=clock, sleep=clock.sleep, on_change=seen.append
        ) as watcher,
    ):
        fed = Fed(receiver, http)
        on_hint = schedule.heard if isinstance(schedule, PushSchedule) else None
        async with receiver.feeding(fed.sink(watcher), on_hint=on_hint):
            await watcher.add(FIRST, sent_at=T0)

            async def add_later() -> None:
                await watcher.add(LATER, sent_at=T0 + 199)

            clock.at(200, add_later)
            if with_callbacks:
                schedule_callbacks(clock, fed)
            while True:
                await asyncio.wait_for(watcher.wait_idle(), 10)
                if clock.idle:
                    break
                await clock.run_next()  # nothing pending until then: time moves on
            yield seen, api, receiver


def by_pair(changes: list[StatusChange]) -> dict[tuple[str, int], list[StatusChange]]:
    out: dict[tuple[str, int], list[StatusChange]] = {}
    for change in changes:
        out.setdefault((change.phone_number, change.message_id), []).append(change)
    return out


def essence(changes: list[StatusChange]) -> list[tuple[Any, ...]]:
    return [(c.status, c.previous, c.settled, c.reason, c.sequence) for c in changes]


async def test_callbacks_give_the_poll_only_changes_sooner() -> None:
    async with run_watch(Schedule(), with_callbacks=False) as (polled, polled_api, _):
        pass
    async with run_watch(Schedule(), with_callbacks=True) as (pushed, pushed_api, receiver):
        pass
    polled_pairs, pushed_pairs = by_pair(polled), by_pair(pushed)
    assert polled_pairs.keys() == pushed_pairs.keys() == {*FIRST, *LATER}
    for pair, changes in polled_pairs.items():
        # The same changes: statuses only ever come from the API, whatever a callback said.
        assert essence(pushed_pairs[pair]) == essence(changes), pair
        assert pushed_pairs[pair][-1].settled
        # ... never later, and sooner for every pair whose report was pushed while pending.
        assert pushed_pairs[pair][-1].checked_at <= changes[-1].checked_at
    sooner = {
        pair
        for pair, changes in pushed_pairs.items()
        if changes[-1].checked_at < polled_pairs[pair][-1].checked_at
    }
    assert sooner == {(phone(0), 1), (phone(1), 2), (phone(2), BULK), (phone(3), BULK), *LATER}
    assert pushed_pairs[(phone(0), 1)][-1].checked_at == T0 + 30.5
    assert pushed_pairs[(phone(1), 2)][-1].checked_at == T0 + 100.2
    assert pushed_pairs[(phone(2), BULK)][-1].checked_at == T0 + 60.5  # no phone: both
    assert pushed_pairs[(phone(5), 5)][-1].checked_at == T0 + 200  # hinted before its add
    # The settled pair's callback (p4) and the repeats after p1 settled cost no look-up.
    assert pushed_api.asked[phone(4)] == polled_api.asked[phone(4)] == [5.0]
    assert max(pushed_api.asked[phone(1)]) == pytest.approx(100.2)
    assert receiver.stats.refused == receiver.stats.malformed == 0


async def test_every_callback_lost_is_the_poll_only_watch() -> None:
    """PushSchedule with no callback: the same changes at the same times, the same calls."""
    async with run_watch(Schedule(), with_callbacks=False) as (polled, polled_api, _):
        pass
    async with run_watch(PushSchedule(), with_callbacks=False) as (pushed, pushed_api, _):
        pass
    assert [(c.id, c.status, c.checked_at) for c in pushed] == [
        (c.id, c.status, c.checked_at) for c in polled
    ]
    assert pushed_api.asked == polled_api.asked
    assert pushed_api.calls == polled_api.calls


async def test_with_callbacks_heard_the_push_schedule_asks_less() -> None:
    async with run_watch(Schedule(), with_callbacks=True) as (plain, plain_api, _):
        pass
    async with run_watch(PushSchedule(), with_callbacks=True) as (pushed, pushed_api, _):
        pass
    assert {(c.phone_number, c.message_id, c.status) for c in pushed if c.settled} == {
        (c.phone_number, c.message_id, c.status) for c in plain if c.settled
    }
    looks = sum(map(len, pushed_api.asked.values()))
    assert looks < sum(map(len, plain_api.asked.values()))


async def test_a_stopped_watcher_makes_hints_fail_not_the_receiver() -> None:
    clock = PushClock()
    api = ScriptedAPI(clock, timelines())
    receiver = CallbackReceiver(TOKEN, flush_delay=0)
    async with scripted_client(api) as client:
        watcher = Watcher(client, clock=clock, sleep=clock.sleep)
        async with watcher:
            pass  # stopped at once
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.asgi)) as http,
            receiver.feeding(watcher.hint),
        ):
            response = await http.get(URL, params={"messageId": 1})
            assert response.status_code == 200
    assert receiver.stats.failed == 1
    assert receiver.stats.delivered == 0
