"""The callback receiver: spellings, methods, token, caps, bounds, and what it never logs."""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fastapi import FastAPI

from smspartner_async import InvalidInputError
from smspartner_async.callbacks import MAX_ITEMS, CallbackReceiver, Hint, hints_from, new_token

TOKEN = "cb-token-0123456789abcdef"
PHONE = "+33612345678"


class Sink:
    """Collects what the receiver hands over; can be made to block or fail."""

    def __init__(self) -> None:
        self.hints: list[Hint] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def __call__(self, message_id: int, phone_number: str | None) -> None:
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("store down")
        self.hints.append(Hint(message_id, phone_number))


@pytest.fixture
async def fed() -> AsyncIterator[tuple[CallbackReceiver, Sink]]:
    receiver = CallbackReceiver(TOKEN, flush_delay=0)
    sink = Sink()
    async with receiver.feeding(sink):
        yield receiver, sink


async def drained(receiver: CallbackReceiver, sink: Sink) -> list[Hint]:
    for _ in range(100):
        if receiver.stats.delivered + receiver.stats.failed >= receiver.stats.hints:
            break
        await asyncio.sleep(0.001)
    return sink.hints


# -- what a callback names ------------------------------------------------------------------

ID_SPELLINGS = ["messageId", "message_id", "msgId", "msg_id", "MessageID", "message-id", "smsId"]
PHONE_SPELLINGS = [
    "phoneNumber",
    "phone_number",
    "number",
    "msisdn",
    "phone",
    "to",
    "recipient",
    "mobile",
    "destination",
    "numero",
]


@pytest.mark.parametrize("id_name", ID_SPELLINGS)
@pytest.mark.parametrize("phone_name", PHONE_SPELLINGS)
def test_every_spelling(id_name: str, phone_name: str) -> None:
    report = {id_name: "123456", phone_name: "0612345678", "status": "delivered"}
    assert hints_from([report], "FR") == [Hint(123456, PHONE)]


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+33612345678", PHONE),
        ("33612345678", PHONE),
        ("0033612345678", PHONE),
        ("06 12 34 56 78", PHONE),
        (33612345678, PHONE),
        ("447700900123", "+447700900123"),
    ],
)
def test_phone_forms(raw: object, e164: str) -> None:
    assert hints_from([{"messageId": 7, "msisdn": raw}], "FR") == [Hint(7, e164)]


def test_no_phone_hints_the_whole_message_id() -> None:
    assert hints_from([{"message_id": "99", "status": "delivered"}], "FR") == [Hint(99, None)]
    # An unreadable number is no number: the id still is a hint.
    assert hints_from([{"message_id": "99", "phone": "call me"}], "FR") == [Hint(99, None)]


def test_a_bare_id_is_taken_only_as_digits_and_only_without_a_better_name() -> None:
    assert hints_from([{"id": "55"}], "FR") == [Hint(55, None)]
    assert hints_from([{"id": "16fd2706-8baf-433b"}], "FR") == []
    assert hints_from([{"id": "1", "messageId": "2"}], "FR") == [Hint(2, None)]


@pytest.mark.parametrize(
    "report",
    [
        {"status": "delivered"},
        {"messageId": "-3"},
        {"messageId": "0"},
        {"messageId": True},
        {"messageId": "9" * 40},
        {"messageId": 1.5},
        {"messageId": {"nested": 1}},
        "not a mapping",
    ],
)
def test_reports_naming_no_valid_id_give_nothing(report: object) -> None:
    assert hints_from([report], "FR") == []


def test_one_level_of_nesting_and_batches_are_read() -> None:
    reports = [{"data": {"messageId": 1, "phoneNumber": PHONE}}, {"messageId": 2}]
    assert hints_from(reports, "FR") == [Hint(1, PHONE), Hint(2, None)]


def test_a_batch_is_read_up_to_its_cap() -> None:
    reports = [{"messageId": i} for i in range(1, MAX_ITEMS + 50)]
    assert len(hints_from(reports, "FR")) == MAX_ITEMS


# -- the plain function ----------------------------------------------------------------------


async def test_get_with_a_query_string(fed: tuple[CallbackReceiver, Sink]) -> None:
    receiver, sink = fed
    response = await receiver.handle(
        method="GET", token=TOKEN, query=b"messageId=42&phoneNumber=%2B33612345678&status=ok"
    )
    assert (response.status, response.body) == (200, b"OK")
    assert await drained(receiver, sink) == [Hint(42, PHONE)]


async def test_post_json_and_form_and_query_fields(fed: tuple[CallbackReceiver, Sink]) -> None:
    receiver, sink = fed
    json_body = orjson.dumps({"message_id": 42, "phone_number": "0612345678"})
    form_body = b"msgId=43&msisdn=33612345678"
    batch = orjson.dumps([{"messageId": 44}, {"messageId": 45, "number": PHONE}])
    answers = [
        await receiver.handle(
            method="POST", token=TOKEN, body=json_body, content_type="application/json"
        ),
        await receiver.handle(
            method="POST",
            token=TOKEN,
            body=form_body,
            content_type="application/x-www-form-urlencoded",
        ),
        await receiver.handle(method="POST", token=TOKEN, body=batch, content_type=None),
        # The id in the URL's query string, the number in the body.
        await receiver.handle(
            method="post",
            token=TOKEN,
            query="messageId=46",
            body=b'{"to": "+33612345678"}',
            content_type="application/json; charset=utf-8",
        ),
    ]
    assert [a.status for a in answers] == [200, 200, 200, 200]
    assert await drained(receiver, sink) == [
        Hint(42, PHONE),
        Hint(43, PHONE),
        Hint(44, None),
        Hint(45, PHONE),
        Hint(46, PHONE),
    ]


async def test_bad_token_is_not_found_and_hints_nothing(
    fed: tuple[CallbackReceiver, Sink],
) -> None:
    receiver, sink = fed
    for token in ["", "x", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "é" * 25]:
        response = await receiver.handle(method="GET", token=token, query="messageId=1")
        assert response.status == 404
    assert receiver.stats.refused == 6
    assert receiver.too_large("nope").status == 404  # the cap is not revealed to strangers
    await asyncio.sleep(0.01)
    assert sink.hints == []


@pytest.mark.parametrize(
    ("method", "body", "content_type", "status"),
    [
        ("POST", b"{not json", "application/json", 400),
        ("POST", b"[1, 2, 3]", "application/json", 400),
        ("POST", b'"just a string"', "application/json", 400),
        ("POST", b'{"status": "delivered"}', "application/json", 400),
        ("POST", b"\x00\xff\xfe garbage", "application/octet-stream", 415),
        ("POST", b"--b\r\ncontent-disposition: form-data\r\n", "multipart/form-data", 415),
        ("POST", b"a=" + b"&a=".join(b"%d" % i for i in range(200)), None, 400),
        ("POST", b"hello", "text/plain", 400),  # text, but not a form: nothing to read
        ("POST", b"hello", None, 400),
        ("PUT", b"", None, 405),
        ("DELETE", b"", None, 405),
    ],
)
async def test_garbage_is_refused(
    fed: tuple[CallbackReceiver, Sink], method: str, body: bytes, content_type: str, status: int
) -> None:
    receiver, sink = fed
    response = await receiver.handle(
        method=method, token=TOKEN, body=body, content_type=content_type
    )
    assert response.status == status
    await asyncio.sleep(0.01)
    assert sink.hints == []


async def test_an_empty_callback_is_a_reachability_check(
    fed: tuple[CallbackReceiver, Sink],
) -> None:
    receiver, _ = fed
    assert (await receiver.handle(method="GET", token=TOKEN)).status == 200
    assert receiver.stats.hints == 0


async def test_a_huge_body_is_refused(fed: tuple[CallbackReceiver, Sink]) -> None:
    receiver, sink = fed
    body = orjson.dumps({"messageId": 1, "pad": "x" * receiver.max_body})
    response = await receiver.handle(
        method="POST", token=TOKEN, body=body, content_type="application/json"
    )
    assert response.status == 413
    assert receiver.stats.too_large == 1
    assert sink.hints == []


async def test_a_list_over_the_cap_is_refused_whole(fed: tuple[CallbackReceiver, Sink]) -> None:
    """The docs: a list of up to 1,000 reports. A longer one is answered 413 (the sender
    splits it) rather than 200 with its tail dropped, which no sender would send again."""
    receiver, sink = fed
    for n, status in ((MAX_ITEMS, 200), (MAX_ITEMS + 1, 413)):
        body = orjson.dumps([{"messageId": i} for i in range(1, n + 1)])
        response = await receiver.handle(
            method="POST", token=TOKEN, body=body, content_type="application/json"
        )
        assert response.status == status, n
    assert receiver.stats.too_large == 1
    hints = await drained(receiver, sink)
    assert len(hints) == MAX_ITEMS  # from the first list only


async def test_before_feeding_callbacks_are_answered_503() -> None:
    receiver = CallbackReceiver(TOKEN)
    response = await receiver.handle(method="GET", token=TOKEN, query="messageId=1")
    assert response.status == 503
    assert ("retry-after", "1") in response.headers


def test_tokens_too_short_or_not_one_segment_are_refused_without_echo() -> None:
    for token in ["short", "a/" + "b" * 20, "x" * 300]:
        with pytest.raises(InvalidInputError) as caught:
            CallbackReceiver(token)
        assert token not in str(caught.value)
    assert len(new_token()) >= 40
    assert TOKEN not in repr(CallbackReceiver(TOKEN))


# -- bounds ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_rate_is_bounded_and_recovers() -> None:
    clock = Clock()
    receiver = CallbackReceiver(TOKEN, max_rate=10, burst=10, clock=clock, flush_delay=0)
    sink = Sink()
    async with receiver.feeding(sink):
        answers = [
            (await receiver.handle(method="GET", token=TOKEN, query=f"messageId={i}")).status
            for i in range(1, 16)
        ]
        assert answers == [200] * 10 + [429] * 5
        clock.now += 0.5  # five more tokens
        answers = [
            (await receiver.handle(method="GET", token=TOKEN, query=f"messageId={i}")).status
            for i in range(100, 107)
        ]
        assert answers == [200] * 5 + [429] * 2
    assert receiver.stats.throttled == 7
    assert len(sink.hints) == 15


async def test_a_batch_read_in_part_over_the_rate_is_answered_429() -> None:
    receiver = CallbackReceiver(TOKEN, max_rate=10, burst=10, clock=Clock(), flush_delay=0)
    sink = Sink()
    async with receiver.feeding(sink):
        body = orjson.dumps([{"messageId": i} for i in range(1, 26)])
        answer = await receiver.handle(method="POST", token=TOKEN, body=body)
        assert answer.status == 429
    assert receiver.stats.over_rate == 15
    assert [hint.message_id for hint in sink.hints] == list(range(1, 11))


async def test_repeats_waiting_in_the_buffer_cost_nothing() -> None:
    receiver = CallbackReceiver(TOKEN, max_rate=5, burst=5, flush_delay=30)
    sink = Sink()
    async with receiver.feeding(sink):
        for _ in range(50):
            answer = await receiver.handle(method="GET", token=TOKEN, query="messageId=9")
            assert answer.status == 200
        await asyncio.sleep(0.01)
        assert sink.hints == []  # still gathering: the batch goes at the end of flush_delay
    assert receiver.stats.repeated == 49
    assert sink.hints == [Hint(9, None)]


async def test_a_stuck_sink_fills_the_buffer_then_hints_are_dropped() -> None:
    receiver = CallbackReceiver(
        TOKEN, max_buffer=100, max_rate=1e9, flush_delay=0, sink_timeout=0.05
    )
    sink = Sink()
    sink.gate.clear()
    async with receiver.feeding(sink):
        await receiver.handle(method="GET", token=TOKEN, query="messageId=1")
        await asyncio.sleep(0.01)  # the flusher holds that one, stuck in the sink
        statuses = [
            (await receiver.handle(method="GET", token=TOKEN, query=f"messageId={i}")).status
            for i in range(2, 152)
        ]
        assert statuses.count(200) == 100
        assert statuses.count(503) == 50
        assert receiver.stats.throttled == 50
    # Every batch timed out in the stuck sink: counted, not raised.
    assert receiver.stats.failed == 101
    assert sink.hints == []


async def test_a_failing_sink_is_logged_without_details_and_the_next_batch_goes_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = CallbackReceiver(TOKEN, flush_delay=0)
    sink = Sink()
    sink.fail = True
    with caplog.at_level(logging.DEBUG, logger="smspartner_async"):
        async with receiver.feeding(sink):
            await receiver.handle(method="GET", token=TOKEN, query="messageId=1&phone=0612345678")
            await drained(receiver, sink)
            sink.fail = False
            await receiver.handle(method="GET", token=TOKEN, query="messageId=2")
            await drained(receiver, sink)
    assert receiver.stats.failed == 1
    assert sink.hints == [Hint(2, None)]
    assert "ConnectionError" in caplog.text
    assert "612345678" not in caplog.text


@pytest.mark.parametrize("bound", ["rate", "buffer"])
async def test_a_million_distinct_ids_keep_memory_and_hand_over_bounded(
    caplog: pytest.LogCaptureFixture, bound: str
) -> None:
    """1,000 callbacks of 1,000 reports each, every id new, against a sink that never
    answers: what is parsed, buffered, kept in memory and logged stays bounded, whether
    the rate or the buffer is what holds."""
    clock = Clock()
    receiver = CallbackReceiver(
        TOKEN,
        max_rate=2_000 if bound == "rate" else 1e9,
        max_buffer=20_000,
        clock=clock,
        flush_delay=0,
        sink_timeout=0.01,
    )
    sink = Sink()
    sink.gate.clear()
    statuses: dict[int, int] = {}
    tracemalloc.start()
    try:
        with caplog.at_level(logging.DEBUG, logger="smspartner_async"):
            async with receiver.feeding(sink):
                for call in range(1_000):
                    clock.now += 0.01  # 100 callbacks a second: 100,000 ids a second
                    first = 1 + call * 1_000
                    body = b"[%s]" % b",".join(
                        b'{"messageId":%d,"msisdn":"+3361%07d"}' % (first + i, i)
                        for i in range(1_000)
                    )
                    answer = await receiver.handle(
                        method="POST", token=TOKEN, body=body, content_type="application/json"
                    )
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1
                    if call % 50 == 0:
                        await asyncio.sleep(0)
                    assert len(receiver._buffer) <= receiver.max_buffer
                _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stats = receiver.stats
    assert set(statuses) <= {200, 429, 503}
    if bound == "rate":
        # 10 s of callbacks at 2,000 hints a second, one burst of 2,000 on top.
        assert stats.hints <= 2_000 * 10 + 2_000
    assert stats.throttled >= 950
    assert stats.hints + stats.over_rate + stats.over_buffer <= 50_000  # the rest unread
    assert peak < 40 * 1024 * 1024
    assert len(caplog.records) <= 4  # one warning of each kind a minute of its clock
    assert "3361" not in caplog.text


# -- the framework adapters ------------------------------------------------------------------


async def test_asgi_mounted_in_fastapi(fed: tuple[CallbackReceiver, Sink]) -> None:
    receiver, sink = fed
    app = FastAPI()
    app.mount("/smspartner/dlr", receiver.asgi)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        got = await http.get(f"/smspartner/dlr/{TOKEN}", params={"msgId": 5, "msisdn": PHONE})
        posted = await http.post(f"/smspartner/dlr/{TOKEN}", json={"messageId": 6})
        form = await http.post(f"/smspartner/dlr/{TOKEN}", data={"message_id": "7"})
        wrong = await http.get("/smspartner/dlr/not-the-token", params={"msgId": 8})
        huge = await http.post(
            f"/smspartner/dlr/{TOKEN}", content=b"{" + b" " * (receiver.max_body + 10) + b"}"
        )

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: read until the cap
            for _ in range(100):
                yield b" " * 4096

        streamed = await http.post(f"/smspartner/dlr/{TOKEN}", content=chunks())
    assert [r.status_code for r in (got, posted, form, wrong, huge, streamed)] == [
        200,
        200,
        200,
        404,
        413,
        413,
    ]
    assert await drained(receiver, sink) == [Hint(5, PHONE), Hint(6, None), Hint(7, None)]


async def test_asgi_standalone_answers_lifespan() -> None:
    receiver = CallbackReceiver(TOKEN)
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)

    await receiver.asgi({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_aiohttp_handler(fed: tuple[CallbackReceiver, Sink]) -> None:
    receiver, sink = fed
    app = web.Application()
    app.router.add_route("*", "/dlr/{token}", receiver.aiohttp_handler)
    async with TestClient(TestServer(app)) as http:
        got = await http.get(f"/dlr/{TOKEN}", params={"messageId": "10", "number": PHONE})
        posted = await http.post(f"/dlr/{TOKEN}", json={"msg_id": 11})
        form = await http.post(f"/dlr/{TOKEN}", data={"messageId": "12"})
        wrong = await http.get("/dlr/nope", params={"messageId": "13"})
        huge = await http.post(f"/dlr/{TOKEN}", data=b"x" * (receiver.max_body + 1))
        garbage = await http.post(
            f"/dlr/{TOKEN}", data=b"{{{", headers={"content-type": "application/json"}
        )
        assert [r.status for r in (got, posted, form, wrong, huge, garbage)] == [
            200,
            200,
            200,
            404,
            413,
            400,
        ]
        assert await got.text() == "OK"
    assert await drained(receiver, sink) == [Hint(10, PHONE), Hint(11, None), Hint(12, None)]


def test_access_log_filter_scrubs_the_token_and_the_query() -> None:
    receiver = CallbackReceiver(TOKEN)
    scrub = receiver.access_log_filter()
    uvicorn_style = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", f"/dlr/{TOKEN}?msisdn=33612345678&messageId=1", "1.1", 200),
        None,
    )
    aiohttp_style = logging.LogRecord(
        "aiohttp.access",
        logging.INFO,
        __file__,
        1,
        f'1.2.3.4 "GET /dlr/{TOKEN}?phone=0612345678 HTTP/1.1" 200 2',
        None,
        None,
    )
    for record in (uvicorn_style, aiohttp_style):
        assert scrub.filter(record)
        line = record.getMessage()
        assert TOKEN not in line
        assert "612345678" not in line
        assert "/dlr/<token>" in line
        assert "HTTP/1.1" in line


def test_a_receiver_feeds_again_on_another_event_loop() -> None:
    """An app restarted in a new loop (a test client per test, a reloaded server)."""
    receiver = CallbackReceiver(TOKEN, flush_delay=0)

    async def session(message_id: int) -> list[Hint]:
        sink = Sink()
        async with receiver.feeding(sink):
            answer = await receiver.handle(
                method="GET", token=TOKEN, query=f"messageId={message_id}"
            )
            assert answer.status == 200
            return await drained(receiver, sink)

    assert asyncio.run(session(1)) == [Hint(1, None)]
    assert asyncio.run(session(2)) == [Hint(2, None)]
