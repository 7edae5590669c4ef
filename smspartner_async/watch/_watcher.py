"""The watcher: rounds of multi-status calls for the pairs due, and the changes they find.

Two tasks and a store. The *poller* wakes when the earliest pending pair is due,
claims every pair due then (a page at a time, so that a million pending pairs are
never all in memory), asks the API about them in one `multi_status` per page (500
pairs per call, the client's concurrency, retries and rate limit), decides what
each answer means (`_changes.decide`) and commits the page's new state and changes
in one store transaction. The *consumer* (an `async for` over `changes()`, or the
task calling `on_change`) takes changes from the store's outbox and acknowledges
each one only when the next is asked for (or the callback has returned): a crash
in between delivers it again, never loses it.

Time comes from `clock` and waits go through `sleep`, so a test or a sandbox run
covers a 48-hour window in simulated time. A round's decisions all use the time at
which it started.

Pages hold `batch_size x 2 x max_concurrency` pairs (8,000 by default), a multiple
of the batch size: every call of a round is full but its last.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from contextlib import aclosing
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeAlias

import attrs

from .._client import SMSPartnerClient
from .._errors import (
    APIConnectionError,
    ClientStateError,
    InvalidInputError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from .._models import MultiStatusResult
from .._validate import Pair, Pairs, normalize_message_id, normalize_phone, validate_all
from ._changes import decide
from ._records import NewPair, PairUpdate, StatusChange, WatchedPair
from ._schedule import Schedule
from ._store import MemoryStore, WatchStore

__all__ = ["Clock", "OnChange", "OnRound", "SentAt", "Sleep", "WatchRound", "Watcher", "watch"]

log = logging.getLogger("smspartner_async.watch")

#: Epoch seconds now (default `time.time`: a watch must outlive its process).
Clock: TypeAlias = Callable[[], float]
#: Waits that many seconds (default `asyncio.sleep`).
Sleep: TypeAlias = Callable[[float], Awaitable[Any]]
#: When a message was sent: epoch seconds, or an aware `datetime`.
SentAt: TypeAlias = float | datetime
#: Called with each change; may be a coroutine function.
OnChange: TypeAlias = Callable[[StatusChange], Any]

# A call that ended in one of these got no answer from the API: its pairs wait for the
# next round. Any other exception (a bad key, an unauthorised IP) ends the watch.
_NO_ANSWER = (APIConnectionError, ServerError, RateLimitError, ResponseFormatError)
_ADD_CHUNK = 10_000
_TAKE = 1_024
_MAX_RETRY_DELAY = 300.0
_PRUNE_EVERY = 3_600.0
_DEFAULT_RETENTION = 7 * 86_400.0
# Real seconds a reader with nothing to take waits before it looks at the store again.
_LOOK_AGAIN = 1.0


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


class _State:
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class Watcher:
    """Watches (phone, message id) pairs until each settles, as long as it runs.

        async with Watcher(client, store=SQLiteStore("watch.db")) as watcher:
            await watcher.add(pairs)            # after each send; any time
            async for change in watcher.changes():
                ...

    A pair settles on a final status, on an API per-item answer that lasts past the
    not-found grace, or when its window runs out (then one last change, EXPIRED).
    After that nothing more is reported for it, whatever the API says later. The
    state lives in `store`: with a durable one, a watcher started again after a
    crash goes on where the last one stopped; changes it had not seen acknowledged
    are delivered again (same `id`), and a pair already settled is never watched
    again.

    Leaving the `async with` (or `aclose()`) stops the watcher: no task is left
    running. So does closing the client: then `changes()` ends once it has delivered
    what was found. An error no call can escape (`AuthenticationError`,
    `PermissionDeniedError`), or an exception from `on_change`, stops it too and is
    raised from `changes()`, `wait()`, `wait_idle()` and the `async with`.

    Args:
        client: The client to ask with; the watcher never closes it.
        store: Where the state lives (`MemoryStore()` when None). Opened on entry and
            closed on exit.
        schedule: When to ask and for how long (`Schedule()`).
        on_change: Called with each change, in order, instead of iterating `changes()`;
            a change is acknowledged once the call (or the awaitable it returns) is done.
        on_round: Called with a `WatchRound` after each round (metrics).
        clock: Epoch seconds now (`time.time`).
        sleep: Waits that many seconds (`asyncio.sleep`); inject both to simulate time.
        retention: Seconds a settled pair is remembered (adding it again meanwhile does
            nothing); None for ever.
        page_size: Pairs claimed and asked at once; a multiple of the client's batch size
            by default (8,000 with the default options).
        max_backlog: Changes found and not yet acknowledged past which polling pauses
            until the consumer catches up (bounds the outbox).
        lease: Seconds a claim or a take holds its pairs or changes in a store shared by
            several processes: longer than a page takes to ask, and than the consumer
            takes over a batch of changes (up to 1,024); past it, another worker may
            deliver the same changes again.
    """

    def __init__(
        self,
        client: SMSPartnerClient,
        *,
        store: WatchStore | None = None,
        schedule: Schedule | None = None,
        on_change: OnChange | None = None,
        on_round: OnRound | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        retention: float | None = _DEFAULT_RETENTION,
        page_size: int | None = None,
        max_backlog: int | None = None,
        lease: float = 600.0,
    ) -> None:
        batch, concurrency, region = _client_limits(client)
        if page_size is None:
            page_size = batch * 2 * concurrency
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise InvalidInputError(
                "page_size must be a whole number of at least 1", value=page_size
            )
        if max_backlog is None:
            max_backlog = max(4 * page_size, 10_000)
        if isinstance(max_backlog, bool) or not isinstance(max_backlog, int) or max_backlog < 1:
            raise InvalidInputError(
                "max_backlog must be a whole number of at least 1", value=max_backlog
            )
        if retention is not None and not retention >= 0:
            raise InvalidInputError(
                "retention must be a number of seconds, or None", value=retention
            )
        if not lease > 0:
            raise InvalidInputError("lease must be a positive number of seconds", value=lease)
        self._client = client
        self._store: WatchStore = store if store is not None else MemoryStore()
        self._schedule = schedule if schedule is not None else Schedule()
        self._on_change = on_change
        self._on_round = on_round
        self._clock: Clock = clock if clock is not None else time.time
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._retention = retention
        self._page_size = page_size
        self._max_backlog = max_backlog
        self._lease = float(lease)
        self._region = region
        self._state = _State.NEW
        self._poller: asyncio.Task[None] | None = None
        self._deliverer: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._failure_raised = False
        self._poller_done = False
        self._reading = False
        self._buffer: deque[StatusChange] = deque()
        self._backlog = 0
        self._outages = 0
        self._resume_at = 0.0
        self._next_prune = 0.0
        self._adds = 0
        self._wake = asyncio.Event()  # the poller: pairs added, or closing
        self._changed = asyncio.Event()  # the consumer: changes committed, or stopping
        self._room = asyncio.Event()  # the poller: the backlog went down
        self._idle = asyncio.Event()  # nothing pending, nothing to deliver
        self._stopped = asyncio.Event()
        self._parked = asyncio.Event()  # the poller is between rounds (or gone)

    def __repr__(self) -> str:
        return f"Watcher(store={self._store!r}, state={self._state!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != _State.NEW:
            raise ClientStateError("a Watcher runs once; create another one")
        await self._store.open()
        self._state = _State.RUNNING
        self._poller = asyncio.create_task(self._poll(), name="smspartner-watch-poller")
        if self._on_change is not None:
            self._deliverer = asyncio.create_task(
                self._deliver(self._on_change), name="smspartner-watch-deliverer"
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
        if exc_type is None and self._failure is not None and not self._failure_raised:
            self._failure_raised = True
            raise self._failure

    async def aclose(self) -> None:
        """Stop polling and delivering, wait for both tasks to end, close the store."""
        if self._state == _State.CLOSED:
            return
        started = self._state == _State.RUNNING
        self._state = _State.CLOSED
        for event in (self._wake, self._changed, self._room, self._stopped):
            event.set()
        tasks = [task for task in (self._poller, self._deliverer) if task is not None]
        for task in tasks:
            task.cancel()
        try:
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: their failures are kept in _failure
            if started:
                await self._store.close()

    @property
    def closed(self) -> bool:
        return self._state == _State.CLOSED

    async def wait(self) -> None:
        """Until the watcher stops: returns when it was closed (or its client was), raises
        what stopped it otherwise."""
        await self._stopped.wait()
        self._raise_failure()

    async def wait_idle(self) -> None:
        """Until no pair is pending and every change has been delivered.

        Needs a consumer: `on_change`, or a task iterating `changes()`.
        """
        while not self._idle.is_set() and not self._stopped.is_set():
            idle, stopped = (
                asyncio.ensure_future(self._idle.wait()),
                asyncio.ensure_future(self._stopped.wait()),
            )
            try:
                await asyncio.wait((idle, stopped), return_when=asyncio.FIRST_COMPLETED)
            finally:
                idle.cancel()
                stopped.cancel()
        self._raise_failure()

    # -- adding pairs ------------------------------------------------------------------

    async def add(
        self,
        pairs: Pairs,
        *,
        sent_at: SentAt | Iterable[SentAt | None] | None = None,
    ) -> int:
        """Watch these pairs too; returns how many were not watched already.

        A pair is a `(phone, message_id)` tuple or a mapping, as for `multi_status`;
        every pair is validated (`InvalidInputError` names the first bad one). Its
        window and schedule count from `sent_at`: one time for all (epoch seconds or
        an aware datetime), one per pair (an iterable as long as `pairs`, None items
        meaning now), or None for now. A pair already known (pending, or settled within
        `retention`) keeps its state. A change's `index` is the pair's position in
        the `add` call that first gave it.
        """
        if self._state != _State.RUNNING or self._poller_done:
            raise ClientStateError("this watcher is not running")
        now = self._clock()
        self._adds += 1
        self._idle.clear()
        added = 0
        try:
            async for chunk in _new_pairs(pairs, sent_at, now, self._region, self._schedule):
                added += await self._store.add(chunk)
        finally:
            self._wake.set()
            # The consumer looks again: with nothing new (every pair known), it is idle again.
            self._changed.set()
        return added

    async def hint(self, message_id: int | str, phone_number: str | None = None) -> int:
        """Ask about this message's pair (every pending pair of the message, without a
        phone number) in the next round: a delivery report says the API has news.

        A hint is only that: the next `multi_status` call says what happened, so a
        forged one costs a look-up, never a status. The store keeps it (any worker of a
        fleet acts on it); a hint for a pair not added yet is kept for a while and makes
        the pair due once it is (`WatchStore.hint`). Returns how many pending pairs it
        made due. Raises `InvalidInputError` for a bad phone number or message id.
        """
        if self._state != _State.RUNNING or self._poller_done:
            raise ClientStateError("this watcher is not running")
        key = normalize_message_id(message_id)
        phone = None if phone_number is None else normalize_phone(phone_number, self._region)
        return await self._store.hint(key, phone, now=self._clock())

    # -- reading changes -----------------------------------------------------------------

    def changes(self, *, until_idle: bool = False) -> AsyncGenerator[StatusChange, None]:
        """The changes found, in order, each acknowledged when the next one is asked for.

        Runs as long as the watcher does (it ends when the watcher or its client is
        closed, once what was found has been delivered), or, with `until_idle`, until
        no pair is pending any more. Leaving the loop early (`break`, an exception)
        does not acknowledge the change in hand: the next `changes()` starts with it.
        One reader at a time, and none with `on_change`.
        """
        if self._on_change is not None:
            raise ClientStateError("this watcher delivers its changes to on_change")
        return self._iterate(until_idle)

    async def _iterate(self, until_idle: bool) -> AsyncGenerator[StatusChange, None]:
        if self._reading:
            raise ClientStateError("changes() is already being read")
        if self._state == _State.NEW:
            raise ClientStateError("enter the watcher (async with) before reading changes")
        self._reading = True
        buffer, store = self._buffer, self._store
        try:
            while True:
                if self._state != _State.RUNNING:
                    return
                if not buffer:
                    self._changed.clear()
                    adds = self._adds
                    nothing_pending = (await store.next_due()) is None
                    batch = await store.take_changes(
                        now=self._clock(), limit=_TAKE, lease=self._lease
                    )
                    if batch:
                        buffer.extend(batch)
                        continue
                    if self._backlog:
                        # Nothing left to take: what this process found has been taken and
                        # acknowledged, here or (in a shared store) by other workers.
                        self._backlog = 0
                        self._room.set()
                    self._raise_failure()
                    if self._poller_done:
                        return
                    if nothing_pending and adds == self._adds:
                        if not self._parked.is_set():
                            # The poller is ending the round that settled the last pairs.
                            await self._parked.wait()
                            continue
                        self._idle.set()
                        if until_idle:
                            return
                    await self._wait_changed()
                    continue
                change = buffer.popleft()
                try:
                    yield change
                except GeneratorExit:
                    buffer.appendleft(change)
                    raise
                if self._state != _State.RUNNING:
                    buffer.appendleft(change)  # the store is closed: delivered again next time
                    return
                await store.ack((change.id,))
                self._backlog = max(self._backlog - 1, 0)
                if self._backlog < self._max_backlog:
                    self._room.set()
        finally:
            self._reading = False

    async def _wait_changed(self) -> None:
        """Until a commit of this watcher's finds changes, or `_LOOK_AGAIN` seconds.

        In a shared store, other workers commit changes, and changes a dead worker
        took come back when their lease lapses: no commit of ours says so, so the
        reader looks at the store again now and then (real seconds, whatever the clock).
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_LOOK_AGAIN):
                await self._changed.wait()

    async def _deliver(self, on_change: OnChange) -> None:
        try:
            async with aclosing(self._iterate(until_idle=False)) as changes:
                async for change in changes:
                    outcome = on_change(change)
                    if inspect.isawaitable(outcome):
                        await outcome
        except Exception as exc:
            self._fail(exc)
        finally:
            if self._poller_done:
                self._stopped.set()

    # -- polling -------------------------------------------------------------------------

    async def _poll(self) -> None:
        try:
            while True:
                self._wake.clear()
                now = self._clock()
                if now >= self._resume_at:
                    await self._round(now)
                    await self._prune(now)
                due = await self._store.next_due()
                self._parked.set()
                if due is None:
                    await self._wake.wait()
                else:
                    due = max(due, self._resume_at)
                    if due <= now:
                        due = now + 1.0  # due pairs no claim returned: held by another worker
                    delay = due - self._clock()
                    if delay > 0:
                        await self._nap(delay)
                self._parked.clear()
        except ClientStateError as exc:
            if not self._client.is_closed:
                self._fail(exc)
        except Exception as exc:
            self._fail(exc)
        finally:
            self._poller_done = True
            self._parked.set()
            self._changed.set()
            if self._deliverer is None or self._deliverer.done():
                self._stopped.set()

    async def _round(self, now: float) -> None:
        """Every pair due at `now`, a page at a time, pipelined.

        The next page is claimed while this one is asked, and a page is committed
        while the next one is asked: the store's work (a worker thread, for SQLite)
        overlaps the API calls and the parsing. Commits stay in page order.

        Store calls are shielded from cancellation: a watcher stopped mid-round lets
        the claim or commit in flight end (`_finish`) before it closes the store, so
        that a shared store knows what it holds and hands it back at once, rather than
        leaving a claim whose answer was cut off held for a whole lease.
        """
        tally = _Tally()
        claim = await self._claim_ahead(now)
        commit: asyncio.Future[None] | None = None
        try:
            while claim is not None:
                page = await asyncio.shield(claim)
                claim = None
                if not page:
                    break
                if len(page) == self._page_size:
                    claim = await self._claim_ahead(now)
                results = await self._ask(page, now)
                updates, found = self._decide(page, results, now, tally)
                if commit is not None:
                    await asyncio.shield(commit)
                commit = asyncio.ensure_future(self._commit(updates, found))
                if results is None and claim is not None:
                    # No answer at all: the page claimed ahead is not asked either.
                    page, claim = await asyncio.shield(claim), None
                    updates, found = self._decide(page, None, now, tally)
                    await asyncio.shield(commit)
                    commit = asyncio.ensure_future(self._commit(updates, found))
            if commit is not None:
                await asyncio.shield(commit)
                commit = None
        finally:
            await _finish(claim, commit)
        if tally.asked:
            self._report(WatchRound(now, tally.asked, tally.changes, tally.settled, tally.failed))

    async def _claim_ahead(self, now: float) -> asyncio.Future[list[WatchedPair]] | None:
        """Start claiming the next page, once the consumer has room for what it may find."""
        while self._backlog >= self._max_backlog and self._state == _State.RUNNING:
            self._room.clear()
            await self._room.wait()
        if self._state != _State.RUNNING:
            return None
        return asyncio.ensure_future(
            self._store.claim(now=now, limit=self._page_size, lease=self._lease)
        )

    async def _ask(self, page: list[WatchedPair], now: float) -> list[MultiStatusResult] | None:
        """The page's results, or None when not one of its calls got an answer (an outage)."""
        try:
            results = await self._client.multi_status(
                [(pair.phone_number, pair.message_id) for pair in page], fail_fast=False
            )
        except _NO_ANSWER as exc:
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
        schedule, delay = self._schedule, self._retry_delay()
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
            update, change = decide(pair, result, now, schedule, delay)
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

    async def _commit(self, updates: list[PairUpdate], found: list[StatusChange]) -> None:
        await self._store.commit(updates, found)
        if found:
            self._backlog += len(found)
            self._changed.set()

    def _report(self, report: WatchRound) -> None:
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

    async def _nap(self, delay: float) -> None:
        """`sleep(delay)`, cut short when pairs are added or the watcher closes."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.wait((sleeper, waker))
            if not sleeper.cancelled():
                sleeper.exception()  # a failing sleep is seen by the next round's time

    # -- failures --------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
            log.error("watch stopped: %s", type(exc).__name__)
        for task in (self._poller, self._deliverer):
            if task is not None and task is not asyncio.current_task() and not task.done():
                task.cancel()
        self._changed.set()
        self._room.set()
        self._stopped.set()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            self._failure_raised = True
            raise self._failure


async def watch(
    client: SMSPartnerClient,
    pairs: Pairs,
    *,
    sent_at: SentAt | Iterable[SentAt | None] | None = None,
    schedule: Schedule | None = None,
    store: WatchStore | None = None,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    on_round: OnRound | None = None,
) -> AsyncGenerator[StatusChange, None]:
    """Status changes of a fixed set of pairs, until every one has settled.

        async with aclosing(watch(client, pairs)) as changes:
            async for change in changes:
                print(change.index, change.status, change.reason)

    The first status known for each pair is a change, then each different one; a
    pair's last change has `settled=True` and says why. With a durable `store`,
    calling `watch` again with the same pairs after a crash goes on where the last
    run stopped (pairs are known by phone and id, and keep their input position as
    `index`): the changes not yet taken are delivered again, the rest are not.
    See `Watcher` for the arguments.
    """
    watcher = Watcher(
        client,
        store=store,
        schedule=schedule,
        clock=clock,
        sleep=sleep,
        on_round=on_round,
        retention=None,
    )
    async with watcher:
        await watcher.add(pairs, sent_at=sent_at)
        async with aclosing(watcher.changes(until_idle=True)) as changes:
            async for change in changes:
                yield change


# -- helpers -------------------------------------------------------------------------------


@attrs.define
class _Tally:
    asked: int = 0
    changes: int = 0
    settled: int = 0
    failed: int = 0


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


def _client_limits(client: SMSPartnerClient) -> tuple[int, int, str]:
    """The client's batch size, concurrency and region: pages are sized from them."""
    try:
        options = client._caller.options
        return options.batch_size, client._shared.flow.max_concurrency, options.default_region
    except AttributeError:
        raise InvalidInputError(
            "client must be an SMSPartnerClient", value=type(client).__name__
        ) from None


def _epoch(value: object, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError(
                "sent_at must be an aware datetime (with a tzinfo)", value=value
            )
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInputError("sent_at must be epoch seconds or a datetime", value=value)
    return float(value)


async def _new_pairs(
    pairs: Pairs,
    sent_at: SentAt | Iterable[SentAt | None] | None,
    now: float,
    region: str,
    schedule: Schedule,
) -> AsyncIterator[list[NewPair]]:
    """Validated store records, `_ADD_CHUNK` at a time, each with its position and times."""
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
    position = 0
    async for items in _slices(pairs, _ADD_CHUNK):
        keys = validate_all(items, region, position)
        when = list(itertools.islice(times, len(keys)))
        if len(when) != len(keys):
            raise InvalidInputError("sent_at has fewer times than there are pairs", value=len(when))
        first = schedule.first_check
        yield [
            NewPair(phone, message_id, index, sent, first(sent))
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
