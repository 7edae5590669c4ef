"""Hand-written baselines doing the library's work: N pairs -> chunks of 500 -> POST -> results.

- `raw_aiohttp`: aiohttp + orjson, a pool of `concurrency` workers, no models (the reference);
- `naive_httpx_gather`: `httpx.AsyncClient` and `asyncio.gather` over every chunk at once;
- `sync_sequential`: the documents' approach, one synchronous call per 500 pairs, in turn;
- `transport_client`: one client per HTTP stack, giving `post(body) -> bytes`, for the
  transports table (`httpx` over httpcore, the project's default transport (httpcore pools
  in shards of 4, 8 or 16 connections), `httpx_aiohttp`, the project's aiohttp transport
  under httpx, `httpx2`, raw aiohttp).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import httpx
import orjson
from lxml import etree

from ._common import JSON_HEADERS, PATH, chunked, request_body, run_pool

Post = Callable[[bytes], Awaitable[bytes]]
TRANSPORTS = (
    "httpx-httpcore",
    "project-pooled-1",
    "project-pooled-2",
    "project-pooled-4",
    "project-pooled-8",
    "httpx-aiohttp",
    "project-aiohttp",
    "project-aiohttp-noenv",
    "httpx2",
    "raw-aiohttp",
)


async def raw_aiohttp(
    base: str, pairs: Sequence[tuple[str, int]], concurrency: int, xml: bool = False
) -> list[Any]:
    """The reference: same chunks and concurrency as the library, results as plain dicts
    (with `xml`, the answers' item elements from an lxml parse)."""
    chunks = list(chunked(pairs))
    out: list[list[Any]] = [[] for _ in chunks]
    url = base + PATH + ("?_format=xml" if xml else "")
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(job: tuple[int, list[tuple[str, int]]]) -> None:
            index, chunk = job
            async with session.post(url, data=request_body(chunk), headers=JSON_HEADERS) as r:
                r.raise_for_status()
                body = await r.read()
            if xml:
                out[index] = list(etree.fromstring(body)[2])
            else:
                out[index] = orjson.loads(body)["StatutResponse_List"]

        await run_pool(enumerate(chunks), one, concurrency)
    return [item for part in out for item in part]


async def naive_httpx_gather(base: str, pairs: Sequence[tuple[str, int]]) -> list[Any]:
    """What users write today: every chunk a task at once, httpx's default limits."""
    url = base + PATH
    async with httpx.AsyncClient(timeout=120) as client:

        async def one(chunk: list[tuple[str, int]]) -> list[Any]:
            r = await client.post(url, content=request_body(chunk), headers=JSON_HEADERS)
            r.raise_for_status()
            items: list[Any] = r.json()["StatutResponse_List"]
            return items

        parts = await asyncio.gather(*(one(c) for c in chunked(pairs)))
    return [item for part in parts for item in part]


def sync_sequential(base: str, pairs: Sequence[tuple[str, int]]) -> list[Any]:
    """The documents' approach: one blocking call per 500 pairs, one after another."""
    url = base + PATH
    out: list[Any] = []
    with httpx.Client(timeout=120) as client:
        for chunk in chunked(pairs):
            r = client.post(url, content=request_body(chunk), headers=JSON_HEADERS)
            r.raise_for_status()
            out.extend(r.json()["StatutResponse_List"])
    return out


def _httpx_post(client: Any, url: str) -> Post:
    async def post(body: bytes) -> bytes:
        r = await client.post(url, content=body, headers=JSON_HEADERS)
        r.raise_for_status()
        content: bytes = r.content
        return content

    return post


@contextlib.asynccontextmanager
async def transport_client(name: str, base: str, concurrency: int) -> AsyncIterator[Post]:
    """`post(body) -> bytes` over one HTTP stack, its pool sized to `concurrency`."""
    url = base + PATH
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if name == "raw-aiohttp":
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post(body: bytes) -> bytes:
                async with session.post(url, data=body, headers=JSON_HEADERS) as r:
                    r.raise_for_status()
                    return await r.read()

            yield post
        return
    if name == "httpx2":
        import httpx2

        async with httpx2.AsyncClient(
            limits=httpx2.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            ),
            timeout=120,
        ) as client2:
            yield _httpx_post(client2, url)
        return
    transport: httpx.AsyncBaseTransport
    if name == "httpx-httpcore":
        transport = httpx.AsyncHTTPTransport(limits=limits)
    elif name == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=limits)
    elif name.startswith("project-pooled-"):
        from smspartner_async._transports.pooled import PooledTransport

        size = int(name.rsplit("-", 1)[1])
        transport = PooledTransport(max_connections=concurrency, shard_size=size)
    elif name in ("project-aiohttp", "project-aiohttp-noenv"):
        from smspartner_async._transports.aiohttp import AiohttpTransport as ProjectTransport

        # -noenv: aiohttp's trust_env re-reads proxy variables and ~/.netrc on every request.
        transport = ProjectTransport(limits=limits, trust_env=name == "project-aiohttp")
    else:
        raise ValueError(f"unknown transport {name!r}")
    async with httpx.AsyncClient(transport=transport, timeout=120) as client:
        yield _httpx_post(client, url)


async def throughput(name: str, base: str, bodies: Sequence[bytes], concurrency: int) -> float:
    """Requests per second for `bodies` at `concurrency`, HTTP only (bodies are read, not decoded).

    A warm-up of `concurrency` requests opens the pool first. Each answer is checked by counting
    its items, which costs a byte scan, not a parse.
    """
    loop = asyncio.get_running_loop()
    items = 0

    async with transport_client(name, base, concurrency) as post:

        async def one(body: bytes) -> None:
            nonlocal items
            count = (await post(body)).count(b'"messageId"')
            items += count  # after the await: `items += await ...` would lose updates

        await run_pool(bodies[:concurrency], one, concurrency)
        items = 0
        t0 = loop.time()
        await run_pool(bodies, one, concurrency)
        elapsed = loop.time() - t0
    expected = sum(b.count(b'"messageId"') for b in bodies)
    if items != expected:
        raise RuntimeError(f"{name}: {items} items answered, {expected} asked")
    return len(bodies) / elapsed


async def httpx_semaphore(
    name: str, base: str, pairs: Sequence[tuple[str, int]], concurrency: int
) -> list[Any]:
    """Same work as `raw_aiohttp` through one transport under httpx (or `httpx2`)."""
    chunks = list(chunked(pairs))
    out: list[list[Any]] = [[] for _ in chunks]
    async with transport_client(name, base, concurrency) as post:

        async def one(job: tuple[int, list[tuple[str, int]]]) -> None:
            index, chunk = job
            out[index] = orjson.loads(await post(request_body(chunk)))["StatutResponse_List"]

        await run_pool(enumerate(chunks), one, concurrency)
    return [item for part in out for item in part]
