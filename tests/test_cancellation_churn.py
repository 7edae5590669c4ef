"""Cancellation churn at every point of a request, on every transport and an injected client.

The race that breaks httpcore's pool (encode/httpcore#1093) is a cancellation that lands
on one particular await of the request path. Timing luck hits it a few runs in sixteen;
here it is hit on purpose, every run:

- the server parks each request at one point until the test releases it: after the
  request is written (no answer yet), or while the body streams (half of it sent);
- the test starts more calls than the client has connections (pool contention), lets
  the loop run exactly `k` steps (`asyncio.sleep(0)`), and cancels them all, for every
  `k` from 0 to past the end of a request: the cancellation lands, in turn, on every
  await between "queued for a slot" and "body read", connecting included.

Afterwards every pool holds no request and only idle or closed connections (none in
limbo), the server holds no more connections than the pool's size, and a call answers
in its normal time (milliseconds here; the bug made it wait for its whole deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from smspartner_async import RetryPolicy, SMSPartnerClient
from tests.pools import assert_idle, settle

KEY = "churn-key"
PHONE = "+33600000001"
CONCURRENCY = 4
CALLS = 3 * CONCURRENCY  # more calls than connections: the pool is contended
STEPS = range(40)  # loop steps before the cancel: past the end of a request on loopback
POINTS = (None, "written", "streaming")

_RECORD = {
    "success": True,
    "code": 200,
    "number": PHONE,
    "messageId": 7,
    "stopSms": "0",
    "date": "1517934416",
    "status": "Delivered",
}
# Padded with JSON whitespace so that the body streams in several reads.
BODY = orjson.dumps(_RECORD)[:-1] + b" " * 40_000 + b"}"  # under message-status's cap
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
    BODY
)


class ParkingServer:
    """HTTP/1.1 on loopback answering any request with one message status.

    `point` says where each request waits for `release()`: None (answer at once),
    "written" (the request is read, nothing answered), "streaming" (headers and
    half the body sent).
    """

    def __init__(self) -> None:
        self.point: str | None = None
        self._gate = asyncio.Event()
        self.open_connections = 0
        self.most_open = 0
        self.answered = 0
        self._handlers: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def release(self) -> None:
        self._gate.set()
        self._gate = asyncio.Event()

    async def _park(self) -> None:
        await self._gate.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.open_connections += 1
        self.most_open = max(self.most_open, self.open_connections)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                point = self.point
                if point == "written":
                    await self._park()
                if point == "streaming":
                    writer.write(HEAD + BODY[: len(BODY) // 2])
                    await writer.drain()
                    await self._park()
                    writer.write(BODY[len(BODY) // 2 :])
                else:
                    writer.write(HEAD + BODY)
                await writer.drain()
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            self.open_connections -= 1
            writer.close()
            self._writers.discard(writer)
            self._handlers.discard(task)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            self.point = None
            self.release()
            server.close()
            for writer in list(self._writers):
                writer.close()  # the handlers see the end of their connection and return
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=5)
            await server.wait_closed()


@contextlib.asynccontextmanager
async def churn_client(kind: str, base_url: str) -> AsyncIterator[SMSPartnerClient]:
    """`kind`: the client's own pool ("httpx", "aiohttp"), or an injected httpx client."""
    options: dict[str, Any] = {
        "base_url": base_url,
        "max_concurrency": CONCURRENCY,
        "retry": RetryPolicy.testing(max_retries=0),
    }
    if kind == "injected":
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with (
            httpx.AsyncClient(limits=limits, timeout=30) as http,
            SMSPartnerClient(KEY, http_client=http, **options) as client,
        ):
            yield client
        return
    async with SMSPartnerClient(KEY, transport=kind, **options) as client:  # type: ignore[arg-type]
        yield client


async def churn(client: SMSPartnerClient, server: ParkingServer, point: str | None) -> int:
    """Cancel `CALLS` calls after each number of loop steps; returns how many were cancelled."""
    server.point = point
    cancelled = 0
    for steps in STEPS:
        calls = [asyncio.create_task(client.message_status(PHONE, 7)) for _ in range(CALLS)]
        for _ in range(steps):
            await asyncio.sleep(0)
        for call in calls:
            call.cancel()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        cancelled += sum(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
        for outcome in outcomes:
            if not isinstance(outcome, asyncio.CancelledError):
                assert not isinstance(outcome, BaseException), outcome
        server.release()  # the parked requests go on: their exchanges end on their own
    return cancelled


@pytest.mark.parametrize("kind", ["httpx", "aiohttp", "injected"])
async def test_cancelling_at_every_point_of_a_request_leaves_the_client_usable(kind: str) -> None:
    server = ParkingServer()
    async with server.serving() as base_url, churn_client(kind, base_url) as client:
        cancelled = 0
        for point in POINTS:
            cancelled += await churn(client, server, point)
        assert cancelled > len(STEPS) * len(POINTS) * CALLS // 2  # mostly cancels, not answers
        server.point = None
        server.release()
        await settle(client)
        assert_idle(client._shared.http)
        assert server.most_open <= CONCURRENCY  # no connection leaked and replaced
        async with asyncio.timeout(2):  # normal time here is milliseconds
            status = await client.message_status(PHONE, 7)
        assert status.message_id == 7
        assert_idle(client._shared.http)


@pytest.mark.parametrize("kind", ["httpx", "injected"])
async def test_a_deadline_cancelling_parked_requests_leaves_the_client_usable(kind: str) -> None:
    """`asyncio.timeout` around calls whose requests are parked: the web handler's case."""
    server = ParkingServer()
    async with server.serving() as base_url, churn_client(kind, base_url) as client:
        for point in ("written", "streaming"):
            server.point = point
            for _ in range(5):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.01):
                        await asyncio.gather(
                            *(client.message_status(PHONE, 7) for _ in range(CALLS))
                        )
                server.release()
        server.point = None
        server.release()
        await settle(client)
        assert_idle(client._shared.http)
        async with asyncio.timeout(2):
            assert (await client.message_status(PHONE, 7)).message_id == 7
