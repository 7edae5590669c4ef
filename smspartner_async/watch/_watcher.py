"""The watcher: three parts around a store, and the lifecycle that runs them.

- the *intake* (`_intake`) validates pairs, schedules their first check and adds them
  to the store; it also takes hints;
- the *poller* (`_poller`) claims the pairs due, asks the API in full calls, decides
  and commits, in a task of its own;
- the *outbox* (`_outbox`) takes changes from the store, hands them to an iterator or
  a callback (in a task of its own then) and acknowledges them.

They share nothing but the store: each waits for work on the store's bells, which any
process sharing the store makes ring, so a fleet of workers on one Redis sees every
pair whoever added it. This module starts and stops the parts, and keeps what stopped
them (the one error that ends a watch).

Time comes from `clock` and waits go through `sleep`, so a test or a sandbox run
covers a 48-hour window in simulated time. A round's decisions all use the time at
which it started.

Pages hold `batch_size x 2 x max_concurrency` pairs (8,000 by default), a multiple
of the batch size: every call of a round is full but its last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Coroutine, Iterable
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .._errors import ClientStateError, InvalidInputError
from .._validate import Pairs
from ._intake import Clock, Intake, SentAt
from ._outbox import TAKE, OnBatch, OnChange, Outbox
from ._poller import OnRound, Poller, Sleep, WatchRound
from ._records import StatusChange
from ._schedule import Schedule
from ._store import MemoryStore, WatchStore

if TYPE_CHECKING:
    from .._client import SMSPartnerClient

__all__ = [
    "TAKE",
    "Clock",
    "OnBatch",
    "OnChange",
    "OnRound",
    "SentAt",
    "Sleep",
    "WatchRound",
    "Watcher",
    "watch",
]

log = logging.getLogger("smspartner_async.watch")


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
    again. With a shared store (`RedisWatchStore`), every worker's watcher polls and
    reports the fleet's pairs, whichever worker added them.

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
        on_batch: Called with each batch of changes (up to `TAKE`, in order), instead of
            `on_change`; the batch is acknowledged as one once the call is done, so a
            crash may deliver that whole batch again.
        on_round: Called with a `WatchRound` after each round (metrics).
        clock: Epoch seconds now (`time.time`).
        sleep: Waits that many seconds (`asyncio.sleep`); inject both to simulate time.
        retention: Seconds a settled pair is remembered (adding it again meanwhile does
            nothing); None for ever.
        page_size: Pairs claimed and asked at once; a multiple of the client's batch size
            by default (8,000 with the default options).
        max_backlog: Changes found and not yet acknowledged (in the whole store) past
            which polling pauses until the consumers catch up (bounds the outbox).
        lease: Seconds a claim or a take holds its pairs or changes in a store shared by
            several processes: longer than a page takes to ask, and than the consumer
            takes over the changes of a take (128 with `changes()` and `on_change`, up
            to `TAKE` with `batches()` and `on_batch`); past it, another worker may
            deliver the same changes again.
    """

    def __init__(
        self,
        client: SMSPartnerClient,
        *,
        store: WatchStore | None = None,
        schedule: Schedule | None = None,
        on_change: OnChange | None = None,
        on_batch: OnBatch | None = None,
        on_round: OnRound | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        retention: float | None = 7 * 86_400.0,
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
        if on_change is not None and on_batch is not None:
            raise InvalidInputError("give on_change or on_batch, not both", value="on_batch")
        self._client = client
        self._store: WatchStore = store if store is not None else MemoryStore()
        self._on_change = on_change
        self._on_batch = on_batch
        clock = clock if clock is not None else time.time
        schedule = schedule if schedule is not None else Schedule()
        self._state = _State.NEW
        self._failure: BaseException | None = None
        self._failure_raised = False
        self._stopped = asyncio.Event()  # closed, failed, or the poller ended
        self._poller_task: asyncio.Task[None] | None = None
        self._deliverer: asyncio.Task[None] | None = None
        self._intake = Intake(self._store, schedule, region, clock)
        self._poller = Poller(
            client,
            self._store,
            schedule=schedule,
            clock=clock,
            sleep=sleep if sleep is not None else asyncio.sleep,
            page_size=page_size,
            lease=float(lease),
            max_backlog=max_backlog,
            retention=retention,
            on_round=on_round,
        )
        self._outbox = Outbox(
            self._store,
            self._intake,
            clock=clock,
            lease=float(lease),
            stopped=self._stopped,
            running=self._running,
            check=self._raise_failure,
        )

    def __repr__(self) -> str:
        return f"Watcher(store={self._store!r}, state={self._state!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != _State.NEW:
            raise ClientStateError("a Watcher runs once; create another one")
        await self._store.open()
        self._state = _State.RUNNING
        self._poller_task = asyncio.create_task(self._poll(), name="smspartner-watch-poller")
        if self._on_change is not None:
            self._deliverer = asyncio.create_task(
                self._deliver(self._outbox.deliver(self._on_change)),
                name="smspartner-watch-deliverer",
            )
        elif self._on_batch is not None:
            self._deliverer = asyncio.create_task(
                self._deliver(self._outbox.deliver_batches(self._on_batch)),
                name="smspartner-watch-deliverer",
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
        self._stopped.set()
        tasks = [task for task in (self._poller_task, self._deliverer) if task is not None]
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
        if self._deliverer is not None and not self._deliverer.done():
            await asyncio.wait([self._deliverer])  # it delivers what was found, then ends
        self._raise_failure()

    async def wait_idle(self) -> None:
        """Until no pair is pending and every change has been acknowledged.

        Needs a consumer: `on_change`, `on_batch`, or a task iterating `changes()`.
        """
        await self._outbox.wait_idle()
        self._raise_failure()

    # -- the intake --------------------------------------------------------------------

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
        self._check_running()
        return await self._intake.add(pairs, sent_at)

    async def hint(self, message_id: int | str, phone_number: str | None = None) -> int:
        """Ask about this message's pair (every pending pair of the message, without a
        phone number) in the next round: a delivery report says the API has news.

        A hint is only that: the next `multi_status` call says what happened, so a
        forged one costs a look-up, never a status. The store keeps it (any worker of a
        fleet acts on it); a hint for a pair not added yet is kept for a while and makes
        the pair due once it is (`WatchStore.hint`). Returns how many pending pairs it
        made due. Raises `InvalidInputError` for a bad phone number or message id.
        """
        self._check_running()
        return await self._intake.hint(message_id, phone_number)

    # -- the outbox --------------------------------------------------------------------

    def changes(self, *, until_idle: bool = False) -> AsyncGenerator[StatusChange, None]:
        """The changes found, in order, each acknowledged when the next one is asked for.

        Runs as long as the watcher does (it ends when the watcher or its client is
        closed, once what was found has been delivered), or, with `until_idle`, until
        no pair is pending any more. Leaving the loop early (`break`, an exception)
        does not acknowledge the change in hand: the next `changes()` starts with it.
        One reader at a time, and none with `on_change` or `on_batch`.
        """
        self._check_readable()
        return self._outbox.changes(until_idle)

    def batches(self, *, until_idle: bool = False) -> AsyncGenerator[list[StatusChange], None]:
        """The changes found, in order, a batch (up to `TAKE`) at a time, each batch
        acknowledged as one when the next one is asked for.

        One store call per batch rather than per change: what a consumer keeping up with
        a fleet wants. A crash (or leaving the loop early) delivers the batch in hand
        again, whole. Otherwise as `changes()`.
        """
        self._check_readable()
        return self._outbox.batches(until_idle)

    # -- internals ----------------------------------------------------------------------

    def _running(self) -> bool:
        return self._state == _State.RUNNING

    def _check_running(self) -> None:
        if self._state != _State.RUNNING or self._poller_task is None or self._poller_task.done():
            raise ClientStateError("this watcher is not running")

    def _check_readable(self) -> None:
        if self._on_change is not None or self._on_batch is not None:
            raise ClientStateError("this watcher delivers its changes to its callback")
        if self._state == _State.NEW:
            raise ClientStateError("enter the watcher (async with) before reading changes")

    async def _poll(self) -> None:
        try:
            await self._poller.run()
        except ClientStateError as exc:
            if not self._client.is_closed:
                self._fail(exc)
        except Exception as exc:
            self._fail(exc)
        finally:
            self._stopped.set()

    async def _deliver(self, delivery: Coroutine[Any, Any, None]) -> None:
        try:
            await delivery
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
            log.error("watch stopped: %s", type(exc).__name__)
        for task in (self._poller_task, self._deliverer):
            if task is not None and task is not asyncio.current_task() and not task.done():
                task.cancel()
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


def _client_limits(client: SMSPartnerClient) -> tuple[int, int, str]:
    """The client's batch size, concurrency and region: pages are sized from them."""
    try:
        return client.batch_size, client.max_concurrency, client.default_region
    except AttributeError:
        raise InvalidInputError(
            "client must be an SMSPartnerClient", value=type(client).__name__
        ) from None
