"""`SMSPartnerSyncClient`: the async client for synchronous code, on one background loop.

Django views, Celery tasks and scripts call plain methods; each call runs the
async client's method on one event loop in one background thread, through an
anyio blocking portal (`anyio.from_thread.start_blocking_portal`), and waits for
its result. One portal per sync client, started once, not a loop per call: the
connection pool, the concurrency slots, the 429 pause and the rate limit live on
that loop and are shared by every thread that calls the client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Generator,
    Iterable,
)
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs
import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._batch import Progress
from ._client import SMSPartnerClient, check_no_transport
from ._errors import ClientStateError, InvalidInputError
from ._events import ClientStats, RequestEvent
from ._flow import FlowBackend
from ._models import BulkStatus, MessageStatus, MultiStatusResult, RecipientStatus, TagPage
from ._options import (
    DEFAULT_MAX_RESPONSE_BYTES,
    UNSET,
    ClientOptions,
    api_key_from,
    changes_from,
    options_from,
)
from ._retry import RetryPolicy
from ._transports import TransportName, closed_client_error
from ._validate import DEFAULT_REGION, Pairs
from ._wire.endpoints import ResponseFormat
from .watch import Clock, OnRound, Schedule, SentAt, Sleep, StatusChange, WatchStore

__all__ = ["SMSPartnerSyncClient"]

T = TypeVar("T")
_DONE: Any = object()  # what `_next` returns once an async generator is exhausted
_THREAD_NAME = "smspartner-sync"

log = logging.getLogger("smspartner_async")


@attrs.define(eq=False)
class _Core:
    """What a sync client and its `with_options` views share: the loop's thread and state."""

    portal: BlockingPortal
    portal_cm: AbstractContextManager[BlockingPortal]
    thread: threading.Thread
    pid: int
    owned_http: httpx.AsyncClient | None
    # Reentrant: a generator finalized by the garbage collector while this thread holds
    # the lock closes its stream through `_run`, which takes it again.
    lock: threading.RLock = attrs.field(factory=threading.RLock)
    #: The calling threads' side of the calls in flight (under `lock`).
    in_flight: set[concurrent.futures.Future[Any]] = attrs.field(factory=set)
    #: The loop's side of the same calls (touched on the loop only).
    tasks: set[asyncio.Task[Any]] = attrs.field(factory=set)
    #: The async generators behind the sync iterators still open (under `lock`).
    streams: set[AsyncGenerator[Any, None]] = attrs.field(factory=set)
    closed: bool = False

    @property
    def forked(self) -> bool:
        return os.getpid() != self.pid

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    async def tracked(self, func: Callable[..., Awaitable[T]], *args: object) -> T:
        """`func(*args)` on the loop, known to `shut` until it ends."""
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            return await func(*args)
        finally:
            self.tasks.discard(task)

    async def shut(
        self, client: SMSPartnerClient, streams: list[AsyncGenerator[Any, None]]
    ) -> None:
        """Close everything on the loop, in order, before the loop itself ends.

        The calls in flight were cancelled by `close()`; they are awaited first,
        so that no stream is still running when it is closed. The streams are
        closed here, each from the outside in, rather than by the loop's
        shutdown, which closes every async generator at once, nested ones
        included, and trips over them.
        """
        current = asyncio.current_task()
        running = [task for task in self.tasks if task is not current]
        if running:
            await asyncio.wait(running)
        for stream in streams:
            try:
                await stream.aclose()
            except Exception as exc:
                log.warning("closing a result stream raised %s; ignored", type(exc).__name__)
        try:
            await client.aclose()
        finally:
            if self.owned_http is not None:
                await self.owned_http.aclose()


class SMSPartnerSyncClient:
    """Synchronous client for the SMS Partner status API, for Django, Celery and scripts.

    The same methods as `SMSPartnerClient`, with the same arguments, results and
    exceptions, without `await`. It starts one background thread running one event
    loop (an anyio blocking portal), creates an `SMSPartnerClient` on that loop,
    and runs every call there; the calling thread waits for the result. An
    exception raised on the loop reaches the caller as itself.

        with SMSPartnerSyncClient() as client:
            results = client.multi_status(pairs)

    Threads: one client serves any number of threads at once (Django and Celery
    worker threads); their calls share the loop, the pool and the
    `max_concurrency` slots. An iterator from `iter_multi_status`,
    `iter_tag_pages` or `iter_status_by_tag` belongs to one thread at a time.

    Limits:

    - One background thread and one event loop per client: create one per
      process (at start-up, or lazily behind a lock), not one per request.
    - Close it (`close()` or `with`) so the thread and the pool stop; the thread
      is a daemon, so a forgotten client does not keep the process alive, but
      its connections are not closed cleanly.
    - Not for async code: calling its methods while an event loop runs in the
      calling thread (an async view, a coroutine, a hook running on the client's
      own loop) raises `ClientStateError` instead of blocking or deadlocking
      that loop; use `SMSPartnerClient` there. Creating and closing it is allowed
      anywhere but its own loop (they block only briefly), e.g. in an ASGI
      lifespan for sync views served from a thread pool.
    - Fork: the child of a fork has no copy of the background thread. A client
      created before a fork (Celery's prefork pool, gunicorn `--preload`) raises
      `ClientStateError` in the child instead of hanging; create it after the
      fork (Celery's `worker_process_init`, gunicorn's `post_fork`).
    - `progress` and `on_request` run on the background thread; the input of
      `iter_multi_status` is read there too, lazily (a generator must not use
      thread-bound resources such as Django's database connections; pass a list).
    - Interrupting a waiting thread (Ctrl-C, Celery's soft time limit) cancels
      its call on the loop.

    Args:
        api_key: The account's API key; falls back to `$SMSPARTNER_API_KEY`. None at
            all raises `AuthenticationError` (code 1) here, before any request.
        http_client_factory: Called once, with no arguments, on the background loop,
            to make the `httpx.AsyncClient` every request goes through (a mock
            transport, the sandbox, proxies, certificates). It stands in for
            `SMSPartnerClient`'s `http_client`: an async client must be made on the
            loop that uses it, and a sync caller has none. The client it returns
            belongs to this sync client and is closed by `close()`. Size its pool to
            at least `max_concurrency`. None builds the pool `transport` names.
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
        InvalidInputError: An option out of range (a `ValueError`), a factory that
            is not callable or did not return an `httpx.AsyncClient`, or
            `transport="aiohttp"` beside a factory.
        ImportError: `transport="aiohttp"` without the `aiohttp` extra.
    """

    _core: _Core
    _client: SMSPartnerClient

    def __init__(
        self,
        api_key: str | None = None,
        *,
        http_client_factory: Callable[[], httpx.AsyncClient] | None = None,
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
        # Validated here, in the calling thread, before a thread is started; the
        # test of signatures keeps this list equal to the declaration (`_options`).
        key, options = api_key_from(api_key), options_from(locals())
        if http_client_factory is not None:
            if not callable(http_client_factory):
                raise InvalidInputError(
                    "http_client_factory must be a callable making an httpx.AsyncClient",
                    value=type(http_client_factory).__name__,
                )
            check_no_transport(options, "http_client_factory")
        portal_cm = start_blocking_portal(name=_THREAD_NAME)
        portal = portal_cm.__enter__()
        try:
            # Made on the loop, so that it binds to it (and so that an aiohttp pool,
            # which wants a running loop, can be built).
            client, owned_http = portal.call(_open, key, options, http_client_factory)
            thread = portal.call(threading.current_thread)
        except BaseException:
            portal_cm.__exit__(None, None, None)  # stop the loop and join its thread
            raise
        self._core = _Core(portal, portal_cm, thread, os.getpid(), owned_http)
        self._client = client

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

        It shares the background thread, the pool, the concurrency slots, the 429
        pause, the rate limit, the stats and the open/closed state: it costs
        nothing to make, starts no thread, and closing either closes both.

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
        view = object.__new__(type(self))
        view._core = self._core
        view._client = self._client.with_options(**changes_from(locals()))
        return view

    def __repr__(self) -> str:
        inner = repr(self._client)  # base_url, the key redacted, format, concurrency, state
        return type(self).__name__ + inner[inner.index("(") :]

    @property
    def stats(self) -> ClientStats:
        """Requests, retries, failures and 429s so far, for metrics exporters.

        The async client's live counters, updated on the background thread.
        """
        return self._client.stats

    @property
    def is_closed(self) -> bool:
        """Whether `close()` was called, or the process was forked since the client was made."""
        return self._core.closed or self._core.forked

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> Self:
        self._check_usable("__enter__", loop_check=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pool and stop the background thread; later calls raise `ClientStateError`.

        Calls still in flight in other threads are cancelled, and raise
        `ClientStateError` there. Closing twice is a no-op. It may be called
        from async code (it blocks only briefly), but not from the client's own
        loop (a hook): that raises `ClientStateError`.
        """
        core = self._core
        if core.on_loop_thread():
            raise ClientStateError(
                "a sync client cannot be closed from its own event loop (in a progress or "
                "on_request hook)"
            )
        with core.lock:
            if core.closed:
                return
            core.closed = True
            pending = list(core.in_flight)
            streams = list(core.streams)
        if core.forked:
            return  # the loop's thread was not forked with us: nothing to stop here
        for future in pending:
            future.cancel()  # their threads wake up now, with ClientStateError
        try:
            core.portal.call(core.shut, self._client, streams)
        finally:
            core.portal_cm.__exit__(None, None, None)  # stop the loop and join its thread

    # -- one message ---------------------------------------------------------

    def message_status(self, phone_number: str, message_id: int | str) -> MessageStatus:
        """The status of one message sent to one number.

        Args:
            phone_number: E.164 (`+33612345678`) or national (read in `default_region`).
            message_id: The id the API gave the send (an int or a digit string).

        Raises:
            InvalidInputError: A malformed phone number or message id (nothing is sent).
            NotFoundError: No such message for this number (code 4).
            ClientStateError: Closed, forked, or called from async code.
            SMSPartnerError: Any other failure, after retries (see the exception tree).
        """
        return self._run("message_status", self._client.message_status, phone_number, message_id)

    def bulk_status(self, message_id: int | str) -> BulkStatus:
        """Every recipient of one send.

        Args:
            message_id: The id the API gave the send (an int or a digit string).
        """
        return self._run("bulk_status", self._client.bulk_status, message_id)

    # -- many messages ---------------------------------------------------------

    def multi_status(
        self,
        pairs: Pairs,
        *,
        fail_fast: bool | None = None,
        progress: Progress | None = None,
    ) -> list[MultiStatusResult]:
        """One result per `(phone_number, message_id)` pair, in input order.

        As `SMSPartnerClient.multi_status`. `pairs` is read into a list in the
        calling thread first (so a Django queryset is evaluated on its own
        thread's database connection).

        Args:
            pairs: `(phone, id)` tuples or mappings with `phone_number` and
                `message_id` keys; any number of them.
            fail_fast: Raise the first failed call instead of returning its
                pairs as failed results; None keeps the client's setting.
            progress: Called with `(pairs done, total)` after each call, on the
                background thread.
        """
        self._check_usable("multi_status")  # before reading the input
        if not isinstance(pairs, list | str | bytes | AsyncIterable) and _is_iterable(pairs):
            pairs = list(pairs)

        def start() -> Awaitable[list[MultiStatusResult]]:
            return self._client.multi_status(pairs, fail_fast=fail_fast, progress=progress)

        return self._run("multi_status", start)

    def iter_multi_status(
        self,
        pairs: Pairs,
        *,
        fail_fast: bool | None = None,
        progress: Progress | None = None,
    ) -> Generator[MultiStatusResult, None, None]:
        """Results as their calls complete, each with its input `index`.

        As `SMSPartnerClient.iter_multi_status`: memory stays bounded whatever
        the input's length. Closing the iterator early cancels the calls still
        in flight before it returns: `close()` or `contextlib.closing`, or in
        CPython as soon as nothing refers to it (a `break` out of a `for` over
        the call itself).

        Args:
            pairs: `(phone, id)` tuples or mappings, read lazily on the
                background thread (a generator must not use thread-bound
                resources there, such as Django's database connections).
            fail_fast: Raise the first failed call instead of yielding its
                pairs as failed results; None keeps the client's setting.
            progress: Called with `(pairs done, total or None)` after each
                call, on the background thread.
        """
        return self._iterate(
            "iter_multi_status",
            lambda: self._client.iter_multi_status(pairs, fail_fast=fail_fast, progress=progress),
        )

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
    ) -> Generator[StatusChange, None, None]:
        """Status changes of `pairs` until every one has settled (as `SMSPartnerClient.watch`,
        which documents the arguments).

        For a script or a task that follows a send to its end. The watch runs on
        the background loop: `sleep` and `clock`, if given, run there too (a
        coroutine function for `sleep`). Closing the iterator early stops the
        watch; with a durable `store`, the same call again goes on from there.
        """
        return self._iterate(
            "watch",
            lambda: self._client.watch(
                pairs,
                sent_at=sent_at,
                schedule=schedule,
                store=store,
                clock=clock,
                sleep=sleep,
                on_round=on_round,
            ),
        )

    # -- tags ------------------------------------------------------------------

    def iter_tag_pages(self, tag: str) -> Generator[TagPage, None, None]:
        """Pages of a tag, in order (as `SMSPartnerClient.iter_tag_pages`).

        Closing the iterator early cancels the page requests still in flight.

        Args:
            tag: The tag given to the sends.
        """
        return self._iterate("iter_tag_pages", lambda: self._client.iter_tag_pages(tag))

    def iter_status_by_tag(self, tag: str) -> Generator[RecipientStatus, None, None]:
        """Every recipient status of a tag, over every page, in page order.

        Args:
            tag: The tag given to the sends.
        """
        return self._iterate("iter_status_by_tag", lambda: self._client.iter_status_by_tag(tag))

    def status_by_tag(self, tag: str) -> list[RecipientStatus]:
        """`iter_status_by_tag` as a list.

        Args:
            tag: The tag given to the sends.
        """
        return self._run("status_by_tag", self._client.status_by_tag, tag)

    # -- the bridge --------------------------------------------------------------

    def _check_usable(self, method: str, *, loop_check: bool = True) -> None:
        core = self._core
        if core.forked:
            raise ClientStateError(
                "this SMSPartnerSyncClient was created before the process forked, and its "
                "event loop's thread did not survive the fork; create the client in the "
                "child (Celery: worker_process_init, gunicorn: post_fork)"
            )
        if core.closed:
            raise closed_client_error()
        if not loop_check:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise ClientStateError(
            f"SMSPartnerSyncClient.{method}() was called with an event loop running in this "
            "thread: it would block that loop (or deadlock its own); in async code use "
            "SMSPartnerClient and await its methods"
        )

    def _run(self, method: str, func: Callable[..., Awaitable[T]], *args: object) -> T:
        """Run `func(*args)` on the loop and wait for it; interrupting the wait cancels it."""
        core = self._core
        self._check_usable(method)
        with core.lock:  # so that `close()` sees every call it must cancel
            if core.closed:
                raise closed_client_error()
            future: concurrent.futures.Future[T] = core.portal.start_task_soon(
                core.tracked, func, *args
            )
            core.in_flight.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if core.closed:
                raise ClientStateError(
                    f"the client was closed while {method}() was in flight"
                ) from None
            raise
        except BaseException:
            future.cancel()  # KeyboardInterrupt, a soft time limit: stop the call on the loop
            raise
        finally:
            with core.lock:
                core.in_flight.discard(future)

    def _iterate(
        self, method: str, start: Callable[[], AsyncGenerator[T, None]]
    ) -> Generator[T, None, None]:
        """A plain generator pulling from the async generator `start()` through the portal."""
        stream = start()  # runs nothing: the async generator's body starts on the loop
        with self._core.lock:
            self._core.streams.add(stream)
        try:
            while True:
                item = self._run(method, _next, stream)
                if item is _DONE:
                    return
                yield item
        finally:
            try:
                self._close_stream(stream)
            finally:
                with self._core.lock:
                    self._core.streams.discard(stream)

    def _close_stream(self, stream: AsyncGenerator[Any, None]) -> None:
        """Close an async generator on the loop, cancelling the calls it has in flight."""
        core = self._core
        if core.closed or core.forked:
            return  # closing the loop closed its generators
        if core.on_loop_thread():
            return  # collected on the loop itself: asyncio's finalizer hook closes it
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # dropped in async code: do not wait, let the loop close it
            core.portal.start_task_soon(stream.aclose)
            return
        with contextlib.suppress(ClientStateError):  # closed meanwhile: the loop closed it
            self._run("close", stream.aclose)


async def _open(
    key: str, options: ClientOptions, factory: Callable[[], httpx.AsyncClient] | None
) -> tuple[SMSPartnerClient, httpx.AsyncClient | None]:
    """Make the async client on the portal's loop, bound to it; close the factory's on failure."""
    http = factory() if factory is not None else None
    try:
        if http is not None and not isinstance(http, httpx.AsyncClient):
            raise InvalidInputError(
                "http_client_factory must return an httpx.AsyncClient", value=type(http).__name__
            )
        client = object.__new__(SMSPartnerClient)
        client._setup(key, options, http)
        await client.__aenter__()  # binds it to this loop now
    except BaseException:
        if isinstance(http, httpx.AsyncClient):
            await http.aclose()
        raise
    return client, http


async def _next(stream: AsyncGenerator[T, None]) -> T:
    """The next item, or `_DONE` (a `StopAsyncIteration` must not cross the portal)."""
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return _DONE  # type: ignore[no-any-return]


def _is_iterable(value: object) -> bool:
    try:
        iter(value)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True
