"""An httpx transport over aiohttp's connection pool.

httpx keeps its API (users inject their own `httpx.AsyncClient`, tests mock
with respx), but httpcore's pool slows down as concurrency rises (a quadratic
connection scan, encode/httpx#3215): at 32 requests in flight it serves a tenth
of what aiohttp does. This transport hands the wire to aiohttp and reads each
body whole, so a cancelled request always gives its connection back.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import aiohttp
import httpx

from ._errors import ClientStateError

__all__ = ["AiohttpTransport", "Answer", "client_timeout"]


class Answer(NamedTuple):
    """An HTTP answer, read whole."""

    status: int
    headers: Mapping[str, str]
    raw_headers: Sequence[tuple[bytes, bytes]]
    body: bytes


@functools.lru_cache(maxsize=64)
def _timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)


def client_timeout(timeout: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's (`connect`, `read`, `pool`; aiohttp has no write timeout)."""
    return _timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool"))


def decompress(body: bytes, encoding: str, request: httpx.Request | None = None) -> bytes:
    """Undo gzip and deflate, innermost last; other codings are left as they are, as httpx does
    (the client asks for neither, and a body still encoded then fails to decode as JSON or XML).
    """
    if not body:
        return body  # a bodiless 429 or 503 labelled gzip: its status still decides
    for coding in reversed([c.strip().lower() for c in encoding.split(",")]):
        if coding not in ("gzip", "x-gzip", "deflate"):
            continue
        try:
            # 32 + 15: a gzip or zlib header, detected; bare deflate as a fallback.
            body = zlib.decompress(body, 47)
        except zlib.error:
            try:
                body = zlib.decompress(body, -15)
            except zlib.error as exc:
                raise httpx.DecodingError(f"{coding}: {exc}", request=request) from None
    return body


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncBaseTransport` sending through one `aiohttp.ClientSession`.

    The session is created on the first request, inside the running loop, and
    is bound to that loop: using it from another loop is a clear error instead
    of "Event loop is closed" deep inside a socket.

    With `trust_env`, proxy variables are read once, here, as httpx does:
    aiohttp's own `trust_env` reads them (and ~/.netrc) on every request, which
    halves throughput.
    """

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        #: Requests between send and body read; zero once everything settled.
        self.open_requests = 0

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None:
            if loop is not self._loop:
                raise ClientStateError(
                    "this client's connection pool belongs to another event loop; "
                    "create one client per event loop (e.g. inside the coroutine given to "
                    "asyncio.run)"
                )
            return self._session
        if self._closed:
            raise ClientStateError("Cannot send a request, as the transport has been closed.")
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or 15.0,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            auto_decompress=False,  # httpx decodes Content-Encoding itself
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.exchange(
            request.method,
            str(request.url),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            await request.aread() or None,
            client_timeout(request.extensions.get("timeout", {})),
            request=request,
        )
        return httpx.Response(
            status_code=answer.status,
            headers=answer.raw_headers,
            content=answer.body,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]] | Mapping[str, str],
        content: bytes | None,
        timeouts: aiohttp.ClientTimeout,
        *,
        decode: bool = False,
        request: httpx.Request | None = None,
    ) -> Answer:
        """One request, its body read whole; failures raised as httpx's exceptions.

        The client's own pool calls this directly: httpx's request pipeline
        (cookies, auth and redirect flows, hooks) costs about as much CPU as
        aiohttp's whole request, and the API needs none of it. With `decode`,
        gzip and deflate bodies come back decompressed.
        """
        session = self._get_session()
        https = url.startswith("https:")
        self.open_requests += 1
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=content,
                allow_redirects=False,
                timeout=timeouts,
                compress=None,
                ssl=self._ssl_context() if https else True,
                proxy=self._proxy_of(url) if self._proxies else None,
            ) as response:
                body = await response.read()
                if decode and "Content-Encoding" in response.headers:
                    codings = ",".join(response.headers.getall("Content-Encoding"))
                    body = decompress(body, codings, request)
                return Answer(response.status, response.headers, response.raw_headers, body)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise httpx.ConnectTimeout(_describe(exc), request=request) from None
            raise httpx.ReadTimeout(_describe(exc), request=request) from None
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(_describe(exc), request=request) from None
        except aiohttp.InvalidURL:
            raise httpx.UnsupportedProtocol("invalid URL", request=request) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.ReadError(_describe(exc), request=request) from None
        finally:
            self.open_requests -= 1

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if isinstance(self._verify, ssl.SSLContext) or not self._verify:
            return self._verify
        return _default_ssl_context()

    def _proxy_of(self, url: str) -> str | None:
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        key = (scheme, host)
        if key not in self._proxy_for:
            proxy = self._proxies.get(scheme) or self._proxies.get("all")
            if proxy and urllib.request.proxy_bypass(host):
                proxy = None
            self._proxy_for[key] = proxy
        return self._proxy_for[key]

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # httpx's context (certifi's roots), built once per process: loading it costs ~50 ms.
    return httpx.create_ssl_context()


def _describe(exc: BaseException) -> str:
    # aiohttp messages can name the URL (query string included): keep the class and errno only.
    detail = getattr(exc, "os_error", None) or getattr(exc, "strerror", None)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
