"""`SMSPartnerClient`: lifecycle, options, and thin public methods.

One client per process (or per event loop), not per request: it owns a
connection pool sized to its concurrency. It is usable directly or as an async
context manager, and it closes only the `httpx.AsyncClient` it created; an
injected one belongs to the caller.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from functools import partial
from types import TracebackType
from typing import Self, TypeVar

import attrs
import httpx

from . import _batch, _structure
from ._batch import Progress
from ._call import Caller, Shared
from ._errors import ClientStateError, InvalidInputError
from ._events import ClientStats, RequestEvent
from ._flow import FlowBackend, FlowControl, LocalFlow
from ._models import BulkStatus, MessageStatus, MultiStatusResult, RecipientStatus, TagPage
from ._options import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RESPONSE_BYTES,
    ENV_API_KEY,
    ENV_BASE_URL,
    UNSET,
    ClientOptions,
    api_key_from,
    changes_from,
    options_from,
)
from ._paging import iter_tag_pages
from ._redact import REDACTED, SecretStr, install_log_filter
from ._retry import RetryPolicy
from ._transports import TransportName, closed_client_error, make_http_client
from ._validate import DEFAULT_REGION, Pairs, normalize_message_id, normalize_phone
from ._wire.endpoints import BULK_STATUS, MESSAGE_STATUS, STATUS_BY_TAG, ResponseFormat
from .watch import (
    Clock,
    OnRound,
    Schedule,
    SentAt,
    Sleep,
    StatusChange,
    WatchStore,
    watch,
)

__all__ = ["DEFAULT_BASE_URL", "ENV_API_KEY", "ENV_BASE_URL", "SMSPartnerClient"]

_DEFAULT_TIMEOUT = 30.0
T = TypeVar("T")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


@attrs.define
class _Lifecycle:
    """Open/closed and the event loop, shared by a client and its `with_options` views."""

    owns_http: bool
    owns_backend: bool = False
    state: _State = _State.UNOPENED
    loop: asyncio.AbstractEventLoop | None = None


def check_no_transport(options: ClientOptions, pool: str) -> None:
    """`transport` names the pool the client builds; given `pool`, it builds none, and an
    aiohttp transport asked for beside it would be ignored without a word."""
    if options.transport != "httpx":
        raise InvalidInputError(
            f"transport names the pool the client builds, and with {pool} it builds none: "
            "leave transport out",
            value=options.transport,
        )


class SMSPartnerClient:
    """Async client for the SMS Partner status API.

    Create one per process and close it when the process stops (`async with`,
    or `await client.aclose()`).

    Args:
        api_key: The account's API key; falls back to `$SMSPARTNER_API_KEY`. None at
            all raises `AuthenticationError` (code 1) here, before any request.
        http_client: Your own `httpx.AsyncClient` (proxies, certificates, event
            hooks, a mock transport); used as is and never closed by the library.
            Size its pool to at least `max_concurrency`.
        base_url: The API's root; falls back to `$SMSPARTNER_BASE_URL`, then
            `https://api.smspartner.fr/v1`. Point it at the sandbox to test.
        transport: The pool the client builds when it is not given one: `"httpx"`
            (httpx's own, which respx and pytest-httpx intercept) or `"aiohttp"`
            (extra `aiohttp`; faster for bulk jobs and high concurrency).
        timeout: Seconds (or an `httpx.Timeout`) for each network operation; the
            client's own pool defaults to 30 s, a pool you give keeps its own.
        response_format: `"json"` or `"xml"` (`_format=xml`); the same models either
            way.
        max_concurrency: Requests in flight for the whole client, every thread of a
            sync client included (the pool is sized to match).
        batch_size: Pairs per multi-status call, at most 500 (the API's limit).
        max_retries: Attempts after the first one, overriding `retry`'s own
            `max_retries` (0 sends each request once); None keeps `retry`'s.
        retry: When and how long to wait before trying again (`RetryPolicy`); None
            for the default policy.
        deadline: Seconds for one API call from its first send, every retry included
            (`APITimeoutError`); None for no deadline.
        max_requests_per_second: A rate limit for the whole client (for every
            process sharing `shared_limits`); None for none.
        shared_limits: Share the rate limit and the 429 pause with every process
            using the same key: a `redis://` URL (extra `redis`), or a `FlowBackend`
            you built (it has its own rate: `max_requests_per_second` beside it is
            refused). None keeps them in this process.
        default_region: The region national phone numbers are read in (`"FR"`).
        fail_fast: Raise the first failed call of a batch instead of returning its
            pairs as failed results.
        max_pages: The most tag pages `iter_tag_pages` asks for.
        max_response_bytes: The largest answer accepted, raw or inflated
            (`ResponseTooLargeError` beyond); message-status and multi-status
            answers have lower bounds of their own.
        on_request: Called with a `RequestEvent` after each HTTP attempt (metrics).
            It runs on the client's event loop (a sync client's background thread);
            one that raises is logged and ignored.

    Raises:
        AuthenticationError: No API key at all.
        InvalidInputError: An option out of range (a `ValueError`), an `http_client`
            that is not an `httpx.AsyncClient`, or `transport="aiohttp"` beside one.
        ImportError: `transport="aiohttp"` without the `aiohttp` extra.
    """

    _shared: Shared
    _caller: Caller
    _life: _Lifecycle

    def __init__(
        self,
        api_key: str | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        base_url: str | None = None,
        transport: TransportName = "httpx",
        timeout: float | httpx.Timeout | None = None,
        response_format: ResponseFormat = "json",
        max_concurrency: int = 8,
        batch_size: int = 500,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = 120.0,
        max_requests_per_second: float | None = None,
        shared_limits: str | FlowBackend | None = None,
        default_region: str = DEFAULT_REGION,
        fail_fast: bool = False,
        max_pages: int = 10_000,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        on_request: Callable[[RequestEvent], None] | None = None,
    ) -> None:
        # Every option is validated by its declaration (`_options`); the test of
        # signatures keeps this list equal to it.
        key, options = api_key_from(api_key), options_from(locals())
        if http_client is not None:
            if not isinstance(http_client, httpx.AsyncClient):
                raise InvalidInputError(
                    "http_client must be an httpx.AsyncClient", value=type(http_client).__name__
                )
            check_no_transport(options, "http_client")
        self._setup(key, options, http_client)

    def _setup(
        self, key: str, options: ClientOptions, http_client: httpx.AsyncClient | None
    ) -> None:
        """Build the client from validated options (the sync client calls this on its loop)."""
        backend = _flow_backend(options, key)
        flow = FlowControl(options.max_concurrency, backend)
        install_log_filter()
        owns_http = http_client is None
        if http_client is None:
            http_client = make_http_client(
                options.transport,
                max_concurrency=options.max_concurrency,
                timeout=_DEFAULT_TIMEOUT if options.timeout is None else options.timeout,
                base_url=options.base_url,
            )
        shared = Shared(http_client, flow, SecretStr(key), on_request=options.on_request)
        self._shared = shared
        self._caller = Caller(shared, options)
        owns_backend = not isinstance(options.shared_limits, FlowBackend)
        self._life = _Lifecycle(owns_http, owns_backend=owns_backend)

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = UNSET,
        response_format: ResponseFormat = UNSET,
        batch_size: int = UNSET,
        max_retries: int | None = UNSET,
        retry: RetryPolicy | None = UNSET,
        deadline: float | None = UNSET,
        default_region: str = UNSET,
        fail_fast: bool = UNSET,
        max_pages: int = UNSET,
        max_response_bytes: int = UNSET,
    ) -> Self:
        """A view of this client with other per-call options; those not given keep their value.

        It shares the pool, the concurrency slots, the 429 pause, the rate limit,
        the stats and the open/closed state: it costs nothing to make, and
        closing either closes both.

            fast = client.with_options(timeout=5, max_retries=0)

        Args:
            timeout: Seconds (or an `httpx.Timeout`) for each network operation; the
                client's own pool defaults to 30 s, a pool you give keeps its own.
            response_format: `"json"` or `"xml"` (`_format=xml`); the same models either
                way.
            batch_size: Pairs per multi-status call, at most 500 (the API's limit).
            max_retries: Attempts after the first one, overriding `retry`'s own
                `max_retries` (0 sends each request once); None keeps `retry`'s.
            retry: When and how long to wait before trying again (`RetryPolicy`); None
                for the default policy.
            deadline: Seconds for one API call from its first send, every retry included
                (`APITimeoutError`); None for no deadline.
            default_region: The region national phone numbers are read in (`"FR"`).
            fail_fast: Raise the first failed call of a batch instead of returning its
                pairs as failed results.
            max_pages: The most tag pages `iter_tag_pages` asks for.
            max_response_bytes: The largest answer accepted, raw or inflated
                (`ResponseTooLargeError` beyond); message-status and multi-status
                answers have lower bounds of their own.
        """
        options = attrs.evolve(self._caller.options, **changes_from(locals()))
        view = object.__new__(type(self))
        view._shared = self._shared
        view._caller = Caller(self._shared, options)
        view._life = self._life
        return view

    def __repr__(self) -> str:
        options = self._caller.options
        return (
            f"{type(self).__name__}(base_url={options.base_url!r}, api_key={REDACTED!r}, "
            f"response_format={options.response_format!r}, "
            f"max_concurrency={self._shared.flow.max_concurrency}, "
            f"state={self._life.state.value!r})"
        )

    @property
    def stats(self) -> ClientStats:
        """Requests, retries, failures and 429s so far, for metrics exporters."""
        return self._shared.stats

    @property
    def is_closed(self) -> bool:
        return self._life.state is _State.CLOSED

    @property
    def batch_size(self) -> int:
        """Pairs per `multi_status` call (a watch sizes its pages from it)."""
        return self._caller.options.batch_size

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at most, shared by every view `with_options` makes."""
        return self._shared.flow.max_concurrency

    @property
    def default_region(self) -> str:
        """The region national phone numbers are read in (ISO 3166 code, e.g. "FR")."""
        return self._caller.options.default_region

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_usable()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pool if this client created it; later calls raise `ClientStateError`.

        Requests in flight on the client's own pool end at once, with `ClientStateError`
        or a connection error. After the event loop the client was used in has ended
        (`asyncio.run`), the pool has closed itself with its loop, and this only marks
        the client closed.

        Raises:
            ClientStateError: The pool's event loop is still running in another thread,
                or was closed without ending its tasks: close the client in that loop.
        """
        if self._life.state is _State.CLOSED:
            return
        self._life.state = _State.CLOSED
        if self._life.owns_backend:
            await self._shared.flow.backend.aclose()
        if self._life.owns_http:
            await self._shared.http.aclose()
            # On a closed pool the exchanges still running fail at once: let them end here.
            loop = asyncio.get_running_loop()
            running = [t for t in self._shared.exchanges if t.get_loop() is loop]
            if running:
                await asyncio.wait(running)

    def _check_usable(self) -> None:
        life = self._life
        if life.state is _State.CLOSED:
            raise closed_client_error()
        loop = asyncio.get_running_loop()
        if life.loop is None:
            life.loop = loop
        elif loop is not life.loop:
            raise ClientStateError(
                "this client is bound to the event loop it was first used in; create one "
                "client per event loop (e.g. inside the coroutine given to asyncio.run)"
            )
        life.state = _State.OPENED

    # -- one message ---------------------------------------------------------

    async def message_status(self, phone_number: str, message_id: int | str) -> MessageStatus:
        """The status of one message sent to one number.

        Raises:
            InvalidInputError: A malformed phone number or message id (nothing is sent).
            NotFoundError: No such message for this number (code 4).
            SMSPartnerError: Any other failure, after retries (see the exception tree).
        """
        region = self._caller.options.default_region
        phone = normalize_phone(phone_number, region)
        mid = normalize_message_id(message_id)
        self._check_usable()
        parse = partial(
            _structure.message_status, phone=phone, message_id=mid, default_region=region
        )
        return await self._caller.call(
            MESSAGE_STATUS, parse, params={"phoneNumber": phone, "messageId": str(mid)}, pairs=1
        )

    async def bulk_status(self, message_id: int | str) -> BulkStatus:
        """Every recipient of one send.

        Large sends make large answers: they are decoded off the event loop, and
        refused past `max_response_bytes`.
        """
        mid = normalize_message_id(message_id)
        self._check_usable()
        region = self._caller.options.default_region
        parse = partial(_structure.bulk_status, message_id=mid, default_region=region)
        return await self._caller.call(BULK_STATUS, parse, params={"messageId": str(mid)})

    # -- many messages ---------------------------------------------------------

    async def multi_status(
        self,
        pairs: Pairs,
        *,
        fail_fast: bool | None = None,
        progress: Progress | None = None,
    ) -> list[MultiStatusResult]:
        """One result per `(phone_number, message_id)` pair, in input order.

        A pair is a `(phone, id)` tuple or a mapping with `phone_number` (or
        `phoneNumber`) and `message_id` (or `messageId`) keys. Every pair is
        validated before anything is sent (`InvalidInputError` names the first
        bad one's index). Any number of pairs: they go out in calls of
        `batch_size`, `max_concurrency` at a time. An empty input gives an empty
        list, without a request.

        Items the API could not answer, or whose call failed for good, come
        back with `ok=False`. A bad key or an unauthorised IP raise at once;
        `fail_fast` makes any failed call raise; and when not one call got an
        answer (an outage), the first call's error is raised.
        """
        self._check_usable()
        return await _batch.collect(
            self._caller,
            pairs,
            fail_fast=self._fail_fast(fail_fast),
            progress=progress,
            window=self._window(),
        )

    async def iter_multi_status(
        self,
        pairs: Pairs,
        *,
        fail_fast: bool | None = None,
        progress: Progress | None = None,
    ) -> AsyncGenerator[MultiStatusResult, None]:
        """Results as their calls complete, each with its input `index`.

        Reads `pairs` (any iterable or async iterable) lazily, so memory stays
        bounded by `2 x max_concurrency x batch_size` whatever the input's length.
        Pairs are validated as they are read: a bad one raises once the pairs
        before it have their results; duplicates are folded within each call
        only. Close it early with `contextlib.aclosing` to cancel the calls
        still in flight at once. Failed calls give failed items as in
        `multi_status`; when not one call got an answer, the first call's error
        is raised once the stream has yielded them.
        """
        self._check_usable()
        results = _batch.stream(
            self._caller,
            pairs,
            fail_fast=self._fail_fast(fail_fast),
            progress=progress,
            window=self._window(),
        )
        async with aclosing(results) as stream:
            async for result in stream:
                yield result

    def watch(
        self,
        pairs: Pairs,
        *,
        sent_at: SentAt | Iterable[SentAt | None] | None = None,
        schedule: Schedule | None = None,
        store: WatchStore | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        on_round: OnRound | None = None,
    ) -> AsyncGenerator[StatusChange, None]:
        """Status changes of `pairs` until every one has settled (final status, the API's
        lasting answer, or 48 hours): `smspartner_async.watch.watch` on this client.
        Use `smspartner_async.watch.Watcher` for a service that keeps sending.

        Args:
            pairs: `(phone, message_id)` pairs or mappings, as for `multi_status`.
            sent_at: When the messages were sent: one time for all (epoch seconds or an
                aware datetime), one per pair, or None for now.
            schedule: When to ask and for how long (`Schedule()`).
            store: Where the state lives (`MemoryStore()`; `SQLiteStore` to resume).
            clock: Epoch seconds now (`time.time`).
            sleep: Waits that many seconds (`asyncio.sleep`); with `clock`, simulated time.
            on_round: Called with a `WatchRound` after each round (metrics).
        """
        return watch(
            self,
            pairs,
            sent_at=sent_at,
            schedule=schedule,
            store=store,
            clock=clock,
            sleep=sleep,
            on_round=on_round,
        )

    # -- tags ------------------------------------------------------------------

    async def iter_tag_pages(self, tag: str) -> AsyncGenerator[TagPage, None]:
        """Pages of a tag, in order (pages after the first fetched concurrently).

        Stops on an empty page or once the latest announced `total` is reached;
        a stop short of the total is logged as a warning and flagged on the last
        page (`TagPage.complete`).
        """
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidInputError("tag must be a non-empty string", value=tag)
        self._check_usable()

        parse = partial(_structure.tag_page, default_region=self._caller.options.default_region)

        async def fetch(page: int) -> TagPage:
            return await self._caller.call(
                STATUS_BY_TAG, parse, params={"tag": tag, "page": str(page)}
            )

        pages = iter_tag_pages(
            fetch,
            max_concurrency=self._shared.flow.max_concurrency,
            max_pages=self._caller.options.max_pages,
        )
        async with aclosing(pages) as stream:
            async for page in stream:
                yield page

    async def iter_status_by_tag(self, tag: str) -> AsyncGenerator[RecipientStatus, None]:
        """Every recipient status of a tag, over every page."""
        async with aclosing(self.iter_tag_pages(tag)) as pages:
            async for page in pages:
                for recipient in page.recipients:
                    yield recipient

    async def status_by_tag(self, tag: str) -> list[RecipientStatus]:
        """`iter_status_by_tag` as a list."""
        return [recipient async for recipient in self.iter_status_by_tag(tag)]

    # -- helpers -----------------------------------------------------------------

    def _fail_fast(self, fail_fast: bool | None) -> bool:
        return self._caller.options.fail_fast if fail_fast is None else fail_fast

    def _window(self) -> int:
        # Twice as many chunk tasks as request slots: while one answer is parsed, the next
        # chunk's request is already waiting for the slot, and goes out first.
        return 2 * self._shared.flow.max_concurrency


def _flow_backend(options: ClientOptions, key: str) -> FlowBackend:
    """The backend `shared_limits` names (validated with the options): the caller's, this
    process's, or Redis's."""
    shared, rate = options.shared_limits, options.max_requests_per_second
    if isinstance(shared, FlowBackend):
        return shared
    if shared is None:
        return LocalFlow(rate)
    try:
        from .contrib.redis import RedisFlow
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "shared_limits needs redis: pip install 'smspartner-async[redis]'"
        ) from exc
    # Processes share limits per key and API, named by a digest: the key never reaches Redis.
    scope = hashlib.sha256(f"{options.base_url}\0{key}".encode()).hexdigest()[:32]
    return RedisFlow.from_url(shared, scope=scope, max_requests_per_second=rate)
