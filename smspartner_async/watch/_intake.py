"""The watch's intake: pairs in (validated, timed, first check scheduled) and hints in.

It writes to the store and nothing else: the store rings `bells.due`, and the poller
(this process's or any worker's of a fleet) takes it from there.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime
from typing import TypeAlias

from .._errors import InvalidInputError
from .._validate import Pair, Pairs, normalize_message_id, normalize_phone, validate_all
from ._records import NewPair
from ._schedule import Schedule
from ._store import WatchStore

__all__ = ["Clock", "Intake", "SentAt"]

#: Epoch seconds now (default `time.time`: a watch must outlive its process).
Clock: TypeAlias = Callable[[], float]
#: When a message was sent: epoch seconds, or an aware `datetime`.
SentAt: TypeAlias = float | datetime

_ADD_CHUNK = 10_000


class Intake:
    """Adds pairs and hints to the store; counts the adds in flight (for idleness)."""

    def __init__(self, store: WatchStore, schedule: Schedule, region: str, clock: Clock) -> None:
        self._store = store
        self._schedule = schedule
        self._region = region
        self._clock = clock
        self._adding = 0
        self._adds = 0

    @property
    def busy(self) -> bool:
        """An `add` is in flight: its pairs may not all be in the store yet."""
        return self._adding > 0

    @property
    def adds(self) -> int:
        """How many `add` calls have started: one that starts during a look at the
        store makes that look out of date."""
        return self._adds

    async def add(
        self, pairs: Pairs, sent_at: SentAt | Iterable[SentAt | None] | None = None
    ) -> int:
        now = self._clock()
        self._adding += 1
        self._adds += 1
        added = 0
        try:
            async for chunk in _new_pairs(pairs, sent_at, now, self._region, self._schedule):
                added += await self._store.add(chunk)
        finally:
            self._adding -= 1
        return added

    async def hint(self, message_id: int | str, phone_number: str | None = None) -> int:
        key = normalize_message_id(message_id)
        phone = None if phone_number is None else normalize_phone(phone_number, self._region)
        return await self._store.hint(key, phone, now=self._clock())


#: How far ahead of the watch's clock a send time may be (clocks of two hosts disagree a
#: little); past that it is a mistake, most often epoch milliseconds, and the pair's first
#: check would come in centuries: refused.
FUTURE_SLACK = 24 * 3600.0


def _epoch(value: object, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError(
                "sent_at must be an aware datetime (with a tzinfo)", value=value
            )
        sent = value.timestamp()
    elif isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInputError("sent_at must be epoch seconds or a datetime", value=value)
    else:
        sent = float(value)
    if sent > now + FUTURE_SLACK:
        raise InvalidInputError(
            "sent_at is more than a day ahead of the clock (epoch milliseconds? give seconds)",
            value=value,
        )
    return sent


async def _new_pairs(
    pairs: Pairs,
    sent_at: SentAt | Iterable[SentAt | None] | None,
    now: float,
    region: str,
    schedule: Schedule,
) -> AsyncIterator[list[NewPair]]:
    """Validated store records, `_ADD_CHUNK` at a time, each with its position and times."""
    if isinstance(sent_at, str | bytes):
        raise InvalidInputError("sent_at must be a time or an iterable of times", value=sent_at)
    if sent_at is None or isinstance(sent_at, int | float | datetime):
        one = _epoch(sent_at, now)
        times: Iterator[float] = itertools.repeat(one)
        exact = False
    else:
        try:
            times = (_epoch(value, now) for value in sent_at)
        except TypeError:
            raise InvalidInputError(
                "sent_at must be a time or an iterable of times", value=sent_at
            ) from None
        exact = True
    # Pairs added together mostly share their send time, and so their first check.
    first = functools.lru_cache(maxsize=1_024)(schedule.first_check)
    new = NewPair._make
    position = 0
    async for items in _slices(pairs, _ADD_CHUNK):
        keys = validate_all(items, region, position)
        when = list(itertools.islice(times, len(keys)))
        if len(when) != len(keys):
            raise InvalidInputError("sent_at has fewer times than there are pairs", value=len(when))
        yield [
            new((phone, message_id, index, sent, first(sent)))
            for index, ((phone, message_id), sent) in enumerate(
                zip(keys, when, strict=True), position
            )
        ]
        position += len(keys)
        await asyncio.sleep(0)  # a million pairs: let the loop breathe between chunks
    if exact and next(times, None) is not None:
        raise InvalidInputError("sent_at has more times than there are pairs", value=position)


async def _slices(pairs: Pairs, size: int) -> AsyncIterator[list[Pair]]:
    if isinstance(pairs, AsyncIterable):
        chunk: list[Pair] = []
        async for pair in pairs:
            chunk.append(pair)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
        return
    given: object = pairs
    if isinstance(given, str | bytes) or not isinstance(given, Iterable):
        raise InvalidInputError(
            "pairs must be an iterable of (phone, message_id) pairs", value=pairs
        )
    iterator = iter(pairs)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
