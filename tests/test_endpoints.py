"""Every seed example answer, JSON and XML, decodes into the expected model through the client."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from smspartner_async import (
    AuthenticationError,
    BulkStatus,
    DeliveryStatus,
    MessageStatus,
    MultiStatusResult,
    RecipientStatus,
)

from . import seeds

PARIS = ZoneInfo("Europe/Paris")


def xml(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "application/xml"})


def json_(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("fmt", "body"), [("json", seeds.MESSAGE_STATUS_JSON), ("xml", seeds.MESSAGE_STATUS_XML)]
)
async def test_message_status_seed(router, make_client, fmt, body):
    route = router.get("/message-status").mock(
        return_value=xml(body) if fmt == "xml" else json_(body)
    )
    client = make_client(response_format=fmt)

    result = await client.message_status("06 00 00 00 00", "1111")

    assert result == MessageStatus(
        phone_number="+33600000000",
        message_id=1111,
        status=DeliveryStatus.DELIVERED,
        status_text="Delivered",
        date=datetime(2015, 2, 7, 22, 39, 46, tzinfo=PARIS),
        stop_sms=False,
        cost=Decimal("0.045"),
        country_code="FR",
        currency="EUR",
    )
    sent = route.calls.last.request.url.params
    assert sent["phoneNumber"] == "+33600000000"
    assert sent["messageId"] == "1111"
    assert sent["apiKey"]
    assert ("_format" in sent) == (fmt == "xml")


async def test_message_status_epoch_date_and_status_spelling(router, make_client):
    router.get("/message-status").respond(
        json={
            "success": True,
            "code": 200,
            "number": "+33600000000",
            "messageId": 7,
            "stopSms": "1",
            "date": "1517934416",
            "status": "NOT DELIVERED",
            "cost": "0.05",
        }
    )
    result = await make_client().message_status("+33600000000", 7)
    assert result.date == datetime.fromtimestamp(1517934416, UTC)
    assert result.status is DeliveryStatus.NOT_DELIVERED
    assert result.stop_sms is True
    assert result.cost == Decimal("0.05")
    assert result.country_code is None


@pytest.mark.parametrize(
    ("fmt", "body", "pairs"),
    [
        ("json", seeds.MULTI_STATUS_JSON, seeds.MULTI_STATUS_JSON_PAIRS),
        ("xml", seeds.MULTI_STATUS_XML, seeds.MULTI_STATUS_XML_PAIRS),
    ],
)
async def test_multi_status_seed(router, make_client, fmt, body, pairs):
    route = router.post("/multi-status").mock(
        return_value=xml(body) if fmt == "xml" else json_(body)
    )
    results = await make_client(response_format=fmt).multi_status(pairs)

    good, missing_a, missing_b = results
    assert good == MultiStatusResult(
        phone_number=pairs[0][0],
        message_id=pairs[0][1],
        ok=True,
        code=200,
        status=DeliveryStatus.DELIVERED,
        status_text="Delivered",
        date=datetime.fromtimestamp(1517934416, UTC),
        stop_sms=False,
        is_spam=False,
        index=0,
    )
    for index, item in ((1, missing_a), (2, missing_b)):
        assert not item.ok
        assert item.code == 4
        assert item.status is DeliveryStatus.UNKNOWN
        assert item.message == "Numéro introuvable"
        assert item.index == index
        assert item.error is None
    body_sent = orjson.loads(route.calls.last.request.content)
    assert body_sent["SMSStatut_List"] == [
        {"phoneNumber": phone, "messageId": mid} for phone, mid in pairs
    ]
    assert route.calls.last.request.method == "POST"


@pytest.mark.parametrize(
    ("fmt", "body", "second_date"),
    [("json", seeds.BULK_STATUS_JSON, 1517989101), ("xml", seeds.BULK_STATUS_XML, 1517989086)],
)
async def test_bulk_status_seed(router, make_client, fmt, body, second_date):
    router.get("/bulk-status").mock(return_value=xml(body) if fmt == "xml" else json_(body))
    result = await make_client(response_format=fmt).bulk_status(111)
    assert isinstance(result, BulkStatus)
    assert result.message_id == (111 if fmt == "json" else 11)
    assert result.recipients == [
        RecipientStatus(
            "+336XXXXXXX1",
            DeliveryStatus.DELIVERED,
            "Delivered",
            datetime.fromtimestamp(1517989111, UTC),
            False,
        ),
        RecipientStatus(
            "+336XXXXXXX2",
            DeliveryStatus.DELIVERED,
            "Delivered",
            datetime.fromtimestamp(second_date, UTC),
            False,
        ),
    ]


@pytest.mark.parametrize(("fmt", "body"), [("json", seeds.TAG_JSON), ("xml", seeds.TAG_XML)])
async def test_tag_seed(router, make_client, fmt, body):
    route = router.get("/bulk-status-by-tag").mock(
        return_value=xml(body) if fmt == "xml" else json_(body)
    )
    results = await make_client(response_format=fmt).status_by_tag("montag")
    assert [r.phone_number for r in results] == ["+336XXXXXXX1", "+336XXXXXXX2"]
    assert all(r.status is DeliveryStatus.DELIVERED for r in results)
    # total (2) was reached on page 1: no second request
    assert route.call_count == 1
    assert route.calls.last.request.url.params["page"] == "1"
    assert route.calls.last.request.url.params["tag"] == "montag"


@pytest.mark.parametrize(("fmt", "body"), [("json", seeds.ERROR_JSON), ("xml", seeds.ERROR_XML)])
async def test_error_seed(router, make_client, fmt, body):
    router.get("/bulk-status").mock(return_value=xml(body) if fmt == "xml" else json_(body))
    with pytest.raises(AuthenticationError) as caught:
        await make_client(response_format=fmt).bulk_status(1)
    assert caught.value.code == 10
    assert caught.value.message == "Clé API incorrecte"
    assert caught.value.endpoint == "bulk-status"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Delivered", DeliveryStatus.DELIVERED),
        ("delivered", DeliveryStatus.DELIVERED),
        ("Not delivered", DeliveryStatus.NOT_DELIVERED),
        ("not  Delivered ", DeliveryStatus.NOT_DELIVERED),
        ("Waiting", DeliveryStatus.WAITING),
        ("ko", DeliveryStatus.FAILED),
        ("KO", DeliveryStatus.FAILED),
        ("Expired", DeliveryStatus.UNKNOWN),
        ("", DeliveryStatus.UNKNOWN),
    ],
)
async def test_status_text(router, make_client, text, expected):
    router.get("/bulk-status").respond(
        json={
            "success": True,
            "code": 200,
            "message_id": 5,
            "StatutResponse_List": [{"phoneNumber": "+33611111111", "status": text}],
        }
    )
    (recipient,) = (await make_client().bulk_status(5)).recipients
    assert recipient.status is expected
    assert recipient.status_text == text.strip()
    assert recipient.date is None
    assert recipient.stop_sms is False


async def test_unknown_fields_are_ignored(router, make_client):
    router.get("/bulk-status").respond(
        json={
            "success": True,
            "code": 200,
            "message_id": "9",
            "newTopLevel": {"x": 1},
            "StatutResponse_List": [
                {
                    "phoneNumber": "+33611111111",
                    "status": "Waiting",
                    "stopSMS": 0,
                    "date": "",
                    "operator": "Orange",
                }
            ],
        }
    )
    result = await make_client().bulk_status("9")
    assert result.message_id == 9
    assert result.recipients[0].status is DeliveryStatus.WAITING
    assert not result.recipients[0].status.is_final
