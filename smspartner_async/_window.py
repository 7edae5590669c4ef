"""Run a worker over a stream of items, a bounded number at once (aiometer's shape).

The next item is read, and its task created, only when a place is free: a
million pairs never become a million pending tasks, and the input is read only
as fast as the API answers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from typing import TypeVar

__all__ = ["as_async", "run_windowed"]

T = TypeVar("T")
R = TypeVar("R")


async def run_windowed(
    items: AsyncIterator[T] | Iterable[T],
    worker: Callable[[T], Awaitable[R]],
    limit: int,
    *,
    ordered: bool,
) -> AsyncGenerator[R, None]:
    """`worker(item)` for each item, at most `limit` at once, yielded in input or completion order.

    On the first exception, or when the consumer stops early, every task still
    in flight is cancelled and awaited before this generator finishes.
    """
    # An async iterator is consumed (and closed) as it is; a plain iterable gets a wrapper.
    source = aiter(items) if isinstance(items, AsyncIterator) else as_async(items)
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
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                # The oldest finished task, not any member of the `done` set: set order could
                # pass over one finished task round after round, holding back its results
                # (and a consumer restoring input order, with everything after them).
                task = next(t for t in running if t.done())
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


async def as_async(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """Any iterable as an async iterator."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
