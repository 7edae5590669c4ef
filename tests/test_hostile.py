"""Hostile answers over real sockets: compression bombs, huge bodies, servers that echo the key.

Each transport (httpx's, aiohttp's) and an injected `httpx.AsyncClient` face the same server.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import traceback
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from smspartner_async import (
    AuthenticationError,
    RateLimitError,
    ResponseFormatError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    SMSPartnerClient,
    SMSPartnerError,
)

from . import seeds

KEY = "sk-live-ECHOED-7f3a9c1e5b"
MIB = 1024 * 1024


@functools.cache
def bomb(inflated: int) -> bytes:
    """A gzip body of `inflated` zero bytes (about a thousandth of that on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MIB)
    parts = [compressor.compress(block) for _ in range(inflated // MIB)]
    return b"".join([*parts, compressor.flush()])


class Hostile:
    """One aiohttp server; `mode` picks what every endpoint answers."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.url = ""
        self.inflated = 512 * MIB  # what the bomb inflates to
        self.arrived = asyncio.Event()  # "park": a request is held
        self.release = asyncio.Event()  # "park": let the held requests go

    async def answer(self, request: web.Request) -> web.StreamResponse:
        mode = self.mode
        echo = str(request.url) + (await request.text())  # the request, key included
        if mode == "park":
            self.arrived.set()
            await self.release.wait()
            return web.Response(status=503)
        if mode == "bomb":
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            return web.Response(body=bomb(self.inflated), headers=headers)
        if mode == "huge":  # a plain answer over the cap, its length announced
            return web.Response(body=b" " * (2 * MIB), content_type="application/json")
        if mode == "huge-xml":
            return await self._huge_xml(request)
        if mode == "code-10":
            message = f"Clé API invalide : {KEY}"
            if request.query.get("_format") == "xml":
                entries = "".join(f"<entry>{v}</entry>" for v in ("false", "10", message))
                return web.Response(text=f"<result>{entries}</result>")
            return web.json_response({"success": False, "code": 10, "message": message})
        if mode == "503-page":
            return web.Response(status=503, text=f"<html>Upstream failed for {echo}</html>")
        if mode == "429-page":
            return web.Response(status=429, text=f"Too many requests: {echo}")
        if mode == "html-200":
            return web.Response(text=f"<html><body>Login page for {echo}</body></html>")
        if mode == "gzip-echo":
            headers = {"Content-Encoding": "gzip", "Content-Type": "text/html"}
            return web.Response(body=gzip.compress(f"<p>{echo}</p>".encode()), headers=headers)
        raise AssertionError(mode)

    async def _huge_xml(self, request: web.Request) -> web.StreamResponse:
        """A valid message-status answer followed by millions of entries, chunked (no length)."""
        response = web.StreamResponse(headers={"Content-Type": "application/xml"})
        await response.prepare(request)
        head = seeds.MESSAGE_STATUS_XML.replace(b"</result>", b"")
        await response.write(head)
        block = b"<entry>x</entry>" * 65_536
        try:
            for _ in range(50):  # 50 MiB
                await response.write(block)
            await response.write(b"</result>")
        except (ConnectionResetError, RuntimeError):
            pass  # the client hung up once it had enough: the point of the test
        return response


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    state = Hostile()
    app = web.Application(client_max_size=10 * MIB)
    for path in ("message-status", "bulk-status", "bulk-status-by-tag"):
        app.router.add_get(f"/v1/{path}", state.answer)
    app.router.add_post("/v1/multi-status", state.answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    yield state
    state.release.set()
    await runner.cleanup()


@pytest.fixture(params=["httpx", "aiohttp", "injected"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., SMSPartnerClient]]:
    """Clients of the hostile server on each transport, or with an injected httpx client."""
    made: list[Any] = []

    def make(hostile: Hostile, **options: Any) -> SMSPartnerClient:
        options.setdefault("retry", RetryPolicy.testing(max_retries=0))
        if request.param == "injected":
            http = httpx.AsyncClient(timeout=10)
            made.append(http)
            options["http_client"] = http
        else:
            options["transport"] = request.param
        client = SMSPartnerClient(KEY, base_url=hostile.url, **options)
        made.append(client)
        return client

    yield make
    for thing in reversed(made):
        await thing.aclose()


# -- bounded bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["bulk_status", "message_status"])
async def test_a_compression_bomb_is_refused_within_the_cap(
    hostile: Hostile, make: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    """512 MiB of zeros in a 0.5 MiB gzip body: refused once 8 MiB are out, memory bounded."""
    hostile.mode = "bomb"
    client = make(hostile, max_response_bytes=8 * MIB)
    call = (
        client.bulk_status(1)
        if endpoint == "bulk_status"
        else client.message_status("+33612345678", 1)
    )
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError, match="max_response_bytes") as info:
            await call
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 8 * MIB, f"peak {peak / MIB:.0f} MiB for an 8 MiB cap"
    assert not info.value.retryable  # the same request would bring the same bomb


async def test_the_bomb_is_not_retried(hostile: Hostile, make: Callable[..., SMSPartnerClient]):
    hostile.mode = "bomb"
    client = make(hostile, max_response_bytes=MIB, retry=RetryPolicy.testing(max_retries=3))
    with pytest.raises(ResponseTooLargeError):
        await client.bulk_status(1)
    assert client.stats.requests == 1


async def test_a_huge_body_is_refused_while_it_streams(
    hostile: Hostile, make: Callable[..., SMSPartnerClient]
) -> None:
    """A valid message-status XML answer trailed by 50 MiB of entries, with no Content-Length:
    message-status answers are small, so it is refused as soon as 64 KiB are read."""
    hostile.mode = "huge-xml"
    client = make(hostile, response_format="xml")
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError):
            await client.message_status("+33612345678", 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB


async def test_an_answer_within_the_cap_still_inflates(
    hostile: Hostile, make: Callable[..., SMSPartnerClient]
) -> None:
    hostile.mode, hostile.inflated = "bomb", 16 * MIB  # zeros: a format error, not a size error
    client = make(hostile, max_response_bytes=20 * MIB)
    with pytest.raises(ResponseFormatError) as info:
        await client.bulk_status(1)
    assert type(info.value) is ResponseFormatError


# -- the key never in traceback locals ------------------------------------------------------------

ECHOES: dict[str, type[SMSPartnerError]] = {
    "code-10": AuthenticationError,
    "503-page": ServerError,
    "429-page": RateLimitError,
    "html-200": ResponseFormatError,
    "gzip-echo": ResponseFormatError,
}


def renderings(exc: BaseException) -> list[str]:
    """What error trackers record: the traceback with every frame's locals, chained too."""
    with_locals = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return [
        "".join(with_locals.format()),
        "".join(traceback.format_exception(exc)),
        repr(exc),
        str(exc),
        repr(vars(exc)),
    ]


@pytest.mark.parametrize("mode", list(ECHOES))
@pytest.mark.parametrize("response_format", ["json", "xml"])
async def test_an_echoed_key_never_reaches_traceback_locals(
    hostile: Hostile, make: Callable[..., SMSPartnerClient], mode: str, response_format: str
) -> None:
    hostile.mode = mode
    client = make(hostile, response_format=response_format)
    calls = {
        "message_status": lambda: client.message_status("+33612345678", 1),
        "bulk_status": lambda: client.bulk_status(1),
        "status_by_tag": lambda: client.status_by_tag("t"),
        "multi_status": lambda: client.multi_status([("+33612345678", 1)]),
    }
    for name, call in calls.items():
        with pytest.raises(ECHOES[mode]) as info:
            await call()
        assert info.value.__traceback__ is not None
        for text in renderings(info.value):
            assert KEY not in text, f"{name}: the key in {text[:2000]}"


GET_CALLS = {
    "message_status": lambda client: client.message_status("+33612345678", 1),
    "bulk_status": lambda client: client.bulk_status(1),
    "status_by_tag": lambda client: client.status_by_tag("t"),
}


@pytest.mark.parametrize("name", list(GET_CALLS))
async def test_a_call_cut_by_a_timeout_leaves_no_key_in_traceback_locals(
    hostile: Hostile, make: Callable[..., SMSPartnerClient], name: str
) -> None:
    """The recipes' handler pattern: `asyncio.timeout` around a call, which ends while the
    request (its URL holds the key) waits for the answer. The `TimeoutError`, rendered with
    every frame's locals and its chained `CancelledError`, must not show the key."""
    hostile.mode = "park"
    client = make(hostile)
    deadlines: list[asyncio.Timeout] = []

    async def handler() -> None:
        async with asyncio.timeout(None) as deadline:
            deadlines.append(deadline)
            await GET_CALLS[name](client)

    task = asyncio.create_task(handler())
    await hostile.arrived.wait()  # the request is at the server: the call waits for its answer
    deadlines[0].reschedule(asyncio.get_running_loop().time())
    with pytest.raises(TimeoutError) as info:
        await task
    assert info.value.__context__ is not None  # the cancellation, frames and all
    for text in renderings(info.value):
        assert KEY not in text, f"{name}: the key in {text[:3000]}"


@pytest.mark.parametrize("mode", ["huge", "bomb"])
@pytest.mark.parametrize("name", list(GET_CALLS))
async def test_an_answer_over_the_cap_leaves_no_key_in_traceback_locals(
    hostile: Hostile, make: Callable[..., SMSPartnerClient], name: str, mode: str
) -> None:
    hostile.mode, hostile.inflated = mode, 8 * MIB
    client = make(hostile, max_response_bytes=MIB)
    with pytest.raises(ResponseTooLargeError) as info:
        await GET_CALLS[name](client)
    for text in renderings(info.value):
        assert KEY not in text, f"{name}: the key in {text[:3000]}"


@pytest.mark.parametrize(
    ("mode", "error"), [("503-page", ServerError), ("429-page", RateLimitError)]
)
async def test_an_own_client_s_raise_for_status_hook_gives_our_error_without_the_key(
    hostile: Hostile, mode: str, error: type[SMSPartnerError]
) -> None:
    """A pool of one's own with the usual `raise_for_status` hook: its `HTTPStatusError`
    names the URL, key included. The call raises the library's error for that status
    instead, retried as that status would be."""
    hostile.mode = mode

    async def raise_for_status(response: httpx.Response) -> None:
        response.raise_for_status()

    async with httpx.AsyncClient(event_hooks={"response": [raise_for_status]}) as http:
        client = SMSPartnerClient(
            KEY, base_url=hostile.url, http_client=http, retry=RetryPolicy.testing(max_retries=1)
        )
        with pytest.raises(error) as info:
            await GET_CALLS["message_status"](client)
        assert client.stats.retries == 1  # a 5xx and a 429 are worth another try
    for text in renderings(info.value):
        assert KEY not in text, text[:3000]


async def test_failed_items_carry_no_key_either(
    hostile: Hostile, make: Callable[..., SMSPartnerClient]
) -> None:
    """A chunk that fails among answered ones keeps its error on its results."""
    hostile.mode = "503-page"
    client = make(hostile, fail_fast=False)
    with pytest.raises(ServerError) as info:  # the only call failed: an outage
        await client.multi_status([("+33612345678", 1)])
    for text in renderings(info.value):
        assert KEY not in text
    assert orjson.dumps(str(info.value)).find(KEY.encode()) == -1
