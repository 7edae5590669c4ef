"""An httpx transport over aiohttp's connection pool (`transport="aiohttp"`, extra `aiohttp`).

httpx keeps its API and its pipeline (hooks, mocks, tracing), but httpcore's
pool slows down as concurrency rises (a connection scan per request,
encode/httpx#3215); aiohttp's does not. For bulk jobs and high concurrency,
this transport hands the wire to aiohttp (`benchmarks/` compares both).

Why not the `httpx-aiohttp` package: its 0.2 release maps a refused connection
to `ConnectTimeout` (its exception table is ordered wrongly) and reads the whole
proxy environment on every request; this module is small enough to own.

httpx's mocks do not see this transport: pytest-httpx patches httpx's own transport
and respx's default mode httpcore's pool. A request sent while either is active would
go to the network (the test key to the real API); it raises `ClientStateError` instead,
saying how to mock this transport (`respx.mock(using="httpx")`, a `MockTransport`).

The body is streamed to httpx untouched (aiohttp's own decompression is off:
the client inflates within its size cap), and closing the response, read or
not, gives the connection back or drops it: a cancelled request leaks nothing.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import urllib.request
from collections.abc import AsyncIterator

import aiohttp
import httpx

from .._errors import ClientStateError
from ._loop import LoopBinding, closed_client_error
from ._mocks import patched_by_a_mock

__all__ = ["AiohttpTransport", "client_timeout"]

_CHUNK = 64 * 1024


@functools.lru_cache(maxsize=64)
def _timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)


def client_timeout(timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's (`connect`, `read`, `pool`; aiohttp has no write timeout,
    so a stalled upload is bounded by the read timeout and the call's deadline)."""
    return _timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool"))


class _Body(httpx.AsyncByteStream):
    """An aiohttp response's body as httpx reads it; closing it releases the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        # Unread body: aiohttp closes the connection rather than reuse a half-read one.
        self._response.release()


class _mapped:
    """aiohttp's and the OS's exceptions -> httpx's, the ones the client maps in turn.

    Order matters: a refused connection is a `ConnectError`, not a timeout.
    Messages keep the class and errno only: aiohttp's may name the URL, key included.
    """

    def __init__(self, request: httpx.Request) -> None:
        self._request = request

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, asyncio.CancelledError | GeneratorExit):
            return
        request = self._request
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise httpx.ConnectError(_describe(exc), request=request) from None
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            raise httpx.ConnectTimeout(_describe(exc), request=request) from None
        if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
            raise httpx.ReadTimeout(_describe(exc), request=request) from None
        if isinstance(exc, aiohttp.InvalidURL):
            raise httpx.UnsupportedProtocol("invalid URL", request=request) from None
        if isinstance(exc, aiohttp.ClientError | OSError):
            raise httpx.ReadError(_describe(exc), request=request) from None


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncBaseTransport` sending through one `aiohttp.ClientSession`.

    A cancellation may land anywhere in a request: aiohttp releases or closes the
    connection (`cancel_safe`, read by `_transports.may_use_httpcore`).

    The session is created on the first request, inside the running loop, and
    is bound to that loop (`LoopBinding`): using it from another loop is a clear
    error instead of "Event loop is closed" deep inside a socket, and it closes
    itself when that loop ends.

    With `trust_env`, proxy variables are read once, here, as httpx does:
    aiohttp's own `trust_env` reads them (and ~/.netrc) on every request.
    """

    cancel_safe = True

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
    ) -> None:
        self._limits = limits or httpx.Limits()
        self._verify = verify
        self._proxies = urllib.request.getproxies() if trust_env else {}
        self._proxy_for: dict[tuple[str, str], str | None] = {}
        self._session: aiohttp.ClientSession | None = None
        self._binding = LoopBinding(self._close_session)
        self._closed = False

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise closed_client_error()
        self._binding.enter()  # refuses another loop than the first one's
        if self._session is not None:
            return self._session
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or 15.0,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            auto_decompress=False,  # the client inflates within its size cap
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        patched = patched_by_a_mock()
        if patched is not None:
            raise ClientStateError(
                f"{patched} is patched by a mock (pytest-httpx, or respx's default mode), "
                'which does not see transport="aiohttp": this request would have gone to the '
                'network. In tests, use the default transport, or respx.mock(using="httpx"), '
                "or pass http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler))"
            )
        session = self._get_session()
        url = str(request.url)
        https = request.url.scheme == "https"
        with _mapped(request):
            response = await session.request(
                request.method,
                url,
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=client_timeout(request.extensions.get("timeout", {})),
                compress=None,
                ssl=self._ssl_context() if https else True,
                proxy=self._proxy_of(request.url.scheme, request.url.host)
                if self._proxies
                else None,
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if isinstance(self._verify, ssl.SSLContext) or not self._verify:
            return self._verify
        return _default_ssl_context()

    def _proxy_of(self, scheme: str, host: str) -> str | None:
        key = (scheme, host)
        if key not in self._proxy_for:
            proxy = self._proxies.get(scheme) or self._proxies.get("all")
            if proxy and urllib.request.proxy_bypass(host):
                proxy = None
            self._proxy_for[key] = proxy
        return self._proxy_for[key]

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def aclose(self) -> None:
        """Close the session; from another loop, see `LoopBinding.close`."""
        self._closed = True
        await self._binding.close()


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # httpx's context (certifi's roots), built once per process: loading it is slow.
    return httpx.create_ssl_context()


def _describe(exc: BaseException) -> str:
    detail = getattr(exc, "os_error", None) or getattr(exc, "strerror", None)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
