"""A pool's event loop: bound on first use, and the pool closed when that loop ends.

Sockets belong to the loop they were opened in. A client made at import time
and used inside `asyncio.run` keeps open connections after that loop has ended,
and closing them later, from another loop, goes through a dead loop ("Event loop
is closed", unclosed-socket warnings). So a pool binds itself to the loop of its
first request, and starts there a guard task that closes the pool when the loop
ends: `asyncio.run` (and anyio's runner, the sync client's, pytest-asyncio's)
cancels the tasks still pending before closing its loop, and the guard closes
the pool then, inside the loop that owns the sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .._errors import ClientStateError

__all__ = ["LoopBinding", "closed_client_error"]

_OTHER_LOOP = (
    "this client is bound to the event loop it was first used in; create one client per "
    "event loop (e.g. inside the coroutine given to asyncio.run)"
)


def closed_client_error(detail: str = "") -> ClientStateError:
    """The library's own words for a call on a closed client (never httpx's)."""
    return ClientStateError(
        "this SMS Partner client is closed (aclose() or close() was called)"
        + (f" {detail}" if detail else "")
        + "; create a new client, and keep one open for the life of the process"
    )


class LoopBinding:
    """The loop a pool's connections live in, and the task that closes them when it ends.

    `enter()` runs on every request (a cheap identity check once bound);
    `close()` runs the pool's closer once, from whichever side gets there first:
    the owner's `aclose()` in the same loop, or the guard as the loop ends.
    """

    __slots__ = ("_closer", "_done", "_guard", "loop")

    def __init__(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closer = closer
        self._guard: asyncio.Task[None] | None = None
        self._done = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def enter(self) -> None:
        """Bind to the running loop on first use; refuse any other loop after that."""
        loop = asyncio.get_running_loop()
        if loop is self.loop:
            return
        if self.loop is not None:
            raise ClientStateError(_OTHER_LOOP)
        self.loop = loop
        self._guard = loop.create_task(self._watch(), name="smspartner-async pool guard")

    async def _watch(self) -> None:
        try:
            await asyncio.Future()  # until the loop ends (or `close` cancels it)
        finally:
            await self._close_once()

    async def _close_once(self) -> None:
        if not self._done:
            self._done = True
            await self._closer()

    async def close(self) -> None:
        """Close the pool now, in its own loop; from another loop, only if nothing is left open.

        Raises:
            ClientStateError: The pool's loop is still running elsewhere (another thread),
                or ended without cancelling its tasks (`loop.close()` without `asyncio.run`):
                its sockets can only be closed by that loop.
        """
        guard, self._guard = self._guard, None
        if self.loop is None or self._done:
            self._done = True
            return
        if self.loop is asyncio.get_running_loop():
            if guard is not None:
                guard.cancel()
            await self._close_once()
            return
        ended = self.loop.is_closed()
        raise ClientStateError(
            "this client still holds connections of the event loop it was used in, which "
            + (
                "was closed without ending its tasks (loop.close() instead of asyncio.run)"
                if ended
                else "is still running (in another thread)"
            )
            + ": close the client inside that loop (`async with SMSPartnerClient(...)` in "
            "the coroutine given to asyncio.run)"
        )
