"""Retries, Retry-After, the deadline, the shared 429 gate, the rate limit, the hook and counters.

Most tests run through `make_client` (an `httpx.MockTransport` over a respx router, zero-wait
retries). The ones that measure waits build their own client over an async handler that
records when each request starts; their real sleeps stay at 0.3 s or less.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from smspartner_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    MessageStatus,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestEvent,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    SMSPartnerClient,
    SMSPartnerError,
)
from smspartner_async._flow import PauseGate, RateLimiter
from smspartner_async._retry import parse_retry_after
from tests import seeds

PHONE = "+33600000001"
MESSAGE_ID = 1111
HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>"
)

Factory = Callable[[], Any]


def _exc(kind: type[httpx.TransportError]) -> Factory:
    return lambda: kind(f"simulated {kind.__name__}")


def _resp(status: int, body: bytes = b"", **headers: str) -> Factory:
    return lambda: httpx.Response(status, content=body, headers=headers)


# (id, what the server does, the exception it becomes when it is the last attempt)
TRANSIENT: list[tuple[str, Factory, type[SMSPartnerError]]] = [
    ("connect-error", _exc(httpx.ConnectError), APIConnectionError),
    ("read-error", _exc(httpx.ReadError), APIConnectionError),
    ("remote-protocol", _exc(httpx.RemoteProtocolError), APIConnectionError),
    ("read-timeout", _exc(httpx.ReadTimeout), APITimeoutError),
    ("connect-timeout", _exc(httpx.ConnectTimeout), APITimeoutError),
    ("pool-timeout", _exc(httpx.PoolTimeout), APITimeoutError),
    ("408", _resp(408), ServerError),
    ("429", _resp(429), RateLimitError),
    ("429-json", _resp(429, b'{"success": false, "code": 429}'), RateLimitError),
    ("500", _resp(500), ServerError),
    ("502", _resp(502, b"Bad Gateway"), ServerError),
    ("503", _resp(503), ServerError),
    ("502-html", _resp(502, HTML_PAGE, **{"content-type": "text/html"}), ServerError),
    ("200-html", _resp(200, HTML_PAGE, **{"content-type": "text/html"}), ResponseFormatError),
    ("200-empty", _resp(200), ResponseFormatError),
    ("200-blank", _resp(200, b"  \r\n "), ResponseFormatError),
    ("200-truncated-json", _resp(200, seeds.MESSAGE_STATUS_JSON[:57]), ResponseFormatError),
    ("200-json-array", _resp(200, b"[1, 2]"), ResponseFormatError),
    ("200-no-success-flag", _resp(200, b'{"code": 200}'), ResponseFormatError),
    ("200-wrong-types", _resp(200, b'{"success": true, "statut": 5}'), ResponseFormatError),
]
TRANSIENT_IDS = [case[0] for case in TRANSIENT]

# The same for XML answers (`response_format="xml"`).
TRANSIENT_XML: list[tuple[str, Factory, type[SMSPartnerError]]] = [
    ("xml-truncated", _resp(200, seeds.MESSAGE_STATUS_XML[:120]), ResponseFormatError),
    ("xml-empty", _resp(200), ResponseFormatError),
    ("xml-html", _resp(200, HTML_PAGE), ResponseFormatError),
    ("xml-503-html", _resp(503, HTML_PAGE), ServerError),
    ("xml-500-empty", _resp(500), ServerError),
    ("xml-wrong-root", _resp(200, b"<answer><entry>true</entry></answer>"), ResponseFormatError),
    ("xml-connect-error", _exc(httpx.ConnectError), APIConnectionError),
]

# API errors: (code, exception); each is final, whatever the HTTP status.
API_ERRORS: list[tuple[int, type[APIError]]] = [
    (1, AuthenticationError),
    (10, AuthenticationError),
    (2, InvalidRequestError),
    (3, InvalidRequestError),
    (5, InvalidRequestError),
    (6, InvalidRequestError),
    (9, InvalidRequestError),
    (50, InvalidRequestError),
    (90, InvalidRequestError),
    (4, NotFoundError),
    (96, PermissionDeniedError),
    (77, APIError),
]


def ok_json() -> httpx.Response:
    return httpx.Response(200, content=seeds.MESSAGE_STATUS_JSON)


def ok_xml() -> httpx.Response:
    return httpx.Response(200, content=seeds.MESSAGE_STATUS_XML)


def api_error(code: int, status: int = 200, fmt: str = "json") -> httpx.Response:
    if fmt == "xml":
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<result><entry>false</entry>"
            f"<entry>{code}</entry><entry>Erreur {code}</entry></result>"
        ).encode()
    else:
        body = orjson.dumps({"success": False, "code": code, "message": f"Erreur {code}"})
    return httpx.Response(status, content=body)


def multi_answer(request: httpx.Request) -> httpx.Response:
    """A successful multi-status answer for exactly the pairs the request asked for."""
    asked = orjson.loads(request.content)["SMSStatut_List"]
    items = [
        {
            "success": True,
            "code": 200,
            "phoneNumber": item["phoneNumber"],
            "messageId": item["messageId"],
            "status": "Delivered",
            "date": "1517934416",
            "stopSms": "0",
            "isSpam": "0",
        }
        for item in asked
    ]
    return httpx.Response(
        200, content=orjson.dumps({"success": True, "code": 200, "StatutResponse_List": items})
    )


def pairs(n: int) -> list[tuple[str, int]]:
    return [(f"+336{i:08d}", 1000 + i) for i in range(n)]


class Recorder:
    """An async handler for `httpx.MockTransport` that records each request's start time."""

    def __init__(self, respond: Callable[[httpx.Request, int], Awaitable[httpx.Response]]) -> None:
        self.respond = respond
        self.starts: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        n = len(self.starts)
        self.starts.append(asyncio.get_running_loop().time())
        return await self.respond(request, n)


def timed_client(handler: Recorder, **options: Any) -> SMSPartnerClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SMSPartnerClient("timed-key-0a1b2c3d", http_client=http, **options)


def policy(**kw: float) -> RetryPolicy:
    """A real (non-testing) policy with tiny backoffs."""
    values: dict[str, Any] = {
        "max_retries": 3,
        "initial_backoff": 0.001,
        "max_backoff": 0.002,
        "max_retry_after": 5.0,
    }
    values.update(kw)
    return RetryPolicy(**values)


# -- transient failures are retried --------------------------------------------------------------


@pytest.mark.parametrize(("name", "fail", "error"), TRANSIENT, ids=TRANSIENT_IDS)
async def test_transient_failure_is_retried_then_succeeds(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], name, fail, error
) -> None:
    route = router.get("/message-status").mock(side_effect=[fail(), fail(), ok_json()])
    client = make_client()
    status = await client.message_status(PHONE, MESSAGE_ID)
    assert isinstance(status, MessageStatus)
    assert status.message_id == MESSAGE_ID
    assert route.call_count == 3
    assert client.stats.retries == 2
    assert client.stats.failures == 0


@pytest.mark.parametrize(
    ("name", "fail", "error"), TRANSIENT_XML, ids=[c[0] for c in TRANSIENT_XML]
)
async def test_transient_failure_is_retried_then_succeeds_xml(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], name, fail, error
) -> None:
    route = router.get("/message-status").mock(side_effect=[fail(), ok_xml()])
    client = make_client(response_format="xml")
    status = await client.message_status(PHONE, MESSAGE_ID)
    assert status.message_id == MESSAGE_ID
    assert route.call_count == 2


@pytest.mark.parametrize(("name", "fail", "error"), TRANSIENT, ids=TRANSIENT_IDS)
async def test_exhausted_retries_raise_the_last_errors_type(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], name, fail, error
) -> None:
    route = router.get("/message-status").mock(side_effect=[fail() for _ in range(4)])
    client = make_client(retry=RetryPolicy.testing(max_retries=3))
    with pytest.raises(SMSPartnerError) as info:
        await client.message_status(PHONE, MESSAGE_ID)
    assert type(info.value) is error
    assert route.call_count == 4
    assert client.stats.retries == 3
    assert client.stats.failures == 1


@pytest.mark.parametrize(("name", "fail", "error"), TRANSIENT + TRANSIENT_XML)
async def test_max_retries_zero_turns_retries_off(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], name, fail, error
) -> None:
    route = router.get("/message-status").mock(side_effect=[fail(), ok_json()])
    fmt = "xml" if name.startswith("xml") else "json"
    client = make_client(max_retries=0, response_format=fmt)
    with pytest.raises(SMSPartnerError) as info:
        await client.message_status(PHONE, MESSAGE_ID)
    assert type(info.value) is error
    assert route.call_count == 1
    assert client.stats.retries == 0


@pytest.mark.parametrize(
    ("sequence", "error"),
    [
        (
            [_exc(httpx.ConnectError), _resp(500), _resp(429), _exc(httpx.ReadTimeout)],
            APITimeoutError,
        ),
        (
            [_exc(httpx.ReadTimeout), _resp(429), _resp(500), _resp(200, HTML_PAGE)],
            ResponseFormatError,
        ),
        ([_resp(200, b""), _exc(httpx.ReadTimeout), _resp(503), _resp(429)], RateLimitError),
        ([_resp(429), _resp(200, b"{"), _exc(httpx.ReadTimeout), _resp(502)], ServerError),
        ([_resp(429), _resp(502), _resp(200, b"{"), _exc(httpx.ConnectError)], APIConnectionError),
    ],
)
async def test_mixed_failures_raise_the_last_one(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], sequence, error
) -> None:
    route = router.get("/message-status").mock(side_effect=[make() for make in sequence])
    client = make_client()
    with pytest.raises(SMSPartnerError) as info:
        await client.message_status(PHONE, MESSAGE_ID)
    assert type(info.value) is error
    assert route.call_count == 4


async def test_max_retries_option_overrides_the_policy(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    route = router.get("/message-status").mock(side_effect=[_resp(500)() for _ in range(10)])
    client = make_client(retry=RetryPolicy.testing(max_retries=7), max_retries=2)
    with pytest.raises(ServerError):
        await client.message_status(PHONE, MESSAGE_ID)
    assert route.call_count == 3


async def test_multi_status_chunk_is_retried_and_no_result_is_lost(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    calls = 0
    tried: set[bytes] = set()

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if request.content not in tried:  # every first attempt of a chunk fails in some way
            tried.add(request.content)
            return [_resp(503), _resp(200, b'{"succ'), _resp(429)][calls % 3]()
        return multi_answer(request)

    router.post("/multi-status").mock(side_effect=answer)
    client = make_client(batch_size=7, max_concurrency=1)
    asked = pairs(30)
    results = await client.multi_status(asked)
    assert [(r.phone_number, r.message_id) for r in results] == asked
    assert all(r.ok for r in results)
    assert [r.index for r in results] == list(range(30))
    assert calls == 10  # 5 chunks, each failing once


# -- API errors are final -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("http_status", [200, 400, 401, 403])
@pytest.mark.parametrize(("code", "error"), API_ERRORS)
async def test_api_errors_are_never_retried(
    router: respx.Router,
    make_client: Callable[..., SMSPartnerClient],
    code: int,
    error: type[APIError],
    http_status: int,
    fmt: str,
) -> None:
    route = router.get("/bulk-status").mock(
        side_effect=[api_error(code, http_status, fmt) for _ in range(4)]
    )
    client = make_client(response_format=fmt, retry=RetryPolicy.testing(max_retries=3))
    with pytest.raises(APIError) as info:
        await client.bulk_status(111)
    assert type(info.value) is error
    assert info.value.code == code
    assert route.call_count == 1
    assert client.stats.retries == 0
    assert client.stats.failures == 1


@pytest.mark.parametrize(
    ("code", "error"), [(10, AuthenticationError), (96, PermissionDeniedError)]
)
async def test_multi_status_fatal_api_error_raises_after_one_call(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], code, error
) -> None:
    route = router.post("/multi-status").mock(side_effect=lambda _: api_error(code))
    client = make_client(batch_size=10, max_concurrency=1)
    with pytest.raises(error):
        await client.multi_status(pairs(50))
    assert route.call_count == 1


async def test_multi_status_final_api_error_gives_failed_results_without_retry(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    route = router.post("/multi-status").mock(side_effect=lambda _: api_error(2))
    client = make_client(batch_size=10, max_concurrency=2)
    results = await client.multi_status(pairs(25))
    assert len(results) == 25
    assert all(not r.ok and r.code == 2 for r in results)
    assert all(isinstance(r.error, InvalidRequestError) for r in results)
    assert route.call_count == 3  # one per chunk, none retried


@pytest.mark.parametrize("http_status", [500, 502, 503])
async def test_5xx_with_api_shaped_error_body_is_retried(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], http_status: int
) -> None:
    body = b'{"success": false, "code": 500, "message": "Internal Server Error"}'
    route = router.get("/message-status").mock(
        side_effect=[httpx.Response(http_status, content=body), ok_json()]
    )
    client = make_client()
    status = await client.message_status(PHONE, MESSAGE_ID)
    assert status.message_id == MESSAGE_ID
    assert route.call_count == 2


# -- parse_retry_after --------------------------------------------------------------------------

NOW = 1_700_000_000.0


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "-inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "NaN"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "Infinity"}, None),
        ({"retry-after": "1e400"}, None),
        ({"retry-after": "1e10"}, 86400.0),
        ({"retry-after": "garbage"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "soon, maybe"}, None),
        ({"retry-after": http_date(NOW + 30)}, 30.0),
        ({"retry-after": http_date(NOW - 30)}, 0.0),
        ({"retry-after": http_date(NOW + 10 * 365 * 86400)}, 86400.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "nan", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "garbage", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-100"}, 0.0),
        ({"retry-after-ms": "1e15"}, 86400.0),
        ({"retry-after-ms": "inf"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_parse_retry_after_reads_httpx_headers_case_insensitively() -> None:
    headers = httpx.Headers({"Retry-After": "3", "X-Other": "1"})
    assert parse_retry_after(headers) == 3.0
    assert parse_retry_after(httpx.Headers({"Retry-After-Ms": "1500"})) == 1.5


def test_parse_retry_after_date_uses_the_clock_when_now_is_not_given() -> None:
    wait = parse_retry_after({"retry-after": http_date(time.time() + 100)})
    assert wait is not None
    assert 95 <= wait <= 101


@pytest.mark.parametrize(
    "value",
    [
        "Mon, 99999999999999999999 Jan 2020 00:00:00 GMT",
        "Mon, 01 Jan 2020 99999999999999999999:00:00 GMT",
        "Mon, 01 Jan 2020 00:00:00 +99999999999999999",
    ],
)
def test_parse_retry_after_absurd_date_fields_are_garbage(value: str) -> None:
    assert parse_retry_after({"retry-after": value}, now=NOW) is None


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.one_of(
        st.none(),
        st.text(max_size=40),
        st.floats().map(repr),
        st.integers().map(str),
        st.datetimes(timezones=st.timezones()).map(lambda d: email.utils.format_datetime(d)),
    ),
    millis=st.one_of(st.none(), st.text(max_size=20), st.floats().map(repr)),
)
def test_parse_retry_after_never_raises_and_stays_in_range(
    seconds: str | None, millis: str | None
) -> None:
    headers = {}
    if seconds is not None:
        headers["retry-after"] = seconds
    if millis is not None:
        headers["retry-after-ms"] = millis
    wait = parse_retry_after(headers, now=NOW)
    assert wait is None or (math.isfinite(wait) and 0.0 <= wait <= 86400.0)


def test_retry_policy_wait_for() -> None:
    p = RetryPolicy(max_retries=3, initial_backoff=0.5, max_backoff=8, max_retry_after=60)
    assert p.wait_for(0, 10.0) == 10.0
    assert p.wait_for(0, 0.0) == 0.0
    assert p.wait_for(0, 61.0) is None  # beyond the cap: stop
    assert 0.25 <= p.wait_for(0, None) <= 0.5  # type: ignore[operator]
    assert 4.0 <= p.wait_for(10, None) <= 8.0  # type: ignore[operator]
    fixed = RetryPolicy(initial_backoff=0.5, max_backoff=8, jitter=False)
    assert [fixed.backoff(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    testing = RetryPolicy.testing()
    assert testing.max_retries == 3
    assert testing.wait_for(2, None) == 0
    assert testing.wait_for(0, 3600.0) == 0  # testing mode still retries, without waiting


# -- Retry-After through the client --------------------------------------------------------------


async def test_retry_after_seconds_is_honoured() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 0:
            return httpx.Response(429, headers={"Retry-After": "0.2"})
        return ok_json()

    handler = Recorder(respond)
    async with timed_client(handler, retry=policy()) as client:
        await client.message_status(PHONE, MESSAGE_ID)
    assert len(handler.starts) == 2
    assert handler.starts[1] - handler.starts[0] >= 0.19


async def test_retry_after_ms_is_honoured() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 0:
            return httpx.Response(429, headers={"retry-after-ms": "200", "Retry-After": "60"})
        return ok_json()

    handler = Recorder(respond)
    async with timed_client(handler, retry=policy()) as client:
        async with asyncio.timeout(5):
            await client.message_status(PHONE, MESSAGE_ID)
    assert handler.starts[1] - handler.starts[0] >= 0.19


async def test_retry_after_on_503_is_honoured() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 0:
            return httpx.Response(503, content=HTML_PAGE, headers={"Retry-After": "0.2"})
        return ok_json()

    handler = Recorder(respond)
    async with timed_client(handler, retry=policy()) as client:
        await client.message_status(PHONE, MESSAGE_ID)
    assert handler.starts[1] - handler.starts[0] >= 0.19


async def test_retry_after_http_date_in_the_past_retries_at_once() -> None:
    events: list[RequestEvent] = []

    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 0:
            return httpx.Response(429, headers={"Retry-After": http_date(time.time() - 3600)})
        return ok_json()

    handler = Recorder(respond)
    # A backoff of 10 s would show: the past date must win and mean "now".
    slow = policy(initial_backoff=10, max_backoff=10)
    async with timed_client(handler, retry=slow, on_request=events.append) as client:
        async with asyncio.timeout(3):
            await client.message_status(PHONE, MESSAGE_ID)
    assert events[0].retry_in == 0.0
    assert len(handler.starts) == 2


async def test_retry_after_http_date_beyond_the_cap_ends_retries() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": http_date(time.time() + 3600)})

    handler = Recorder(respond)
    async with timed_client(handler, retry=policy(max_retry_after=60)) as client:
        with pytest.raises(RateLimitError) as info:
            await client.message_status(PHONE, MESSAGE_ID)
    assert len(handler.starts) == 1
    assert info.value.retry_after is not None
    assert 3590 <= info.value.retry_after <= 3601


async def test_retry_after_seconds_beyond_the_cap_ends_retries(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    route = router.get("/message-status").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "30"}), ok_json()]
    )
    client = make_client(retry=policy(max_retry_after=1))
    with pytest.raises(RateLimitError) as info:
        await client.message_status(PHONE, MESSAGE_ID)
    assert info.value.retry_after == 30.0
    assert route.call_count == 1
    assert client.stats.failures == 1


@pytest.mark.parametrize(
    ("value", "expected_wait"),
    [
        ("-5", 0.0),
        ("0", 0.0),
        ("nan", "backoff"),
        ("inf", "backoff"),
        ("-inf", "backoff"),
        ("garbage", "backoff"),
        ("", "backoff"),
        ("Wed, 32 Foo 2015 07:28:00 GMT", "backoff"),
    ],
)
async def test_absurd_retry_after_values_fall_back_safely(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], value, expected_wait
) -> None:
    events: list[RequestEvent] = []
    route = router.get("/message-status").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": value}), ok_json()]
    )
    client = make_client(
        retry=policy(initial_backoff=0.01, max_backoff=0.01), on_request=events.append
    )
    async with asyncio.timeout(3):
        await client.message_status(PHONE, MESSAGE_ID)
    assert route.call_count == 2
    wait = events[0].retry_in
    assert wait is not None
    if expected_wait == "backoff":
        assert 0.005 <= wait <= 0.01
    else:
        assert wait == expected_wait


async def test_huge_retry_after_is_clamped_then_refused_by_the_cap(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    route = router.get("/message-status").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "1e12"}), ok_json()]
    )
    client = make_client(retry=policy(max_retry_after=60))
    with pytest.raises(RateLimitError) as info:
        await client.message_status(PHONE, MESSAGE_ID)
    assert info.value.retry_after == 86400.0
    assert route.call_count == 1


async def test_overflowing_retry_after_date_does_not_escape_as_overflow_error(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    bad = "Mon, 99999999999999999999 Jan 2020 00:00:00 GMT"
    router.get("/message-status").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": bad}), ok_json()]
    )
    client = make_client()
    status = await client.message_status(PHONE, MESSAGE_ID)
    assert status.message_id == MESSAGE_ID


# -- the deadline ---------------------------------------------------------------------------------


async def test_deadline_bounds_all_attempts_together() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        await asyncio.sleep(0.04)
        return httpx.Response(500)

    handler = Recorder(respond)
    async with timed_client(
        handler, retry=RetryPolicy.testing(max_retries=1000), deadline=0.25
    ) as client:
        with pytest.raises(APITimeoutError) as info:
            async with asyncio.timeout(5):
                await client.message_status(PHONE, MESSAGE_ID)
        assert "deadline" in str(info.value)
        assert info.value.endpoint == "message-status"
        assert 2 <= len(handler.starts) < 1000
        assert client.stats.failures == 1


async def test_deadline_cuts_a_long_retry_after_wait() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "30"})

    handler = Recorder(respond)
    async with timed_client(handler, retry=policy(max_retry_after=60), deadline=0.2) as client:
        with pytest.raises(APITimeoutError):
            async with asyncio.timeout(5):
                await client.message_status(PHONE, MESSAGE_ID)
    assert len(handler.starts) == 1


async def test_deadline_on_multi_status_fails_the_chunk_not_the_call() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        await asyncio.sleep(0.05)
        return httpx.Response(503)

    handler = Recorder(respond)
    async with timed_client(
        handler, retry=RetryPolicy.testing(max_retries=1000), deadline=0.2, batch_size=5
    ) as client:
        async with asyncio.timeout(5):
            # Every chunk ran out of time: an outage, raised (one chunk answered keeps results).
            with pytest.raises(APITimeoutError, match="deadline") as info:
                await client.multi_status(pairs(12))
    assert info.value.__notes__ == ["not one of the batch's 3 calls got an answer"]


def test_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="deadline"):
        SMSPartnerClient("k-123456", deadline=0)
    with pytest.raises(ValueError, match="deadline"):
        SMSPartnerClient("k-123456", deadline=-1)


# -- the hook and the counters ---------------------------------------------------------------


async def test_request_events_and_stats_count_retries(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    events: list[RequestEvent] = []
    router.get("/message-status").mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(429),
            httpx.ConnectError("refused"),
            ok_json(),
        ]
    )
    client = make_client(on_request=events.append)
    await client.message_status(PHONE, MESSAGE_ID)
    assert [e.attempt for e in events] == [0, 1, 2, 3]
    assert [e.status_code for e in events] == [500, 429, None, 200]
    assert [type(e.error) for e in events] == [
        ServerError,
        RateLimitError,
        APIConnectionError,
        type(None),
    ]
    assert [e.retry_in for e in events] == [0, 0, 0, None]
    assert all(e.endpoint == "message-status" for e in events)
    assert all(e.pairs == 1 and e.elapsed >= 0 for e in events)
    stats = client.stats
    assert (stats.requests, stats.retries, stats.failures, stats.rate_limited) == (4, 3, 0, 1)
    assert stats.by_endpoint == {"message-status": 4}


async def test_stats_count_failures_across_calls(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    events: list[RequestEvent] = []
    router.get("/bulk-status").mock(side_effect=lambda _: httpx.Response(503))
    router.get("/message-status").mock(side_effect=lambda _: api_error(4))
    client = make_client(retry=RetryPolicy.testing(max_retries=2), on_request=events.append)
    with pytest.raises(ServerError):
        await client.bulk_status(1)
    with pytest.raises(NotFoundError):
        await client.message_status(PHONE, MESSAGE_ID)
    stats = client.stats
    assert (stats.requests, stats.retries, stats.failures) == (4, 2, 2)
    assert stats.by_endpoint == {"bulk-status": 3, "message-status": 1}
    assert events[2].retry_in is None and isinstance(events[2].error, ServerError)
    assert events[3].retry_in is None and isinstance(events[3].error, NotFoundError)


async def test_request_events_report_multi_status_pairs(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    events: list[RequestEvent] = []
    router.post("/multi-status").mock(side_effect=multi_answer)
    client = make_client(batch_size=4, max_concurrency=1, on_request=events.append)
    await client.multi_status(pairs(10))
    assert sorted(e.pairs for e in events) == [2, 4, 4]
    assert {e.endpoint for e in events} == {"multi-status"}


async def test_stats_count_every_429(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    router.get("/message-status").mock(side_effect=lambda _: httpx.Response(429))
    client = make_client(max_retries=0)
    with pytest.raises(RateLimitError):
        await client.message_status(PHONE, MESSAGE_ID)
    assert client.stats.rate_limited == 1


# -- the shared 429 gate -----------------------------------------------------------------------


async def test_a_429_pauses_every_chunk_of_the_client() -> None:
    pause = 0.3
    gate_closed_at: list[float] = []
    free_slots_during_pause: list[int] = []
    closed = asyncio.Event()

    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 2:
            gate_closed_at.append(asyncio.get_running_loop().time())
            closed.set()
            return httpx.Response(429, headers={"Retry-After": str(pause)})
        await asyncio.sleep(0.02)
        return multi_answer(request)

    handler = Recorder(respond)
    client = timed_client(handler, retry=policy(), max_concurrency=4, batch_size=10)

    async def sample_slots() -> None:
        await closed.wait()
        await asyncio.sleep(pause / 2)  # the chunks in flight at the 429 have finished by now
        free_slots_during_pause.append(client._shared.flow.slots._value)

    async with client:
        sampler = asyncio.create_task(sample_slots())
        results = await client.multi_status(pairs(120))
        await sampler
    assert len(results) == 120
    assert all(r.ok for r in results)
    assert [r.index for r in results] == list(range(120))
    assert len(handler.starts) == 13  # 12 chunks and the one retry
    (at,) = gate_closed_at
    during = [s for s in handler.starts if at + 0.01 < s < at + pause - 0.01]
    assert during == [], "requests started while the client was paused by a 429"
    assert any(s >= at + pause - 0.01 for s in handler.starts)
    # Waiting for the gate holds no concurrency slot.
    assert free_slots_during_pause == [4]
    assert client.stats.rate_limited == 1


@pytest.mark.parametrize(
    ("retry", "retry_after", "pause"),
    [
        (policy(max_retries=0), 0.3, 0.3),  # the call that got it does not retry
        (policy(max_retry_after=0.3), 5.0, 0.3),  # beyond the cap: it raises, the rest wait
    ],
    ids=["no-retries", "over-the-cap"],
)
async def test_a_429_pauses_the_client_even_when_its_call_gives_up(
    retry: RetryPolicy, retry_after: float, pause: float
) -> None:
    """The docs: a 429 pauses the whole client, not only the call that got it. That holds
    when that call raises instead of retrying (no retries left, or a `Retry-After` beyond
    the cap, then for the cap): the client's other requests still wait."""

    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 0:
            return httpx.Response(429, headers={"Retry-After": str(retry_after)})
        return httpx.Response(200, content=seeds.MESSAGE_STATUS_JSON)

    handler = Recorder(respond)
    async with timed_client(handler, retry=retry) as client:
        with pytest.raises(RateLimitError):
            await client.message_status(PHONE, MESSAGE_ID)
        await client.message_status(PHONE, MESSAGE_ID)
    first, second = handler.starts
    assert second - first >= pause - 0.01, "the next request went out during the pause"
    assert second - first < pause + 1.0


async def test_a_later_429_extends_the_pause() -> None:
    gate = PauseGate()
    loop = asyncio.get_running_loop()
    gate.pause(0.05)
    gate.pause(0.15)
    gate.pause(0.01)  # a shorter pause never shortens the gate
    started = loop.time()
    await gate.wait()
    assert loop.time() - started >= 0.14
    assert gate.remaining() == 0


# -- the client-side rate limit -----------------------------------------------------------------


async def test_rate_limit_spaces_request_starts() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        return ok_json()

    handler = Recorder(respond)
    async with timed_client(handler, max_requests_per_second=20, max_concurrency=8) as client:
        await asyncio.gather(*(client.message_status(PHONE, MESSAGE_ID + i) for i in range(11)))
    starts = sorted(handler.starts)
    assert len(starts) == 11
    assert (starts[-1] - starts[0]) / 10 >= 0.9 / 20
    # Each start waits for its booked slot (a late wake-up may only push it later).
    assert all(s - starts[0] >= k / 20 - 0.01 for k, s in enumerate(starts))


async def test_rate_limit_also_spaces_retries_and_chunks() -> None:
    async def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n % 3 == 0:
            return httpx.Response(502)
        return multi_answer(request)

    handler = Recorder(respond)
    async with timed_client(
        handler,
        retry=RetryPolicy.testing(),
        max_requests_per_second=25,
        max_concurrency=4,
        batch_size=5,
    ) as client:
        results = await client.multi_status(pairs(30))
    assert all(r.ok for r in results)
    starts = sorted(handler.starts)
    assert len(starts) >= 7
    assert (starts[-1] - starts[0]) / (len(starts) - 1) >= 0.9 / 25


async def test_rate_limiter_books_evenly_spaced_slots() -> None:
    limiter = RateLimiter(50)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(loop.time())

    started = loop.time()
    await asyncio.gather(*(one() for _ in range(6)))
    # The k-th caller never starts before its slot, k/50 s after the first.
    assert all(t - started >= k / 50 - 0.001 for k, t in enumerate(sorted(times)))


@pytest.mark.parametrize("rate", [0, -1, math.nan, math.inf])
def test_rate_limit_must_be_a_positive_number(rate: float) -> None:
    with pytest.raises(ValueError, match="max_requests_per_second"):
        RateLimiter(rate)


async def test_a_cancelled_waiter_gives_its_start_time_back() -> None:
    """The last booked start, cancelled, goes to the next caller: no hole in the schedule."""
    limiter = RateLimiter(10)
    loop = asyncio.get_running_loop()
    await limiter.acquire()  # starts now
    started = loop.time()
    second = asyncio.create_task(limiter.acquire())  # booked for +0.1 s
    await asyncio.sleep(0.01)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    await limiter.acquire()
    assert 0.08 <= loop.time() - started < 0.15  # +0.1 s, not +0.2 s


async def test_a_cancelled_waiter_in_the_middle_leaves_its_start_to_the_next_caller() -> None:
    limiter = RateLimiter(10)
    loop = asyncio.get_running_loop()
    await limiter.acquire()
    started = loop.time()
    second = asyncio.create_task(limiter.acquire())  # +0.1 s
    third = asyncio.create_task(limiter.acquire())  # +0.2 s
    await asyncio.sleep(0.01)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    await limiter.acquire()  # takes the +0.1 s start the second caller left
    assert 0.08 <= loop.time() - started < 0.15
    await third
    assert 0.18 <= loop.time() - started < 0.25
    await limiter.acquire()  # and the schedule goes on after the third: +0.3 s
    assert 0.28 <= loop.time() - started < 0.35
