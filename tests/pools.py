"""What a client's pool holds, for the cancellation tests: no connection left in limbo.

Reads the pools' private state on purpose (httpcore's and aiohttp's): it is what a
cancellation bug corrupts, and no public API shows it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from smspartner_async import SMSPartnerClient
from smspartner_async._transports.aiohttp import AiohttpTransport
from smspartner_async._transports.pooled import PooledTransport


async def settle(client: SMSPartnerClient, seconds: float = 5.0) -> None:
    """Wait for the exchanges whose caller left: each ends on its own, after its answer."""
    exchanges = client._shared.exchanges
    async with asyncio.timeout(seconds):
        while exchanges:
            await asyncio.wait(set(exchanges))


def httpcore_pools(transport: httpx.AsyncBaseTransport) -> list[Any]:
    if isinstance(transport, PooledTransport):
        assert transport.busy == [0] * len(transport.shards), transport.busy
        return [shard._pool for shard in transport.shards]
    assert isinstance(transport, httpx.AsyncHTTPTransport), transport
    return [transport._pool]


def assert_idle(http: httpx.AsyncClient) -> None:
    """No request in the pool, and every connection idle or closed (none in limbo)."""
    transport = http._transport
    if isinstance(transport, AiohttpTransport):
        session = transport._session
        if session is not None:
            connector = session.connector
            assert connector is not None
            assert not connector._acquired, f"connections still checked out: {connector._acquired}"
            assert not any(connector._acquired_per_host.values())
        return
    for pool in httpcore_pools(transport):
        assert not pool._requests, f"requests still in the pool: {pool._requests}"
        for connection in pool.connections:
            assert connection.is_idle() or connection.is_closed(), connection


async def assert_pool_clean(client: SMSPartnerClient) -> None:
    """Once the exchanges whose caller left have ended, the pool holds nothing in flight."""
    await settle(client)
    assert_idle(client._shared.http)
