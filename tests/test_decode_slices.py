"""Large answers are decoded in slices (so the GIL, and the event loop, are let go every few
milliseconds): slicing changes when, never what. Each sliced decode is checked against the
one-call decode, including bodies built to trip the slicing up."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smspartner_async import ResponseFormatError
from smspartner_async._wire import json as wire_json
from smspartner_async._wire import xml as wire_xml
from smspartner_async._wire.endpoints import BULK_STATUS, LIST_KEY
from smspartner_async._wire.json import decode_json

RECIPIENT = {"phoneNumber": "+33600000001", "status": "Delivered", "stopSMS": "0", "date": "1"}
TRICKY = [
    {**RECIPIENT, "status": 'a "},{" b'},  # the boundary inside a string
    {**RECIPIENT, "nested": [{"x": 1}, {"y": 2}]},  # the boundary inside a nested value
    {**RECIPIENT, "status": "]"},
    {**RECIPIENT, "note": f'"{LIST_KEY}":['},  # the list's name inside a string
]


def body_of(items: list[Any], **extra: Any) -> bytes:
    return orjson.dumps({"success": True, "code": 200, LIST_KEY: items, **extra})


@pytest.mark.parametrize("slice_bytes", [1, 7, 64, 10_000])
@pytest.mark.parametrize(
    "body",
    [
        body_of([RECIPIENT] * 300),
        body_of([RECIPIENT] * 100 + TRICKY + [RECIPIENT] * 100),
        body_of([RECIPIENT] * 200, message="a ] b", after=[1, 2]),
        body_of([]),
        body_of([1, "two", None, [3], {"four": 4}] * 50),
        orjson.dumps({LIST_KEY: [RECIPIENT] * 50, "inner": {LIST_KEY: [RECIPIENT]}}),
        orjson.dumps({"success": True, LIST_KEY: [RECIPIENT] * 50}, option=orjson.OPT_INDENT_2),
    ],
)
def test_sliced_json_is_the_whole_decode(body: bytes, slice_bytes: int) -> None:
    assert decode_json(body, LIST_KEY, slice_bytes) == orjson.loads(body)


def test_a_large_answer_is_decoded_in_several_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    loads = orjson.loads

    def counting(data: bytes) -> Any:
        calls.append(len(data))
        return loads(data)

    monkeypatch.setattr(wire_json.orjson, "loads", counting)
    body = body_of([RECIPIENT] * 5000)
    assert decode_json(body, LIST_KEY, 4096) == loads(body)
    assert len(calls) > 50
    assert max(calls) < 4096 + 200


@pytest.mark.parametrize("broken", [b'{"StatutResponse_List":[{"a":1},{"b":', b"[1, 2]"])
def test_a_broken_large_body_is_the_same_error(broken: bytes) -> None:
    with pytest.raises(ResponseFormatError):
        decode_json(broken * 3, LIST_KEY, 4)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(
        st.dictionaries(
            st.sampled_from(["phoneNumber", "status", "a", "}"]),
            st.one_of(st.text(alphabet='{}[],":ab\\', max_size=8), st.integers(-(2**60), 2**60)),
            max_size=3,
        ),
        max_size=30,
    ),
    slice_bytes=st.integers(1, 64),
)
def test_sliced_json_is_the_whole_decode_for_any_items(
    items: list[dict[str, Any]], slice_bytes: int
) -> None:
    body = body_of(items)
    assert decode_json(body, LIST_KEY, slice_bytes) == orjson.loads(body)


def test_a_long_xml_list_reads_as_a_short_one(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = "".join(
        f"<entry><entry><![CDATA[+3360000{i:04d}]]></entry><entry>Delivered</entry>"
        "<entry></entry><entry>1517934416</entry></entry>"
        for i in range(50)
    )
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>\n<result><entry>true</entry><entry>200</entry>"
        f"<entry>7</entry><entry>{entries}</entry></result>"
    ).encode()
    short = wire_xml.decode_xml(body, BULK_STATUS.xml)
    monkeypatch.setattr(wire_xml, "SLICE_ITEMS", 10)
    assert wire_xml.decode_xml(body, BULK_STATUS.xml) == short
    assert len(short[LIST_KEY]) == 50


async def test_a_gzip_answer_of_a_call_s_size_is_inflated_at_once_and_not_offloaded() -> None:
    import gzip

    import httpx

    from smspartner_async._redact import SecretStr
    from smspartner_async._wire.body import OFFLOAD_BYTES, receive

    def response(body: bytes) -> httpx.Response:
        headers = {"content-encoding": "gzip"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(gzip.compress(body)))

    small = body_of([{**RECIPIENT, "note": "key-123"}] * 500)
    answer = await receive(response(small), 1 << 30, SecretStr("key-123"))
    assert (answer.codings, answer.heavy) == ((), False)
    assert answer.body == small.replace(b"key-123", b"***")  # scrubbed on receipt, as before
    big = body_of([RECIPIENT] * (OFFLOAD_BYTES // 50))
    answer = await receive(response(big), 1 << 30, SecretStr("key-123"))
    assert (answer.codings, answer.heavy) == (("gzip",), True)  # inflated in a worker thread
    assert answer.content(1 << 30, SecretStr("key-123")) == big
    broken = httpx.Response(
        200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(b"x")
    )
    answer = await receive(broken, 1 << 30, SecretStr("key-123"))
    with pytest.raises(ResponseFormatError, match="Content-Encoding"):
        answer.content(1 << 30, SecretStr("key-123"))
