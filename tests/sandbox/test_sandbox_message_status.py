"""GET /v1/message-status: the single-status page (000), its key spellings and value types."""

from __future__ import annotations

import httpx
import pytest

from smspartner_async.sandbox import Sandbox, paris_local_time

from ._helpers import KEY, entries, known_pairs, make_client, unknown_pairs, value, xml_root

KEYS = [
    "success",
    "code",
    "number",
    "messageId",
    "stopSms",
    "date",
    "statut",
    "cost",
    "countryCode",
    "currency",
]


async def test_json_shape_and_values(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    phone, mid = known_pairs(sandbox, 1)[0]
    rec = sandbox.data.status_of(phone, mid, sandbox.elapsed())
    assert rec is not None
    r = await client.get(
        "/message-status", params={"apiKey": KEY, "phoneNumber": phone, "messageId": mid}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == KEYS
    assert body == {
        "success": True,
        "code": 200,
        "number": phone,
        "messageId": str(mid),
        "stopSms": rec.stop_sms,
        "date": paris_local_time(rec.date),
        "statut": rec.status,
        "cost": rec.cost,
        "countryCode": "FR",
        "currency": "EUR",
    }
    assert isinstance(body["messageId"], str)
    assert isinstance(body["stopSms"], bool)
    assert body["date"][4] == "-"
    assert body["date"][10] == " "
    assert len(body["date"]) == 19


async def test_national_number_is_echoed_as_given(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    phone, mid = known_pairs(sandbox, 1)[0]
    national = "0" + phone[3:]
    r = await client.get(
        "/message-status", params={"apiKey": KEY, "phoneNumber": national, "messageId": mid}
    )
    assert r.json()["number"] == national
    assert r.json()["statut"] == sandbox.data.status_of(phone, mid).status  # type: ignore[union-attr]


async def test_unencoded_plus_in_query_still_finds_the_pair(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    phone, mid = known_pairs(sandbox, 1)[0]
    # A raw "+" decodes to a space, as curl users with the doc's sample URL would send it.
    r = await client.get(f"/message-status?apiKey={KEY}&messageId={mid}&phoneNumber={phone}")
    assert r.status_code == 200
    assert r.json()["success"] is True


async def test_xml_is_positional(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    phone, mid = known_pairs(sandbox, 1)[0]
    rec = sandbox.data.status_of(phone, mid)
    assert rec is not None
    r = await client.get(
        "/message-status",
        params={"apiKey": KEY, "phoneNumber": phone, "messageId": mid, "_format": "xml"},
    )
    assert r.status_code == 200
    root = xml_root(r)
    values = [value(e) for e in entries(root)]
    assert values == [
        "true",
        "200",
        phone,
        str(mid),
        "true" if rec.stop_sms else "false",
        paris_local_time(rec.date),
        rec.status,
        repr(rec.cost),
        "FR",
        "EUR",
    ]
    assert f"<entry><![CDATA[{phone}]]></entry>".encode() in r.content
    assert b"<entry>0.045</entry>" in r.content or b"<entry>0.09</entry>" in r.content


async def test_unknown_pair_is_code_4(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    phone, mid = unknown_pairs(sandbox, 1)[0]
    r = await client.get(
        "/message-status", params={"apiKey": KEY, "phoneNumber": phone, "messageId": mid}
    )
    assert r.status_code == 404
    assert r.json() == {"success": False, "code": 4, "message": "Message introuvable"}


@pytest.mark.parametrize(
    ("params", "status", "code", "message"),
    [
        ({"phoneNumber": "0600000000", "messageId": "1"}, 401, 1, "La Clé API est requise"),
        (
            {"apiKey": "", "phoneNumber": "0600000000", "messageId": "1"},
            401,
            1,
            "La Clé API est requise",
        ),
        (
            {"apiKey": "nope", "phoneNumber": "0600000000", "messageId": "1"},
            401,
            10,
            "Clé API incorrecte",
        ),
        ({"apiKey": KEY, "messageId": "1"}, 400, 2, "Le numéro de téléphone est requis"),
        ({"apiKey": KEY, "phoneNumber": "0600000000"}, 400, 3, "L’ID du message est requis"),
        (
            {"apiKey": KEY, "phoneNumber": "0600000000", "messageId": "abc"},
            400,
            3,
            "L’ID du message est requis",
        ),
        (
            {"apiKey": KEY, "phoneNumber": "0600000000", "messageId": "0"},
            404,
            4,
            "Message introuvable",
        ),
        (
            {"apiKey": KEY, "phoneNumber": "not a phone", "messageId": "12"},
            404,
            4,
            "Message introuvable",
        ),
    ],
)
async def test_errors(
    client: httpx.AsyncClient, params: dict[str, str], status: int, code: int, message: str
) -> None:
    r = await client.get("/message-status", params=params)
    assert r.status_code == status
    assert r.json() == {"success": False, "code": code, "message": message}
    assert list(r.json()) == ["success", "code", "message"]


async def test_error_in_xml_has_plain_text_message(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/message-status",
        params={"apiKey": "wrong", "phoneNumber": "0600000000", "messageId": "1", "_format": "xml"},
    )
    assert r.status_code == 401
    assert r.content == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n<result>\n"
        b"    <entry>false</entry>\n    <entry>10</entry>\n"
        b"    <entry>Cl\xc3\xa9 API incorrecte</entry>\n</result>\n"
    )
    assert [value(e) for e in entries(xml_root(r))] == ["false", "10", "Clé API incorrecte"]


async def test_english_error_texts() -> None:
    async with make_client(Sandbox(language="en")) as http:
        r = await http.get("/message-status", params={"apiKey": "wrong"})
        assert r.json() == {"success": False, "code": 10, "message": "Invalid API key"}
        r = await http.get("/message-status", params={"apiKey": KEY, "phoneNumber": "0611"})
        assert r.json() == {"success": False, "code": 3, "message": "Message ID is required"}
