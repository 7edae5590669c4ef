"""Construction, options, lifecycle, the event loop, transports, and mocking the default client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import pytest
import respx

from smspartner_async import (
    AuthenticationError,
    ClientStateError,
    InvalidInputError,
    RetryPolicy,
    SMSPartnerClient,
)
from smspartner_async._transports.aiohttp import AiohttpTransport
from smspartner_async._transports.pooled import SHARD_SIZE, PooledTransport, shard_sizes

from . import seeds

BASE = "https://api.smspartner.fr/v1"


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("SMSPARTNER_API_KEY", "env-key-123456")
    client = SMSPartnerClient()
    assert client._shared.api_key.reveal() == "env-key-123456"


def test_no_key_is_a_clear_error_in_the_library_s_own_words(monkeypatch):
    monkeypatch.delenv("SMSPARTNER_API_KEY", raising=False)
    with pytest.raises(AuthenticationError) as caught:
        SMSPartnerClient()
    assert str(caught.value) == (
        "code 1: no API key: pass api_key= or set the SMSPARTNER_API_KEY environment variable"
    )
    assert caught.value.code == 1
    with pytest.raises(AuthenticationError):
        SMSPartnerClient("   ")


def test_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("SMSPARTNER_BASE_URL", "http://127.0.0.1:8765/v1/")
    assert "http://127.0.0.1:8765/v1'" in repr(SMSPartnerClient("k" * 8))
    given = SMSPartnerClient("k" * 8, base_url="https://elsewhere.test/v1")
    assert "https://elsewhere.test/v1" in repr(given)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"batch_size": 501}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"response_format": "yaml"}, "response_format"),
        ({"default_region": "XX"}, "default_region"),
        ({"deadline": 0}, "deadline"),
        ({"max_pages": 0}, "max_pages"),
        ({"max_requests_per_second": -1}, "max_requests_per_second"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"transport": "curl"}, "transport"),
        ({"base_url": "api.smspartner.fr"}, "base_url"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": -3}, "timeout"),
        ({"shared_limits": "http://localhost:6379"}, "shared_limits"),
        ({"max_requests_per_second": "10"}, "max_requests_per_second"),
    ],
)
def test_bad_options_are_invalid_input_naming_the_option(options, named):
    with pytest.raises(InvalidInputError, match=named) as caught:
        SMSPartnerClient("k" * 8, **options)
    assert isinstance(caught.value, ValueError)


def test_a_flow_backend_object_with_a_rate_beside_it_is_refused():
    # The backend object carries its own rate; one given beside it would be silently ignored.
    from smspartner_async._flow import LocalFlow

    with pytest.raises(InvalidInputError, match="max_requests_per_second"):
        SMSPartnerClient("k" * 8, shared_limits=LocalFlow(5.0), max_requests_per_second=10)
    SMSPartnerClient("k" * 8, shared_limits=LocalFlow(5.0))  # alone, fine


def test_repr_hides_the_key():
    client = SMSPartnerClient("very-secret-key-42")
    assert "very-secret-key-42" not in repr(client)
    assert "***" in repr(client)
    assert "very-secret-key-42" not in repr(client._shared.api_key)


async def test_closed_client_refuses_to_send(router, make_client):
    router.get("/bulk-status").respond(content=seeds.BULK_STATUS_JSON)
    client = make_client()
    async with client:
        await client.bulk_status(111)
    assert client.is_closed
    with pytest.raises(ClientStateError, match="closed"):
        await client.bulk_status(111)
    with pytest.raises(ClientStateError):
        async with client:
            pass


async def test_injected_http_client_is_not_closed():
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=seeds.TAG_JSON))
    )
    async with SMSPartnerClient("k" * 8, http_client=http) as client:
        assert len(await client.status_by_tag("t")) == 2
    assert not http.is_closed
    await http.aclose()


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_owned_http_client_is_closed(transport):
    client = SMSPartnerClient("k" * 8, transport=transport)
    http = client._shared.http
    async with client:
        pass
    assert http.is_closed


def test_the_aiohttp_transport_is_an_httpx_transport_with_a_pool_sized_to_concurrency():
    client = SMSPartnerClient("k" * 8, transport="aiohttp", max_concurrency=13)
    transport = client._shared.http._transport
    assert isinstance(transport, AiohttpTransport)
    assert transport._limits.max_connections == 13


@pytest.mark.parametrize("concurrency", [1, 8, 13])
def test_the_default_transport_is_httpx_s_own_pools_as_many_connections_as_slots(
    concurrency: int,
) -> None:
    """Shards of httpx's own transport (what the mocks patch), as many connections as slots."""
    client = SMSPartnerClient("k" * 8, max_concurrency=concurrency)
    transport = client._shared.http._transport
    assert isinstance(transport, PooledTransport)
    assert {type(shard) for shard in transport.shards} == {httpx.AsyncHTTPTransport}
    sizes = [shard._pool._max_connections for shard in transport.shards]
    assert sizes == shard_sizes(concurrency) and sum(sizes) == concurrency
    assert max(sizes) <= SHARD_SIZE


@pytest.mark.parametrize(
    ("connections", "size", "sizes"),
    [(1, 8, [1]), (8, 8, [8]), (13, 8, [7, 6]), (32, 8, [8] * 4), (3, 1, [1, 1, 1])],
)
def test_shards_split_connections_evenly(connections: int, size: int, sizes: list[int]) -> None:
    assert shard_sizes(connections, size) == sizes


def test_a_missing_aiohttp_extra_is_named(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_aiohttp(name, *args, **kwargs):
        if name == "aiohttp" or name.endswith("transports.aiohttp"):
            raise ImportError("No module named 'aiohttp'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aiohttp)
    with pytest.raises(ImportError, match=r"smspartner-async\[aiohttp\]"):
        SMSPartnerClient("k" * 8, transport="aiohttp")


def test_use_from_another_event_loop_is_a_clear_error():
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=seeds.TAG_JSON))
    )
    client = SMSPartnerClient("k" * 8, http_client=http)
    assert len(asyncio.run(client.status_by_tag("t"))) == 2
    with pytest.raises(ClientStateError, match="event loop"):
        asyncio.run(client.status_by_tag("t"))


def test_aiohttp_transport_refuses_a_second_loop():
    """The aiohttp pool is bound to its first loop, not silently broken in the next."""
    transport = AiohttpTransport()
    request = httpx.Request("GET", "http://127.0.0.1:9/")

    async def touch() -> None:
        transport._get_session()

    asyncio.run(touch())
    with pytest.raises(ClientStateError, match="event loop"):
        asyncio.run(transport.handle_async_request(request))
    transport._session = None  # its loop is gone; nothing left to close


# -- with_options ------------------------------------------------------------------------


async def test_with_options_changes_per_call_options_and_shares_the_rest(router, make_client):
    route = router.post("/multi-status").respond(503)
    client = make_client(max_retries=3)
    view = client.with_options(max_retries=0, fail_fast=True)
    assert view._shared is client._shared
    with pytest.raises(Exception, match="503"):
        await view.multi_status(seeds.MULTI_STATUS_JSON_PAIRS)
    assert route.call_count == 1  # no retry through the view
    route.reset()
    with pytest.raises(Exception, match="503"):  # nothing answered: an outage raises
        await client.multi_status(seeds.MULTI_STATUS_JSON_PAIRS)
    assert route.call_count == 4  # the client keeps its own retries
    assert client.stats.requests == view.stats.requests == 5


async def test_with_options_shares_the_429_pause(router, make_client):
    client = make_client()
    view = client.with_options(timeout=5)
    view._shared.flow.pause(0.3)
    router.get("/bulk-status").respond(content=seeds.BULK_STATUS_JSON)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.bulk_status(111)
    assert loop.time() - started >= 0.25


async def test_closing_a_view_closes_the_client(make_client):
    client = make_client()
    async with client.with_options(deadline=5):
        pass
    assert client.is_closed


def test_with_options_validates_like_the_constructor():
    client = SMSPartnerClient("k" * 8)
    with pytest.raises(InvalidInputError, match="batch_size"):
        client.with_options(batch_size=1000)
    with pytest.raises(InvalidInputError, match="max_retries"):
        client.with_options(max_retries=-2)


async def test_with_options_timeout_reaches_the_request(router, make_client):
    route = router.get("/bulk-status").respond(content=seeds.BULK_STATUS_JSON)
    await make_client().with_options(timeout=4.5).bulk_status(111)
    assert route.calls.last.request.extensions["timeout"]["read"] == 4.5


# -- every mocking library intercepts the default client, and no socket opens ------------


@pytest.fixture
def no_sockets(monkeypatch) -> Iterator[list[object]]:
    """Records (and refuses) every attempt to resolve or connect: a mock that leaks shows."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("the test refused a real connection")

    async def refuse_async(*args, **kwargs):
        refuse(*args)

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", refuse_async)
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", refuse_async)
    yield attempts
    assert attempts == []


@respx.mock
async def test_the_respx_decorator_intercepts_the_default_client(no_sockets):
    route = respx.get(f"{BASE}/bulk-status").respond(content=seeds.BULK_STATUS_JSON)
    async with SMSPartnerClient("k" * 8) as client:
        result = await client.bulk_status(111)
    assert route.called and len(result.recipients) == 2


async def test_the_respx_mock_fixture_intercepts_the_default_client(respx_mock, no_sockets):
    route = respx_mock.post(f"{BASE}/multi-status").respond(content=seeds.MULTI_STATUS_JSON)
    async with SMSPartnerClient("k" * 8) as client:
        results = await client.multi_status(seeds.MULTI_STATUS_JSON_PAIRS)
    assert route.called and [r.ok for r in results] == [True, False, False]


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_respx_using_httpx_intercepts_either_transport(transport, no_sockets):
    async with respx.mock(using="httpx", base_url=BASE) as mock:
        route = mock.get("/message-status").respond(content=seeds.MESSAGE_STATUS_JSON)
        async with SMSPartnerClient("k" * 8, transport=transport) as client:
            result = await client.message_status("0600000000", 1111)
    assert route.called and result.status == "Delivered"


async def test_pytest_httpx_intercepts_the_default_client(httpx_mock, no_sockets):
    httpx_mock.add_response(method="GET", content=seeds.TAG_JSON)
    async with SMSPartnerClient("k" * 8) as client:
        recipients = await client.status_by_tag("newsletter")
    assert len(recipients) == 2
    (request,) = httpx_mock.get_requests()
    assert request.url.path == "/v1/bulk-status-by-tag"


async def test_an_injected_mock_transport_intercepts(no_sockets):
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=seeds.BULK_STATUS_JSON)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        SMSPartnerClient("k" * 8, http_client=http, retry=RetryPolicy.testing()) as client,
    ):
        await client.bulk_status(111)
    assert len(seen) == 1
