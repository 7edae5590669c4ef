"""Construction, lifecycle, the event loop, and the injected http client."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from smspartner_async import AuthenticationError, ClientStateError, SMSPartnerClient

from . import seeds


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("SMSPARTNER_API_KEY", "env-key-123456")
    client = SMSPartnerClient()
    assert client._api_key.reveal() == "env-key-123456"


def test_no_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SMSPARTNER_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="SMSPARTNER_API_KEY") as caught:
        SMSPartnerClient()
    assert caught.value.code == 1
    with pytest.raises(AuthenticationError):
        SMSPartnerClient("   ")


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 501},
        {"batch_size": 0},
        {"max_concurrency": 0},
        {"response_format": "yaml"},
        {"default_region": "XX"},
        {"deadline": 0},
        {"max_pages": 0},
        {"max_requests_per_second": -1},
    ],
)
def test_bad_options(options):
    with pytest.raises(ValueError):
        SMSPartnerClient("k" * 8, **options)


def test_repr_hides_the_key():
    client = SMSPartnerClient("very-secret-key-42")
    assert "very-secret-key-42" not in repr(client)
    assert "***" in repr(client)
    assert "very-secret-key-42" not in repr(client._api_key)


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


async def test_owned_http_client_is_closed():
    client = SMSPartnerClient("k" * 8)
    http = client._http
    async with client:
        pass
    assert http.is_closed


def test_use_from_another_event_loop_is_a_clear_error():
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=seeds.TAG_JSON))
    )
    client = SMSPartnerClient("k" * 8, http_client=http)
    assert len(asyncio.run(client.status_by_tag("t"))) == 2
    with pytest.raises(ClientStateError, match="event loop"):
        asyncio.run(client.status_by_tag("t"))


def test_default_transport_refuses_a_second_loop():
    """The default pool is bound to its first loop, not silently broken in the next."""
    from smspartner_async._aiohttp import AiohttpTransport

    transport = AiohttpTransport()
    request = httpx.Request("GET", "http://127.0.0.1:9/")

    async def touch() -> None:
        transport._get_session()

    async def close() -> None:
        await transport.aclose()

    asyncio.run(touch())
    with pytest.raises(ClientStateError, match="event loop"):
        asyncio.run(transport.handle_async_request(request))
    transport._session = None  # its loop is gone; nothing left to close


async def test_respx_using_httpx_intercepts_the_default_transport():
    """respx's default patches httpcore, which the default aiohttp transport bypasses."""
    import respx

    async with respx.mock(using="httpx", base_url="https://api.smspartner.fr/v1") as mock:
        route = mock.get("/bulk-status").respond(content=seeds.BULK_STATUS_JSON)
        async with SMSPartnerClient("k" * 8) as client:
            result = await client.bulk_status(111)
    assert route.called
    assert len(result.recipients) == 2


def test_respx_entered_before_the_library_is_imported_still_intercepts():
    """The patch is recognised by where httpx's lookup comes from, whatever the import order."""
    script = """
import asyncio, respx

async def main():
    async with respx.mock(using="httpx", base_url="https://api.smspartner.fr/v1") as mock:
        route = mock.get("/bulk-status").respond(json={"success": True, "code": 200,
            "message_id": "1", "StatutResponse_List": []})
        from smspartner_async import SMSPartnerClient  # first import, under the mock

        async with SMSPartnerClient("k" * 8) as client:
            await client.bulk_status(1)
    assert route.called

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
