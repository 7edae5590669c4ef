"""A FastAPI service for the status API: one client and one watcher per process, in the lifespan.

    python examples/fastapi_app.py --sandbox                # the emulator in-process, fast clock
    SMSPARTNER_API_KEY=... python examples/fastapi_app.py   # http://127.0.0.1:8010/docs

Against the emulator over HTTP instead (any key; `SMSPARTNER_BASE_URL` points the client):

    python -m smspartner_async.sandbox --any-key &
    export SMSPARTNER_API_KEY=demo SMSPARTNER_BASE_URL=http://127.0.0.1:8000/v1
    python examples/fastapi_app.py

Why the lifespan and not a client per request: the client owns a connection
pool sized to its concurrency and a shared 429 pause; one per request would
open a pool per request (sockets, TLS handshakes) and forget every rate limit.
The client is created inside the lifespan, so inside the server's event loop,
the one it binds to; routes get it through `Depends(get_client)`.

The watch: the lifespan also runs one `Watcher` on that client, entered after
it and closed before it (no task outlives the app). After each send, the
service registers the pairs (`POST /watch`; a real service would call
`watcher.add` right where it sends); the watcher asks about them on a growing
schedule until each settles, and hands every change to `on_change`, which here
logs it and keeps the latest per pair for `GET /watch/{phone}/{message_id}`.
Its state is in `SQLiteStore($SMSPARTNER_WATCH_DB)` when that is set (a
restart goes on where it stopped), else in memory. With `--sandbox`, the
emulator's statuses and the watch share one `FastClock` (`--speed`, default a
minute a second), so pairs settle while you look.

Delivery-report callbacks: with `SMSPARTNER_CALLBACK_TOKEN` set (make one with
`python -c "from smspartner_async.callbacks import new_token; print(new_token())"`),
the app mounts a `CallbackReceiver` at `/smspartner/dlr/<token>`: send your messages
with `urlDlr` pointing there. Each callback is a hint (the pair it names, or every
pair of its message id, is asked about in the next round; the API says what
happened), and the watch's `PushSchedule` checks sparsely while callbacks arrive,
as usual when they do not. In `--sandbox` mode the emulator pushes its reports to
the app the way the platform would. docs/callbacks.md has the details.

Several uvicorn workers (`--workers N`): each process runs its own lifespan,
so its own client and its own watcher. With the memory store, each watches
the pairs its own requests added and `GET /watch/...` on another worker knows
nothing of them; a SQLite file has one owner, so a second worker on the same
`SMSPARTNER_WATCH_DB` fails at startup. For a fleet, share the watch in Redis
(`RedisWatchStore`) as in the fleet recipe, `docs/fleet.md`.

Timeouts and cancellation: neither uvicorn nor Starlette cancels a plain
(non-streaming) handler when the caller hangs up, so each handler bounds its
own work with `asyncio.timeout` and answers 504 past it. When a handler is
cancelled (that timeout, server shutdown, `handler_cancellation` in other
servers), `multi_status` cancels its calls in flight and their connections go
back to the pool; nothing leaks and the client stays usable.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import phonenumbers
from fastapi import Body, Depends, FastAPI, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field

from smspartner_async import (
    ClientStateError,
    InvalidInputError,
    MultiStatusResult,
    NotFoundError,
    RecipientStatus,
    SMSPartnerClient,
    SMSPartnerError,
)
from smspartner_async.callbacks import CallbackReceiver, PushSchedule
from smspartner_async.watch import (
    Clock,
    MemoryStore,
    Schedule,
    Sleep,
    SQLiteStore,
    StatusChange,
    Watcher,
    WatchStore,
)

ClientFactory = Callable[[], AbstractAsyncContextManager[SMSPartnerClient]]
#: Told of the pairs each `POST /watch` added (the sandbox mode pushes their reports).
AfterAdd = Callable[[list[tuple[str, int | str]]], object]

log = logging.getLogger("fastapi_app")

#: Seconds a handler may spend on the API before answering 504.
HANDLER_BUDGET = 30.0
MAX_PAIRS_PER_REQUEST = 10_000
#: Pairs whose latest change `GET /watch/...` remembers (see `LatestChanges`).
LATEST_LIMIT = 100_000
#: The region national numbers are read in: the client's `default_region`.
REGION = "FR"
#: Where delivery-report callbacks are received: `urlDlr` is `<base>/smspartner/dlr/<token>`.
CALLBACK_PATH = "/smspartner/dlr"


class Pair(BaseModel):
    phone_number: str = Field(examples=["+33612345678", "0612345678"])
    message_id: int | str


class Status(BaseModel):
    index: int
    phone_number: str
    message_id: int
    ok: bool
    code: int | None
    status: str | None
    date: datetime | None
    stop_sms: bool
    is_spam: bool
    message: str | None

    @classmethod
    def of(cls, r: MultiStatusResult) -> Status:
        return cls(
            index=r.index,
            phone_number=r.phone_number,
            message_id=r.message_id,
            ok=r.ok,
            code=r.code,
            status=r.status.value if r.ok else None,
            date=r.date,
            stop_sms=r.stop_sms,
            is_spam=r.is_spam,
            message=r.message,
        )


class Recipient(BaseModel):
    phone_number: str
    status: str
    date: datetime | None
    stop_sms: bool

    @classmethod
    def of(cls, r: RecipientStatus) -> Recipient:
        return cls(
            phone_number=r.phone_number, status=r.status.value, date=r.date, stop_sms=r.stop_sms
        )


class WatchRequest(BaseModel):
    pairs: list[Pair] = Field(max_length=MAX_PAIRS_PER_REQUEST)
    sent_at: AwareDatetime | None = Field(
        default=None,
        description="When the messages left (default: now); their window counts from it.",
    )


class Watching(BaseModel):
    pairs: int
    added: int = Field(description="How many of them were not watched already.")


class Change(BaseModel):
    phone_number: str
    message_id: int
    status: str
    previous: str | None
    settled: bool
    reason: str | None
    sequence: int
    checked_at: datetime
    date: datetime | None
    code: int | None
    message: str | None

    @classmethod
    def of(cls, c: StatusChange) -> Change:
        return cls(
            phone_number=c.phone_number,
            message_id=c.message_id,
            status=c.status.value,
            previous=c.previous.value if c.previous is not None else None,
            settled=c.settled,
            reason=c.reason.value if c.reason is not None else None,
            sequence=c.sequence,
            checked_at=datetime.fromtimestamp(c.checked_at, UTC),
            date=c.date,
            code=c.code,
            message=c.message,
        )


class LatestChanges:
    """The latest change of each watched pair, for at most `limit` pairs (the oldest go first).

    Bounded because it is in memory and a service keeps sending: unbounded, it would
    grow with every pair ever watched. A real service writes each change where its
    messages live (its database) and answers from there; this map also forgets
    everything on a restart, while the watch store does not (only later changes
    land here then).
    """

    def __init__(self, limit: int = LATEST_LIMIT) -> None:
        self.limit = limit
        self._by_pair: OrderedDict[tuple[str, int], StatusChange] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_pair)

    def record(self, change: StatusChange) -> None:
        """The watcher's `on_change`: keep it, log it. It must not raise (that stops the watch)."""
        key = (change.phone_number, change.message_id)
        self._by_pair[key] = change
        self._by_pair.move_to_end(key)
        while len(self._by_pair) > self.limit:
            self._by_pair.popitem(last=False)
        settled = f" (settled: {change.reason})" if change.settled else ""
        log.info(
            "message %s to %s: %s%s",
            change.message_id,
            _masked(change.phone_number),
            change.status.value,
            settled,
        )

    def get(self, phone_number: str, message_id: int) -> StatusChange | None:
        return self._by_pair.get((phone_number, message_id))


def watch_store() -> WatchStore:
    """`SQLiteStore($SMSPARTNER_WATCH_DB)` when set (it survives restarts), else `MemoryStore()`."""
    path = os.environ.get("SMSPARTNER_WATCH_DB")
    return SQLiteStore(path) if path else MemoryStore()


def create_app(
    client_factory: ClientFactory = SMSPartnerClient,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    callback_token: str | None = None,
    after_add: AfterAdd | None = None,
) -> FastAPI:
    """The app; `client_factory` builds the one client (tests pass a sandbox-backed one).

    The default reads `SMSPARTNER_API_KEY`; any async context manager that
    yields a client will do, and it is entered once at startup, exited at shutdown.
    `clock` and `sleep` are the watch's time (default: the wall's); the sandbox
    mode and the tests pass a faster or simulated one, shared with the emulator.
    `callback_token` (default: `$SMSPARTNER_CALLBACK_TOKEN`) turns the callback
    receiver on; `after_add` is told of the pairs each `POST /watch` added.
    """
    latest = LatestChanges()
    token = callback_token or os.environ.get("SMSPARTNER_CALLBACK_TOKEN") or None
    receiver = CallbackReceiver(token, region=REGION) if token else None
    # With callbacks, sparse checks while they arrive; exactly the usual ones when not.
    schedule = PushSchedule(clock=clock or time.time) if receiver else Schedule()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            client_factory() as client,
            Watcher(
                client,
                store=watch_store(),
                schedule=schedule,
                on_change=latest.record,
                clock=clock,
                sleep=sleep,
            ) as watcher,
            AsyncExitStack() as stack,
        ):
            if receiver is not None and isinstance(schedule, PushSchedule):
                # Callbacks reach the watch while the app runs; 503 before and after.
                await stack.enter_async_context(
                    receiver.feeding(watcher.hint, on_hint=schedule.heard)
                )
            app.state.smspartner = client
            app.state.watcher = watcher
            yield

    app = FastAPI(title="SMS Partner statuses", lifespan=lifespan)
    app.state.latest_changes = latest
    app.state.callbacks = receiver
    if receiver is not None:
        app.mount(CALLBACK_PATH, receiver.asgi)
        # uvicorn's access lines would show the token and the callbacks' phone numbers.
        logging.getLogger("uvicorn.access").addFilter(receiver.access_log_filter())

    @app.post("/statuses")
    async def statuses(
        pairs: Annotated[list[Pair], Body(max_length=MAX_PAIRS_PER_REQUEST)],
        client: Annotated[SMSPartnerClient, Depends(get_client)],
    ) -> list[Status]:
        """One status per pair, in the order given; "not found" items come back `ok: false`."""
        try:
            async with asyncio.timeout(HANDLER_BUDGET):
                results = await client.multi_status([(p.phone_number, p.message_id) for p in pairs])
        except InvalidInputError as exc:
            raise HTTPException(422, detail=_invalid(exc)) from None
        except TimeoutError:
            raise HTTPException(504, detail="the SMS Partner API took too long") from None
        except (
            SMSPartnerError
        ) as exc:  # bad key, IP not allowed, or an outage: not the caller's fault
            raise HTTPException(502, detail=str(exc)) from None
        return [Status.of(r) for r in results]

    @app.get("/tag/{tag}")
    async def by_tag(
        tag: str, client: Annotated[SMSPartnerClient, Depends(get_client)]
    ) -> list[Recipient]:
        """Every recipient under a tag, over all pages."""
        try:
            async with asyncio.timeout(HANDLER_BUDGET):
                return [Recipient.of(r) for r in await client.status_by_tag(tag)]
        except TimeoutError:
            raise HTTPException(504, detail="the SMS Partner API took too long") from None
        except NotFoundError as exc:
            raise HTTPException(404, detail=str(exc)) from None
        except SMSPartnerError as exc:
            raise HTTPException(502, detail=str(exc)) from None

    @app.post("/watch", status_code=202)
    async def watch_pairs(
        request: WatchRequest, watcher: Annotated[Watcher, Depends(get_watcher)]
    ) -> Watching:
        """Watch these pairs until they settle (after a send); their changes come to
        `GET /watch/{phone}/{message_id}`. Pairs already watched keep their state."""
        pairs = [(p.phone_number, p.message_id) for p in request.pairs]
        try:
            # All validated before any is added: up to 10,000 pairs are one chunk of `add`.
            added = await watcher.add(pairs, sent_at=request.sent_at)
        except InvalidInputError as exc:
            raise HTTPException(422, detail=_invalid(exc)) from None
        except ClientStateError:  # it stopped: a bad key, say (logged by the watcher)
            raise HTTPException(503, detail="the watch has stopped") from None
        if after_add is not None:
            after_add(pairs)
        return Watching(pairs=len(pairs), added=added)

    @app.get("/watch/{phone}/{message_id}")
    async def watched(phone: str, message_id: int) -> Change:
        """The latest change known for a watched pair; 404 before its first one."""
        number = _e164(phone)
        change = latest.get(number, message_id) if number is not None else None
        if change is None:
            raise HTTPException(404, detail="no change known for this pair (yet)")
        return Change.of(change)

    return app


def get_client(request: Request) -> SMSPartnerClient:
    """The dependency routes use: the app's one client, never a new one."""
    client: SMSPartnerClient = request.app.state.smspartner
    return client


def get_watcher(request: Request) -> Watcher:
    """The app's one watcher."""
    watcher: Watcher = request.app.state.watcher
    return watcher


def _invalid(exc: InvalidInputError) -> dict[str, Any]:
    return {"error": str(exc), "index": exc.index}


def _e164(phone: str) -> str | None:
    """The form changes carry (E.164), for a number given in it or in `REGION`'s national form."""
    try:
        number = phonenumbers.parse(phone, REGION)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _masked(phone: str) -> str:
    """Logs are read by more people than the data: the last digits are enough to follow a pair."""
    return "*" * max(len(phone) - 4, 0) + phone[-4:]


def sandbox_app(speed: float = 60.0) -> FastAPI:
    """The app on an in-process emulator; the emulator's statuses and the watch share a clock
    running `speed` times faster than the wall's, and the emulator pushes its delivery
    reports to the app's receiver, as the platform does with `urlDlr`."""
    import httpx

    from smspartner_async.callbacks import new_token
    from smspartner_async.sandbox import CallbackPusher, Sandbox
    from smspartner_async.testing import FastClock, sandbox_client

    clock = FastClock(speed)
    sandbox = Sandbox(api_key=None, clock=clock)
    token = new_token()
    pusher: CallbackPusher | None = None

    def push_reports(pairs: list[tuple[str, int | str]]) -> None:
        if pusher is not None:
            pusher.track((phone, int(message_id)) for phone, message_id in pairs)

    app = create_app(
        lambda: sandbox_client(sandbox),
        clock=clock,
        sleep=clock.sleep,
        callback_token=token,
        after_add=push_reports,
    )
    receiver = app.state.callbacks
    receiver.flush_delay = 0.5 / speed  # its batching delay, in the watch's faster seconds
    served = app.router.lifespan_context

    @asynccontextmanager
    async def with_pusher(app: FastAPI) -> AsyncIterator[None]:
        nonlocal pusher
        async with (
            served(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.asgi)) as http,
            CallbackPusher(
                sandbox, f"http://app{CALLBACK_PATH}/{token}", http=http, sleep=clock.sleep
            ) as pushing,
        ):
            pusher = pushing
            yield
            pusher = None

    app.router.lifespan_context = with_pusher
    return app


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a development server
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sandbox", action="store_true", help="the emulator, in-process")
    parser.add_argument(
        "--speed", type=float, default=60.0, help="--sandbox: times faster than real time"
    )
    args = parser.parse_args(argv)
    logging.basicConfig()
    log.setLevel(logging.INFO)  # the changes, not a line per request
    app = sandbox_app(args.speed) if args.sandbox else create_app()
    uvicorn.run(app, host="127.0.0.1", port=8010)


if __name__ == "__main__":  # pragma: no cover
    main()
