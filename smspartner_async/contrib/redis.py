"""The rate limit and the 429 pause of one API key, shared on Redis by every process using it.

Install the extra (`pip install 'smspartner-async[redis]'`) and give every client the same
Redis::

    client = SMSPartnerClient(
        api_key,
        max_requests_per_second=10,
        shared_limits="redis://127.0.0.1:6379/0",  # or a FlowBackend you built
    )

Every process that uses the same key, the same `max_requests_per_second` and the same Redis
(uvicorn workers, pods, job workers) then shares:

- one rate limit: together they start at most `max_requests_per_second` requests a second,
  evenly spaced, as one client does on its own (GCRA, no burst beyond a millisecond's worth);
- one 429 pause: a 429 with `Retry-After` answered to any of them stops all of them until then.

Concurrency slots (`max_concurrency`) stay per process: they size each process's pool.

A watch shared by a fleet of workers keeps its state in `RedisWatchStore`, in
`smspartner_async.watch.redis` with the other stores (importing it from here still works, with
a DeprecationWarning). Both send their commands through one helper
(`smspartner_async._redis_commands`): a bound per command, no lost cancellation, one error.

What lives in Redis, under `scope` (the client passes a digest of the API's URL and the key:
the key itself never reaches Redis):

- `smspartner:<scope>:rate`: the limiter's state, a hash holding one number (the theoretical
  arrival time of the next start), expiring by itself once idle;
- `smspartner:<scope>:pause`: present while a pause runs; its TTL is the time left.

How it works:

- The limiter is pyrate-limiter's GCRA on its `RedisStateStore`: one Lua script checks and
  advances the state atomically and answers how long to wait, so an attempt costs one
  round trip and the state never grows. `acquire()` is our loop around it: read the pause,
  attempt, else sleep the wait the script gave (plus up to 2 ms of jitter, or a tenth of
  the spacing if shorter) and try again. The library's clock and waits count milliseconds:
  a late wake-up is not made up, so the fleet gets about 99% of a 10/s limit and falls
  short of limits in the hundreds a second (78 to 91% of 1000/s in the benchmark).
  pyrate-limiter's own blocking loop is not used because the pause must be read before
  every attempt (a start granted during a pause and sent after it would burst). Attempts
  are serialized per process (an `asyncio.Lock`): one task per process polls Redis, the
  others queue in arrival order. When the poller's command fails (Redis down, or hung past
  `command_timeout`), every caller queued behind it fails with it at once, and so do the
  client's calls waiting for a concurrency slot (`FlowControl.slot`): no caller waits
  longer than its turn under the rate limit plus one `command_timeout`, whatever the
  concurrency (`tests/test_redis_flow.py` pauses Redis with SIGSTOP under 8 and 32 callers).
- Clocks: the limiter uses the library's own notion of time, each process's wall clock in
  milliseconds (pyrate-limiter's `WallClock`, which it prescribes for shared state), so
  hosts must keep their clocks in sync (NTP): a skew of d seconds between two hosts can
  shorten one gap between starts by d, and cannot raise the rate over time. The pause uses
  no client clock at all: Redis expires the key (`SET ... PX`).
- `pause(seconds)` stops this process at once (a local `PauseGate`) and shares the pause in
  a tracked task (a Lua script that only ever extends the key's TTL). `aclose()` waits up to
  a second for such tasks, then cancels them.
- `paused()` is synchronous, so it answers from this process's view: the pauses it set and
  those it read from Redis. It reads the shared pause in every `acquire()`, right before each
  rate-limit attempt, and in `wait_paused()` when a pause it knows of ends. So a process
  learns of another's 429 no later than its next request start; a start granted within
  one Redis round trip of the 429 may still go out, as requests already in flight do.
- Cancellation: a task cancelled while it sleeps holds nothing; one cancelled during a round
  trip may have had its start counted: a start lost, never one too many. A cancellation is
  never lost in Redis: redis-py sends each command through `asyncio.wait_for` when the client
  has a `socket_timeout` (redis-py 8.1 sets 5 s by default), and on Python 3.11 `wait_for`
  drops a cancellation that lands as the command completes (CPython gh-86296; measured here:
  about one cancellation in four that arrive during a command). So `from_url` gives its
  client no socket timeout and bounds each command with `asyncio.timeout` instead, and every
  command, on any client, is followed by a check that re-raises a cancellation it dropped.
- Redis unavailable: every Redis failure becomes `SharedLimitsUnavailableError`, raised from
  the call, a `ClientStateError`: batches raise it instead of returning failed items, and
  nothing is sent. There is no fallback to per-process limits, which would multiply the
  rate by the number of processes. Refused connections fail at once, a Redis that hangs
  within `command_timeout` (2 s). Once Redis answers again the next call works: the pool
  reconnects and the scripts are reloaded. A pause that could not be shared
  is logged as a warning and still holds in this process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
import warnings
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

from pyrate_limiter import GCRA, Decision, Rate, RedisStateStore, StateStore
from redis.asyncio import Redis

from .._errors import ClientStateError, InvalidInputError, SharedLimitsUnavailableError
from .._flow import PauseGate
from .._redis_commands import redis_command, redis_from_url

__all__ = ["RedisFlow", "SharedLimitsUnavailableError"]

# Moved to `smspartner_async.watch.redis` (the stores live together under the watch): the old
# names still work here, with a DeprecationWarning, until the next major version.
_MOVED = {"RedisWatchStore", "WatchStoreUnavailableError"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"smspartner_async.contrib.redis.{name} moved to smspartner_async.watch.redis",
            DeprecationWarning,
            stacklevel=2,
        )
        from ..watch import redis as moved

        return getattr(moved, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


T = TypeVar("T")

log = logging.getLogger("smspartner_async")

#: Key prefix in Redis; the scope and the part follow (`smspartner:<scope>:rate`).
PREFIX: Final = "smspartner"
DEFAULT_COMMAND_TIMEOUT: Final = 2.0
_SCOPE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# Seconds added at random to a rate-limit wait, so processes do not all wake at once: 2 ms,
# or a tenth of the spacing between starts when that is shorter (lateness is never made up).
_JITTER = 0.002
_CLOSE_WAIT = 1.0  # seconds aclose() gives pauses still being shared
_ALGORITHM: Final = GCRA()

# Extends the pause to ARGV[1] ms from now unless it already runs longer; answers the ms left.
_EXTEND_PAUSE: Final = """
local left = redis.call('PTTL', KEYS[1])
local wanted = tonumber(ARGV[1])
if left < wanted then
    redis.call('SET', KEYS[1], '1', 'PX', wanted)
    return wanted
end
return left
"""


def _check_rate(rate: object) -> float | None:
    if rate is None:
        return None
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or not rate > 0
    ):
        raise InvalidInputError(
            "max_requests_per_second must be a positive, finite number", value=rate
        )
    return float(rate)


def _check_scope(scope: object) -> str:
    if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
        raise InvalidInputError(
            "scope must be 1 to 128 letters, digits or '_.:-' (a name or digest, never a key)",
            value=scope,
        )
    return scope


def gcra_rate(rate: float) -> Rate:
    """`rate` starts a second, evenly spaced, as pyrate-limiter's GCRA counts them.

    GCRA spaces starts by `interval * 1000 / limit` microseconds (rounded up: never faster
    than asked); 1000 per `1e6 / rate` ms gives that spacing to the microsecond. The burst
    is what one millisecond holds, at least 1: no starts saved up while idle, like the
    in-process limiter, and rates above 1000/s stay reachable with a clock in milliseconds.
    """
    return Rate(1000, max(1, math.ceil(1_000_000 / rate)), burst=max(1, math.ceil(rate / 1000)))


class RedisFlow:
    """A `FlowBackend` whose rate limit and 429 pause are shared on Redis (see the module).

    Args:
        redis: An asyncio Redis client (`redis.asyncio.Redis`).
        scope: What the limits are shared by: processes with the same scope share them.
            The client passes a digest of the API's URL and the key; give your own name when
            you build a backend yourself, never the key.
        max_requests_per_second: The rate limit for all processes together; None shares
            only the pause. Give every process of a scope the same limit.
        owns_redis: Close `redis` in `aclose()` (`from_url` sets it).
        command_timeout: Seconds one Redis command may take before the call fails with
            `SharedLimitsUnavailableError`.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        scope: str,
        max_requests_per_second: float | None = None,
        owns_redis: bool = False,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        self.scope = _check_scope(scope)
        if not command_timeout > 0:
            raise InvalidInputError("command_timeout must be positive", value=command_timeout)
        self._command_timeout = command_timeout
        self.max_requests_per_second = _check_rate(max_requests_per_second)
        self._redis = redis
        self._owns_redis = owns_redis
        self._gate = PauseGate()
        self._pause_key = f"{PREFIX}:{scope}:pause"
        self._extend_pause = redis.register_script(_EXTEND_PAUSE)
        self._store: StateStore | None = None
        self._rates: list[Rate] = []
        self._jitter = _JITTER
        if self.max_requests_per_second is not None:
            self._jitter = min(_JITTER, 0.1 / self.max_requests_per_second)
            self._store = RedisStateStore(redis, f"{PREFIX}:{scope}:rate")
            self._rates = [gcra_rate(self.max_requests_per_second)]
        self._lock = asyncio.Lock()  # one rate-limit poller per process; FIFO for the rest
        # Failures of the poller: the callers queued behind it when one happens fail with it.
        self._outages = 0
        self._outage = ""
        self._sharing: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        scope: str,
        max_requests_per_second: float | None = None,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        **redis_options: Any,
    ) -> RedisFlow:
        """A backend on its own Redis client for `url` (`redis://`, `rediss://`, `unix://`).

        Connects on first use. `redis_options` go to `redis.asyncio.Redis.from_url`; by default
        a connect timeout of 2 s, no socket timeout (see the module) and one retry on
        connection errors.
        """
        _check_scope(scope)
        _check_rate(max_requests_per_second)
        redis = redis_from_url(url, **redis_options)
        return cls(
            redis,
            scope=scope,
            max_requests_per_second=max_requests_per_second,
            owns_redis=True,
            command_timeout=command_timeout,
        )

    def __repr__(self) -> str:
        # Never the URL: it may hold a password.
        return f"<RedisFlow scope={self.scope[:8]}… rate={self.max_requests_per_second}>"

    # -- FlowBackend ----------------------------------------------------------------------------

    async def wait_paused(self) -> None:
        """Return once no pause is running; when a known pause ends, re-read the shared one."""
        if self._gate.remaining() > 0:
            await self._wait_shared_pause()

    def paused(self) -> bool:
        """Whether a pause this process knows of runs now (see the module for the bound)."""
        return self._gate.remaining() > 0

    def pause(self, seconds: float) -> None:
        """Stop this process at once and every process of the scope within a round trip."""
        self._gate.pause(seconds)
        if self._closed or not math.isfinite(seconds) or seconds <= 0:
            return
        ms = math.ceil(seconds * 1000)
        task = asyncio.get_running_loop().create_task(
            self._share_pause(ms), name="smspartner-share-pause"
        )
        self._sharing.add(task)
        task.add_done_callback(self._pause_shared)

    async def acquire(self) -> None:
        """Wait for the shared pause and then for a start under the shared rate limit."""
        if self._closed:
            raise ClientStateError("the shared limits have been closed")
        if self._store is None:
            await self._wait_shared_pause()
            return
        outages = self._outages
        async with self._lock:
            if self._outages != outages:
                # The caller ahead found Redis down or hung while this one waited its turn:
                # fail now rather than wait out another command timeout in the queue.
                raise SharedLimitsUnavailableError(self._outage)
            while True:
                try:
                    await self._wait_shared_pause()
                    now = self._now_ms()
                    decision = await self._attempt(self._store, now)
                except SharedLimitsUnavailableError as exc:
                    self._outages += 1
                    self._outage = str(exc)
                    raise
                if decision.allowed:
                    return
                wait_ms = decision.retry_after_ms or 1
                wake = (now + wait_ms) / 1000 - time.time()
                jitter = random.uniform(0, self._jitter)  # noqa: S311 - not a secret
                await asyncio.sleep(max(wake, 0.0) + jitter)

    async def aclose(self) -> None:
        """Finish sharing pauses (up to a second, then cancel) and close an owned client."""
        if self._closed:
            return
        self._closed = True
        if self._sharing:
            _, pending = await asyncio.wait(set(self._sharing), timeout=_CLOSE_WAIT)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._owns_redis:
            await self._redis.aclose()

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _now_ms() -> int:
        # pyrate-limiter's WallClock: epoch milliseconds, comparable across processes and hosts.
        return time.time_ns() // 1_000_000

    async def _command(self, what: str, command: Awaitable[T]) -> T:
        return await redis_command(
            command,
            what=what,
            within=self._command_timeout,
            service="shared limits",
            error=SharedLimitsUnavailableError,
        )

    async def _attempt(self, store: StateStore, now: int) -> Decision:
        reply = store.check(_ALGORITHM, self._rates, now, 1)
        if isinstance(reply, Decision):  # pragma: no cover - a sync client
            return reply
        return await self._command("taking a start under the shared rate limit", reply)

    async def _wait_shared_pause(self) -> None:
        while True:
            left = self._gate.remaining()
            if left > 0:
                await asyncio.sleep(left)
                continue
            left_ms = int(
                await self._command("reading the shared pause", self._redis.pttl(self._pause_key))
            )
            if left_ms <= 0:  # -2: no pause; -1 cannot happen (the key is always set with PX)
                return
            self._gate.pause(left_ms / 1000)

    async def _share_pause(self, ms: int) -> None:
        await self._command(
            "sharing a pause", self._extend_pause(keys=[self._pause_key], args=[ms])
        )

    def _pause_shared(self, task: asyncio.Task[None]) -> None:
        self._sharing.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.warning(
                "a 429 pause could not be shared with other processes (%s); this process "
                "still pauses",
                exc,
            )
