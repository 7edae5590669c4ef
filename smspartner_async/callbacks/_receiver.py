"""The callback receiver: token, caps and a bounded buffer between the web and the watch.

A request is answered from memory, never after a store call: its hints go into
a buffer (deduplicated while they wait) and a task hands them to the sink (the
watch's `hint`) in batches. When the sink is slow or down the buffer fills up
and further hints are dropped and counted; the watch's schedule still asks
about every pair, so a dropped hint costs staleness, never a status.

What bounds a forged flood (someone who knows the token, or a platform gone
wrong): the body cap, the number of reports read per callback (`MAX_ITEMS`), a
token bucket on hints (`max_rate`, `burst`) and the buffer's size (`max_buffer`).
Memory is the buffer's, whatever the number of distinct ids sent; the store
bounds what it keeps of hints for pairs it does not know yet.

Nothing logged here holds the token, a phone number, a message id or a body:
only counts and exception class names.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, TypeAlias
from urllib.parse import parse_qs

import attrs
import orjson

from .._errors import InvalidInputError
from .._validate import DEFAULT_REGION, REGIONS
from ._fields import MAX_ITEMS, Hint, hints_from

__all__ = ["CallbackReceiver", "CallbackResponse", "HintSink", "ReceiverStats", "new_token"]

log = logging.getLogger("smspartner_async.callbacks")

#: Takes one hint, `(message_id, phone_number or None)`: `Watcher.hint`. Its result is ignored.
HintSink: TypeAlias = Callable[[int, str | None], Awaitable[Any]]

_MIN_TOKEN: Final = 16
_MAX_TOKEN: Final = 256
_MAX_FIELDS: Final = 100
_BATCH: Final = 1_000
# Hints handed to the sink at once: a shared store's round trips overlap.
_AT_ONCE: Final = 16
_WARN_EVERY: Final = 60.0
_TEXT: Final = "text/plain; charset=utf-8"


def new_token() -> str:
    """A random token for the callback URL (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


@attrs.frozen(weakref_slot=False)
class CallbackResponse:
    """What to answer the platform: a status, a short text body, and headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", _TEXT),)


def _answer(status: int, text: str, *extra: tuple[str, str]) -> CallbackResponse:
    return CallbackResponse(status, text.encode(), (("content-type", _TEXT), *extra))


_OK: Final = _answer(200, "OK")
_NOT_FOUND: Final = _answer(404, "not found")
_NOT_ALLOWED: Final = _answer(405, "method not allowed", ("allow", "GET, POST"))
_TOO_LARGE: Final = _answer(413, "body too large")
_TOO_MANY: Final = _answer(413, f"over {MAX_ITEMS:,} reports in one callback: send several")
_MALFORMED: Final = _answer(400, "no message id found")
_UNSUPPORTED: Final = _answer(415, "send JSON, a form, or a query string")
_SLOW_DOWN: Final = _answer(429, "too many callbacks", ("retry-after", "1"))
_NOT_READY: Final = _answer(503, "not ready", ("retry-after", "1"))


@attrs.define(weakref_slot=False)
class ReceiverStats:
    """Counters since the receiver was made (for metrics; none holds an id or a number)."""

    requests: int = 0
    """Requests handled, whatever their answer."""
    refused: int = 0
    """Requests with a wrong or missing token (answered 404)."""
    too_large: int = 0
    """Requests over `max_body`, or with over `MAX_ITEMS` reports (413)."""
    malformed: int = 0
    """Requests with a body that is not JSON or a form, or naming no message id (400/415)."""
    hints: int = 0
    """Hints taken into the buffer."""
    repeated: int = 0
    """Hints already waiting in the buffer (the same pair, or the same id without a phone)."""
    throttled: int = 0
    """Requests refused unread because the rate was spent (429) or the buffer full (503)."""
    over_rate: int = 0
    """Hints of a request read in part over `max_rate` dropped (the request was answered 429)."""
    over_buffer: int = 0
    """Hints dropped because the buffer was full: the sink is slow or down (503)."""
    delivered: int = 0
    """Hints the sink took."""
    failed: int = 0
    """Hints the sink raised on (or took longer than `sink_timeout` for); polling covers them."""


class CallbackReceiver:
    """Receives SMS Partner's delivery-report callbacks (`urlDlr`) and hints the watch.

        receiver = CallbackReceiver(os.environ["SMSPARTNER_CALLBACK_TOKEN"])
        app.mount("/smspartner/dlr", receiver.asgi)      # FastAPI / Starlette
        # send with urlDlr="https://example.com/smspartner/dlr/<token>"

        async with Watcher(client, store=...) as watcher, receiver.feeding(watcher.hint):
            ...

    A callback is a GET with a query string or a POST with a JSON or form body
    (query fields count too); its message id and phone number are found under
    any usual spelling, and a callback without a phone number hints every pending
    pair of its id. The status it carries is ignored: the watch asks the API.

    Answers: 200 once the hints are buffered (or for a callback with no field at
    all, a reachability check); 404 for a wrong token (compared in constant time);
    400 when no message id is found; 413 over `max_body`; 429 over `max_rate`; 503
    before `feeding` or when the buffer is full. None of them waits on the store.

    Args:
        token: The secret last segment of the callback URL; at least 16 characters
            (`new_token()` makes one).
        region: How national phone numbers are read, as the client's `default_region`.
        max_body: Bytes a callback body may have.
        max_rate: Hints taken per second, on average; more are dropped (429).
        burst: Hints taken at once above the average (default: one second's worth).
        max_buffer: Hints waiting for the sink at most; more are dropped (503).
        flush_delay: Seconds a first hint waits for others to join its batch, so that the
            watch asks about them together, in fuller calls: a callback reaches the watch
            within this bound (`benchmarks/callbacks.py` measures the staleness with it).
        sink_timeout: Seconds a sink call may take before its batch is given up.
        clock: Monotonic seconds, for the rate (`time.monotonic`).
    """

    def __init__(
        self,
        token: str,
        *,
        region: str = DEFAULT_REGION,
        max_body: int = 64 * 1024,
        max_rate: float = 2_000.0,
        burst: float | None = None,
        max_buffer: int = 20_000,
        flush_delay: float = 0.5,
        sink_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(token, str) or not _MIN_TOKEN <= len(token) <= _MAX_TOKEN:
            # The token itself is never echoed, only its length.
            raise InvalidInputError(
                f"token must be a string of {_MIN_TOKEN} to {_MAX_TOKEN} characters "
                "(new_token() makes one)",
                value=len(token) if isinstance(token, str) else type(token).__name__,
            )
        if "/" in token or "?" in token or "#" in token:
            raise InvalidInputError(
                "token must fit in one URL path segment (no '/', '?' or '#')", value=len(token)
            )
        if region not in REGIONS:
            raise InvalidInputError("unknown region", value=region)
        for name, value in (("max_body", max_body), ("max_buffer", max_buffer)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a whole number of at least 1", value=value)
        burst = max_rate if burst is None else burst
        for name, number in (
            ("max_rate", max_rate),
            ("burst", burst),
            ("sink_timeout", sink_timeout),
        ):
            if not (isinstance(number, int | float) and math.isfinite(number) and number > 0):
                raise InvalidInputError(f"{name} must be a positive number", value=number)
        if not (isinstance(flush_delay, int | float) and 0 <= flush_delay < 60):
            raise InvalidInputError("flush_delay must be 0 to 60 seconds", value=flush_delay)
        self._token = token.encode()
        self.region = region
        self.max_body = max_body
        self.max_rate = float(max_rate)
        self.burst = max(float(burst), 1.0)
        self.max_buffer = max_buffer
        self.flush_delay = float(flush_delay)
        self.sink_timeout = float(sink_timeout)
        self.stats = ReceiverStats()
        self._clock = clock
        self._tokens = self.burst
        self._refilled = clock()
        self._buffer: dict[Hint, None] = {}
        self._ready = asyncio.Event()
        self._sink: HintSink | None = None
        self._closing = asyncio.Event()
        self._on_hint: Callable[[], object] | None = None
        self._warned_at = self._failed_warned_at = -math.inf

    def __repr__(self) -> str:
        # Never the token.
        feeding = self._sink is not None
        return f"CallbackReceiver(feeding={feeding}, waiting={len(self._buffer)})"

    # -- the framework adapters ------------------------------------------------------------

    @property
    def asgi(self) -> Any:
        """An ASGI 3 app: `app.mount("/prefix", receiver.asgi)`; the token is the path's last
        segment (`/prefix/<token>`)."""
        from ._asgi import CallbackApp

        return CallbackApp(self)

    async def aiohttp_handler(self, request: Any) -> Any:
        """An aiohttp handler, for a route whose last segment is the token:
        `app.router.add_route("*", "/prefix/{token}", receiver.aiohttp_handler)`."""
        from ._aiohttp import handle

        return await handle(self, request)

    def access_log_filter(self) -> logging.Filter:
        """A filter for a web server's access logger (`uvicorn.access`, `aiohttp.access`):
        lines naming the callback URL lose the token and the query string (its phone numbers)."""
        return _ScrubCallbackURLs(self._token.decode())

    # -- the plain function ------------------------------------------------------------------

    async def handle(
        self,
        *,
        method: str,
        token: str,
        query: str | bytes = b"",
        body: bytes = b"",
        content_type: str | None = None,
    ) -> CallbackResponse:
        """Answer one callback, for any framework: the method, the token from the URL path,
        the raw query string, the body (read up to `max_body` + 1 bytes) and its content type."""
        self.stats.requests += 1
        if not self._token_ok(token):
            self.stats.refused += 1
            return _NOT_FOUND
        method = method.upper()
        if method not in ("GET", "POST"):
            return _NOT_ALLOWED
        if len(body) > self.max_body:
            self.stats.too_large += 1
            return _TOO_LARGE
        if self._sink is None:
            return _NOT_READY
        # A flood is refused before its body is parsed: its cost stays the token check's.
        self._refill()
        if self._tokens < 1 or len(self._buffer) >= self.max_buffer:
            self.stats.throttled += 1
            self._warn()
            return _SLOW_DOWN if self._tokens < 1 else _NOT_READY
        reports = _reports(query, body if method == "POST" else b"", content_type)
        if reports is None:
            self.stats.malformed += 1
            return _UNSUPPORTED if body and not _readable(content_type, body) else _MALFORMED
        if len(reports) > MAX_ITEMS:
            self.stats.too_large += 1
            return _TOO_MANY  # the sender splits it, rather than hear OK and lose the tail
        if not any(reports):
            return _OK  # nothing at all: a check that the URL answers
        hints = hints_from(reports, self.region)
        if not hints:
            self.stats.malformed += 1
            return _MALFORMED
        return self._take(hints)

    def too_large(self, token: str) -> CallbackResponse:
        """The answer to a callback whose body was not read because it passed `max_body`
        (for adapters that stop reading there); a wrong token is still a 404."""
        self.stats.requests += 1
        if not self._token_ok(token):
            self.stats.refused += 1
            return _NOT_FOUND
        self.stats.too_large += 1
        return _TOO_LARGE

    def _token_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.encode("utf-8", "replace"), self._token)

    # -- feeding the watch ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def feeding(
        self, sink: HintSink, *, on_hint: Callable[[], object] | None = None
    ) -> AsyncIterator[CallbackReceiver]:
        """Hand the hints to `sink` while the block runs (enter it inside the watch's).

        `on_hint` is called after hints were taken: `PushSchedule.heard`, so that the
        schedule knows callbacks are arriving. Callbacks before the block or after it
        are answered 503. On exit, what is still buffered is handed over (within
        `sink_timeout`), then the task stops.
        """
        if self._sink is not None:
            raise RuntimeError("this receiver is already feeding a sink")
        self._sink = sink
        self._on_hint = on_hint
        # New events each time: an app restarted on another event loop (a test client, a
        # server reloaded) must not find them bound to the previous one.
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        if self._buffer:
            self._ready.set()
        flusher = asyncio.create_task(self._flush_forever(sink), name="smspartner-callbacks")
        try:
            yield self
        finally:
            # Answer 503 from now on; the flusher hands over what is buffered (each call
            # bounded by sink_timeout) and ends. Cancelled meanwhile, it is cancelled too.
            self._sink = None
            self._closing.set()
            self._ready.set()
            try:
                await asyncio.shield(flusher)
            except asyncio.CancelledError:
                flusher.cancel()
                raise
            finally:
                self._buffer.clear()

    async def _flush_forever(self, sink: HintSink) -> None:
        while True:
            await self._ready.wait()
            if self.flush_delay:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_delay):
                        await self._closing.wait()
            self._ready.clear()
            await self._flush(sink)
            if self._closing.is_set():
                return

    async def _flush(self, sink: HintSink) -> None:
        """Hand the buffer over, `_AT_ONCE` hints at a time, each batch within `sink_timeout`."""
        buffer, stats = self._buffer, self.stats
        while buffer:
            batch = list(itertools.islice(buffer, _BATCH))
            for hint in batch:
                del buffer[hint]
            taken = 0
            error = ""
            try:
                async with asyncio.timeout(self.sink_timeout):
                    for start in range(0, len(batch), _AT_ONCE):
                        outcomes = await asyncio.gather(
                            *(sink(*hint) for hint in batch[start : start + _AT_ONCE]),
                            return_exceptions=True,
                        )
                        for outcome in outcomes:
                            if isinstance(outcome, Exception):
                                error = type(outcome).__name__
                            else:
                                taken += 1
            except TimeoutError:
                error = "TimeoutError"
            stats.delivered += taken
            if taken and self._on_hint is not None:
                self._on_hint()
            if taken < len(batch):
                stats.failed += len(batch) - taken
                self._warn_failed(error)

    def _take(self, hints: list[Hint]) -> CallbackResponse:
        """Buffer what the rate allows of a callback's hints. Every hint read is charged,
        taken or not (down to a debt of one `burst`), so that a flood of large callbacks
        is soon refused unread."""
        buffer, stats = self._buffer, self.stats
        allowed = math.floor(self._tokens)
        fresh = sum(hint not in buffer for hint in hints)
        self._tokens = max(self._tokens - fresh, -self.burst)
        over_rate = over_buffer = 0
        for hint in hints:
            if hint in buffer:
                stats.repeated += 1
            elif allowed < 1:
                over_rate += 1
            elif len(buffer) >= self.max_buffer:
                over_buffer += 1
            else:
                allowed -= 1
                buffer[hint] = None
                stats.hints += 1
        if buffer:
            self._ready.set()
        if over_rate or over_buffer:
            stats.over_rate += over_rate
            stats.over_buffer += over_buffer
            self._warn()
            return _SLOW_DOWN if over_rate else _NOT_READY
        return _OK

    def _warn_failed(self, error: str) -> None:
        now = self._clock()
        if now - self._failed_warned_at >= _WARN_EVERY:
            log.warning(
                "callbacks: the watch did not take a batch of hints (%s); %d so far; "
                "polling covers them",
                error,
                self.stats.failed,
            )
            self._failed_warned_at = now

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._refilled
        self._refilled = now
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.max_rate)

    def _warn(self) -> None:
        """One line a minute at most: a flood must not become a flood of log lines."""
        now = self._clock()
        if now - self._warned_at >= _WARN_EVERY:
            stats = self.stats
            log.warning(
                "callbacks: so far %d callbacks refused over the rate or buffer limit, %d hints "
                "dropped, %d not taken by the watch; polling covers them",
                stats.throttled,
                stats.over_rate + stats.over_buffer,
                stats.failed,
            )
            self._warned_at = now


def _readable(content_type: str | None, body: bytes) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return (
        kind in ("", "application/x-www-form-urlencoded", "text/plain")
        or kind.endswith("json")
        or body.lstrip()[:1] in (b"{", b"[")
    )


def _reports(
    query: str | bytes, body: bytes, content_type: str | None
) -> list[Mapping[str, object]] | None:
    """The callback's reports, each a mapping of fields (query fields under every one);
    None when the body cannot be read. `[{}]` means a callback with no field at all."""
    fields = _form(query)
    if fields is None:
        return None
    if not body.strip():
        return [fields]
    if not _readable(content_type, body):
        return None
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind.endswith("json") or body.lstrip()[:1] in (b"{", b"["):
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if isinstance(payload, dict):
            return [{**fields, **payload}]
        if isinstance(payload, list):
            return [{**fields, **item} for item in payload if isinstance(item, dict)] or None
        return None
    form = _form(body)
    if not form:  # a body, but not one field in it: text that is not a form
        return None
    return [{**fields, **form}]


def _form(raw: str | bytes) -> dict[str, object] | None:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not text:
        return {}
    try:
        parsed = parse_qs(text, keep_blank_values=False, max_num_fields=_MAX_FIELDS)
    except ValueError:
        return None
    return {name: values[0] if len(values) == 1 else values for name, values in parsed.items()}


class _ScrubCallbackURLs(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        token = self._token
        if isinstance(record.msg, str) and token in record.msg:
            record.msg = _scrub(record.msg, token)
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and token in a for a in args):
            record.args = tuple(
                _scrub(a, token) if isinstance(a, str) and token in a else a for a in args
            )
        return True


def _scrub(text: str, token: str) -> str:
    """The token replaced, and the query string of the URL that held it dropped."""
    head, _, tail = text.partition(token)
    query_end = min((i for i in (tail.find(" "), tail.find('"')) if i >= 0), default=len(tail))
    rest = tail[:query_end].split("?", 1)[0] + tail[query_end:]
    return head + "<token>" + (_scrub(rest, token) if token in rest else rest)
