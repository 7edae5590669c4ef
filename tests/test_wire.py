"""The client's own pool, over real sockets: what goes on the wire and how answers are decoded.

Both transports, httpx's and aiohttp's: the body is read raw and inflated by the library
(within its size cap), so the Content-Encodings it asks for and undoes are its own.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from smspartner_async import (
    RateLimitError,
    ResponseFormatError,
    ServerError,
    SMSPartnerClient,
)
from smspartner_async._chunking import request_items
from smspartner_async._redact import SecretStr
from smspartner_async._wire.body import Answer

from . import seeds

KEY = "wire-test-key"
ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,  # zlib-wrapped, as RFC 9110 says
}


def raw_deflate(body: bytes) -> bytes:
    """Bare deflate, which some servers send as `deflate`."""
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(body) + compressor.flush()


class Wire:
    """An aiohttp server answering message-status with a chosen encoding; records requests."""

    def __init__(self) -> None:
        self.encoding: str | None = None
        self.status = 200
        self.body = seeds.MESSAGE_STATUS_JSON
        self.seen: list[web.Request] = []
        self.url = ""

    async def message_status(self, request: web.Request) -> web.Response:
        self.seen.append(request)
        body, headers = self.body, {"Content-Type": "application/json"}
        if self.encoding == "raw-deflate":
            body, headers["Content-Encoding"] = raw_deflate(body), "deflate"
        elif self.encoding == "corrupt-gzip":
            body, headers["Content-Encoding"] = b"not gzip at all", "gzip"
        elif self.encoding == "br":  # compressed, in a coding the client did not ask for
            body, headers["Content-Encoding"] = gzip.compress(body), "br"
        elif self.encoding == "empty-gzip":
            headers.update({"Content-Encoding": "gzip", "Retry-After": "7"})
        elif self.encoding == "gzip, deflate":
            body, headers["Content-Encoding"] = zlib.compress(gzip.compress(body)), self.encoding
        elif self.encoding is not None:
            body, headers["Content-Encoding"] = ENCODERS[self.encoding](body), self.encoding
        return web.Response(status=self.status, body=body, headers=headers)


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    state = Wire()
    app = web.Application()
    app.router.add_get("/v1/message-status", state.message_status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/v1"
    yield state
    await runner.cleanup()


@pytest.fixture(params=["httpx", "aiohttp"])
def client(request: pytest.FixtureRequest) -> Callable[..., SMSPartnerClient]:
    """Clients of the wire server on each transport."""

    def make(wire: Wire, **options: object) -> SMSPartnerClient:
        return SMSPartnerClient(  # type: ignore[arg-type]
            KEY, base_url=wire.url, transport=request.param, **options
        )

    return make


@pytest.mark.parametrize("encoding", [None, "gzip", "x-gzip", "deflate", "raw-deflate"])
async def test_compressed_answers_are_decoded(
    client: Callable[..., SMSPartnerClient], wire: Wire, encoding: str | None
) -> None:
    wire.encoding = encoding
    async with client(wire) as c:
        status = await c.message_status("+33612345678", 1)
    assert status.status_text == "Delivered"
    assert status.message_id == 1111  # the seed answer's


async def test_stacked_encodings_are_undone_in_reverse_order(
    client: Callable[..., SMSPartnerClient], wire: Wire
) -> None:
    wire.encoding = "gzip, deflate"
    async with client(wire) as c:
        status = await c.message_status("+33612345678", 1)
    assert status.status_text == "Delivered"


@pytest.mark.parametrize(
    ("encoding", "why"), [("corrupt-gzip", "Content-Encoding"), ("br", "not valid JSON")]
)
async def test_an_undecodable_body_is_a_format_error(
    client: Callable[..., SMSPartnerClient], wire: Wire, encoding: str, why: str
) -> None:
    """A coding it did not ask for is left alone, as httpx does: the body then fails as JSON."""
    wire.encoding = encoding
    async with client(wire, max_retries=0) as c:
        with pytest.raises(ResponseFormatError, match=why) as info:
            await c.message_status("+33612345678", 1)
    assert KEY not in str(info.value)


@pytest.mark.parametrize(("status", "error"), [(429, RateLimitError), (503, ServerError)])
async def test_a_bodiless_answer_labelled_gzip_keeps_its_status(
    client: Callable[..., SMSPartnerClient], wire: Wire, status: int, error: type[Exception]
) -> None:
    wire.status, wire.body, wire.encoding = status, b"", "empty-gzip"
    async with client(wire, max_retries=0) as c:
        with pytest.raises(error) as info:
            await c.message_status("+33612345678", 1)
    assert info.value.retry_after == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize("response_format", ["json", "xml"])
async def test_the_pool_sends_what_the_library_can_undo(
    client: Callable[..., SMSPartnerClient], wire: Wire, response_format: str
) -> None:
    if response_format == "xml":
        wire.body = seeds.MESSAGE_STATUS_XML
    async with client(wire, response_format=response_format) as c:
        await c.message_status("+33612345678", 1)
    (request,) = wire.seen
    assert request.headers["User-Agent"].startswith("smspartner-async/")
    assert request.headers["Accept-Encoding"] == "gzip, deflate"  # only what it can undo
    assert request.headers["Accept"] == f"application/{response_format}"
    assert request.query["apiKey"] == KEY
    assert request.query.get("_format") == ("xml" if response_format == "xml" else None)


async def test_a_callers_client_keeps_httpx_pipeline(
    client: Callable[..., SMSPartnerClient], wire: Wire
) -> None:
    """Event hooks, cookies and the like belong to httpx: an injected client goes through it."""
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    http = httpx.AsyncClient(event_hooks={"request": [hook]})
    async with http, SMSPartnerClient(KEY, base_url=wire.url, http_client=http) as c:
        status = await c.message_status("+33612345678", 1)
    assert seen == ["/v1/message-status"]
    assert status.status_text == "Delivered"


def test_inflating_leaves_what_it_did_not_ask_for() -> None:
    def content(body: bytes, *codings: str) -> bytes:
        return Answer(200, {}, body, codings).content(1 << 20, SecretStr("k" * 8))

    assert content(b"zstd bytes", "zstd") == b"zstd bytes"
    assert content(b"plain") == b"plain"
    assert content(b"", "gzip") == b""
    assert content(gzip.compress(b"twice"), "gzip") == b"twice"
    with pytest.raises(ResponseFormatError, match="gzip"):
        content(b"not gzip", "gzip")
    with pytest.raises(ResponseFormatError, match="gzip"):
        content(gzip.compress(b"truncated " * 100)[:-20], "gzip")


phones = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)
ids = st.integers(min_value=1, max_value=2**63 - 1)


@given(st.lists(st.tuples(phones, ids), max_size=50))
def test_the_request_list_is_the_json_of_its_pairs(keys: list[tuple[str, int]]) -> None:
    written = orjson.dumps({"apiKey": KEY, "SMSStatut_List": request_items(keys)})
    expected = {
        "apiKey": KEY,
        "SMSStatut_List": [{"phoneNumber": p, "messageId": m} for p, m in keys],
    }
    assert orjson.loads(written) == expected
