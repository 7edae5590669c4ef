"""The default transport: httpx's own, as several small httpcore pools (shards).

Each shard is a real `httpx.AsyncHTTPTransport`, called through its public
`handle_async_request`, so everything that patches httpx's transport or
httpcore's pool sees every request exactly as before: pytest-httpx (which
patches `httpx.AsyncHTTPTransport.handle_async_request`), respx's default mode
(which patches `httpcore.AsyncConnectionPool.handle_async_request`) and
OpenTelemetry's httpx instrumentation. This module patches nothing.

Why shards: httpcore's pool scans every connection it holds (and, for each
idle one, all of them again) whenever a request starts or ends
(encode/httpx#3215), so one pool of 128 connections spends more CPU managing
itself than reading answers. A request here takes the shard of a free
connection (the last freed first, so warm connections are reused); every shard
has at most `SHARD_SIZE` connections, so the scans stay short whatever
`max_concurrency` is (`benchmarks/`, scenario `transports`, rows
`project-pooled-N`).

Why no request ever waits inside httpcore: the client holds a concurrency slot
for as long as a request is in flight (`_call.Caller`), and the shards have as
many connections as there are slots, so httpcore's own queue stays empty.

Cancellation is handled one level up, for every transport and injected client
alike (`_call.Caller._send` says why and how): a caller's cancellation never
reaches httpx; the exchange it leaves behind is cancelled by the library, once,
only where httpcore cleans up after it (httpcore's own trace events say where),
so these pools never hold a connection that is neither idle, active nor closed.
At the end of their event loop they are closed (`LoopBinding`).
"""

from __future__ import annotations

import functools
import ssl
import urllib.request
from collections.abc import AsyncIterator

import httpx

from ._loop import LoopBinding, closed_client_error

__all__ = ["SHARD_SIZE", "PooledTransport", "environment_proxy", "shard_sizes"]

#: Connections per httpcore pool at most: one, the fastest measured at every concurrency
#: (`benchmarks/`, scenario `transports`, rows `project-pooled-N`).
SHARD_SIZE = 1


def shard_sizes(connections: int, size: int = SHARD_SIZE) -> list[int]:
    """`connections` split into as few shards of at most `size` as possible, evenly."""
    count = -(-connections // size)
    base, extra = divmod(connections, count)
    return [base + 1] * extra + [base] * (count - extra)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default context (certifi's roots, or `SSL_CERT_FILE`), built once per process
    and shared by every shard: loading the roots is the slow part of making a transport."""
    return httpx.create_ssl_context()


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`...).

    httpx reads these itself only for the transport it builds; a client given a
    transport reads them here, once, as the previous default pool did.
    """
    target = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(target.host):
        return None
    return proxy


class _Counted(httpx.AsyncByteStream):
    """A response body that gives its shard's connection back to the count when closed."""

    __slots__ = ("_closed", "_shard", "_stream", "_transport")

    def __init__(self, stream: httpx.AsyncByteStream, transport: PooledTransport, shard: int):
        self._stream = stream
        self._transport = transport
        self._shard = shard
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if not self._closed:
                self._closed = True
                self._transport.give_back(self._shard)


class PooledTransport(httpx.AsyncBaseTransport):
    """`max_connections` connections as shards of at most `SHARD_SIZE`, each an httpx transport.

    `busy[i]` counts the requests of shard `i` whose answer is not closed yet.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        proxy: str | None = None,
        shard_size: int = SHARD_SIZE,
    ) -> None:
        self.sizes = shard_sizes(max_connections, shard_size)
        verify = _ssl_context()
        self.shards = [
            httpx.AsyncHTTPTransport(
                verify=verify,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                proxy=proxy,
            )
            for size in self.sizes
        ]
        self.busy = [0] * len(self.sizes)
        # One entry per free connection, naming its shard; the last freed is taken first.
        self._free = [index for index, size in enumerate(self.sizes) for _ in range(size)][::-1]
        self._binding = LoopBinding(self._close_shards)
        self._closed = False

    def _take(self) -> int:
        """A shard with a free connection (the first shard if none is: httpcore queues it)."""
        index = self._free.pop() if self._free else 0
        self.busy[index] += 1
        return index

    def give_back(self, index: int) -> None:
        self.busy[index] -= 1
        if self.busy[index] < self.sizes[index]:
            self._free.append(index)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise closed_client_error()
        self._binding.enter()
        index = self._take()
        try:
            response = await self.shards[index].handle_async_request(request)
        except BaseException:
            self.give_back(index)
            raise
        stream = response.stream
        if response.is_closed or not isinstance(stream, httpx.AsyncByteStream):
            self.give_back(index)  # an answer built in memory (a mock's): nothing to wait for
            return response
        response.stream = _Counted(stream, self, index)
        return response

    async def _close_shards(self) -> None:
        for shard in self.shards:
            await shard.aclose()

    async def aclose(self) -> None:
        """Close every shard; from another loop, see `LoopBinding.close`."""
        self._closed = True
        await self._binding.close()
