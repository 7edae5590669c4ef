"""Flow control: what every request of a client waits for before it is sent.

Three things, shared by a client and every view `with_options` makes of it:
- concurrency slots: at most `max_concurrency` requests in flight (the pool is
  sized to match, so no request ever waits for a connection: no `PoolTimeout`);
- the pause: a 429 with `Retry-After` stops every request until then, and the
  wait holds no slot;
- the rate limit: at most `max_requests_per_second` request starts, booked once
  a slot is held so that slots freed together cannot burst.

The pause and the rate limit live in a `FlowBackend`: `LocalFlow` for one
process (the default), or one shared by every process using the same key (the
Redis backend in `smspartner_async.contrib.redis`). Slots stay per process:
they size this process's pool.

Why not stamina, tenacity or aiolimiter: a wait here depends on the whole
client (one pause for all, slots, an even schedule), not on one attempt, and the
local backend fits in this page.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Protocol, runtime_checkable

from ._errors import SharedLimitsUnavailableError

__all__ = ["FlowBackend", "FlowControl", "LocalFlow", "PauseGate", "RateLimiter"]


class PauseGate:
    """One pause shared by every request of a client (a 429 stops them all)."""

    def __init__(self) -> None:
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._until = max(self._until, loop.time() + seconds)

    def remaining(self) -> float:
        return max(0.0, self._until - asyncio.get_running_loop().time())

    async def wait(self) -> None:
        # A sleep loop, not an Event: a later 429 may push the end further out.
        while (left := self.remaining()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)


class RateLimiter:
    """At most `rate` request starts per second, evenly spaced, for a whole client.

    Each caller books the next free start time and sleeps until it: no lock,
    no background task, fair in arrival order. A caller cancelled while it
    sleeps gives its start time back, so the next caller takes it instead of
    leaving a hole in the schedule.
    """

    def __init__(self, rate: float) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"max_requests_per_second must be a positive number, not {rate!r}")
        self._interval = 1.0 / rate
        self._next = 0.0
        self._last: float | None = None  # the latest start booked, while it can be rolled back
        self._given_back: list[float] = []  # a heap of start times cancelled callers left

    async def acquire(self) -> None:
        now = asyncio.get_running_loop().time()
        start = self._book(now)
        if start <= now:
            return
        try:
            await asyncio.sleep(start - now)
        except asyncio.CancelledError:
            self._give_back(start)
            raise

    def _book(self, now: float) -> float:
        while self._given_back:
            start = heapq.heappop(self._given_back)
            if start >= now:
                return start
            # In the past: that capacity went unused, and using it now could burst.
        start = max(self._next, now)
        self._next = start + self._interval
        self._last = start
        return start

    def _give_back(self, start: float) -> None:
        if start == self._last:
            self._next, self._last = start, None
        else:
            heapq.heappush(self._given_back, start)


@runtime_checkable
class FlowBackend(Protocol):
    """The pause and the rate limit, for one process or for every process sharing a key.

    A backend is bound to one client (one API key); `pause` is synchronous
    because the call layer must stop this process at once, while sharing the
    pause with other processes may take a round trip.
    """

    async def wait_paused(self) -> None:
        """Return once no pause is running (holding no concurrency slot meanwhile)."""
        ...

    def paused(self) -> bool:
        """Whether a pause known to this process is running now."""
        ...

    def pause(self, seconds: float) -> None:
        """Stop every request for `seconds` (a 429's `Retry-After`)."""
        ...

    async def acquire(self) -> None:
        """Wait for a rate-limit start; called with a concurrency slot held.

        A backend whose shared state cannot be reached raises
        `SharedLimitsUnavailableError`: the client's calls waiting for a slot then fail
        with it at once (`FlowControl.slot`).
        """
        ...

    async def aclose(self) -> None:
        """Release what the backend holds (connections, tasks)."""
        ...


class LocalFlow:
    """The pause and the rate limit of one process."""

    def __init__(self, max_requests_per_second: float | None = None) -> None:
        self.gate = PauseGate()
        self.limiter = RateLimiter(max_requests_per_second) if max_requests_per_second else None

    async def wait_paused(self) -> None:
        await self.gate.wait()

    def paused(self) -> bool:
        return self.gate.remaining() > 0

    def pause(self, seconds: float) -> None:
        self.gate.pause(seconds)

    async def acquire(self) -> None:
        if self.limiter is not None:
            await self.limiter.acquire()

    async def aclose(self) -> None:
        return None


class FlowControl:
    """The concurrency slots of one client, and its backend's pause and rate limit."""

    def __init__(self, max_concurrency: int, backend: FlowBackend) -> None:
        self.max_concurrency = max_concurrency
        self.slots = asyncio.Semaphore(max_concurrency)
        self.backend = backend
        # The shared limits' failures so far, and the latest one's message.
        self._outages = 0
        self._outage = ""

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Held while one request is in flight; entered once the pause is over.

        A call that waited for a slot while the shared limits failed (Redis down or hung)
        fails at once with the same error when it gets the slot: it would otherwise start
        a wait of its own on the same Redis, one `max_concurrency` wave after another,
        each as long as the command timeout (`tests/test_redis_flow.py`).
        """
        outages = self._outages
        while True:
            await self._backend_wait(self.backend.wait_paused())
            async with self.slots:
                if self._outages != outages:
                    raise SharedLimitsUnavailableError(self._outage)
                if self.backend.paused():
                    continue  # a 429 arrived while we queued for the slot
                await self._backend_wait(self.backend.acquire())
                yield
                return

    async def _backend_wait(self, wait: Coroutine[Any, Any, None]) -> None:
        try:
            await wait
        except SharedLimitsUnavailableError as exc:
            self._outages += 1
            self._outage = str(exc)
            raise

    def pause(self, seconds: float) -> None:
        """Stop every request of the client for `seconds` (a 429's `Retry-After`)."""
        self.backend.pause(seconds)

    def busy(self) -> bool:
        """Whether a request is waiting for a slot right now."""
        return self.slots.locked()
