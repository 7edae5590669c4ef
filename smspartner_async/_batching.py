"""Any number of (phone, id) pairs -> 500-pair calls, a bounded number in flight -> one result each.

- Tasks are created as slots free up, a bounded window of them (no thousand
  pending tasks, no pool timeouts), and the input is read only as fast.
- Results are matched to inputs by (E.164 phone, message id), not by position:
  nothing promises the API keeps the order or echoes numbers as sent.
- Duplicate pairs are queried once: across the whole input for
  `multi_status`, within each chunk for the streaming form (which must not
  remember every pair it has seen).
- Errors that no chunk can escape (bad key, IP not authorised) raise at once,
  cancel the rest and send none of the chunks queued for a slot. Any other
  chunk failure, after retries, becomes `ok=False` results for that chunk's
  pairs, unless `fail_fast` is asked.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from itertools import chain
from typing import Any, TypeAlias, TypeVar

import attrs
import orjson

from ._convert import Converter, compile_function, read_lines, structure_code
from ._decode import FlatRecords
from ._endpoints import LIST_KEY, MULTI_STATUS
from ._errors import (
    FATAL_ERRORS,
    ClientStateError,
    InvalidInputError,
    ResponseFormatError,
    SMSPartnerError,
)
from ._models import MultiStatusResult
from ._phone import MAX_MESSAGE_ID, is_e164, normalize_message_id, normalize_phone
from ._transport import Sender

__all__ = ["MAX_BATCH", "Pair", "Pairs", "Progress", "run_windowed"]

MAX_BATCH = 500
# Errors a batch raises instead of turning them into failed items.
_NO_FALLBACK: tuple[type[SMSPartnerError], ...] = (*FATAL_ERRORS, ClientStateError)
# Input pairs (repeats included) one streamed chunk may hold before it is sent.
_MAX_HELD = 4 * MAX_BATCH

Key: TypeAlias = tuple[str, int]
Pair: TypeAlias = tuple[str, int | str]
Pairs: TypeAlias = Iterable[Pair] | AsyncIterable[Pair]
#: Called after each chunk with (pairs done, total pairs or None when the input is lazy).
Progress: TypeAlias = Callable[[int, int | None], None]

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("smspartner_async")


async def run_windowed(
    items: AsyncIterator[T] | Iterable[T],
    worker: Callable[[T], Awaitable[R]],
    limit: int,
    *,
    ordered: bool,
) -> AsyncGenerator[R, None]:
    """`worker(item)` for each item, at most `limit` at once, yielded in input or completion order.

    The next item is read and its task created only when one of the `limit`
    places is free. On the first exception, or when the consumer stops early, every task still in
    flight is cancelled and awaited before this generator finishes.
    """
    # An async iterator is consumed (and closed) as it is; a plain iterable gets a wrapper.
    source = aiter(items) if isinstance(items, AsyncIterator) else _as_async(items)
    running: deque[asyncio.Task[R]] = deque()
    exhausted = False
    try:
        while True:
            while not exhausted and len(running) < limit:
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                else:
                    running.append(asyncio.ensure_future(worker(item)))
            if not running:
                return
            if ordered:
                task = running[0]
                await asyncio.wait((task,))
                running.popleft()
            else:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                # A task that cancelled itself (its batch failed) yields to the one that failed.
                finished = [t for t in done if not t.cancelled()] or list(done)
                task = finished[0]
                running.remove(task)
            yield task.result()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()


@attrs.define(slots=True)
class Chunk:
    """Up to `batch_size` distinct keys; `positions[i]` is an input index or a list of them.

    Without duplicates (the common case) `positions` is a `range`, and results
    go back into the output list as one slice.
    """

    keys: list[Key] = attrs.field(factory=list)
    positions: list[int | list[int]] | range = attrs.field(factory=list)
    size: int = 0  # input pairs, duplicates included


def validate_pair(pair: object, index: int, region: str) -> Key:
    phone: object
    message_id: object
    try:
        phone, message_id = pair  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidInputError(
            "each pair must be (phone_number, message_id)", value=pair, index=index
        ) from None
    return normalize_phone(phone, region, index=index), normalize_message_id(
        message_id, index=index
    )


def validate_all(pairs: Iterable[Pair], region: str, start: int = 0) -> list[Key]:
    """Every pair checked before anything is sent; the first bad one raises, naming its index.

    A pair that already is `(E.164 str, positive int)` is kept as it is (no new
    tuple, no new string): about 0.3 us per pair.
    """
    keys: list[Key] = []
    append = keys.append
    for index, pair in enumerate(pairs, start):
        if pair.__class__ is tuple and len(pair) == 2:
            phone, message_id = pair
            if (
                message_id.__class__ is int
                and 0 < message_id <= MAX_MESSAGE_ID
                and phone.__class__ is str
                and is_e164(phone)
            ):
                append(pair)  # type: ignore[arg-type]
                continue
        append(validate_pair(pair, index, region))
    return keys


def chunks_of(keys: list[Key], batch_size: int) -> tuple[list[Chunk], dict[int, int]]:
    """Chunks of distinct keys over the whole input, and {duplicate index: first index}."""
    if len(set(keys)) == len(keys):
        spans = (
            range(start, min(start + batch_size, len(keys)))
            for start in range(0, len(keys), batch_size)
        )
        return [Chunk(keys[span.start : span.stop], span, len(span)) for span in spans], {}
    first: dict[Key, int] = {}
    duplicates: dict[int, int] = {}
    chunks: list[Chunk] = []
    chunk = Chunk()
    for index, key in enumerate(keys):
        seen = first.setdefault(key, index)
        if seen != index:
            duplicates[index] = seen
            continue
        chunk.keys.append(key)
        chunk.positions.append(index)  # type: ignore[union-attr]
        if len(chunk.keys) == batch_size:
            chunks.append(chunk)
            chunk = Chunk()
    if chunk.keys:
        chunks.append(chunk)
    for chunk in chunks:
        chunk.size = len(chunk.keys)
    return chunks, duplicates


async def stream_chunks(pairs: Pairs, batch_size: int, region: str) -> AsyncGenerator[Chunk, None]:
    """Chunks read lazily from any iterable; duplicates folded within each chunk only."""
    chunk, lookup = Chunk(), dict[Key, int]()
    index = 0
    async for pair in _as_async(pairs):
        key = validate_pair(pair, index, region)
        slot = lookup.get(key)
        positions: list[int | list[int]] = chunk.positions  # type: ignore[assignment]
        if slot is None:
            lookup[key] = len(chunk.keys)
            chunk.keys.append(key)
            positions.append(index)
        else:
            held = positions[slot]
            if isinstance(held, list):
                held.append(index)
            else:
                positions[slot] = [held, index]
        chunk.size += 1
        index += 1
        # Repeats count too: memory stays bounded however few distinct pairs there are.
        if len(chunk.keys) == batch_size or chunk.size == _MAX_HELD:
            yield chunk
            chunk, lookup = Chunk(), dict[Key, int]()
    if chunk.keys:
        yield chunk


async def _as_async(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


_ITEM_COMMA = '{"phoneNumber":"%s","messageId":%d},'


def request_items(keys: list[Key]) -> orjson.Fragment:
    """The `SMSStatut_List` JSON, written as text.

    Keys are validated (E.164 is "+" and digits, ids are ints): nothing to
    escape. A dict per pair would live through the request, and 500 of them
    per chunk made the garbage collector's full passes twice as frequent.
    """
    if not keys:
        return orjson.Fragment("[]")
    # One format call for the whole list: a third faster than one per pair.
    return orjson.Fragment("[" + (_ITEM_COMMA * len(keys))[:-1] % tuple(chain(*keys)) + "]")


class ChunkFetcher:
    """One multi-status call for a chunk -> one result per key, in chunk order."""

    def __init__(
        self, sender: Sender, converter: Converter, region: str, *, fail_fast: bool
    ) -> None:
        self._sender = sender
        self._converter = converter
        self._region = region
        self._fail_fast = fail_fast
        #: A chunk raised: the batch is over, and chunks still waiting for a slot stay unsent.
        self._failed = False

    def _going(self) -> bool:
        return not self._failed

    async def __call__(self, chunk: Chunk) -> list[MultiStatusResult]:
        payload = {"SMSStatut_List": request_items(chunk.keys)}
        try:
            return await self._sender.call(
                MULTI_STATUS,
                lambda record: self._match(chunk, record),
                payload=payload,
                pairs=len(chunk.keys),
                proceed=self._going,
            )
        except _NO_FALLBACK:
            self._failed = True
            raise
        except SMSPartnerError as exc:
            if self._fail_fast:
                self._failed = True
                raise
            exc.__traceback__ = None  # results outlive the call; do not pin its frames
            pairs = zip(chunk.keys, chunk.positions, strict=True)
            return [_failed(key, _first(pos), exc) for key, pos in pairs]

    async def with_chunk(self, chunk: Chunk) -> tuple[Chunk, list[MultiStatusResult]]:
        """The results with their chunk, for callers that place them by its positions."""
        return chunk, await self(chunk)

    def _match(self, chunk: Chunk, record: dict[str, Any]) -> list[MultiStatusResult]:
        """Results for the chunk's keys from the answer's items, whatever their order."""
        items = record.get(LIST_KEY)
        keys, positions = chunk.keys, chunk.positions
        lookup = dict(zip(keys, range(len(keys)), strict=True))
        results: list[MultiStatusResult | None] = [None] * len(keys)
        args = (keys, positions, lookup, results, self._slot_of, _malformed)
        if isinstance(items, list):
            answered = make_matcher(self._converter)(items, *args)
        elif isinstance(items, FlatRecords):
            match = make_matcher(self._converter, items.keys)
            answered = match(items.texts, items.starts, items.lengths, *args)
        else:
            raise ResponseFormatError(f"the answer has no {LIST_KEY} list")
        if answered == len(keys):
            return results  # type: ignore[return-value]
        missing = ResponseFormatError("the API's answer left this pair out")
        return [
            result if result is not None else _failed(key, _first(pos), missing)
            for result, key, pos in zip(results, keys, positions, strict=True)
        ]

    def _slot_of(self, phone: object, raw_id: object, lookup: dict[Key, int]) -> int | None:
        """The slow path: an id as a string, a phone echoed in national format."""
        try:
            message_id = normalize_message_id(raw_id)
            slot = lookup.get((phone, message_id))  # type: ignore[arg-type]
            if slot is None:
                slot = lookup.get((normalize_phone(phone, self._region), message_id))
        except InvalidInputError:
            return None
        return slot


_MATCH_LOOP = """\
def match({source}, keys, positions, lookup, results, slot_of, malformed):
    answered = 0
{read_key}
        if (
            message_id.__class__ is str
            and message_id.isascii()
            and message_id.isdigit()
            and len(message_id) < 20
        ):
            message_id = int(message_id)  # XML, and some JSON, send ids as text
        try:
            slot = lookup.get((phone, message_id))
        except TypeError:  # a list or an object where a phone or an id should be
            continue
        if slot is None:
            slot = slot_of(phone, message_id, lookup)
            if slot is None:
                continue  # not something we asked for
        if results[slot] is not None:
            continue  # answered twice: the first answer stands
        phone_number, message_id = keys[slot]  # ours, not the echo: one string per pair
        index = positions[slot]
        if index.__class__ is not int:
            index = index[0]
        answered += 1
        try:
{structure}
        except (ValueError, TypeError) as exc:
            results[slot] = malformed(keys[slot], index, exc)
        else:
            results[slot] = o
    return answered
"""
_DICT_LOOP = """\
    items.reverse()
    pop = items.pop
    while items:
        d = pop()
        if d.__class__ is not dict:
            continue
        g = d.get"""
_FLAT_LOOP = """\
    for at, n in zip(starts, lengths):"""
_PHONE, _ID = ("phoneNumber", "number"), ("messageId", "message_id")


@functools.cache
def make_matcher(
    converter: Converter, flat_keys: tuple[str, ...] | None = None
) -> Callable[..., int]:
    """Generate the loop matching an answer's items to their slots and building each result.

    One function for the whole list: calling a structure function per item,
    and reading the phone and id twice, cost a third of the matching time.
    The items are dicts, or with `flat_keys` the texts of `FlatRecords` in
    that key order (its `texts, starts, lengths` are the first arguments).
    A list of dicts is consumed: each dict is freed once read, so the garbage
    collector runs a third less often and never walks them.
    Fills `results[slot]` and returns how many slots it filled.
    """
    positions = None if flat_keys is None else {key: i for i, key in enumerate(flat_keys)}
    code = structure_code(
        converter,
        MultiStatusResult,
        ("phone_number", "message_id", "index"),
        indent=12,
        positions=positions,
    )
    read_key = [
        _DICT_LOOP if positions is None else _FLAT_LOOP,
        *read_lines("phone", _PHONE, positions),
        *read_lines("message_id", _ID, positions),
    ]
    source = _MATCH_LOOP.format(
        source="items" if positions is None else "texts, starts, lengths",
        read_key="\n        ".join(read_key),
        structure="\n".join(code.lines),
    )
    kind = "records" if positions is None else "flat XML records"
    match: Callable[..., int] = compile_function(
        source, code.env, "match", f"<smspartner_async match MultiStatusResult from {kind}>"
    )
    return match


def _malformed(key: Key, index: int, exc: Exception) -> MultiStatusResult:
    return _failed(key, index, ResponseFormatError(f"malformed item in the answer: {exc}"))


def report_progress(progress: Progress | None, done: int, total: int | None) -> None:
    """Call the caller's progress hook; a hook that raises must not cancel the batch."""
    if progress is None:
        return
    try:
        progress(done, total)
    except Exception as exc:
        log.warning("progress hook raised %s; ignored", type(exc).__name__)


def _first(position: int | list[int]) -> int:
    return position[0] if isinstance(position, list) else position


def _failed(key: Key, index: int, error: SMSPartnerError) -> MultiStatusResult:
    code = getattr(error, "code", None)
    return MultiStatusResult(key[0], key[1], ok=False, code=code, index=index, error=error)


def with_index(result: MultiStatusResult, index: int) -> MultiStatusResult:
    """The same answer for another input position (a duplicate pair)."""
    return attrs.evolve(result, index=index)


def expand(chunk: Chunk, results: list[MultiStatusResult]) -> Iterable[MultiStatusResult]:
    """One result per input position of the chunk (duplicates get their own index)."""
    for result, position in zip(results, chunk.positions, strict=True):
        if isinstance(position, list):
            yield result
            for index in position[1:]:
                yield with_index(result, index)
        else:
            yield result
