"""An aiohttp bot backend: "what became of this SMS?" for one pair or a batch.

    SMSPARTNER_API_KEY=... python examples/aiohttp_app.py    # http://127.0.0.1:8020

Against the emulator instead of the API (any key; `SMSPARTNER_BASE_URL` points the client):

    python -m smspartner_async.sandbox --any-key &
    export SMSPARTNER_API_KEY=demo SMSPARTNER_BASE_URL=http://127.0.0.1:8000/v1
    python examples/aiohttp_app.py

The client lives in a `cleanup_ctx` generator: created once when the app
starts (inside the server's loop, which it binds to), closed when it stops,
and reached through a typed `AppKey`. Handlers never build their own client:
a client per request opens a pool per request and leaks sockets under load.

Cancellation: aiohttp only cancels a handler whose caller hung up when the
server is started with `handler_cancellation=True` (as below); the client
then cancels its calls in flight and frees their connections. Each handler
also bounds its wait with `asyncio.timeout`, since a chat user will not wait
for a minute of retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web

from smspartner_async import (
    InvalidInputError,
    MultiStatusResult,
    NotFoundError,
    SMSPartnerClient,
    SMSPartnerError,
)

ClientFactory = Callable[[], AbstractAsyncContextManager[SMSPartnerClient]]

CLIENT = web.AppKey("smspartner_client", SMSPartnerClient)
HANDLER_BUDGET = 15.0
MAX_PAIRS_PER_REQUEST = 10_000


def create_app(client_factory: ClientFactory = SMSPartnerClient) -> web.Application:
    """The app; `client_factory` builds its one client (tests pass a sandbox-backed one)."""

    async def smspartner_client(app: web.Application) -> AsyncIterator[None]:
        async with client_factory() as client:
            app[CLIENT] = client
            yield

    app = web.Application()
    app.cleanup_ctx.append(smspartner_client)
    app.router.add_get("/status/{phone}/{message_id}", one_status)
    app.router.add_post("/statuses", batch_status)
    return app


async def one_status(request: web.Request) -> web.Response:
    """A bot command's answer: one line of text for a person, plus the fields for a program."""
    client = request.app[CLIENT]
    phone, message_id = request.match_info["phone"], request.match_info["message_id"]
    try:
        async with asyncio.timeout(HANDLER_BUDGET):
            status = await client.message_status(phone, message_id)
    except InvalidInputError as exc:
        return web.json_response({"reply": f"I cannot read that: {exc}"}, status=400)
    except NotFoundError:
        return web.json_response({"reply": "No such message for that number."}, status=404)
    except (TimeoutError, SMSPartnerError):
        return web.json_response({"reply": "SMS Partner is not answering; try later."}, status=503)
    when = f" on {status.date:%d/%m %H:%M}" if status.date else ""
    return web.json_response(
        {
            "reply": f"{status.phone_number}: {status.status.value}{when}",
            "status": status.status.value,
            "final": status.status.is_final,
        }
    )


async def batch_status(request: web.Request) -> web.Response:
    """Statuses for a JSON list of `{"phone_number", "message_id"}` objects, and their counts."""
    client = request.app[CLIENT]
    try:
        body = await request.json()
        pairs = [(item["phone_number"], item["message_id"]) for item in body]
    except (ValueError, TypeError, KeyError):
        raise web.HTTPBadRequest(
            text="expected a JSON list of {phone_number, message_id}"
        ) from None
    if len(pairs) > MAX_PAIRS_PER_REQUEST:
        raise web.HTTPRequestEntityTooLarge(MAX_PAIRS_PER_REQUEST, len(pairs))
    try:
        async with asyncio.timeout(HANDLER_BUDGET):
            results = await client.multi_status(pairs)
    except InvalidInputError as exc:
        return web.json_response({"error": str(exc), "index": exc.index}, status=400)
    except TimeoutError:
        return web.json_response({"error": "the SMS Partner API took too long"}, status=504)
    except SMSPartnerError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    counts: dict[str, int] = {}
    for r in results:
        key = r.status.value if r.ok else "unanswered"
        counts[key] = counts.get(key, 0) + 1
    return web.json_response({"counts": counts, "results": [_row(r) for r in results]})


def _row(r: MultiStatusResult) -> dict[str, Any]:
    return {
        "phone_number": r.phone_number,
        "message_id": r.message_id,
        "ok": r.ok,
        "code": r.code,
        "status": r.status.value if r.ok else None,
        "message": r.message,
    }


if __name__ == "__main__":  # pragma: no cover - a development server
    web.run_app(create_app(), host="127.0.0.1", port=8020, handler_cancellation=True)
