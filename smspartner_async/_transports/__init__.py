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
from ._exposure import Exposure
from ._loop import closed_client_error
from ._mocks import patched_by_a_mock
from .pooled import PooledTransport, environment_proxy

__all__ = [
    "TRANSPORTS",
    "Exposure",
    "TransportName",
    "closed_client_error",
    "make_http_client",
    "may_use_httpcore",
    "patched_by_a_mock",
]

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


def may_use_httpcore(http: httpx.AsyncClient) -> bool:
    """Whether `http` may send through an httpcore pool, where a cancellation can land
    outside httpcore's cleanup (`_call.Caller._send` defers it then).

    httpx has no public accessor for a client's transports: this reads its `_transport`
    and `_mounts`, and counts any transport it does not know as httpcore's (the safe guess).
    Known to take a cancellation anywhere: httpx's mock and ASGI transports, and any
    transport with a true `cancel_safe` attribute (the aiohttp one).
    """
    mounts: dict[object, object] = getattr(http, "_mounts", {})
    transports = [getattr(http, "_transport", None), *mounts.values()]
    return any(
        transport is not None
        and not isinstance(transport, httpx.MockTransport | httpx.ASGITransport)
        and not getattr(transport, "cancel_safe", False)
        for transport in transports
    )
