"""One API call: a slot, the pause, the rate limit, the deadline, retries, events.

Everything above this module asks `Caller.call(endpoint, parse, ...)` for a
parsed result and gets either that or one `SMSPartnerError`. Below it is one
`httpx.AsyncClient`: the client's own (httpx's transport or the aiohttp one) or
the caller's. Every request goes through httpx's pipeline, so whatever patches
httpx (respx, pytest-httpx, OpenTelemetry) sees it.

The key lives in the request's URL or body; both are built in `_Prepared`,
whose repr hides them, and answers are scrubbed of the key on receipt
(`_wire.body`), so no frame an error passes through holds it in a local.

Telemetry goes through `_telemetry`: each call asks `current()` once for a
`CallTrace` (a no-op unless OpenTelemetry is set up), which wraps every HTTP
attempt; OpenTelemetry's generic HTTP instrumentations are silenced around our
requests, whose URLs carry the key. Log records carry their numbers as
`extra=` fields (`_fields`) for JSON logging and structlog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import httpx
import orjson

from ._errors import (
    APITimeoutError,
    RateLimitError,
    ResponseTooLargeError,
    SMSPartnerError,
    misfit,
    transport_error,
)
from ._events import ClientStats, RequestEvent
from ._flow import FlowControl
from ._options import ClientOptions
from ._redact import SecretStr
from ._telemetry import CallTrace, current
from ._transports import Exposure, closed_client_error, may_use_httpcore, patched_by_a_mock
from ._wire.body import Answer, receive
from ._wire.endpoints import Endpoint, read_record

# RequestEvent and ClientStats live in `_events`; importable from here as before.
__all__ = ["Caller", "ClientStats", "RequestEvent", "Shared"]

T = TypeVar("T")
log = logging.getLogger("smspartner_async")

# gzip and deflate only: the body reader inflates those within the size cap.
_HEADERS = {"Accept-Encoding": "gzip, deflate", "Content-Type": "application/json"}
_ACCEPT = {"json": "application/json", "xml": "application/xml"}


class _KeyHidden:
    """A holder of what carries the key, hidden from repr and so from tracebacks' locals."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<request to the SMS Partner API, key hidden>"


class _Prepared(_KeyHidden):
    """A request's URL and body, which carry the key."""

    __slots__ = ("content", "url")

    def __init__(self, url: httpx.URL, content: bytes | None) -> None:
        self.url = url
        self.content = content


class _Sending(_KeyHidden):
    """The `httpx.Request` of one exchange: its URL or body carries the key, and its repr
    shows the URL. Held in this instead of a local, so that no frame a cancellation or an
    error passes through shows it to a tracker rendering locals."""

    __slots__ = ("request",)

    def __init__(self, request: httpx.Request) -> None:
        self.request = request


@attrs.define
class Shared:
    """What a client and every `with_options` view of it share."""

    http: httpx.AsyncClient
    flow: FlowControl
    api_key: SecretStr
    stats: ClientStats = attrs.field(factory=ClientStats)
    on_request: Callable[[RequestEvent], None] | None = None
    #: The HTTP exchanges running (`Caller._send`), their caller still waiting or gone.
    exchanges: set[asyncio.Task[Any]] = attrs.field(factory=set)

    def exchange_done(self, task: asyncio.Task[Any]) -> None:
        self.exchanges.discard(task)
        if not task.cancelled():
            task.exception()  # the caller may be gone: its outcome is nobody's to report


class Caller:
    """Sends API calls for one set of options over a client's shared pool and flow control."""

    def __init__(self, shared: Shared, options: ClientOptions) -> None:
        self._shared = shared
        self._http = shared.http
        self._flow = shared.flow
        self._key = shared.api_key
        self.options = options
        self._retry = options.policy
        self._headers = {**_HEADERS, "Accept": _ACCEPT[options.response_format]}
        self._timeout: Any = (
            httpx.USE_CLIENT_DEFAULT if options.timeout is None else options.timeout
        )
        self._body_urls: dict[str, httpx.URL] = {}
        self._httpcore = may_use_httpcore(shared.http)

    async def call(
        self,
        endpoint: Endpoint,
        parse: Callable[[dict[str, Any]], T],
        *,
        params: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        pairs: int = 0,
        check: Callable[[], None] | None = None,
    ) -> T:
        """`parse(record)` of the API's answer, retried as the policy says, within the deadline.

        `parse` runs inside the retry loop: an answer that decodes but does not
        fit the models (`ResponseFormatError`) is retried like a garbled one.
        The deadline starts with the first send: time queued behind other calls
        of the client (for a slot, the rate limit, a 429 pause) is not the API's.
        `check()` runs once a slot is held and may raise to leave unsent (the
        call's batch has already failed).
        """
        request = self._prepare(endpoint, params, payload)
        deadline = asyncio.timeout(None)
        with current().call(endpoint.name, pairs, self.options.response_format) as trace:
            try:
                async with deadline:
                    return await self._attempts(
                        endpoint, parse, request, pairs, deadline, check, trace
                    )
            except TimeoutError:
                if not deadline.expired():
                    raise
            self._shared.stats.failures += 1
            raise APITimeoutError(
                f"{endpoint.name}: no answer within the {self.options.deadline:g}s deadline "
                "(all attempts included)",
                endpoint=endpoint.name,
            )

    def _prepare(
        self, endpoint: Endpoint, params: dict[str, str] | None, payload: dict[str, Any] | None
    ) -> _Prepared:
        xml = self.options.response_format == "xml"
        if payload is None:
            query = {"apiKey": self._key.reveal(), **(params or {})}
            if xml:
                query["_format"] = "xml"
            url = httpx.URL(f"{self.options.base_url}/{endpoint.name}", params=query)
            return _Prepared(url, None)
        content = orjson.dumps({"apiKey": self._key.reveal(), **payload})
        if endpoint.name not in self._body_urls:  # the key is in the body: one URL per endpoint
            params = {"_format": "xml"} if xml else None
            url = httpx.URL(f"{self.options.base_url}/{endpoint.name}", params=params)
            self._body_urls[endpoint.name] = url
        return _Prepared(self._body_urls[endpoint.name], content)

    async def _attempts(
        self,
        endpoint: Endpoint,
        parse: Callable[[dict[str, Any]], T],
        request: _Prepared,
        pairs: int,
        deadline: asyncio.Timeout,
        check: Callable[[], None] | None,
        trace: CallTrace,
    ) -> T:
        loop = asyncio.get_running_loop()
        retry = self._retry
        stats = self._shared.stats
        for attempt in range(retry.max_retries + 1):
            started = loop.time()
            status: int | None = None
            error: SMSPartnerError
            try:
                answer = await self._send(endpoint, request, deadline, check, trace, attempt)
            except (httpx.RequestError, httpx.HTTPStatusError) as exc:
                error = transport_error(exc, endpoint.name)
            except ResponseTooLargeError as exc:
                error = exc
            else:
                status = answer.status
                try:
                    result = await self._read(answer, endpoint, parse)
                except SMSPartnerError as exc:
                    error = exc
                else:
                    self._observe(endpoint, attempt, status, loop.time() - started, pairs)
                    trace.answered(result)
                    return result
            delay = None
            if error.retryable and attempt < retry.max_retries:
                delay = retry.wait_for(attempt, getattr(error, "retry_after", None))
            self._observe(endpoint, attempt, status, loop.time() - started, pairs, error, delay)
            limited = isinstance(error, RateLimitError)
            stats.rate_limited += limited
            if delay is None:
                if limited:
                    self._pause_for(error)
                stats.failures += 1
                raise error
            if limited:
                self._flow.pause(delay)
            stats.retries += 1
            trace.retry(attempt, error, delay, limited)
            log.info(
                "%s failed (%s), retry %d of %d in %.2fs",
                endpoint.name,
                type(error).__name__,
                attempt + 1,
                retry.max_retries,
                delay,
                extra=_fields(endpoint, attempt, status, pairs, error, wait=delay),
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        endpoint: Endpoint,
        request: _Prepared,
        deadline: asyncio.Timeout,
        check: Callable[[], None] | None,
        trace: CallTrace,
        attempt: int,
    ) -> Answer:
        """One HTTP exchange, in a task of its own that a cancellation reaches only where it may.

        Why: httpcore's pool (1.0.9) loses a connection for good when a request is
        cancelled at one of a few awaits: after the pool gave it a connection and before
        the connection starts on it, and, on a new connection, between the end of the
        connect and the start of the request (encode/httpcore#1093, #830, #961; the fix,
        #1099, is not merged). asyncio delivers a cancellation at whatever await the task
        is parked on, and web handlers' timeouts, `asyncio.timeout`, task groups and
        clients hanging up cancel at any point. An injected httpx client has the same pool.

        How it holds: the exchange (`send`, the body, the close) runs in a task, and the
        caller waits for it behind `asyncio.shield`, so the caller's cancellation never
        lands inside httpx. When the caller goes, the exchange is cancelled by us, once,
        at a point httpcore cleans up after: at once if it is anywhere else (waiting for
        the server's answer, reading the body, or on a transport without httpcore's pool);
        while it is in one of those windows (`Exposure`, told by httpcore's own trace
        events), at the next point it is not, a few loop steps later: the start of the
        connect or of the request. Every wait before the exchange (slot, pause, rate limit,
        room) is on asyncio's own primitives, which a cancellation leaves consistent.

        Bounded: an exchange whose caller left counts until it ends (`Shared.exchanges`),
        and a new one starts only while fewer than `max_concurrency` run (`_room`), so the
        pool never holds more requests than connections. Closing the client's own pool
        ends the exchanges still running.
        """
        async with self._flow.slot():
            await self._room()
            if check is not None:
                check()
            if self._http.is_closed:
                raise closed_client_error("(or the httpx.AsyncClient given to it was closed)")
            if self.options.deadline is not None and deadline.when() is None:
                deadline.reschedule(asyncio.get_running_loop().time() + self.options.deadline)
            exposure = Exposure(self._httpcore and patched_by_a_mock() is None)
            sent = _Sending(
                self._http.build_request(
                    endpoint.method,
                    request.url,
                    content=request.content,
                    headers=self._headers,
                    timeout=self._timeout,
                    extensions={"trace": exposure},
                )
            )
            task = asyncio.get_running_loop().create_task(
                self._exchange(sent, self._limit(endpoint), trace, attempt, exposure)
            )
            self._shared.exchanges.add(task)
            task.add_done_callback(self._shared.exchange_done)
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                exposure.abandon(task)
                # The cancelled call ends once its exchange has: nothing it started goes on
                # sending after it (a few loop steps, `Exposure`). A second cancel stops
                # this wait, never the exchange's own unwinding.
                await asyncio.wait((task,))
                raise

    def _pause_for(self, error: SMSPartnerError) -> None:
        """A 429 its call gives up on still pauses the client, for its `Retry-After` up to
        the policy's cap: the server asked the whole key to wait, not only this call."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            wait = min(retry_after, self._retry.max_retry_after)
            if wait > 0:
                self._flow.pause(wait)

    async def _room(self) -> None:
        """Wait while `max_concurrency` exchanges run (those whose caller left included)."""
        exchanges = self._shared.exchanges
        while len(exchanges) >= self._flow.max_concurrency:
            await asyncio.wait(set(exchanges), return_when=asyncio.FIRST_COMPLETED)

    async def _exchange(
        self, sent: _Sending, limit: int, trace: CallTrace, attempt: int, exposure: Exposure
    ) -> Answer:
        with trace.request(sent.request, attempt) as traced:
            response = await self._http.send(sent.request, stream=True)
            traced.response(response)
            try:
                if exposure.abandoned:
                    raise asyncio.CancelledError  # its caller left while it was exposed
                return await receive(response, limit, self._key)
            finally:
                await response.aclose()

    async def _read(
        self, answer: Answer, endpoint: Endpoint, parse: Callable[[dict[str, Any]], T]
    ) -> T:
        """Decode and parse off the event loop when the answer is heavy (`Answer.heavy`)."""
        limit, fmt = self._limit(endpoint), self.options.response_format
        if answer.heavy:
            return await asyncio.to_thread(
                _read_and_parse, answer, endpoint, fmt, limit, self._key, parse
            )
        record = read_record(answer, endpoint, fmt, limit, self._key)
        if self._flow.busy():
            # A call waits for the slot this one freed: let it send before the items are
            # parsed, so its round trip overlaps this CPU work. (An API error above raised
            # first: a batch it ends sends nothing more.) One step for it to take the slot
            # and start its exchange task, one for that task to send.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        return _parse(parse, record)

    def _limit(self, endpoint: Endpoint) -> int:
        cap = self.options.max_response_bytes
        return cap if endpoint.max_bytes is None else min(cap, endpoint.max_bytes)

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
        stats = self._shared.stats
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
                extra=_fields(endpoint, attempt, status, pairs, error, elapsed=elapsed),
            )
        hook = self._shared.on_request
        if hook is not None:
            event = RequestEvent(endpoint.name, attempt, status, elapsed, pairs, error, retry_in)
            try:
                hook(event)
            except Exception as exc:  # a metrics hook must not fail the API call
                log.warning(
                    "on_request hook raised %s; ignored",
                    type(exc).__name__,
                    extra=_fields(endpoint, attempt, status, pairs),
                )


def _fields(
    endpoint: Endpoint,
    attempt: int,
    status: int | None,
    pairs: int,
    error: BaseException | None = None,
    *,
    wait: float | None = None,
    elapsed: float | None = None,
) -> dict[str, Any]:
    """A log record's `extra=`: numbers, codes and names only (never a URL nor a message).

    Every name starts with `smspartner_`: a record's attributes share one flat
    namespace with the `LogRecord`'s own (`logging` refuses an `extra` that
    would overwrite one, by raising in the log call) and with whatever other
    filters add, and JSON formatters and structlog's `ExtraAdder` copy them
    into the event as they are, where the prefix groups them.
    """
    fields: dict[str, Any] = {
        "smspartner_endpoint": endpoint.name,
        "smspartner_attempt": attempt,
        "smspartner_http_status": status,
        "smspartner_pairs": pairs,
    }
    if error is not None:
        fields["smspartner_error"] = type(error).__name__
    if wait is not None:
        fields["smspartner_wait"] = wait
    if elapsed is not None:
        fields["smspartner_elapsed"] = elapsed
    return fields


def _parse(parse: Callable[[dict[str, Any]], T], record: dict[str, Any]) -> T:
    try:
        return parse(record)
    except (ValueError, TypeError) as exc:
        raise misfit(exc, "the models") from None


def _read_and_parse(
    answer: Answer,
    endpoint: Endpoint,
    response_format: Any,
    limit: int,
    key: SecretStr,
    parse: Callable[[dict[str, Any]], T],
) -> T:
    return _parse(parse, read_record(answer, endpoint, response_format, limit, key))
