"""One Redis command, bounded in time and translated: what the shared limiter
(`contrib.redis.RedisFlow`) and the fleet's watch store (`watch.redis.RedisWatchStore`)
share.

- **A bound per command** (`asyncio.timeout`), never redis-py's `socket_timeout`: with
  one, redis-py sends through `asyncio.wait_for`, which on Python 3.11 drops a
  cancellation that lands as the command completes (CPython gh-86296; measured here:
  about one cancellation in four that arrive during a command). So clients built here
  have no socket timeout.
- **No lost cancellation**, whatever the client: a command that returns although its
  task was cancelled meanwhile (an injected client with a socket timeout) re-raises
  the cancellation.
- **One error per service**: any Redis failure, a refused connection or a command past
  its bound becomes the caller's `ClientStateError` subclass, whose message names the
  step; redis-py's messages name the host and port, never a password.

Imports redis: only the modules of the `redis` extra import this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from ._errors import ClientStateError

__all__ = ["DEFAULT_REDIS_OPTIONS", "redis_command", "redis_from_url"]

T = TypeVar("T")

#: Options a client built from a URL gets unless told otherwise (see the module).
DEFAULT_REDIS_OPTIONS: Final[dict[str, Any]] = {
    "socket_timeout": None,
    "socket_connect_timeout": 2.0,
}


def redis_from_url(url: str, **options: Any) -> Redis:
    """A client for `url` with no socket timeout and one quick retry on a dropped connection."""
    merged = {
        **DEFAULT_REDIS_OPTIONS,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
        **options,
    }
    return Redis.from_url(url, **merged)


async def redis_command(
    command: Awaitable[T],
    *,
    what: str,
    within: float,
    service: str,
    error: type[ClientStateError],
) -> T:
    """Await one Redis command for `within` seconds at most; never lose a cancellation.

    Raises `error("<service> unavailable (<what>): ...")` for any Redis failure.
    """
    task = asyncio.current_task()
    cancels = task.cancelling() if task is not None else 0
    try:
        async with asyncio.timeout(within):
            result = await command
    except (RedisError, OSError) as exc:  # TimeoutError is an OSError
        raise error(f"{service} unavailable ({what}): {type(exc).__name__}: {exc}") from exc
    if task is not None and task.cancelling() > cancels:
        # Cancelled during the command, which returned anyway. Deliver it.
        raise asyncio.CancelledError
    return result
