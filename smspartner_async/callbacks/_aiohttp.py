"""The receiver as an aiohttp handler; aiohttp is imported only when a request comes.

    app.router.add_route("*", "/smspartner/dlr/{token}", receiver.aiohttp_handler)

The body is read in chunks and given up past the receiver's `max_body`, whatever
the application's `client_max_size`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from ._receiver import CallbackReceiver

__all__ = ["handle"]

_CHUNK = 16 * 1024


async def handle(receiver: CallbackReceiver, request: web.Request) -> web.Response:
    from aiohttp import web

    token = request.match_info.get("token") or request.path.rstrip("/").rsplit("/", 1)[-1]
    length = request.content_length
    body = (
        None
        if length is not None and length > receiver.max_body
        else await _read(request, receiver.max_body)
    )
    if body is None:
        response = receiver.too_large(token)
    else:
        response = await receiver.handle(
            method=request.method,
            token=token,
            query=request.rel_url.raw_query_string,
            body=body,
            content_type=request.headers.get("content-type"),
        )
    headers = dict(response.headers)
    return web.Response(
        status=response.status,
        body=response.body,
        content_type=headers.pop("content-type").split(";", 1)[0],
        charset="utf-8",
        headers=headers,
    )


async def _read(request: web.Request, cap: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
