"""Where a cancellation may land in a request going through httpcore's pool.

`_call.Caller._send` runs each HTTP exchange in a task and cancels it only where httpcore
cleans up after a cancellation; this object, given to httpcore as the request's `trace`
extension (public: httpcore calls it at the start and end of each step), says where that is.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Exposure"]


class Exposure:
    """Whether an exchange is where a cancellation would corrupt httpcore's pool.

    It is the request's `trace` extension, which httpcore calls at the start and end
    of each step. In httpcore 1.0.9 a cancellation is cleaned up after (the connection
    closed or marked failed, the request taken out of the pool) inside a connect, from
    the start of the request's headers to the end of the response's, and while the
    body is read. It is not from entering the pool until the connect or the request
    starts (the pool's and the connection's locks), from the end of a connect until
    the request starts, nor while a response closes (`exposed`); the short way from
    the response's headers to its body is counted as exposed too, to be safe. An
    exchange whose caller left while it was exposed (`abandoned`) cancels itself at
    the next start of a covered step, or ends on its own if it was closing.
    """

    __slots__ = ("abandoned", "exposed")

    #: Starts of steps inside httpcore's cleanup: where an abandoned exchange stops.
    _COVERED = frozenset(
        (
            "connection.connect_tcp.started",
            "http11.send_request_headers.started",
            "http11.receive_response_body.started",
        )
    )
    #: The end of a connect (the request has not started), the end of a response's headers
    #: (a proxy's tunnel goes on after its CONNECT's; the body has not started) and the
    #: start of a close.
    _EXPOSING = frozenset(
        (
            "connection.connect_tcp.complete",
            "http11.receive_response_headers.complete",
            "http11.response_closed.started",
        )
    )

    def __init__(self, exposed: bool) -> None:
        self.exposed = exposed
        self.abandoned = False

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event in self._COVERED:
            if self.abandoned:
                raise asyncio.CancelledError  # inside httpcore's cleanup: it closes the rest
            self.exposed = False
        elif event in self._EXPOSING:
            self.exposed = True

    def abandon(self, task: asyncio.Task[Any]) -> None:
        """The caller is gone: cancel the exchange now, or let it stop where it may."""
        if self.exposed:
            self.abandoned = True
        else:
            task.cancel()
