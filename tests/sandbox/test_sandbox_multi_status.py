"""POST /v1/multi-status: pages 001 (fr) and 004 (en), per-item failures, limits, XML."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smspartner_async.sandbox import Sandbox

from ._helpers import KEY, entries, known_pairs, make_client, unknown_pairs, value, xml_root

GOOD_KEYS = ["success", "code", "phoneNumber", "messageId", "status", "date", "stopSms", "isSpam"]
BAD_KEYS = ["success", "code", "phoneNumber", "messageId", "status"]


def body(pairs: list[tuple[str, Any]], list_key: str = "SMSStatut_List") -> dict[str, Any]:
    return {"apiKey": KEY, list_key: [{"phoneNumber": p, "messageId": m} for p, m in pairs]}


def expected_item(sandbox: Sandbox, phone: str, mid: int, language: str = "fr") -> dict[str, Any]:
    rec = sandbox.data.status_of(phone, mid, sandbox.elapsed())
    if rec is None:
        return {
            "success": False,
            "code": 4,
            "phoneNumber": "+33" + phone[1:] if phone.startswith("0") else phone,
            "messageId": mid,
            "status": "Numéro introuvable" if language == "fr" else "Message not found",
        }
    return {
        "success": True,
        "code": 200,
        "phoneNumber": rec.phone,
        "messageId": mid,
        "status": rec.status,
        "date": str(rec.date),
        "stopSms": "1" if rec.stop_sms else "0",
        "isSpam": "1" if rec.is_spam else "0",
    }


async def test_json_shape_with_good_and_failed_items(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    pairs = known_pairs(sandbox, 3) + unknown_pairs(sandbox, 2)
    r = await client.post("/multi-status", json=body(pairs))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert list(doc) == ["success", "code", "StatutResponse_List"]
    assert doc["success"] is True
    assert doc["code"] == 200
    items = doc["StatutResponse_List"]
    assert items == [expected_item(sandbox, p, m) for p, m in pairs]
    for item in items[:3]:
        assert list(item) == GOOD_KEYS
        assert isinstance(item["messageId"], int)
        assert item["date"].isdigit()
        assert item["stopSms"] in ("0", "1")
        assert item["isSpam"] in ("0", "1")
    for item in items[3:]:
        assert list(item) == BAD_KEYS
        assert item["status"] == "Numéro introuvable"


async def test_ten_thousand_pairs_match_the_dataset(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    pairs = list(sandbox.data.sample_pairs(10_000, national_share=0.3))
    got: list[dict[str, Any]] = []
    for start in range(0, len(pairs), 500):
        r = await client.post("/multi-status", json=body(pairs[start : start + 500]))
        got.extend(r.json()["StatutResponse_List"])
    assert got == [expected_item(sandbox, p, m) for p, m in pairs]
    failed = sum(not item["success"] for item in got)
    assert 100 < failed < 600  # about 3%
    assert sandbox.stats.pairs_per_call == [500] * 20


async def test_national_numbers_are_echoed_in_e164(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    (phone, mid), (gone, gone_mid) = known_pairs(sandbox, 1)[0], unknown_pairs(sandbox, 1)[0]
    national = [("0" + phone[3:], mid), ("0" + gone[3:], gone_mid)]
    items = (await client.post("/multi-status", json=body(national))).json()["StatutResponse_List"]
    assert [i["phoneNumber"] for i in items] == [phone, gone]
    assert [i["success"] for i in items] == [True, False]


async def test_misspelt_list_key_and_string_ids(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    pairs = known_pairs(sandbox, 2)
    as_strings = [(p, str(m)) for p, m in pairs]
    r = await client.post("/multi-status", json=body(as_strings, "SMSStatus_List"))
    assert r.status_code == 200
    items = r.json()["StatutResponse_List"]
    assert [i["messageId"] for i in items] == [m for _, m in pairs]


async def test_limit_is_500_pairs(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    pairs = list(sandbox.data.sample_pairs(501))
    ok = await client.post("/multi-status", json=body(pairs[:500]))
    assert ok.status_code == 200
    assert len(ok.json()["StatutResponse_List"]) == 500
    too_many = await client.post("/multi-status", json=body(pairs))
    assert too_many.status_code == 400
    assert too_many.json()["code"] == 50
    assert too_many.json()["success"] is False
    assert sandbox.stats.pairs_per_call == [500]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"{not json", 400, 90),
        (b"[1, 2]", 400, 6),
        (b"", 401, 1),
        (b'{"SMSStatut_List": [{"phoneNumber": "0600000000", "messageId": 1}]}', 401, 1),
        (b'{"apiKey": "wrong", "SMSStatut_List": []}', 401, 10),
        (b'{"apiKey": "bad-key", "SMSStatut_List": []}', 401, 10),
        (b'{"apiKey": "sandbox-key"}', 400, 5),
        (b'{"apiKey": "sandbox-key", "SMSStatut_List": []}', 400, 5),
        (b'{"apiKey": "sandbox-key", "SMSStatut_List": "0600000000"}', 400, 6),
        (b'{"apiKey": "sandbox-key", "SMSStatut_List": [{"phoneNumber": "0600000000"}]}', 400, 6),
        (b'{"apiKey": "sandbox-key", "SMSStatut_List": [{"messageId": 1}]}', 400, 6),
        (b'{"apiKey": "sandbox-key", "SMSStatut_List": [7]}', 400, 6),
        (
            b'{"apiKey": "sandbox-key", "SMSStatut_List": '
            b'[{"phoneNumber": "0600000000", "messageId": "x1"}]}',
            400,
            6,
        ),
        (
            b'{"apiKey": "sandbox-key", "SMSStatut_List": '
            b'[{"phoneNumber": "0600000000", "messageId": true}]}',
            400,
            6,
        ),
    ],
)
async def test_request_errors(
    client: httpx.AsyncClient, payload: bytes, status: int, code: int
) -> None:
    r = await client.post(
        "/multi-status", content=payload, headers={"content-type": "application/json"}
    )
    assert r.status_code == status
    doc = r.json()
    assert list(doc) == ["success", "code", "message"]
    assert doc["success"] is False
    assert doc["code"] == code
    assert KEY not in r.text


async def test_get_is_not_allowed(client: httpx.AsyncClient) -> None:
    r = await client.get("/multi-status", params={"apiKey": KEY})
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["success"] is False


async def test_xml_items_have_8_or_5_entries(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    pairs = known_pairs(sandbox, 2) + unknown_pairs(sandbox, 1)
    r = await client.post("/multi-status", params={"_format": "xml"}, json=body(pairs))
    assert r.status_code == 200
    top = entries(xml_root(r))
    assert [value(e) for e in top[:2]] == ["true", "200"]
    assert len(top) == 3
    items = entries(top[2])
    assert [len(entries(i)) for i in items] == [8, 8, 5]
    for item, (phone, mid) in zip(items, pairs, strict=True):
        exp = expected_item(sandbox, phone, mid)
        got = [value(e) for e in entries(item)]
        assert got == [str(v).lower() if isinstance(v, bool) else str(v) for v in exp.values()]
    # The French page's layout: CDATA on its own indented line.
    assert b"            <entry>\n                <![CDATA[" in r.content
    assert b"<![CDATA[Num\xc3\xa9ro introuvable]]>" in r.content


async def test_format_may_come_in_the_body(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    payload = body(known_pairs(sandbox, 1)) | {"_format": "xml"}
    r = await client.post("/multi-status", json=payload)
    assert len(entries(xml_root(r))) == 3


async def test_xml_error(client: httpx.AsyncClient) -> None:
    r = await client.post("/multi-status", params={"_format": "xml"}, content=b"{oops")
    assert r.status_code == 400
    assert [value(e) for e in entries(xml_root(r))] == ["false", "90", "JSON invalide"]


async def test_english_item_failure_text() -> None:
    sandbox = Sandbox(seed=7, language="en")
    pairs = unknown_pairs(sandbox, 1)
    async with make_client(sandbox) as http:
        items = (await http.post("/multi-status", json=body(pairs))).json()
    assert items["StatutResponse_List"][0]["status"] == "Message not found"


async def test_shuffle_multi_is_seeded_and_keeps_every_item() -> None:
    async def answer(sandbox: Sandbox) -> list[dict[str, Any]]:
        pairs = list(sandbox.data.sample_pairs(200))
        async with make_client(sandbox) as http:
            r = await http.post("/multi-status", json=body(pairs))
        items: list[dict[str, Any]] = r.json()["StatutResponse_List"]
        return items

    plain = await answer(Sandbox(seed=3))
    first = await answer(Sandbox(seed=3, shuffle_multi=True))
    second = await answer(Sandbox(seed=3, shuffle_multi=True))
    assert first == second  # seeded
    assert first != plain  # shuffled
    key = [(i["phoneNumber"], i["messageId"]) for i in plain]
    assert sorted(key) == sorted((i["phoneNumber"], i["messageId"]) for i in first)
