"""Sending one API call: concurrency slots, the shared 429 pause, rate limit, retries, deadline.

Everything above this module asks `Sender.call(endpoint, parse, ...)` for a
parsed result and gets either that or one `SMSPartnerError`. Below it is the
caller's `httpx.AsyncClient`, or the client's own aiohttp pool driven directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import httpx
import orjson

from ._aiohttp import AiohttpTransport, Answer, client_timeout
from ._decode import ResponseFormat
from ._endpoints import Endpoint, read_answer
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ClientStateError,
    RateLimitError,
    ResponseFormatError,
    SMSPartnerError,
)
from ._redact import SecretStr
from ._retry import PauseGate, RateLimiter, RetryPolicy

__all__ = ["ClientStats", "RequestEvent", "Sender"]

T = TypeVar("T")
log = logging.getLogger("smspartner_async")

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_XML_HEADERS = {"Content-Type": "application/json", "Accept": "application/xml"}


def _httpx_patched() -> bool:
    """Whether respx's `using="httpx"` mode (or the like) has swapped httpx's transport lookup:
    requests then take httpx's path, to reach the mock. Asked per request, by origin, not by
    identity: the mock may be entered before this module is first imported."""
    return not httpx.AsyncClient._transport_for_url.__module__.startswith("httpx")


class _Prepared:
    """A request's URL and body, which carry the key: hidden from repr and tracebacks."""

    __slots__ = ("content", "url")

    def __init__(self, url: httpx.URL, content: bytes | None) -> None:
        self.url = url
        self.content = content

    def __repr__(self) -> str:
        return "<request to the SMS Partner API, key hidden>"


@attrs.frozen
class RequestEvent:
    """One HTTP attempt, for metrics hooks. Holds no key and no phone number."""

    endpoint: str
    attempt: int
    status_code: int | None
    elapsed: float
    pairs: int
    error: SMSPartnerError | None = None
    #: Seconds until the next attempt, when there will be one.
    retry_in: float | None = None


@attrs.define
class ClientStats:
    """Counters over a client's life; cheap enough to leave on."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    rate_limited: int = 0
    by_endpoint: dict[str, int] = attrs.field(factory=dict)


class Sender:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: SecretStr,
        response_format: ResponseFormat,
        retry: RetryPolicy,
        max_concurrency: int,
        deadline: float | None,
        max_requests_per_second: float | None,
        on_request: Callable[[RequestEvent], None] | None,
        direct: AiohttpTransport | None = None,
    ) -> None:
        self._http = http
        self._direct = direct
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._format = response_format
        self._retry = retry
        self._deadline = deadline
        self._slots = asyncio.Semaphore(max_concurrency)
        self._gate = PauseGate()
        self._limiter = RateLimiter(max_requests_per_second) if max_requests_per_second else None
        self._on_request = on_request
        self._headers = _XML_HEADERS if response_format == "xml" else _JSON_HEADERS
        # What httpx would send, minus the encodings only it can decode (br, zstd).
        self._direct_headers = {
            "User-Agent": http.headers.get("User-Agent", "smspartner-async"),
            "Accept-Encoding": "gzip, deflate",
            **self._headers,
        }
        self._direct_timeout = client_timeout(http.timeout.as_dict())
        self._body_urls: dict[str, httpx.URL] = {}
        self.stats = ClientStats()

    async def call(
        self,
        endpoint: Endpoint,
        parse: Callable[[dict[str, Any]], T],
        *,
        params: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        pairs: int = 0,
        proceed: Callable[[], bool] | None = None,
    ) -> T:
        """`parse(record)` of the API's answer, retried as the policy says, within the deadline.

        `parse` runs inside the retry loop: an answer that decodes but does not
        fit the models (`ResponseFormatError`) is retried like a garbled one.
        The deadline starts with the first send: time queued behind other calls
        of the client (for a slot, the rate limit, a 429 pause) is not the API's.
        `proceed()` is asked once a slot is held; False cancels this call
        unsent (its batch has already failed).
        """
        request = self._prepare(endpoint, params, payload)
        deadline = asyncio.timeout(None)
        try:
            async with deadline:
                return await self._attempts(endpoint, parse, request, pairs, deadline, proceed)
        except TimeoutError:
            if not deadline.expired():
                raise
        self.stats.failures += 1
        raise APITimeoutError(
            f"{endpoint.name}: no answer within the {self._deadline:g}s deadline "
            "(all attempts included)",
            endpoint=endpoint.name,
        )

    def _prepare(
        self, endpoint: Endpoint, params: dict[str, str] | None, payload: dict[str, Any] | None
    ) -> _Prepared:
        # The revealed key lives only inside _Prepared, whose repr hides it: tracebacks
        # rendered with their locals (Sentry, rich, loguru) never show it.
        if payload is None:
            query = {"apiKey": self._api_key.reveal(), **(params or {})}
            if self._format == "xml":
                query["_format"] = "xml"
            return _Prepared(httpx.URL(f"{self._base_url}/{endpoint.name}", params=query), None)
        content = orjson.dumps({"apiKey": self._api_key.reveal(), **payload})
        return _Prepared(self._body_url(endpoint), content)

    async def _attempts(
        self,
        endpoint: Endpoint,
        parse: Callable[[dict[str, Any]], T],
        request: _Prepared,
        pairs: int,
        deadline: asyncio.Timeout,
        proceed: Callable[[], bool] | None,
    ) -> T:
        loop = asyncio.get_running_loop()
        max_retries = self._retry.max_retries
        for attempt in range(max_retries + 1):
            started = loop.time()
            status: int | None = None
            error: SMSPartnerError
            try:
                answer = await self._send(endpoint, request, deadline, proceed)
            except httpx.TimeoutException as exc:
                error = APITimeoutError(f"{endpoint.name}: {exc}", endpoint=endpoint.name)
            except httpx.DecodingError as exc:
                error = ResponseFormatError(
                    f"{endpoint.name}: the body does not match its Content-Encoding ({exc})",
                    endpoint=endpoint.name,
                )
            except httpx.RequestError as exc:  # transport errors, too many redirects
                error = APIConnectionError(
                    f"{endpoint.name}: {type(exc).__name__}: {exc}", endpoint=endpoint.name
                )
            else:
                status = answer.status
                try:
                    record = read_answer(
                        status, answer.headers, answer.body, endpoint, self._format
                    )
                    if self._slots.locked():
                        # A call waits for the slot this one freed: let it send before the
                        # items are parsed, so its round trip overlaps this CPU work. (An
                        # error above raised first: a batch it ends sends nothing more.)
                        await asyncio.sleep(0)
                    result = parse(record)
                except SMSPartnerError as exc:
                    error = exc
                else:
                    self._observe(endpoint, attempt, status, loop.time() - started, pairs)
                    return result
            elapsed = loop.time() - started
            delay = None
            if error.retryable and attempt < max_retries:
                delay = self._retry.wait_for(attempt, getattr(error, "retry_after", None))
            self._observe(endpoint, attempt, status, elapsed, pairs, error, delay)
            limited = isinstance(error, RateLimitError)
            self.stats.rate_limited += limited
            if delay is None:
                self.stats.failures += 1
                raise error
            if limited:
                self._gate.pause(delay)
            self.stats.retries += 1
            log.info(
                "%s failed (%s), retry %d of %d in %.2fs",
                endpoint.name,
                type(error).__name__,
                attempt + 1,
                max_retries,
                delay,
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        endpoint: Endpoint,
        request: _Prepared,
        deadline: asyncio.Timeout,
        proceed: Callable[[], bool] | None,
    ) -> Answer:
        # Waiting for a 429 pause never holds a concurrency slot. The rate limit is
        # booked once the slot is held, so slots freed together cannot start a burst.
        while True:
            await self._gate.wait()
            async with self._slots:
                if self._gate.remaining() > 0:
                    continue  # a 429 arrived while we queued for the slot
                if proceed is not None and not proceed():
                    raise asyncio.CancelledError  # the batch failed while we queued
                return await self._exchange(endpoint, request, deadline)

    async def _exchange(
        self, endpoint: Endpoint, request: _Prepared, deadline: asyncio.Timeout
    ) -> Answer:
        if self._limiter is not None:
            await self._limiter.acquire()
        if self._http.is_closed:
            raise ClientStateError("Cannot send a request, as the client has been closed.")
        if self._deadline is not None and deadline.when() is None:
            deadline.reschedule(asyncio.get_running_loop().time() + self._deadline)
        if self._direct is not None and not _httpx_patched():
            return await self._direct.exchange(
                endpoint.method,
                str(request.url),
                self._direct_headers,
                request.content,
                self._direct_timeout,
                decode=True,
            )
        response = await self._http.request(
            endpoint.method, request.url, content=request.content, headers=self._headers
        )
        return Answer(response.status_code, response.headers, (), response.content)

    def _body_url(self, endpoint: Endpoint) -> httpx.URL:
        """The URL of a call whose key travels in the body: parsed once per endpoint."""
        url = self._body_urls.get(endpoint.name)
        if url is None:
            params = {"_format": "xml"} if self._format == "xml" else None
            url = httpx.URL(f"{self._base_url}/{endpoint.name}", params=params)
            self._body_urls[endpoint.name] = url
        return url

    def _observe(
        self,
        endpoint: Endpoint,
        attempt: int,
        status: int | None,
        elapsed: float,
        pairs: int,
        error: SMSPartnerError | None = None,
        retry_in: float | None = None,
    ) -> None:
        stats = self.stats
        stats.requests += 1
        stats.by_endpoint[endpoint.name] = stats.by_endpoint.get(endpoint.name, 0) + 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s attempt %d: HTTP %s in %.3fs, %d pairs%s",
                endpoint.name,
                attempt,
                status,
                elapsed,
                pairs,
                f", {type(error).__name__}" if error else "",
            )
        if self._on_request is not None:
            event = RequestEvent(endpoint.name, attempt, status, elapsed, pairs, error, retry_in)
            try:
                self._on_request(event)
            except Exception as exc:  # a metrics hook must not fail the API call
                log.warning("on_request hook raised %s; ignored", type(exc).__name__)
