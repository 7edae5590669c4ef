"""The watch's outbox side: take changes from the store, hand them over, acknowledge them.

Changes come out of the store's outbox in commit order (a pair's in its `sequence`
order), a batch at a time (`take_changes`, up to `TAKE` changes, held under a lease
in a shared store). How they are acknowledged decides what a crash can repeat:

- `changes()` (and `on_change`) acknowledges each change when the next one is asked
  for (or the callback has returned): a crash repeats at most the change in hand.
  One store call per change; from a shared store it takes 128 changes at a time, so
  that a take's lease covers handing them all over.
- `batches()` (and `on_batch`) acknowledges a whole batch in one store call when the
  next batch is asked for (or the callback has returned): a crash repeats at most
  that batch (`TAKE` changes). What a fleet's consumer wants to keep up.

A change delivered again carries the same `id`: a consumer that must not act twice
drops ids it has seen.

It waits for work on the store's `bells.outbox` (changes committed or handed back,
by any process of a shared store), at least every `bells.recheck` seconds (a taken
batch whose lease ran out), and for the watcher stopping. It tells "idle" (nothing
pending, nothing left to report) from the store alone, and from the intake's count
of adds in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from typing import Any, Final, TypeAlias

from .._errors import ClientStateError
from ._bell import Bell
from ._intake import Intake
from ._records import StatusChange
from ._store import WatchStore

__all__ = ["TAKE", "OnBatch", "OnChange", "Outbox"]

#: Changes taken from the store at once by `batches()`: the most a crash repeats then.
TAKE: Final = 1_024
# Changes taken at once by `changes()` from a shared store, acknowledged one by one: a take is
# a lease there, and a smaller batch is through well within it (a round trip more per 128
# changes). A store with one owner holds a take until it is opened again: no lease to outlive.
_TAKE_SHARED_ONE_BY_ONE: Final = 128

#: Called with each change; may be a coroutine function.
OnChange: TypeAlias = Callable[[StatusChange], Any]
#: Called with each batch of changes (in order, up to `TAKE`); may be a coroutine function.
OnBatch: TypeAlias = Callable[[Sequence[StatusChange]], Any]


class Outbox:
    """Hands the store's changes to one reader at a time, and acknowledges them."""

    def __init__(
        self,
        store: WatchStore,
        intake: Intake,
        *,
        clock: Callable[[], float],
        lease: float,
        stopped: asyncio.Event,
        running: Callable[[], bool],
        check: Callable[[], None],
    ) -> None:
        self._store = store
        self._intake = intake
        self._clock = clock
        self._lease = lease
        self._stopped = stopped  # the watcher closed, failed, or its poller ended
        self._running = running
        self._check = check  # raises what stopped the watcher, if anything did
        self._reading = False
        self._buffer: deque[StatusChange] = deque()  # taken, not yet handed over
        shared = store.bells.recheck is not None
        self._take_one_by_one = _TAKE_SHARED_ONE_BY_ONE if shared else TAKE

    async def changes(self, until_idle: bool) -> AsyncGenerator[StatusChange, None]:
        """One change at a time, each acknowledged when the next one is asked for."""
        buffer, store = self._buffer, self._store
        with self._reader():
            while True:
                if not buffer and not await self._fill(until_idle, self._take_one_by_one):
                    return
                change = buffer.popleft()
                try:
                    yield change
                except GeneratorExit:
                    buffer.appendleft(change)
                    raise
                if not self._running():
                    buffer.appendleft(change)  # the store is closed: delivered again next time
                    return
                await store.ack((change.id,))

    async def batches(self, until_idle: bool) -> AsyncGenerator[list[StatusChange], None]:
        """A batch at a time, each acknowledged as one when the next one is asked for."""
        buffer, store = self._buffer, self._store
        with self._reader():
            while True:
                if not buffer and not await self._fill(until_idle, TAKE):
                    return
                batch = list(buffer)
                buffer.clear()
                try:
                    yield batch
                except GeneratorExit:
                    buffer.extendleft(reversed(batch))
                    raise
                if not self._running():
                    buffer.extendleft(reversed(batch))
                    return
                await store.ack([change.id for change in batch])

    async def deliver(self, on_change: OnChange) -> None:
        async with aclosing(self.changes(until_idle=False)) as changes:
            async for change in changes:
                outcome = on_change(change)
                if inspect.isawaitable(outcome):
                    await outcome

    async def deliver_batches(self, on_batch: OnBatch) -> None:
        async with aclosing(self.batches(until_idle=False)) as batches:
            async for batch in batches:
                outcome = on_batch(batch)
                if inspect.isawaitable(outcome):
                    await outcome

    async def idle(self) -> bool:
        """Nothing pending, nothing unreported, no add in flight: as the store says now."""
        intake, store = self._intake, self._store
        adds = intake.adds
        if intake.busy or await store.next_due() is not None:
            return False
        return await store.unreported() == 0 and intake.adds == adds and not intake.busy

    async def wait_idle(self) -> None:
        bells = self._store.bells
        while True:
            seen = bells.room.rung  # idle comes with the last acknowledgement
            self._check()
            if await self.idle() or self._stopped.is_set():
                return
            await self._wait(bells.room, seen)

    # -- internals ---------------------------------------------------------------------

    async def _fill(self, until_idle: bool, limit: int) -> bool:
        """Take the next batch into the buffer; False when the reading is over."""
        store, intake, bells = self._store, self._intake, self._store.bells
        while True:
            if not self._running():
                return False
            seen = bells.outbox.rung
            adds = intake.adds
            nothing_pending = not intake.busy and await store.next_due() is None
            batch = await store.take_changes(now=self._clock(), limit=limit, lease=self._lease)
            if batch:
                self._buffer.extend(batch)
                return True
            self._check()
            if self._stopped.is_set():
                return False
            if until_idle and nothing_pending and intake.adds == adds and not intake.busy:
                return False
            await self._wait(bells.outbox, seen)

    async def _wait(self, bell: Bell, seen: int) -> None:
        """Until `bell` rings past `seen`, its store's `recheck` runs out, or the watcher stops."""
        ring = asyncio.ensure_future(bell.wait(seen, self._store.bells.recheck))
        stop = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait((ring, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ring.cancel()
            stop.cancel()
            await asyncio.wait((ring, stop))

    @contextlib.contextmanager
    def _reader(self) -> Iterator[None]:
        """One reader at a time."""
        if self._reading:
            raise ClientStateError("changes() is already being read")
        self._reading = True
        try:
            yield
        finally:
            self._reading = False
