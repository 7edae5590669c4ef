"""The receiver as an ASGI 3 app, for FastAPI, Starlette or any ASGI server.

Raw ASGI, like the sandbox: no web framework becomes a dependency. The token
is the last segment of the path, wherever the app is mounted: Starlette's
`Mount` passes the full path (with `root_path`) in recent versions and the rest
of it in older ones, and the last segment is the token either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._receiver import CallbackReceiver, CallbackResponse

__all__ = ["CallbackApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class CallbackApp:
    """`CallbackReceiver.asgi`: answers each request through the receiver's `handle`."""

    def __init__(self, receiver: CallbackReceiver) -> None:
        self.receiver = receiver

    def __repr__(self) -> str:
        return f"CallbackApp({self.receiver!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # a websocket is not a callback: closing the scope refuses it
        receiver = self.receiver
        token = _last_segment(scope.get("path", ""))
        headers = _headers(scope)
        content_type = headers.get("content-type")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > receiver.max_body:
            body: bytes | None = None
        else:
            body = await _read_body(receive, receiver.max_body)
        if body is None:
            response = receiver.too_large(token)
        else:
            response = await receiver.handle(
                method=scope.get("method", "GET"),
                token=token,
                query=scope.get("query_string", b""),
                body=body,
                content_type=content_type,
            )
        await _send(send, response)


def _last_segment(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _headers(scope: Scope) -> dict[str, str]:
    wanted = (b"content-type", b"content-length")
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.lower() in wanted
    }


async def _read_body(receive: Receive, cap: int) -> bytes | None:
    """The body, or None as soon as it passes `cap` bytes (or the client left)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, response: CallbackResponse) -> None:
    headers = [(name.encode(), value.encode()) for name, value in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
