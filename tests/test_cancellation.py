"""Cancellation, timeouts and deadlines leak nothing: over real sockets, both transports.

After each interruption the pool (httpx's or aiohttp's) holds no request and no checked-out
connection, no task of the client is left running, and the next call on the same client works.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from smspartner_async import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    DeliveryStatus,
    RetryPolicy,
    SMSPartnerClient,
)
from smspartner_async.sandbox import Faults, Sandbox, serve
from tests.pools import assert_idle, assert_pool_clean, settle

KEY = "sandbox-key"


def frozen_clock() -> float:
    return 0.0  # statuses do not settle while a test runs


def make_sandbox(**options: Any) -> Sandbox:
    return Sandbox(seed=5, api_key=KEY, clock=frozen_clock, **options)


# Every test of this module runs once per transport; `served` reads which one.
TRANSPORT = "httpx"


@pytest.fixture(autouse=True, params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest) -> str:
    global TRANSPORT
    TRANSPORT = request.param
    return TRANSPORT


def client_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the client (its batching workers) still running."""
    current = asyncio.current_task()
    return [
        task
        for task in asyncio.all_tasks()
        if task is not current
        and not task.done()
        and getattr(task.get_coro(), "__qualname__", "").startswith(("SMSPartnerClient", "_Batch"))
    ]


async def assert_next_call_works(client: SMSPartnerClient, sandbox: Sandbox) -> None:
    pairs = [p for p in sandbox.data.sample_pairs(60) if sandbox.data.status_of(*p)][:20]
    results = await client.multi_status(pairs)
    assert len(results) == len(pairs)
    for result in results:
        record = sandbox.data.status_of(result.phone_number, result.message_id)
        assert record is not None
        assert result.ok, result
        assert result.status is DeliveryStatus(record.status)
    phone, message_id = pairs[0]
    status = await client.message_status(phone, message_id)
    assert status.message_id == message_id
    await assert_pool_clean(client)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def served(sandbox: Sandbox, **options: Any) -> AsyncIterator[SMSPartnerClient]:
    async with (
        serve(sandbox, host="127.0.0.1", port=0) as base_url,
        SMSPartnerClient(KEY, base_url=base_url, transport=TRANSPORT, **options) as client,
    ):
        yield client


# -- cancelling a big batch -------------------------------------------------------------------


async def test_cancel_a_10000_pair_batch_mid_flight() -> None:
    sandbox = make_sandbox(latency=0.05)
    pairs = list(sandbox.data.sample_pairs(10_000))
    first_done = asyncio.Event()

    def progress(done: int, total: int | None) -> None:
        first_done.set()

    async with served(sandbox, retry=RetryPolicy.testing()) as client:
        task = asyncio.create_task(client.multi_status(pairs, progress=progress))
        async with asyncio.timeout(10):
            await first_done.wait()
        await until(lambda: sandbox.stats.in_flight > 0)  # the next chunks reached the server
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_pool_clean(client)
        assert client_tasks() == []
        assert sandbox.stats.requests["multi-status"] < len(pairs) // 500
        await assert_next_call_works(client, sandbox)


async def test_outer_timeout_around_a_big_batch_leaks_nothing() -> None:
    sandbox = make_sandbox(latency=0.05)
    pairs = list(sandbox.data.sample_pairs(10_000))
    async with served(sandbox, retry=RetryPolicy.testing()) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.12):
                await client.multi_status(pairs)
        await assert_pool_clean(client)
        assert client_tasks() == []
        await assert_next_call_works(client, sandbox)


async def test_cancel_right_after_start_leaks_nothing() -> None:
    """Cancelled before any answer: while connecting or sending the first requests."""
    sandbox = make_sandbox(latency=0.05)
    pairs = list(sandbox.data.sample_pairs(5_000))
    async with served(sandbox, retry=RetryPolicy.testing()) as client:
        for delay in (0, 0.001, 0.005, 0.02):
            task = asyncio.create_task(client.multi_status(pairs))
            await asyncio.sleep(delay)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await assert_pool_clean(client)
            assert client_tasks() == []
        await assert_next_call_works(client, sandbox)


async def test_cancel_many_single_calls_leaks_nothing() -> None:
    sandbox = make_sandbox(latency=0.03)
    pairs = list(sandbox.data.sample_pairs(200))
    async with served(sandbox, retry=RetryPolicy.testing(), max_concurrency=4) as client:
        tasks = [asyncio.create_task(client.message_status(p, m)) for p, m in pairs]
        await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert any(isinstance(o, asyncio.CancelledError) for o in outcomes)
        await assert_pool_clean(client)
        await assert_next_call_works(client, sandbox)


@pytest.mark.parametrize(("concurrency", "fail_fast"), [(1, False), (4, False), (4, True)])
async def test_a_failed_batch_sends_none_of_its_queued_chunks(
    concurrency: int, fail_fast: bool
) -> None:
    """Chunks queued for a slot (two tasks per slot) stay unsent once one chunk raised."""
    sandbox = Sandbox(seed=5, api_key="another-key", clock=frozen_clock, latency=0.05)
    pairs = list(sandbox.data.sample_pairs(2_000))
    async with served(
        sandbox, max_concurrency=concurrency, batch_size=50, fail_fast=fail_fast
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.multi_status(pairs)
        await asyncio.sleep(0.1)  # anything sent late would arrive by now
        await assert_pool_clean(client)
    assert sandbox.stats.requests["multi-status"] == concurrency


# -- streaming --------------------------------------------------------------------------------


async def test_breaking_out_of_iter_multi_status_cancels_the_rest() -> None:
    sandbox = make_sandbox(latency=0.05)
    pairs = list(sandbox.data.sample_pairs(10_000))
    async with served(sandbox, retry=RetryPolicy.testing()) as client:
        seen = 0
        async with contextlib.aclosing(client.iter_multi_status(pairs)) as stream:
            async for result in stream:
                assert 0 <= result.index < len(pairs)
                seen += 1
                if seen == 3:
                    break
        await assert_pool_clean(client)
        assert client_tasks() == []
        requested = sandbox.stats.requests["multi-status"]
        # The answers in flight, and the chunks waiting behind them (two per slot).
        assert requested <= 2 * client._shared.flow.max_concurrency + 1
        await asyncio.sleep(0.1)  # nothing keeps sending in the background
        assert sandbox.stats.requests["multi-status"] == requested
        await assert_next_call_works(client, sandbox)


async def test_cancelling_a_task_consuming_iter_multi_status_leaks_nothing() -> None:
    sandbox = make_sandbox(latency=0.05)
    pairs = list(sandbox.data.sample_pairs(10_000))
    got_one = asyncio.Event()

    async with served(sandbox, retry=RetryPolicy.testing()) as client:

        async def consume() -> None:
            async with contextlib.aclosing(client.iter_multi_status(iter(pairs))) as stream:
                async for _ in stream:
                    got_one.set()

        task = asyncio.create_task(consume())
        async with asyncio.timeout(10):
            await got_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_pool_clean(client)
        assert client_tasks() == []
        await assert_next_call_works(client, sandbox)


# -- timeouts and deadlines ----------------------------------------------------------------------


async def test_timeout_on_a_slow_server_leaves_the_pool_clean() -> None:
    faults = Faults(slow_seconds=0.5)
    faults.script(["slow"])
    sandbox = make_sandbox(faults=faults)
    pairs = list(sandbox.data.sample_pairs(3))
    async with served(sandbox, timeout=0.2, max_retries=0) as client:
        with pytest.raises(APITimeoutError):
            await client.message_status(*pairs[0])
        await assert_pool_clean(client)
        await assert_next_call_works(client, sandbox)


async def test_timeouts_on_every_chunk_leave_the_pool_clean() -> None:
    faults = Faults(slow_seconds=0.4)
    faults.script(["slow"] * 5)  # five chunks of six time out; the sixth is answered
    sandbox = make_sandbox(faults=faults)
    pairs = list(sandbox.data.sample_pairs(30))
    async with served(
        sandbox, timeout=0.15, retry=RetryPolicy.testing(max_retries=0), batch_size=5
    ) as client:
        results = await client.multi_status(pairs)
        assert len(results) == 30
        timed_out = [r for r in results if isinstance(r.error, APITimeoutError)]
        assert len(timed_out) == 25
        assert not any(r.ok for r in timed_out)
        await assert_pool_clean(client)
        await assert_next_call_works(client, sandbox)


async def test_deadline_over_real_sockets_leaves_the_pool_clean() -> None:
    faults = Faults(slow_seconds=0.5)
    faults.script(["slow"])
    sandbox = make_sandbox(faults=faults)
    pairs = list(sandbox.data.sample_pairs(3))
    async with served(sandbox, deadline=0.15, retry=RetryPolicy.testing()) as client:
        with pytest.raises(APITimeoutError, match="deadline"):
            await client.message_status(*pairs[0])
        await assert_pool_clean(client)
        await assert_next_call_works(client, sandbox)


async def test_failed_response_is_closed_before_the_retry_wait() -> None:
    faults = Faults(retry_after="0.3")
    faults.script(["429"])
    sandbox = make_sandbox(faults=faults)
    pairs = list(sandbox.data.sample_pairs(3))
    waiting = asyncio.Event()
    policy = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.01, max_retry_after=1)

    def on_request(event: Any) -> None:
        if event.retry_in:
            waiting.set()

    async with served(sandbox, retry=policy, on_request=on_request) as client:
        task = asyncio.create_task(client.message_status(*pairs[0]))
        async with asyncio.timeout(5):
            await waiting.wait()
        await asyncio.sleep(0)  # into the sleep
        await assert_pool_clean(client)  # the 429 is read and released while we wait
        status = await task
        assert status.message_id == pairs[0][1]
        assert client.stats.rate_limited == 1


async def test_cancel_during_a_retry_wait_leaks_nothing() -> None:
    faults = Faults(retry_after="0.3")
    faults.script(["429"] * 3)
    sandbox = make_sandbox(faults=faults)
    pairs = list(sandbox.data.sample_pairs(1_500))
    policy = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.01, max_retry_after=5)
    paused = asyncio.Event()

    def on_request(event: Any) -> None:
        if event.retry_in:
            paused.set()

    async with served(sandbox, retry=policy, on_request=on_request) as client:
        task = asyncio.create_task(client.multi_status(pairs))
        async with asyncio.timeout(5):
            await paused.wait()
        await asyncio.sleep(0.05)
        assert client._shared.flow.backend.paused()  # cancelled while paused by the 429
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_pool_clean(client)
        assert client_tasks() == []
        # The 429 pause is still running: the next call waits it out, then works.
        async with asyncio.timeout(5):
            await assert_next_call_works(client, sandbox)


async def test_connection_refused_leaves_the_pool_clean() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with SMSPartnerClient(
        KEY,
        base_url=f"http://127.0.0.1:{port}/v1",
        retry=RetryPolicy.testing(max_retries=2),
        transport=TRANSPORT,
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.message_status("+33600000001", 1)
        assert type(info.value) is APIConnectionError
        await assert_pool_clean(client)
        # Not one call answered: an outage raises instead of returning failed items.
        with pytest.raises(APIConnectionError) as info:
            await client.multi_status([("+33600000001", 1), ("+33600000002", 2)])
        assert "not one of the batch's 1 calls got an answer" in info.value.__notes__
        await assert_pool_clean(client)


# -- the same with an injected httpx client (httpcore's pool) -----------------------------------


async def test_cancel_with_an_injected_httpx_client_leaves_its_pool_idle() -> None:
    sandbox = make_sandbox(latency=0.05)
    pairs = list(sandbox.data.sample_pairs(5_000))
    first_done = asyncio.Event()
    async with (
        serve(sandbox) as base_url,
        httpx.AsyncClient(limits=httpx.Limits(max_connections=8)) as http,
        SMSPartnerClient(
            KEY, base_url=base_url, http_client=http, retry=RetryPolicy.testing()
        ) as client,
    ):
        task = asyncio.create_task(
            client.multi_status(pairs, progress=lambda done, total: first_done.set())
        )
        async with asyncio.timeout(10):
            await first_done.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client_tasks() == []
        await settle(client)
        assert_idle(http)
        results = await client.multi_status(pairs[:600])
        assert len(results) == 600
        assert all(r.error is None for r in results)
        assert not http.is_closed
