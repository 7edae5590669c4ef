"""The HTTP client a `SMSPartnerClient` builds for itself, on the transport it was asked for.

- `"httpx"` (the default): httpx's own transport, as a few small httpcore pools
  (`pooled.PooledTransport`), the one respx, pytest-httpx and OpenTelemetry's
  httpx instrumentation patch, so tests and traces see the library's requests
  with no extra step.
- `"aiohttp"` (extra `aiohttp`): aiohttp's pool under the same httpx client
  (`benchmarks/` has the figures).

Either way the pool holds `max_concurrency` connections: the client never has
more requests in flight, so none waits for a connection. Either way the pool
binds itself to the event loop of its first request and closes itself when that
loop ends (`_loop.LoopBinding`).
"""

from __future__ import annotations

from typing import Literal

import httpx

from .._version import __version__
from ._loop import closed_client_error
from .pooled import PooledTransport, environment_proxy

__all__ = ["TRANSPORTS", "TransportName", "closed_client_error", "make_http_client"]

TransportName = Literal["httpx", "aiohttp"]
TRANSPORTS: tuple[TransportName, ...] = ("httpx", "aiohttp")
_USER_AGENT = f"smspartner-async/{__version__}"


def make_http_client(
    transport: TransportName,
    *,
    max_concurrency: int,
    timeout: float | httpx.Timeout,
    base_url: str,
) -> httpx.AsyncClient:
    headers = {"User-Agent": _USER_AGENT}
    if transport == "aiohttp":
        try:
            from .aiohttp import AiohttpTransport
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "transport='aiohttp' needs aiohttp: pip install 'smspartner-async[aiohttp]'"
            ) from exc
        limits = httpx.Limits(
            max_connections=max_concurrency, max_keepalive_connections=max_concurrency
        )
        return httpx.AsyncClient(
            transport=AiohttpTransport(limits=limits), timeout=timeout, headers=headers
        )
    pooled = PooledTransport(max_connections=max_concurrency, proxy=environment_proxy(base_url))
    return httpx.AsyncClient(transport=pooled, timeout=timeout, headers=headers)
