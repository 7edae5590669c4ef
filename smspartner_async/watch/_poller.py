"""The watch's poller: claim the pairs due, ask the API in full calls, decide, commit.

It wakes when the earliest pending pair is due, or when the store rings `bells.due`
(pairs added or handed back, a hint: by this process or, for a shared store, any
other), and at least every `bells.recheck` seconds of real time for what no bell says
(a dead worker's lease running out). A round claims every pair due at its start, a
page at a time (so that a million pending pairs are never all in memory), asks the
API about each page in one `multi_status` (the client's batch size, concurrency,
retries and rate limit), decides what each answer means (`_changes.decide`) and
commits the page's new state and changes in one store transaction.

It pauses before claiming a page while the store holds `max_backlog` changes or more
not yet acknowledged, until the store rings `bells.room` (an acknowledgement, here or
in another worker).

Its state (the outage backoff, the next prune) is its own; what it shares with the
other parts lives in the store.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from .._errors import ClientStateError, InvalidInputError, SMSPartnerError
from .._models import MultiStatusResult
from ._changes import decide
from ._records import PairUpdate, StatusChange, WatchedPair
from ._schedule import Schedule
from ._store import WatchStore

if TYPE_CHECKING:
    from .._client import SMSPartnerClient

__all__ = ["OnRound", "Poller", "Sleep", "WatchRound"]

log = logging.getLogger("smspartner_async.watch")

#: Waits that many seconds (default `asyncio.sleep`).
Sleep: TypeAlias = Callable[[float], Awaitable[Any]]

_MAX_RETRY_DELAY = 300.0
_PRUNE_EVERY = 3_600.0
# Seconds of the watch's clock to wait when pairs are due but none could be claimed (another
# worker holds them) and the store gives no `recheck`.
_HELD_ELSEWHERE = 1.0


@attrs.frozen(weakref_slot=False)
class WatchRound:
    """What one round did, for metrics (`on_round`)."""

    at: float
    """When it started (epoch seconds of the watcher's clock); its decisions use this time."""
    asked: int
    """Pairs asked about."""
    changes: int
    """Changes found."""
    settled: int
    """Pairs that settled."""
    failed: int
    """Pairs whose call failed for good; they are asked again soon."""


#: Called after each round; runs on the event loop, and one that raises is logged and ignored.
OnRound: TypeAlias = Callable[[WatchRound], Any]


@attrs.define
class _Tally:
    asked: int = 0
    changes: int = 0
    settled: int = 0
    failed: int = 0
    reported: bool = False


class Poller:
    """Rounds of `multi_status` calls for the pairs due, until cancelled or failing."""

    def __init__(
        self,
        client: SMSPartnerClient,
        store: WatchStore,
        *,
        schedule: Schedule,
        clock: Callable[[], float],
        sleep: Sleep,
        page_size: int,
        lease: float,
        max_backlog: int,
        retention: float | None,
        on_round: OnRound | None,
    ) -> None:
        self._client = client
        self._store = store
        self._schedule = schedule
        # Pairs added together share their send time, and so their next checks: a page
        # asks the schedule about a few distinct (send, last check) couples, many times.
        self._next_check = functools.lru_cache(maxsize=4_096)(schedule.next_check)
        self._clock = clock
        self._sleep = sleep
        self._page_size = page_size
        self._lease = lease
        self._max_backlog = max_backlog
        self._retention = retention
        self._on_round = on_round
        self._outages = 0
        self._resume_at = 0.0
        self._next_prune = 0.0

    async def run(self) -> None:
        store = self._store
        bells = store.bells
        while True:
            seen = bells.due.rung
            now = self._clock()
            if now >= self._resume_at:
                await self._round(now)
                await self._prune(now)
            due = await store.next_due()
            if due is None:
                await bells.due.wait(seen, bells.recheck)
                continue
            due = max(due, self._resume_at)
            if due <= now:  # due pairs no claim returned: another worker holds them
                if bells.recheck is not None:
                    # Real seconds, whatever the watch's clock: leases run on real time.
                    await bells.due.wait(seen, bells.recheck)
                    continue
                due = now + _HELD_ELSEWHERE
            delay = due - self._clock()
            if delay > 0:
                await self._nap(delay, seen)

    async def _round(self, now: float) -> None:
        """Every pair due at `now`, a page at a time, pipelined.

        The next page is claimed while this one is asked, and a page is committed
        while the next one is asked: the store's work (a worker thread, for SQLite)
        overlaps the API calls and the parsing. Commits stay in page order.

        Store calls are shielded from cancellation: a watcher stopped mid-round lets
        the claim or commit in flight end (`_finish`) before it closes the store, so
        that a shared store knows what it holds and hands it back at once, rather than
        leaving a claim whose answer was cut off held for a whole lease. The round is
        reported (`on_round`) before its last commit lands, so that whoever sees its
        last changes has seen the report too.
        """
        tally = _Tally()
        await self._wait_for_room()
        claim: asyncio.Future[list[WatchedPair]] | None = self._claim(now)
        commit: asyncio.Future[None] | None = None
        committing = 0  # changes in the commit in flight: not in the store's count yet
        try:
            while claim is not None:
                page = await asyncio.shield(claim)
                claim = None
                if not page:
                    break
                full = len(page) == self._page_size
                if full and await self._has_room(committing):
                    claim = self._claim(now)  # the next page, while this one is asked
                results = await self._ask(page, now)
                updates, found = self._decide(page, results, now, tally)
                if commit is not None:
                    await asyncio.shield(commit)
                if results is None and claim is not None:
                    # No answer at all: the page claimed ahead is not asked either.
                    commit = asyncio.ensure_future(self._store.commit(updates, found))
                    page, claim = await asyncio.shield(claim), None
                    updates, found = self._decide(page, None, now, tally)
                    await asyncio.shield(commit)
                more = claim is None and full and results is not None
                if claim is None and not more:
                    self._report(now, tally)
                commit = asyncio.ensure_future(self._store.commit(updates, found))
                committing = len(found)
                if more:
                    # No room to claim ahead: wait for it holding no claim (a claim held
                    # while the consumers catch up could outlive its lease).
                    await asyncio.shield(commit)
                    commit = None
                    await self._wait_for_room()
                    claim = self._claim(now)
            self._report(now, tally)  # when the last page claimed came back empty
            if commit is not None:
                await asyncio.shield(commit)
                commit = None
        finally:
            await _finish(claim, commit)

    def _claim(self, now: float) -> asyncio.Future[list[WatchedPair]]:
        return asyncio.ensure_future(
            self._store.claim(now=now, limit=self._page_size, lease=self._lease)
        )

    async def _has_room(self, committing: int = 0) -> bool:
        return await self._store.unreported() + committing < self._max_backlog

    async def _wait_for_room(self) -> None:
        """Until the outbox has room for what a page may find (never holding a claim)."""
        bells = self._store.bells
        while True:
            seen = bells.room.rung
            if await self._has_room():
                return
            await bells.room.wait(seen, bells.recheck)

    async def _ask(self, page: list[WatchedPair], now: float) -> list[MultiStatusResult] | None:
        """The page's results, or None when not one of its calls got an answer (an outage)."""
        try:
            results = await self._client.multi_status(
                [pair[:2] for pair in page],
                fail_fast=False,  # (phone, message id)
            )
        except SMSPartnerError as exc:
            if exc.answered or isinstance(exc, ClientStateError | InvalidInputError):
                raise  # a bad key, an unauthorised IP, a closed client: the watch ends
            self._outages += 1
            delay = self._retry_delay()
            self._resume_at = self._schedule.retry_at(now, delay)
            log.warning(
                "watch: no answer for %d pairs (%s); asking again in %.0f s",
                len(page),
                type(exc).__name__,
                delay,
            )
            return None
        self._outages = 0
        return results

    def _decide(
        self,
        page: list[WatchedPair],
        results: list[MultiStatusResult] | None,
        now: float,
        tally: _Tally,
    ) -> tuple[list[PairUpdate], list[StatusChange]]:
        schedule, delay, next_check = self._schedule, self._retry_delay(), self._next_check
        updates: list[PairUpdate] = []
        found: list[StatusChange] = []
        append, keep = updates.append, found.append
        failed = settled = 0
        if results is None:
            failed = len(page)
            answers: Iterable[MultiStatusResult | None] = itertools.repeat(None, len(page))
        else:
            answers = results
        for pair, result in zip(page, answers, strict=True):
            update, change = decide(pair, result, now, schedule, delay, next_check)
            append(update)
            if change is not None:
                keep(change)
                settled += change.settled
            if result is not None and result.error is not None:
                failed += 1
        tally.asked += len(page)
        tally.changes += len(found)
        tally.settled += settled
        tally.failed += failed
        return updates, found

    def _report(self, now: float, tally: _Tally) -> None:
        if not tally.asked or tally.reported:
            return
        tally.reported = True
        report = WatchRound(now, tally.asked, tally.changes, tally.settled, tally.failed)
        log.debug(
            "watch round: %d asked, %d changes, %d settled, %d failed",
            report.asked,
            report.changes,
            report.settled,
            report.failed,
        )
        if self._on_round is not None:
            try:
                self._on_round(report)
            except Exception:
                log.exception("on_round raised; ignored")

    def _retry_delay(self) -> float:
        first = self._schedule.intervals[0]
        return min(first * 2.0 ** min(self._outages, 16), max(_MAX_RETRY_DELAY, first))

    async def _prune(self, now: float) -> None:
        if self._retention is None or now < self._next_prune:
            return
        self._next_prune = now + _PRUNE_EVERY
        forgotten = await self._store.prune(settled_before=now - self._retention)
        if forgotten:
            log.debug("watch: forgot %d settled pairs", forgotten)

    async def _nap(self, delay: float, seen: int) -> None:
        """`sleep(delay)`, cut short when the store rings (or after its `recheck`)."""
        bells = self._store.bells
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(bells.due.wait(seen, bells.recheck))
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.wait((sleeper, waker))
            if not sleeper.cancelled():
                sleeper.exception()  # a failing sleep is seen by the next round's time


async def _finish(*futures: asyncio.Future[Any] | None) -> None:
    """Let a round's claim and commit in flight end (a store call cannot be half-done)
    without raising over the exception that ended the round."""
    pending = [future for future in futures if future is not None]
    if not pending:
        return
    await asyncio.wait(pending)
    for future in pending:
        if not future.cancelled():
            future.exception()
