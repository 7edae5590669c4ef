"""The sandbox pushes delivery reports: when, how, and how it misbehaves on request."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import httpx
import pytest

from smspartner_async.callbacks import CallbackReceiver, Hint
from smspartner_async.sandbox import WAITING, CallbackPusher, Sandbox, SandboxData
from smspartner_async.sandbox._server import serve_app
from smspartner_async.testing import FastClock
from tests.sandbox._helpers import FakeClock

TOKEN = "push-token-0123456789abcdef"
URL = f"http://receiver/dlr/{TOKEN}"


class Received:
    def __init__(self) -> None:
        self.hints: list[Hint] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message_id: int, phone_number: str | None) -> None:
        self.hints.append(Hint(message_id, phone_number))
        self.arrived.set()

    async def reached(self, count: int) -> None:
        """Until `count` hints arrived (one per callback sent, in these tests)."""
        async with asyncio.timeout(10):
            while len(self.hints) < count:
                self.arrived.clear()
                await self.arrived.wait()


def in_process(receiver: CallbackReceiver) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.asgi))


def pairs_of(sandbox: Sandbox, n: int) -> list[tuple[str, int]]:
    return list(sandbox.data.sample_pairs(n))


def reported(sandbox: Sandbox, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], float]:
    """Each pair that ever gets a report -> when (sandbox elapsed seconds, from 0)."""
    out = {}
    for phone, mid in pairs:
        record = sandbox.data.status_of(phone, mid, math.inf)
        if record is not None and record.status != WAITING:
            out[(record.phone, mid)] = record.settles_at or 0.0
    return out


async def run_until(pusher: CallbackPusher, clock: FakeClock, until: float) -> None:
    """Moves the sandbox's clock second by second, pushing what is due each time."""
    while pusher.sandbox.elapsed() < until:
        clock.advance(1.0)
        await pusher.push_due()


@pytest.mark.parametrize(("method", "body"), [("POST", "json"), ("POST", "form"), ("GET", "json")])
async def test_each_report_is_pushed_once_when_it_becomes_available(method: str, body: str) -> None:
    clock = FakeClock(0.0)
    sandbox = Sandbox(clock=clock)
    receiver = CallbackReceiver(TOKEN, flush_delay=0)
    got = Received()
    pairs = pairs_of(sandbox, 400)
    expected = reported(sandbox, pairs)
    assert any(at > 10 for at in expected.values())  # some settle later, on the clock
    async with in_process(receiver) as http, receiver.feeding(got):
        pusher = CallbackPusher(sandbox, URL, http=http, method=method, body=body, delay=1.0)  # type: ignore[arg-type]
        pusher.track(pairs)
        seen_at: dict[tuple[str, int], float] = {}
        while sandbox.elapsed() < 70:
            clock.advance(1.0)
            await pusher.push_due()
            await got.reached(pusher.stats.sent)  # the receiver handed them over
            for hint in got.hints:
                assert hint.phone_number is not None
                seen_at.setdefault((hint.phone_number, hint.message_id), sandbox.elapsed())
    assert pusher.stats.sent == len(expected) == pusher.stats.reports
    assert seen_at.keys() == expected.keys()
    for pair, at in expected.items():
        # Pushed within a second of report + delay, never before the report.
        assert at + 1.0 <= seen_at[pair] <= at + 2.0 + 1e-9


async def test_lost_duplicated_reordered_late_and_phoneless_callbacks() -> None:
    clock = FakeClock(0.0)
    sandbox = Sandbox(clock=clock)
    receiver = CallbackReceiver(TOKEN, flush_delay=0)
    got = Received()
    pairs = pairs_of(sandbox, 2_000)
    async with in_process(receiver) as http, receiver.feeding(got):
        pusher = CallbackPusher(
            sandbox,
            URL,
            http=http,
            lost=0.1,
            duplicated=0.2,
            reordered=0.2,
            late=0.1,
            late_by=600.0,
            without_phone=0.1,
            seed=3,
        )
        pusher.track(pairs)
        await run_until(pusher, clock, 700)
        await asyncio.sleep(0.01)
    stats = pusher.stats
    assert 0.07 < stats.lost / stats.reports < 0.13
    # Every report not lost is pushed once, some twice, some followed by a stale one.
    assert stats.scheduled > stats.reports - stats.lost
    assert stats.sent == stats.scheduled
    assert pusher.waiting == 0
    per_pair = Counter(hint for hint in got.hints)
    assert max(per_pair.values()) >= 2  # the receiver sees repeats (once they left its buffer)
    assert any(hint.phone_number is None for hint in got.hints)


async def test_every_callback_lost_pushes_nothing() -> None:
    clock = FakeClock(0.0)
    sandbox = Sandbox(clock=clock)
    async with httpx.AsyncClient() as http:
        pusher = CallbackPusher(sandbox, URL, http=http, lost=1.0)
        assert pusher.track(pairs_of(sandbox, 500)) == 0
        assert pusher.stats.lost == pusher.stats.reports > 400


async def test_the_same_seed_pushes_the_same_callbacks() -> None:
    def schedule(seed: int) -> list[tuple[float, int, str | None]]:
        sandbox = Sandbox(clock=FakeClock(0.0))
        pusher = CallbackPusher(
            sandbox, URL, lost=0.3, late=0.3, duplicated=0.3, without_phone=0.3, seed=seed
        )
        pusher.track(pairs_of(sandbox, 300))
        return [(c.at, c.message_id, c.phone) for c in sorted(pusher._queue)]

    assert schedule(1) == schedule(1)
    assert schedule(1) != schedule(2)


async def test_a_refusing_or_absent_receiver_is_counted_not_raised() -> None:
    clock = FakeClock(0.0)
    sandbox = Sandbox(clock=clock)
    receiver = CallbackReceiver(TOKEN)
    async with in_process(receiver) as http:
        pusher = CallbackPusher(sandbox, "http://receiver/dlr/wrong-token-000000", http=http)
        pusher.track(pairs_of(sandbox, 20))
        await run_until(pusher, clock, 2)
        assert pusher.stats.refused > 0
    async with httpx.AsyncClient() as http:
        pusher = CallbackPusher(sandbox, "http://127.0.0.1:9/dlr/x", http=http)
        pusher.track(pairs_of(sandbox, 5))
        clock.advance(5)
        await pusher.push_due()
        assert pusher.stats.failed > 0


async def test_over_real_sockets_on_a_fast_clock() -> None:
    """The receiver behind uvicorn, the pusher running on its own with a FastClock's sleep."""
    clock = FastClock(60.0)
    sandbox = Sandbox(clock=clock)
    receiver = CallbackReceiver(TOKEN, flush_delay=0.01)
    got = Received()
    pairs = pairs_of(sandbox, 200)
    expected = reported(sandbox, pairs)
    async with serve_app(receiver.asgi) as port, receiver.feeding(got):
        pusher = CallbackPusher(sandbox, f"http://127.0.0.1:{port}/dlr/{TOKEN}", sleep=clock.sleep)
        async with pusher:
            pusher.track(pairs)
            async with asyncio.timeout(10):
                while {(h.phone_number, h.message_id) for h in got.hints} != expected.keys():
                    got.arrived.clear()
                    await got.arrived.wait()
                # A pusher counts a callback sent once its answer is back: after the hint.
                for _ in range(1_000):  # up to 10 s
                    if pusher.stats.sent >= len(expected):
                        break
                    await asyncio.sleep(0.01)
    assert pusher.stats.sent == len(expected)
    assert TOKEN not in repr(pusher)


def test_a_reordered_report_is_followed_by_a_stale_waiting_one() -> None:
    sandbox = Sandbox(clock=FakeClock(0.0))
    pusher = CallbackPusher(sandbox, URL, reordered=1.0)
    pusher.track(pairs_of(sandbox, 200))
    final_at: dict[tuple[int, str | None], float] = {}
    stale = 0
    for callback in sorted(pusher._queue):
        key = (callback.message_id, callback.phone)
        if callback.status == "waiting":
            assert callback.at >= final_at[key]  # after the final one: out of order
            stale += 1
        else:
            final_at[key] = callback.at
    assert stale == len(final_at) == pusher.stats.reports


async def test_the_standalone_server_pushes_the_reports_of_pairs_it_is_asked_about() -> None:
    """`python -m smspartner_async.sandbox --push-url ...` in its own process: a pair counts
    as sent when first asked about, and its report is pushed to the receiver's socket."""
    import sys

    from smspartner_async import APIConnectionError, SMSPartnerClient
    from tests.redis_support import ROOT, free_port

    receiver = CallbackReceiver(TOKEN, flush_delay=0.01)
    got = Received()
    data = SandboxData(0)
    pairs = list(data.sample_pairs(50))
    expected = {
        (record.phone, mid)
        for phone, mid in pairs
        if (record := data.status_of(phone, mid, 0.0)) is not None and record.status != WAITING
    }
    port = free_port()
    async with serve_app(receiver.asgi) as receiver_port, receiver.feeding(got):
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smspartner_async.sandbox",
            "--port",
            str(port),
            "--any-key",
            "--push-url",
            f"http://127.0.0.1:{receiver_port}/dlr/{TOKEN}",
            "--push-delay",
            "0",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert server.stdout is not None
            assert b"sandbox on" in await server.stdout.readline()
            assert TOKEN.encode() not in await server.stdout.readline()
            async with SMSPartnerClient("demo", base_url=f"http://127.0.0.1:{port}/v1") as client:
                for _ in range(100):  # the server's socket may still be opening
                    try:
                        await client.multi_status(pairs)
                        break
                    except APIConnectionError:
                        await asyncio.sleep(0.05)
                async with asyncio.timeout(10):
                    while not expected <= {(h.phone_number, h.message_id) for h in got.hints}:
                        got.arrived.clear()
                        await got.arrived.wait()
                await client.multi_status(pairs)  # asked again: not pushed again
                await asyncio.sleep(0.3)
        finally:
            server.terminate()
            await server.wait()
    assert len(got.hints) == len(expected)
