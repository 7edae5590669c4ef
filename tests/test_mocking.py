"""Mocks see the default client however many pools (shards) it has; the aiohttp one refuses them.

The default client sends through several `httpx.AsyncHTTPTransport`s at high
concurrency (`PooledTransport`): every one is what pytest-httpx and respx's default
mode patch, so every request is seen, none reaches a socket. The aiohttp transport is
seen by neither: a request sent through it while one is active raises, saying how to
mock it, instead of going to the network with the test's key.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from smspartner_async import ClientStateError, RetryPolicy, SMSPartnerClient
from smspartner_async._transports.pooled import SHARD_SIZE, PooledTransport

from . import seeds
from .pools import assert_idle, settle

BASE = "https://api.smspartner.fr/v1"
CONCURRENCY = 32  # 32 shards of one connection
CALLS = 2 * CONCURRENCY


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Records (and refuses) every attempt to resolve or connect: a mock that leaks shows."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("the test refused a real connection")

    async def refuse_async(*args: object, **kwargs: object) -> None:
        refuse(*args)

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", refuse_async)
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", refuse_async)
    yield attempts
    assert attempts == []


def client(**options: Any) -> SMSPartnerClient:
    return SMSPartnerClient(
        "k" * 8, max_concurrency=CONCURRENCY, retry=RetryPolicy.testing(), **options
    )


async def many_calls(target: SMSPartnerClient) -> int:
    """`CALLS` calls at once, a third of them cancelled mid-way; returns how many answered."""
    tasks = [asyncio.create_task(target.message_status("0600000000", 1111)) for _ in range(CALLS)]
    await asyncio.sleep(0.001)
    for task in tasks[::3]:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    answered = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(answered) >= CALLS - len(tasks[::3])
    assert all(status.status == "Delivered" for status in answered)
    await settle(target)
    if not isinstance(target._shared.http._transport, httpx.MockTransport):
        assert_idle(target._shared.http)
    return len(answered)


async def slow_answer(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(0.005)  # calls overlap: every shard is used
    return httpx.Response(200, content=seeds.MESSAGE_STATUS_JSON)


def shards_used(target: SMSPartnerClient) -> int:
    transport = target._shared.http._transport
    assert isinstance(transport, PooledTransport)
    return len(transport.shards)


@respx.mock
async def test_the_respx_decorator_sees_every_shard(no_sockets: list[object]) -> None:
    route = respx.get(f"{BASE}/message-status").mock(side_effect=slow_answer)
    async with client() as target:
        assert shards_used(target) == CONCURRENCY // SHARD_SIZE
        answered = await many_calls(target)
    assert route.call_count >= answered


async def test_the_respx_mock_fixture_sees_every_shard(
    respx_mock: respx.MockRouter, no_sockets: list[object]
) -> None:
    route = respx_mock.get(f"{BASE}/message-status").mock(side_effect=slow_answer)
    async with client() as target:
        answered = await many_calls(target)
    assert route.call_count >= answered


async def test_pytest_httpx_sees_every_shard(httpx_mock: Any, no_sockets: list[object]) -> None:
    httpx_mock.add_callback(slow_answer, is_reusable=True)
    async with client() as target:
        answered = await many_calls(target)
    assert len(httpx_mock.get_requests()) >= answered


async def test_an_injected_mock_transport_sees_every_call(no_sockets: list[object]) -> None:
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(slow_answer)) as http,
        client(http_client=http) as target,
    ):
        await many_calls(target)


# -- the aiohttp transport refuses the mocks it cannot be seen by -------------------------------


@respx.mock
async def test_aiohttp_under_respx_default_mode_refuses_instead_of_the_network(
    no_sockets: list[object],
) -> None:
    route = respx.get(f"{BASE}/message-status").respond(content=seeds.MESSAGE_STATUS_JSON)
    async with SMSPartnerClient("k" * 8, transport="aiohttp") as target:
        with pytest.raises(ClientStateError, match=r'respx\.mock\(using="httpx"\)') as caught:
            await target.message_status("0600000000", 1111)
        with pytest.raises(ClientStateError, match="network"):
            await target.multi_status(seeds.MULTI_STATUS_JSON_PAIRS)  # a batch raises it too
    assert "httpcore" in str(caught.value)
    assert not route.called


async def test_aiohttp_under_pytest_httpx_refuses_instead_of_the_network(
    httpx_mock: Any, no_sockets: list[object]
) -> None:
    async with SMSPartnerClient("k" * 8, transport="aiohttp") as target:
        with pytest.raises(ClientStateError, match="MockTransport") as caught:
            await target.status_by_tag("t")
    assert "httpx.AsyncHTTPTransport" in str(caught.value)
    assert httpx_mock.get_requests() == []


async def test_aiohttp_under_respx_using_httpx_is_seen(no_sockets: list[object]) -> None:
    async with respx.mock(using="httpx", base_url=BASE) as mock:
        route = mock.get("/message-status").respond(content=seeds.MESSAGE_STATUS_JSON)
        async with SMSPartnerClient("k" * 8, transport="aiohttp") as target:
            result = await target.message_status("0600000000", 1111)
    assert route.called and result.status == "Delivered"
