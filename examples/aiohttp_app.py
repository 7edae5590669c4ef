"""An aiohttp bot backend: "what became of this SMS?", and a message when it settles.

    python examples/aiohttp_app.py --sandbox                # the emulator in-process, fast clock
    SMSPARTNER_API_KEY=... python examples/aiohttp_app.py   # http://127.0.0.1:8020

Against the emulator over HTTP instead (any key; `SMSPARTNER_BASE_URL` points the client):

    python -m smspartner_async.sandbox --any-key &
    export SMSPARTNER_API_KEY=demo SMSPARTNER_BASE_URL=http://127.0.0.1:8000/v1
    python examples/aiohttp_app.py

The client lives in a `cleanup_ctx` generator: created once when the app
starts (inside the server's loop, which it binds to), closed when it stops,
and reached through a typed `AppKey`. Handlers never build their own client:
a client per request opens a pool per request and leaks sockets under load.

The watch: a second `cleanup_ctx`, entered after the client's and so left
before it, runs one `Watcher` on that client. After a send, the bot registers
the pairs (`POST /watch`); the watcher follows them until each settles and
calls `notify` with every change, which words it for a person and hands it to
the chat. Here the "chat" is a queue that `GET /watch/notifications` drains;
a real bot would push to its chat's API in `notify` itself. `notify` awaits the
queue: when nobody reads it, the watcher pauses at its backlog instead of
dropping messages, and a change counts as delivered only once queued. The
watch's state is in `SQLiteStore($SMSPARTNER_WATCH_DB)` when that is set, else
in memory. With `--sandbox`, the emulator's statuses and the watch share one
`FastClock` (`--speed`, default a minute a second).

Cancellation: aiohttp only cancels a handler whose caller hung up when the
server is started with `handler_cancellation=True` (as below); the client
then cancels its calls in flight and frees their connections. Each handler
also bounds its wait with `asyncio.timeout`, since a chat user will not wait
for a minute of retries.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from aiohttp import web

from smspartner_async import (
    ClientStateError,
    InvalidInputError,
    MultiStatusResult,
    NotFoundError,
    SMSPartnerClient,
    SMSPartnerError,
)
from smspartner_async.watch import (
    Clock,
    MemoryStore,
    SentAt,
    SettleReason,
    Sleep,
    SQLiteStore,
    StatusChange,
    Watcher,
    WatchStore,
)

ClientFactory = Callable[[], AbstractAsyncContextManager[SMSPartnerClient]]
Notification = dict[str, Any]

CLIENT = web.AppKey("smspartner_client", SMSPartnerClient)
WATCHER = web.AppKey("smspartner_watcher", Watcher)
NOTIFICATIONS = web.AppKey("notifications", asyncio.Queue[Notification])
HANDLER_BUDGET = 15.0
MAX_PAIRS_PER_REQUEST = 10_000
#: Notifications waiting for the chat; past it, `notify` waits (and so does the watch).
MAX_NOTIFICATIONS = 10_000


def create_app(
    client_factory: ClientFactory = SMSPartnerClient,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
) -> web.Application:
    """The app; `client_factory` builds its one client (tests pass a sandbox-backed one).

    `clock` and `sleep` are the watch's time (default: the wall's); the sandbox
    mode and the tests pass a faster or simulated one, shared with the emulator.
    """

    async def smspartner_client(app: web.Application) -> AsyncIterator[None]:
        async with client_factory() as client:
            app[CLIENT] = client
            yield

    async def smspartner_watcher(app: web.Application) -> AsyncIterator[None]:
        queue: asyncio.Queue[Notification] = asyncio.Queue(MAX_NOTIFICATIONS)

        async def notify(change: StatusChange) -> None:
            await queue.put(_notification(change))  # a real bot: await chat.send(...)

        async with Watcher(
            app[CLIENT], store=watch_store(), on_change=notify, clock=clock, sleep=sleep
        ) as watcher:
            app[WATCHER], app[NOTIFICATIONS] = watcher, queue
            yield

    app = web.Application()
    app.cleanup_ctx.append(smspartner_client)
    app.cleanup_ctx.append(smspartner_watcher)  # after the client: closed before it
    app.router.add_get("/status/{phone}/{message_id}", one_status)
    app.router.add_post("/statuses", batch_status)
    app.router.add_post("/watch", watch_pairs)
    app.router.add_get("/watch/notifications", notifications)
    return app


def watch_store() -> WatchStore:
    """`SQLiteStore($SMSPARTNER_WATCH_DB)` when set (it survives restarts), else `MemoryStore()`."""
    path = os.environ.get("SMSPARTNER_WATCH_DB")
    return SQLiteStore(path) if path else MemoryStore()


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


async def watch_pairs(request: web.Request) -> web.Response:
    """After a send: `{"pairs": [{"phone_number", "message_id"}, ...], "sent_at": ...}`
    (`sent_at`, when the messages left, is epoch seconds or ISO 8601 with an offset;
    default now). 202 with how many pairs were not watched already."""
    watcher = request.app[WATCHER]
    try:
        body = await request.json()
        pairs = [(item["phone_number"], item["message_id"]) for item in body["pairs"]]
        sent_at = _sent_at(body.get("sent_at"))
    except (ValueError, TypeError, KeyError, AttributeError):
        raise web.HTTPBadRequest(
            text='expected {"pairs": [{phone_number, message_id}, ...], "sent_at": optional}'
        ) from None
    if len(pairs) > MAX_PAIRS_PER_REQUEST:
        raise web.HTTPRequestEntityTooLarge(MAX_PAIRS_PER_REQUEST, len(pairs))
    try:
        # All validated before any is added: up to 10,000 pairs are one chunk of `add`.
        added = await watcher.add(pairs, sent_at=sent_at)
    except InvalidInputError as exc:
        return web.json_response({"error": str(exc), "index": exc.index}, status=400)
    except ClientStateError:  # it stopped: a bad key, say (logged by the watcher)
        return web.json_response({"error": "the watch has stopped"}, status=503)
    return web.json_response({"pairs": len(pairs), "added": added}, status=202)


async def notifications(request: web.Request) -> web.Response:
    """The notifications queued so far, oldest first; each is returned once."""
    queue = request.app[NOTIFICATIONS]
    drained = [queue.get_nowait() for _ in range(queue.qsize())]
    return web.json_response(drained)


def _row(r: MultiStatusResult) -> dict[str, Any]:
    return {
        "phone_number": r.phone_number,
        "message_id": r.message_id,
        "ok": r.ok,
        "code": r.code,
        "status": r.status.value if r.ok else None,
        "message": r.message,
    }


_REASONS = {
    SettleReason.FINAL: "",
    SettleReason.API_ERROR: " (SMS Partner does not know this message: {change.message})",
    SettleReason.EXPIRED: " (no final report within its window; no longer followed)",
}


def _notification(change: StatusChange) -> Notification:
    """A change worded for a person, with the fields a program needs."""
    text = f"{change.phone_number}, message {change.message_id}: {change.status.value}"
    if change.reason is not None:
        text += _REASONS[change.reason].format(change=change)
    return {
        "reply": text,
        "phone_number": change.phone_number,
        "message_id": change.message_id,
        "status": change.status.value,
        "settled": change.settled,
        "reason": change.reason.value if change.reason is not None else None,
        "id": change.id,  # the same if a change is delivered again after a crash
    }


def _sent_at(value: object) -> SentAt | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value)  # a naive one: the watcher refuses it (400)
    if value is None or isinstance(value, int | float):
        return value  # a bool too: the watcher refuses it (400)
    raise TypeError("sent_at must be epoch seconds or an ISO 8601 string")


def sandbox_app(speed: float = 60.0) -> web.Application:
    """The app on an in-process emulator; the emulator's statuses and the watch share a clock
    running `speed` times faster than the wall's."""
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import FastClock, sandbox_client

    clock = FastClock(speed)
    sandbox = Sandbox(api_key=None, clock=clock)
    return create_app(lambda: sandbox_client(sandbox), clock=clock, sleep=clock.sleep)


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a development server
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sandbox", action="store_true", help="the emulator, in-process")
    parser.add_argument(
        "--speed", type=float, default=60.0, help="--sandbox: times faster than real time"
    )
    args = parser.parse_args(argv)
    app = sandbox_app(args.speed) if args.sandbox else create_app()
    web.run_app(app, host="127.0.0.1", port=8020, handler_cancellation=True)


if __name__ == "__main__":  # pragma: no cover
    main()
