"""The library under test: `multi_status` and `iter_multi_status` against the canned server.

Everything here degrades to a clear skip while the client is not importable. The same
functions drive the previous release in `benchmarks.contender` (its own process).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from typing import Any


def unavailable() -> str | None:
    """None when `smspartner_async.SMSPartnerClient` imports, else why not (one line)."""
    try:
        import smspartner_async

        smspartner_async.SMSPartnerClient  # noqa: B018
    except Exception as exc:  # any import-time failure of a package being written
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return f"library not importable yet ({last})"
    return None


def client(
    base: str, concurrency: int = 8, response_format: str = "json", transport: str | None = None
) -> Any:
    """A client of the canned server; `transport` None leaves the library's default (and lets
    the previous release, which has no such option, take the same path)."""
    from smspartner_async import SMSPartnerClient

    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    return SMSPartnerClient(
        api_key="bench",
        base_url=base + "/v1",
        max_concurrency=concurrency,
        response_format=response_format,
        **options,
    )


async def multi_status(
    base: str,
    pairs: Sequence[tuple[str, int]],
    concurrency: int,
    response_format: str = "json",
    transport: str | None = None,
) -> list[Any]:
    """`await client.multi_status(pairs)`: every result kept, in input order."""
    async with client(base, concurrency, response_format, transport) as c:
        results: list[Any] = await c.multi_status(pairs)
    if len(results) != len(pairs):
        raise RuntimeError(f"library: {len(results)} results for {len(pairs)} pairs")
    return results


async def iter_multi_status(
    base: str,
    pairs: Iterable[tuple[str, int]],
    concurrency: int,
    response_format: str = "json",
    transport: str | None = None,
) -> int:
    """`async for r in client.iter_multi_status(gen())`: results dropped; returns the count."""
    count = 0
    async with client(base, concurrency, response_format, transport) as c:
        async for _ in c.iter_multi_status(pairs):
            count += 1
    return count


async def multi_status_one_pool(
    base: str, pairs: Sequence[tuple[str, int]], concurrency: int, response_format: str = "json"
) -> list[Any]:
    """`multi_status` through this tree's exchanges over one httpcore pool of `concurrency`
    connections (the pool layout of the design before cancellation safety): what the
    safety alone costs, without the one-pool-per-connection layout."""
    import httpx

    from smspartner_async import SMSPartnerClient
    from smspartner_async._transports.pooled import PooledTransport

    transport = PooledTransport(max_connections=concurrency, shard_size=concurrency)
    async with (
        httpx.AsyncClient(transport=transport, timeout=30) as http,
        SMSPartnerClient(
            api_key="bench",
            base_url=base + "/v1",
            http_client=http,
            max_concurrency=concurrency,
            response_format=response_format,  # type: ignore[arg-type]
        ) as c,
    ):
        results: list[Any] = await c.multi_status(pairs)
    if len(results) != len(pairs):
        raise RuntimeError(f"library: {len(results)} results for {len(pairs)} pairs")
    return results
