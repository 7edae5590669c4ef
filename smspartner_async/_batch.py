"""Any number of pairs -> 500-pair calls, a bounded number in flight -> one result per pair.

- Errors that no chunk can escape (bad key, IP not authorised) raise at once,
  cancel the calls in flight and send none of the chunks queued for a slot.
- Any other chunk failure, after retries, becomes `ok=False` results for that
  chunk's pairs (unless `fail_fast`), so one bad call never loses the others'
  results. But when not one call of a collected batch got the API's answer
  (connection errors, timeouts, 5xx, 429s, pages that are not the API's), there
  is nothing to keep: the first error is raised, so an outage never looks like
  a batch of failed items. An API error (code 2, say) is an answer, kept per item.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Sized
from contextlib import aclosing
from typing import TypeAlias

from ._call import Caller
from ._chunking import Chunk, chunks_of, first_position, request_items, stream_chunks
from ._errors import FATAL_ERRORS, ClientStateError, InvalidInputError, SMSPartnerError
from ._matching import failed_result, match, with_index
from ._models import MultiStatusResult
from ._validate import Key, Pair, Pairs, validate_all
from ._window import run_windowed
from ._wire.endpoints import MULTI_STATUS

__all__ = ["Progress", "collect", "stream"]

#: Called after each call with (pairs done, total pairs or None when the input is lazy).
Progress: TypeAlias = Callable[[int, int | None], None]

log = logging.getLogger("smspartner_async")

# Errors a batch raises instead of turning them into failed items.
_NO_FALLBACK: tuple[type[SMSPartnerError], ...] = (*FATAL_ERRORS, ClientStateError)
# Pairs validated between two yields to the event loop.
_VALIDATION_SLICE = 65_536


class _Batch:
    """The calls of one `multi_status` or `iter_multi_status`, and how they ended."""

    def __init__(self, caller: Caller, fail_fast: bool) -> None:
        self._caller = caller
        self._region = caller.options.default_region
        self._fail_fast = fail_fast
        #: Set when a chunk raised: chunks still waiting for a slot leave unsent.
        self._failure: SMSPartnerError | None = None
        self.answered = 0
        self.unanswered: list[SMSPartnerError] = []

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def fetch(self, chunk: Chunk) -> tuple[Chunk, list[MultiStatusResult]]:
        """The chunk's results, in chunk order, with the chunk they belong to."""
        try:
            results = await self._caller.call(
                MULTI_STATUS,
                functools.partial(match, chunk, region=self._region),
                payload={"SMSStatut_List": request_items(chunk.keys)},
                pairs=len(chunk.keys),
                check=self._check,
            )
        except _NO_FALLBACK as exc:
            self._failure = exc
            raise
        except SMSPartnerError as exc:
            if self._fail_fast:
                self._failure = exc
                raise
            exc.__traceback__ = None  # results outlive the call; do not pin its frames
            if exc.answered:
                self.answered += 1
            else:
                self.unanswered.append(exc)
            pairs = zip(chunk.keys, chunk.positions, strict=True)
            return chunk, [failed_result(key, first_position(pos), exc) for key, pos in pairs]
        self.answered += 1
        return chunk, results

    def raise_if_nothing_answered(self) -> None:
        """An outage (no call got the API's answer) raises the first call's error."""
        if self.unanswered and not self.answered:
            error = self.unanswered[0]
            error.add_note(f"not one of the batch's {len(self.unanswered)} calls got an answer")
            raise error


async def collect(
    caller: Caller,
    pairs: Pairs,
    *,
    fail_fast: bool,
    progress: Progress | None,
    window: int,
) -> list[MultiStatusResult]:
    """One result per pair, in input order; every pair validated before anything is sent."""
    items = await _materialize(pairs)
    region = caller.options.default_region
    keys: list[Key] = []
    for start in range(0, len(items), _VALIDATION_SLICE):
        if start:
            await asyncio.sleep(0)  # a million pairs: let the loop breathe between slices
        keys += validate_all(items[start : start + _VALIDATION_SLICE], region, start)
    total = len(keys)
    chunks, duplicates = chunks_of(keys, caller.options.batch_size)
    del keys
    results: list[MultiStatusResult | None] = [None] * total
    done = 0
    batch = _Batch(caller, fail_fast)
    async with aclosing(run_windowed(chunks, batch.fetch, window, ordered=False)) as finished:
        async for chunk, chunk_results in finished:
            positions = chunk.positions
            if isinstance(positions, range):
                results[positions.start : positions.stop] = chunk_results
            else:
                for result in chunk_results:
                    results[result.index] = result
            done += chunk.size
            report_progress(progress, done, total)
    batch.raise_if_nothing_answered()
    for index, first in duplicates.items():
        results[index] = with_index(results[first], index)  # type: ignore[arg-type]
    if duplicates:
        report_progress(progress, total, total)
    return results  # type: ignore[return-value]  # every slot is filled above


async def stream(
    caller: Caller,
    pairs: Pairs,
    *,
    fail_fast: bool,
    progress: Progress | None,
    window: int,
) -> AsyncGenerator[MultiStatusResult, None]:
    """Results as their calls complete, each with its input `index`; input read lazily."""
    _check_iterable(pairs)
    total = len(pairs) if isinstance(pairs, Sized) else None
    batch = _Batch(caller, fail_fast)
    done = 0
    bad: list[InvalidInputError] = []
    options = caller.options
    chunks = stream_chunks(pairs, options.batch_size, options.default_region, bad)
    async with aclosing(run_windowed(chunks, batch.fetch, window, ordered=False)) as finished:
        async for chunk, chunk_results in finished:
            done += chunk.size
            report_progress(progress, done, total)
            for result in expand(chunk, chunk_results):
                yield result
    if bad:  # the pair that ended the input, once every pair before it has its result
        raise bad[0]
    batch.raise_if_nothing_answered()  # after the failed items: a stream cannot take them back


def expand(chunk: Chunk, results: list[MultiStatusResult]) -> Iterable[MultiStatusResult]:
    """One result per input position of the chunk (duplicates get their own index)."""
    for result, position in zip(results, chunk.positions, strict=True):
        yield result
        if isinstance(position, list):
            for index in position[1:]:
                yield with_index(result, index)


def report_progress(progress: Progress | None, done: int, total: int | None) -> None:
    """Call the caller's progress hook; a hook that raises must not cancel the batch."""
    if progress is None:
        return
    try:
        progress(done, total)
    except Exception as exc:
        log.warning("progress hook raised %s; ignored", type(exc).__name__)


def _check_iterable(pairs: object) -> None:
    # Checked at run time too: callers are not all type-checked.
    if not isinstance(pairs, Iterable | AsyncIterable) or isinstance(pairs, str | bytes):
        raise InvalidInputError("pairs must be an iterable of (phone, id) pairs", value=pairs)


async def _materialize(pairs: Pairs) -> list[Pair]:
    _check_iterable(pairs)
    if isinstance(pairs, AsyncIterable):
        return [pair async for pair in pairs]
    return pairs if isinstance(pairs, list) else list(pairs)
