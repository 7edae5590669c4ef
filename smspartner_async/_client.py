"""`SMSPartnerClient`: options, lifecycle, and the public methods.

One client per process (or per event loop), not per request: it owns a
connection pool sized to its concurrency. It is usable directly or as an async
context manager, and it closes only the `httpx.AsyncClient` it created; an
injected one belongs to the caller.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Sized
from contextlib import aclosing
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from ._aiohttp import AiohttpTransport
from ._batching import (
    MAX_BATCH,
    ChunkFetcher,
    Key,
    Pair,
    Pairs,
    Progress,
    chunks_of,
    expand,
    report_progress,
    run_windowed,
    stream_chunks,
    validate_all,
    with_index,
)
from ._convert import make_converter
from ._decode import ResponseFormat
from ._endpoints import BULK_STATUS, MESSAGE_STATUS, STATUS_BY_TAG
from ._errors import AuthenticationError, ClientStateError, InvalidInputError, ResponseFormatError
from ._models import BulkStatus, MessageStatus, MultiStatusResult, RecipientStatus, TagPage
from ._paging import iter_tag_pages
from ._phone import DEFAULT_REGION, REGIONS, normalize_message_id, normalize_phone
from ._redact import REDACTED, SecretStr, install_log_filter
from ._retry import RetryPolicy
from ._transport import ClientStats, RequestEvent, Sender
from ._version import __version__

__all__ = ["DEFAULT_BASE_URL", "SMSPartnerClient"]

DEFAULT_BASE_URL = "https://api.smspartner.fr/v1"
ENV_API_KEY = "SMSPARTNER_API_KEY"
_VALIDATION_SLICE = 65_536
T = TypeVar("T")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class SMSPartnerClient:
    """Async client for the SMS Partner status API.

    `api_key` falls back to the `SMSPARTNER_API_KEY` environment variable.
    `max_concurrency` bounds the requests in flight for the whole client (and
    sizes its pool); `deadline` bounds one API call across all its retries;
    `timeout` bounds each network operation.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        http_client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout = 30.0,
        response_format: ResponseFormat = "json",
        max_concurrency: int = 8,
        batch_size: int = MAX_BATCH,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = 120.0,
        max_requests_per_second: float | None = None,
        default_region: str = DEFAULT_REGION,
        fail_fast: bool = False,
        max_pages: int = 10_000,
        on_request: Callable[[RequestEvent], None] | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        if key is not None and not isinstance(key, str):
            raise TypeError(f"api_key must be a string, not {type(key).__name__}")
        if not isinstance(base_url, str):
            raise TypeError(f"base_url must be a string, not {type(base_url).__name__}")
        if not key or not key.strip():
            raise AuthenticationError(
                1, f"no API key: pass api_key= or set the {ENV_API_KEY} environment variable"
            )
        if response_format not in ("json", "xml"):
            raise ValueError(f"response_format must be 'json' or 'xml', not {response_format!r}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}, not {batch_size!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency!r}")
        if max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, not {max_pages!r}")
        if default_region not in REGIONS:
            raise ValueError(f"unknown default_region {default_region!r}; known: {sorted(REGIONS)}")
        if deadline is not None and not deadline > 0:
            raise ValueError(f"deadline must be positive or None, not {deadline!r}")
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = RetryPolicy(
                max_retries=max_retries,
                initial_backoff=policy.initial_backoff,
                max_backoff=policy.max_backoff,
                max_retry_after=policy.max_retry_after,
                jitter=policy.jitter,
            )
        install_log_filter()
        self._api_key = SecretStr(key.strip())
        self._base_url = base_url.rstrip("/")
        self._format: ResponseFormat = response_format
        self._max_concurrency = max_concurrency
        # Twice as many chunk tasks as request slots: while one answer is parsed, the next
        # chunk's request is already waiting for the slot, and goes out first.
        self._window = 2 * max_concurrency
        self._batch_size = batch_size
        self._region = default_region
        self._fail_fast = fail_fast
        self._max_pages = max_pages
        self._converter = make_converter(default_region)
        self._owns_http = http_client is None
        # Our own pool is driven directly; a caller's client goes through httpx's pipeline.
        direct: AiohttpTransport | None = None
        if http_client is None:
            limits = httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            )
            direct = AiohttpTransport(limits=limits)
            http_client = httpx.AsyncClient(
                transport=direct,
                timeout=timeout,
                headers={"User-Agent": f"smspartner-async/{__version__}"},
            )
        self._http = http_client
        self._sender = Sender(
            http_client,
            base_url=self._base_url,
            api_key=self._api_key,
            response_format=response_format,
            retry=policy,
            max_concurrency=max_concurrency,
            deadline=deadline,
            max_requests_per_second=max_requests_per_second,
            on_request=on_request,
            direct=direct,
        )
        self._state = _State.UNOPENED
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, api_key={REDACTED!r}, "
            f"response_format={self._format!r}, max_concurrency={self._max_concurrency}, "
            f"state={self._state.value!r})"
        )

    @property
    def stats(self) -> ClientStats:
        """Requests, retries, failures and 429s so far, for metrics exporters."""
        return self._sender.stats

    @property
    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_usable()
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pool if this client created it; later calls raise `ClientStateError`."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._owns_http:
            await self._http.aclose()

    def _check_usable(self) -> None:
        if self._state is _State.CLOSED:
            raise ClientStateError("Cannot send a request, as the client has been closed.")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise ClientStateError(
                "this client is bound to the event loop it was first used in; create one "
                "client per event loop (e.g. inside the coroutine given to asyncio.run)"
            )
        self._state = _State.OPENED

    # -- one message ---------------------------------------------------------

    async def message_status(self, phone_number: str, message_id: int | str) -> MessageStatus:
        """The status of one message sent to one number."""
        phone = normalize_phone(phone_number, self._region)
        mid = normalize_message_id(message_id)
        self._check_usable()

        def parse(record: dict[str, Any]) -> MessageStatus:
            record["number"] = phone  # the API may echo it in national format
            record.setdefault("messageId", mid)
            return self._structure(record, MessageStatus)

        return await self._sender.call(
            MESSAGE_STATUS, parse, params={"phoneNumber": phone, "messageId": str(mid)}, pairs=1
        )

    async def bulk_status(self, message_id: int | str) -> BulkStatus:
        """Every recipient of one send."""
        mid = normalize_message_id(message_id)
        self._check_usable()

        def parse(record: dict[str, Any]) -> BulkStatus:
            record.setdefault("message_id", mid)
            return self._structure(record, BulkStatus)

        return await self._sender.call(BULK_STATUS, parse, params={"messageId": str(mid)})

    # -- many messages ---------------------------------------------------------

    async def multi_status(
        self,
        pairs: Pairs,
        *,
        fail_fast: bool | None = None,
        progress: Progress | None = None,
    ) -> list[MultiStatusResult]:
        """One result per `(phone_number, message_id)` pair, in input order.

        Every pair is validated before anything is sent. Any number of pairs:
        they go out in calls of `batch_size`, `max_concurrency` at a time.
        An empty input gives an empty list, without a request. Items the API
        could not answer, or whose call failed for good, come back with
        `ok=False`; only a bad key or an unauthorised IP raise (and `fail_fast`
        makes any failed call raise).
        """
        self._check_usable()
        source: object = pairs  # checked at run time too: callers are not all type-checked
        if isinstance(source, AsyncIterable):
            items: list[Pair] = [pair async for pair in source]
        elif isinstance(source, Iterable) and not isinstance(source, str | bytes):
            items = source if isinstance(source, list) else list(source)
        else:
            raise InvalidInputError("pairs must be an iterable of (phone, id) pairs", value=pairs)
        keys: list[Key] = []
        for start in range(0, len(items), _VALIDATION_SLICE):
            if start:
                await asyncio.sleep(0)  # a million pairs: let the loop breathe between slices
            keys += validate_all(items[start : start + _VALIDATION_SLICE], self._region, start)
        total = len(keys)
        chunks, duplicates = chunks_of(keys, self._batch_size)
        del keys
        results: list[MultiStatusResult | None] = [None] * total
        done = 0
        fetch = self._fetcher(fail_fast)
        window = run_windowed(chunks, fetch.with_chunk, self._window, ordered=False)
        async with aclosing(window) as finished:
            async for chunk, chunk_results in finished:
                positions = chunk.positions
                if isinstance(positions, range):
                    results[positions.start : positions.stop] = chunk_results
                else:
                    for result in chunk_results:
                        results[result.index] = result
                done += chunk.size
                report_progress(progress, done, total)
        for index, first in duplicates.items():
            results[index] = with_index(results[first], index)  # type: ignore[arg-type]
        if duplicates:
            report_progress(progress, total, total)
        return results  # type: ignore[return-value]  # every slot is filled above

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
        Pairs are validated as they are read; duplicates are folded within
        each call only. Close it early with `contextlib.aclosing` to cancel the
        calls still in flight at once.
        """
        self._check_usable()
        source: object = pairs
        if not isinstance(source, Iterable | AsyncIterable) or isinstance(source, str | bytes):
            raise InvalidInputError("pairs must be an iterable of (phone, id) pairs", value=pairs)
        total = len(pairs) if isinstance(pairs, Sized) else None
        fetch = self._fetcher(fail_fast)
        done = 0
        chunks = stream_chunks(pairs, self._batch_size, self._region)
        window = run_windowed(chunks, fetch.with_chunk, self._window, ordered=False)
        async with aclosing(window) as finished:
            async for chunk, chunk_results in finished:
                done += chunk.size
                report_progress(progress, done, total)
                for result in expand(chunk, chunk_results):
                    yield result

    # -- tags ------------------------------------------------------------------

    async def iter_tag_pages(self, tag: str) -> AsyncGenerator[TagPage, None]:
        """Pages of a tag, in order (pages after the first fetched concurrently)."""
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidInputError("tag must be a non-empty string", value=tag)
        self._check_usable()

        async def fetch(page: int) -> TagPage:
            return await self._sender.call(
                STATUS_BY_TAG,
                lambda record: self._structure(record, TagPage),
                params={"tag": tag, "page": str(page)},
            )

        pages = iter_tag_pages(
            fetch, max_concurrency=self._max_concurrency, max_pages=self._max_pages
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

    def _fetcher(self, fail_fast: bool | None) -> ChunkFetcher:
        return ChunkFetcher(
            self._sender,
            self._converter,
            self._region,
            fail_fast=self._fail_fast if fail_fast is None else fail_fast,
        )

    def _structure(self, record: dict[str, Any], cls: type[T]) -> T:
        try:
            return self._converter.structure(record, cls)
        except (ValueError, TypeError) as exc:
            raise ResponseFormatError(f"the answer does not fit {cls.__name__}: {exc}") from None
