"""A FastAPI service in front of the status API: one client per process, owned by the lifespan.

    SMSPARTNER_API_KEY=... python examples/fastapi_app.py     # http://127.0.0.1:8010/docs

Against the emulator instead of the API (any key; `SMSPARTNER_BASE_URL` points the client):

    python -m smspartner_async.sandbox --any-key &
    export SMSPARTNER_API_KEY=demo SMSPARTNER_BASE_URL=http://127.0.0.1:8000/v1
    python examples/fastapi_app.py

Why the lifespan and not a client per request: the client owns a connection
pool sized to its concurrency and a shared 429 pause; one per request would
open a pool per request (sockets, TLS handshakes) and forget every rate limit.
The client is created inside the lifespan, so inside the server's event loop,
the one it binds to; routes get it through `Depends(get_client)`.

Timeouts and cancellation: neither uvicorn nor Starlette cancels a plain
(non-streaming) handler when the caller hangs up, so each handler bounds its
own work with `asyncio.timeout` and answers 504 past it. When a handler is
cancelled (that timeout, server shutdown, `handler_cancellation` in other
servers), `multi_status` cancels its calls in flight and their connections go
back to the pool; nothing leaks and the client stays usable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from smspartner_async import (
    InvalidInputError,
    MultiStatusResult,
    NotFoundError,
    RecipientStatus,
    SMSPartnerClient,
    SMSPartnerError,
)

ClientFactory = Callable[[], AbstractAsyncContextManager[SMSPartnerClient]]

#: Seconds a handler may spend on the API before answering 504.
HANDLER_BUDGET = 30.0
MAX_PAIRS_PER_REQUEST = 10_000


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


def create_app(client_factory: ClientFactory = SMSPartnerClient) -> FastAPI:
    """The app; `client_factory` builds the one client (tests pass a sandbox-backed one).

    The default reads `SMSPARTNER_API_KEY`; any async context manager that
    yields a client will do, and it is entered once at startup, exited at shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client_factory() as client:
            app.state.smspartner = client
            yield

    app = FastAPI(title="SMS Partner statuses", lifespan=lifespan)

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

    return app


def get_client(request: Request) -> SMSPartnerClient:
    """The dependency routes use: the app's one client, never a new one."""
    client: SMSPartnerClient = request.app.state.smspartner
    return client


def _invalid(exc: InvalidInputError) -> dict[str, Any]:
    return {"error": str(exc), "index": exc.index}


if __name__ == "__main__":  # pragma: no cover - a development server
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=8010)
