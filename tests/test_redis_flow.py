"""The rate limit and the 429 pause shared on Redis (`smspartner_async.contrib.redis`).

Real Redis, real processes. Tests that need Redis read its URL from
SMSPARTNER_TEST_REDIS_URL and skip without it, saying how to run them; with CI=true they
fail instead (`.ci/run` starts a server and sets both). The outage test starts and stops a
`redis-server` of its own on another port.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import logging
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from smspartner_async import ClientStateError, RetryPolicy, SMSPartnerClient
from smspartner_async._flow import FlowBackend
from smspartner_async.sandbox import Faults, Sandbox, serve

from .redis_support import (
    ROOT,
    RedisServer,
    in_ci,
)

try:
    import redis
    import redis.asyncio

    from smspartner_async.contrib.redis import (
        DEFAULT_COMMAND_TIMEOUT,
        RedisFlow,
        SharedLimitsUnavailableError,
        gcra_rate,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    if in_ci():
        raise
    pytest.skip(
        f"needs the redis extra ({exc}): pip install -e '.[redis]'", allow_module_level=True
    )


# -- Redis for the tests ------------------------------------------------------------------------


@pytest.fixture
async def flows(redis_url: str) -> AsyncIterator[list[RedisFlow]]:
    """RedisFlows the test makes (on `redis_url`), closed at teardown."""
    made: list[RedisFlow] = []
    yield made
    for flow in made:
        await flow.aclose()


def new_flow(made: list[RedisFlow], url: str, scope: str, rate: float | None) -> RedisFlow:
    flow = RedisFlow.from_url(url, scope=scope, max_requests_per_second=rate)
    made.append(flow)
    return flow


# -- a sandbox that records what reaches it ------------------------------------------------------


class RecordingSandbox(Sandbox):
    """The emulator, noting each request's arrival (monotonic), phone number and status."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.arrivals: list[tuple[float, str, int]] = []

    async def app(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        arrived = time.monotonic()
        query = parse_qs(scope.get("query_string", b"").decode())
        status: list[int] = []

        async def noting(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await super().app(scope, receive, noting)
        finally:
            phone = query.get("phoneNumber", ["?"])[0]
            self.arrivals.append((arrived, phone, status[0] if status else 0))


def known_pairs(sandbox: Sandbox, n: int) -> list[tuple[str, int]]:
    pairs = (p for p in sandbox.data.sample_pairs(200) if sandbox.data.status_of(*p) is not None)
    return [next(pairs) for _ in range(n)]


def most_in_any_window(times: list[float], width: float) -> int:
    """The most arrivals in any window [t, t + width) (the busiest starts at an arrival)."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


async def run_fleet(
    base_url: str,
    redis_url: str,
    pairs: list[tuple[str, int]],
    *,
    rate: float,
    seconds: float,
    key: str,
    logs: Path,
) -> list[dict[str, Any]]:
    """One worker process per pair, same key; all start on one signal; their reports.

    Their output goes to files under `logs`, so nothing is lost when one has to be killed.
    """
    workers: list[tuple[asyncio.subprocess.Process, Path, Path]] = []
    try:
        for n, (phone, mid) in enumerate(pairs):
            command = [sys.executable, "-m", "tests.redis_worker", base_url, redis_url]
            command += ["--key", key, "--rate", str(rate), "--seconds", str(seconds)]
            command += ["--phone", phone, "--message-id", str(mid)]
            out, err = logs / f"worker{n}.out", logs / f"worker{n}.err"
            with out.open("wb") as stdout, err.open("wb") as stderr:
                process = await asyncio.create_subprocess_exec(
                    *command, cwd=ROOT, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr
                )
            workers.append((process, out, err))
        async with asyncio.timeout(60):
            while not all(out.read_bytes().startswith(b"ready\n") for _, out, _ in workers):
                if any(process.returncode is not None for process, _, _ in workers):
                    raise AssertionError("a worker did not start:\n" + _stderr(workers))
                await asyncio.sleep(0.05)
            for process, _, _ in workers:
                assert process.stdin is not None
                process.stdin.write(b"go\n")
                await process.stdin.drain()
            async with asyncio.timeout(seconds + 30):
                await asyncio.gather(*(process.wait() for process, _, _ in workers))
    finally:
        for process, _, _ in workers:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert all(p.returncode == 0 for p, _, _ in workers), _stderr(workers)
    return [json.loads(out.read_text().splitlines()[-1]) for _, out, _ in workers]


def _stderr(workers: list[tuple[asyncio.subprocess.Process, Path, Path]]) -> str:
    return "\n".join(f"worker {n}: {err.read_text()}" for n, (_, _, err) in enumerate(workers))


# -- without Redis: what the backend accepts -----------------------------------------------------


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf"), "10", True])
def test_a_bad_rate_is_invalid_input_naming_it(rate: Any) -> None:
    with pytest.raises(ValueError, match="max_requests_per_second"):
        RedisFlow.from_url("redis://127.0.0.1:1/0", scope="s", max_requests_per_second=rate)


@pytest.mark.parametrize("scope", ["", "has space", "x" * 129, None, "key/with/slash"])
def test_a_bad_scope_is_invalid_input(scope: Any) -> None:
    with pytest.raises(ValueError, match="scope"):
        RedisFlow.from_url("redis://127.0.0.1:1/0", scope=scope, max_requests_per_second=1)


@pytest.mark.parametrize(
    ("rate", "spacing_us", "burst"),
    [(10, 100_000, 1), (3, 333_334, 1), (0.5, 2_000_000, 1), (1000, 1000, 1), (1500, 667, 2)],
)
def test_rates_become_even_spacing_never_faster(rate: float, spacing_us: int, burst: int) -> None:
    limit = gcra_rate(rate)
    assert limit.interval * 1000 // limit.limit == spacing_us
    assert 1_000_000 / spacing_us <= rate
    # No starts saved up while idle (like the in-process limiter), beyond what one millisecond
    # holds: the limiter's clock counts milliseconds, so 1500/s needs 2 starts in one.
    assert limit.burst == burst
    assert (limit.burst - 1) * spacing_us < 1000


async def test_the_client_builds_and_closes_a_redis_flow_from_a_url() -> None:
    # from_url does not connect: this needs no Redis.
    client = SMSPartnerClient(
        "k" * 20, shared_limits="redis://127.0.0.1:1/0", max_requests_per_second=5
    )
    backend = client._shared.flow.backend
    assert isinstance(backend, RedisFlow)
    assert isinstance(backend, FlowBackend)
    assert backend.max_requests_per_second == 5
    assert re.fullmatch(r"[0-9a-f]{32}", backend.scope)  # a digest, not the key
    assert "k" * 20 not in repr(backend)
    await client.aclose()
    assert backend._closed


# -- real Redis, one process ---------------------------------------------------------------------


async def test_flows_of_one_scope_share_one_evenly_spaced_rate(
    redis_url: str, flows: list[RedisFlow]
) -> None:
    scope = uuid.uuid4().hex
    first, second = (new_flow(flows, redis_url, scope, 20) for _ in range(2))
    elsewhere = new_flow(flows, redis_url, uuid.uuid4().hex, 20)
    starts: list[float] = []

    async def take(flow: RedisFlow, n: int) -> None:
        for _ in range(n):
            await flow.acquire()
            starts.append(time.monotonic())

    began = time.monotonic()
    await asyncio.gather(take(first, 10), take(second, 10))
    # 20/s for both flows together, evenly spaced: start k comes k/20 s after start 0 or
    # later (less 10 ms: a start is noted once its answer is back, a round trip later).
    assert all(t - starts[0] >= k * 0.05 - 0.01 for k, t in enumerate(starts)), starts
    assert all(b - a >= 0.05 - 0.01 for a, b in itertools.pairwise(starts)), starts
    assert 0.93 <= starts[-1] - began <= 1.6
    # Another scope (another key) is limited on its own.
    quick = time.monotonic()
    await take(elsewhere, 1)
    assert time.monotonic() - quick < 0.2


async def test_a_pause_reaches_every_flow_of_the_scope_and_only_grows(
    redis_url: str, flows: list[RedisFlow]
) -> None:
    scope = uuid.uuid4().hex
    hit, other = new_flow(flows, redis_url, scope, None), new_flow(flows, redis_url, scope, 50)
    hit.pause(0.6)
    assert hit.paused()  # this process at once
    await asyncio.sleep(0.05)  # the pause is shared by a task
    assert not other.paused()  # not read yet: paused() answers from what was read
    began = time.monotonic()
    await other.acquire()  # reads the shared pause before its attempt
    assert time.monotonic() - began >= 0.5
    assert not other.paused()
    # A shorter pause never shortens a running one, in Redis as in the process.
    hit.pause(1.0)
    await asyncio.sleep(0.05)
    other.pause(0.1)
    await asyncio.sleep(0.05)
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        left = await r.pttl(f"smspartner:{scope}:pause")
    assert 800 <= left <= 1000
    began = time.monotonic()
    await other.wait_paused()  # knows of its own short pause; then reads the longer one
    assert time.monotonic() - began >= 0.75


async def test_a_cancelled_acquire_takes_nothing_and_releases_its_turn(
    redis_url: str, flows: list[RedisFlow]
) -> None:
    flow = new_flow(flows, redis_url, uuid.uuid4().hex, 2)
    await flow.acquire()
    began = time.monotonic()
    waiting = asyncio.create_task(flow.acquire())
    await asyncio.sleep(0.1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await flow.acquire()  # the turn the cancelled task waited for, not one after it
    assert 0.4 <= time.monotonic() - began <= 0.7
    assert not flow._lock.locked()


@pytest.mark.parametrize("socket_timeout", [None, 5.0])
async def test_no_cancellation_is_lost_in_a_redis_command(
    redis_url: str, socket_timeout: float | None
) -> None:
    """Cancelled during a command, acquire raises CancelledError, whatever the client.

    With a socket timeout (redis-py's default since 6.0), redis-py sends through
    asyncio.wait_for, which on Python 3.11 drops about one cancellation in four landing
    during a command: a worker's tasks then never end (this hung the fleet tests).
    """
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=socket_timeout)
    flow = RedisFlow(client, scope=uuid.uuid4().hex, owns_redis=True)  # pause reads only
    lost = 0
    try:
        for _ in range(400):

            async def acquire_and_report() -> int:
                await flow.acquire()
                task = asyncio.current_task()
                assert task is not None
                return task.cancelling()

            task = asyncio.create_task(acquire_and_report())
            await asyncio.sleep(random.uniform(0, 0.0005))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                lost += await task > 0
    finally:
        await flow.aclose()
    assert lost == 0


async def test_aclose_finishes_sharing_a_pause(redis_url: str) -> None:
    scope = uuid.uuid4().hex
    flow = RedisFlow.from_url(redis_url, scope=scope, max_requests_per_second=None)
    flow.pause(2.0)
    await flow.aclose()
    assert not flow._sharing
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        assert await r.pttl(f"smspartner:{scope}:pause") > 1500
    with pytest.raises(ClientStateError):
        await flow.acquire()


async def test_the_api_key_never_reaches_redis(redis_url: str) -> None:
    key = f"secret-key-{uuid.uuid4().hex}"
    sandbox = Sandbox(api_key=key, faults=Faults(retry_after=1))
    sandbox.faults.script([None, "429"])
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app))
    async with (
        http,
        SMSPartnerClient(
            key,
            base_url="http://sandbox/v1",
            http_client=http,
            shared_limits=redis_url,
            max_requests_per_second=2,  # the limiter's state lives 1 s after a start
            retry=RetryPolicy(max_retries=1),
        ) as client,
    ):
        phone, mid = known_pairs(sandbox, 1)[0]
        await client.message_status(phone, mid)
        retried = asyncio.create_task(client.message_status(phone, mid))
        await asyncio.sleep(0.7)  # sent at 0.5 s, answered 429: the client shares a pause
        async with redis.asyncio.Redis.from_url(redis_url) as r:
            scope = client._shared.flow.backend.scope  # type: ignore[attr-defined]
            ours = sorted([k.decode() async for k in r.scan_iter(f"smspartner:{scope}:*")])
            assert ours == [f"smspartner:{scope}:pause", f"smspartner:{scope}:rate"]
            seen = []
            async for name in r.scan_iter("*"):
                seen.append(name)
                kind = (await r.type(name)).decode()
                if kind == "string":
                    seen.append(await r.get(name) or b"")
                elif kind == "hash":
                    for field, value in (await r.hgetall(name)).items():
                        seen += [field, value]
                elif kind == "list":
                    seen += await r.lrange(name, 0, -1)
        await retried
        assert client.stats.rate_limited == 1
    assert not any(key.encode() in blob for blob in seen)


# -- Redis going away ----------------------------------------------------------------------------


async def test_redis_down_mid_run_is_a_typed_error_and_the_client_recovers(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    own_redis.start()
    sandbox = Sandbox(api_key=None)
    pairs = known_pairs(sandbox, 2)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app))
    async with (
        http,
        SMSPartnerClient(
            "outage-test-key",
            base_url="http://sandbox/v1",
            http_client=http,
            shared_limits=own_redis.url,
            max_requests_per_second=2,
            retry=RetryPolicy.testing(),
        ) as client,
    ):
        await client.message_status(*pairs[0])
        # A call waiting for its turn under the shared limit when Redis goes away.
        waiting = asyncio.create_task(client.message_status(*pairs[0]))
        await asyncio.sleep(0.1)
        own_redis.stop()
        began = time.monotonic()
        with pytest.raises(SharedLimitsUnavailableError) as raised:
            await waiting
        assert time.monotonic() - began < 5
        assert isinstance(raised.value, ClientStateError)
        assert not raised.value.retryable
        # New calls fail the same way at once, and a batch raises instead of failing items.
        began = time.monotonic()
        with pytest.raises(SharedLimitsUnavailableError):
            await client.message_status(*pairs[1])
        with pytest.raises(SharedLimitsUnavailableError):
            await client.multi_status(pairs)
        assert time.monotonic() - began < 5
        assert sandbox.stats.total == 1  # nothing was sent without the shared limit
        # A 429 while Redis is down: this process still pauses, the failure is logged.
        with caplog.at_level(logging.WARNING, logger="smspartner_async"):
            client._shared.flow.pause(0.2)
            assert client._shared.flow.backend.paused()
            await asyncio.sleep(0.3)
        assert "could not be shared" in caplog.text
        # Redis is back (empty: its state went with it): the same client works again.
        own_redis.start()
        assert (await client.message_status(*pairs[1])).phone_number == pairs[1][0]
        assert len(await client.multi_status(pairs)) == 2
        assert sandbox.stats.total == 3


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP")
@pytest.mark.parametrize("waiting", [8, 32])
async def test_a_hung_redis_fails_every_waiter_within_the_command_timeout(
    own_redis: RedisServer, waiting: int
) -> None:
    """Redis stops answering (SIGSTOP: the socket stays open, nothing comes back) with
    `waiting` calls on the shared limiter: each fails with the typed error within the
    documented bound, however many wait; once Redis answers again, calls go through."""
    own_redis.start()
    assert own_redis.process is not None
    flow = RedisFlow.from_url(own_redis.url, scope="hung", max_requests_per_second=10_000)
    bound = DEFAULT_COMMAND_TIMEOUT
    try:
        await flow.acquire()  # connected, scripts loaded

        async def timed() -> tuple[float, BaseException | None]:
            began = time.monotonic()
            try:
                await flow.acquire()
            except SharedLimitsUnavailableError as exc:
                return time.monotonic() - began, exc
            return time.monotonic() - began, None

        own_redis.process.send_signal(signal.SIGSTOP)
        try:
            outcomes = await asyncio.gather(*(timed() for _ in range(waiting)))
        finally:
            own_redis.process.send_signal(signal.SIGCONT)
        assert all(isinstance(exc, SharedLimitsUnavailableError) for _, exc in outcomes)
        slowest = max(took for took, _ in outcomes)
        assert slowest <= bound + 0.5, sorted(round(took, 2) for took, _ in outcomes)
        # Redis answers again: so does the limiter, for as many callers at once.
        async with asyncio.timeout(bound):
            await asyncio.gather(*(flow.acquire() for _ in range(waiting)))
    finally:
        await flow.aclose()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP")
@pytest.mark.parametrize("calls", [8, 32])
async def test_a_hung_redis_fails_every_call_of_a_client_within_the_bound(
    own_redis: RedisServer, calls: int
) -> None:
    """Through the client this time: calls beyond `max_concurrency` wait for a slot, and the
    slot comes free only when the calls ahead have failed. Each must still fail within the
    documented bound (its turn under the rate limit plus one command timeout), not start a
    command timeout of its own after the wave ahead (2, 4, 6, 8 s for 32 calls before)."""
    own_redis.start()
    assert own_redis.process is not None
    sandbox = Sandbox(api_key=None)
    pairs = known_pairs(sandbox, 1)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app))
    rate = 50.0
    async with (
        http,
        SMSPartnerClient(
            "hung-test-key",
            base_url="http://sandbox/v1",
            http_client=http,
            shared_limits=own_redis.url,
            max_requests_per_second=rate,
            max_concurrency=8,
            retry=RetryPolicy.testing(),
        ) as client,
    ):
        await client.message_status(*pairs[0])  # connected, scripts loaded

        async def timed() -> tuple[float, BaseException | None]:
            began = time.monotonic()
            try:
                await client.message_status(*pairs[0])
            except SharedLimitsUnavailableError as exc:
                return time.monotonic() - began, exc
            return time.monotonic() - began, None

        own_redis.process.send_signal(signal.SIGSTOP)
        try:
            outcomes = await asyncio.gather(*(timed() for _ in range(calls)))
        finally:
            own_redis.process.send_signal(signal.SIGCONT)
        assert all(isinstance(exc, SharedLimitsUnavailableError) for _, exc in outcomes)
        bound = calls / rate + DEFAULT_COMMAND_TIMEOUT
        slowest = max(took for took, _ in outcomes)
        assert slowest <= bound + 0.5, sorted(round(took, 2) for took, _ in outcomes)
        # Redis answers again: so do the calls, at once.
        async with asyncio.timeout(DEFAULT_COMMAND_TIMEOUT):
            await asyncio.gather(*(client.message_status(*pairs[0]) for _ in range(calls)))


# -- real processes ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(sandbox: RecordingSandbox) -> AsyncIterator[str]:
    async with serve(sandbox) as base_url:
        yield base_url


@pytest.mark.slow
async def test_four_processes_share_one_rate_limit(redis_url: str, tmp_path: Path) -> None:
    """4 processes, own clients, one key, 10/s each: the server sees 10/s in all, not 40."""
    sandbox = RecordingSandbox(api_key=None)
    pairs = known_pairs(sandbox, 4)
    async with serving(sandbox) as base_url:
        reports = await run_fleet(
            base_url,
            redis_url,
            pairs,
            rate=10,
            seconds=15,
            key=f"fleet-{uuid.uuid4().hex}",
            logs=tmp_path,
        )
    times = [t for t, _, _ in sandbox.arrivals]
    span = max(times) - min(times)
    overall = (len(times) - 1) / span
    busiest = most_in_any_window(times, 1.0)
    per_worker = Counter(phone for _, phone, _ in sandbox.arrivals)
    print(f"{len(times)} requests in {span:.2f}s: {overall:.2f}/s, busiest second {busiest}")
    assert busiest <= 11  # 10, and one of jitter
    assert 9.0 <= overall <= 10.5
    assert span >= 14
    assert all(per_worker[phone] >= 10 for phone, _ in pairs), per_worker
    assert all(r["errors"] == {} and r["rate_limited"] == 0 for r in reports), reports


@pytest.mark.slow
async def test_a_429_to_one_process_pauses_every_process(redis_url: str, tmp_path: Path) -> None:
    """A 429 with Retry-After: 2 to one process: no process sends for those 2 seconds."""
    sandbox = RecordingSandbox(api_key=None, faults=Faults(retry_after=2))
    sandbox.faults.script([*([None] * 30), "429"])  # about 3 s in, at 10/s
    pairs = known_pairs(sandbox, 4)
    async with serving(sandbox) as base_url:
        reports = await run_fleet(
            base_url,
            redis_url,
            pairs,
            rate=10,
            seconds=7.5,
            key=f"fleet-{uuid.uuid4().hex}",
            logs=tmp_path,
        )
    ((at, limited_phone),) = [(t, p) for t, p, status in sandbox.arrivals if status == 429]
    before = {p for t, p, _ in sandbox.arrivals if t < at}
    during = [t - at for t, _, _ in sandbox.arrivals if at < t < at + 2.0]
    after = {p for t, p, _ in sandbox.arrivals if t >= at + 2.0}
    print(f"429 at {at:.3f}; arrivals during the pause at +{[round(d, 3) for d in during]}")
    assert before == after == {phone for phone, _ in pairs}  # all 4 sent before, all resumed
    # Starts granted before the pause reached Redis (a round trip after the 429's answer
    # reached its process) may still arrive just after it, as requests in flight do.
    assert all(d < 0.2 for d in during), during
    assert sorted(r["rate_limited"] for r in reports) == [0, 0, 0, 1]
    assert limited_phone in before
