"""Multi-status XML read flat (texts in place) gives what the JSON form gives, record by record."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from smspartner_async._wire.endpoints import LIST_KEY, MULTI_STATUS
from smspartner_async._wire.xml import FlatRecords, decode_xml

KEYS = MULTI_STATUS.xml.item_keys
OK = ["true", "200", "+33600000001", "1", "Delivered", "1517934416", "0", "1"]
FAILED = ["false", "4", "+33600000002", "2", "Numéro introuvable"]


def xml_answer(records: list[list[str]]) -> bytes:
    def entry(value: str) -> str:
        return f"<entry><![CDATA[{value}]]></entry>" if value else "<entry></entry>"

    items = "".join("<entry>" + "".join(entry(v) for v in r) + "</entry>" for r in records)
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n<result><entry>true</entry><entry>200</entry>"
        f"<entry>{items}</entry></result>"
    ).encode()


def json_answer(records: list[list[str]]) -> bytes:
    items = [dict(zip(KEYS, r, strict=False)) for r in records]
    return orjson.dumps({"success": True, "code": 200, LIST_KEY: items})


CASES = {
    "ok-and-failed": [OK, FAILED, [*OK[:2], "+33600000003", "3", *OK[4:]]],
    "extra-values": [[*OK, "future field", "another"], [*FAILED[:2], "+33600000002", "2", "x"]],
    "empty-value": [OK, [*OK[:2], "+33600000002", "2", "Waiting", "", "0", "0"]],
}


@pytest.mark.parametrize("case", list(CASES))
def test_flat_records_read_as_the_json_dicts(case: str) -> None:
    records = CASES[case]
    got = decode_xml(xml_answer(records), MULTI_STATUS.xml)[LIST_KEY]
    dicts = got.as_dicts() if isinstance(got, FlatRecords) else got
    # An empty value has no text node: that answer takes the element-by-element path.
    assert isinstance(got, FlatRecords) is (case != "empty-value")
    expected = [dict(zip(KEYS, r, strict=False)) for r in records]
    for item in expected:
        item.update({k: None for k, v in item.items() if v == ""})
    assert dicts == expected


@pytest.mark.parametrize("case", list(CASES))
async def test_xml_and_json_answers_give_the_same_results(router, make_client, case) -> None:
    records = CASES[case]
    pairs = [(r[2], int(r[3])) for r in records]
    results: dict[str, Any] = {}
    for fmt, body in (("json", json_answer(records)), ("xml", xml_answer(records))):
        router.post("/multi-status").mock(return_value=httpx.Response(200, content=body))
        results[fmt] = await make_client(response_format=fmt).multi_status(pairs)
    assert results["xml"] == results["json"]
    assert [r.ok for r in results["xml"]] == [r[0] == "true" for r in records]


def test_the_row_layout_is_the_models_wire_names_in_matching_order() -> None:
    # `_matching.match` unpacks a row as: success, code, phone, message id, status, date,
    # stopSms, isSpam; the declaration's names for each are the model field's wire names.
    import attrs

    from smspartner_async._models import MultiStatusResult
    from smspartner_async._wire.rows import MULTI_STATUS_ITEM

    fields = ["ok", "code", "phone_number", "message_id", "status", "date", "stop_sms", "is_spam"]
    wire = attrs.fields_dict(MultiStatusResult)
    assert len(MULTI_STATUS_ITEM) == len(fields)
    for names, field in zip(MULTI_STATUS_ITEM, fields, strict=True):
        assert set(names) == set(wire[field].metadata["aliases"]), field
    assert tuple(names[0] for names in MULTI_STATUS_ITEM) == MULTI_STATUS.xml.item_keys


def test_the_json_item_struct_has_one_field_per_declared_name_in_order() -> None:
    import msgspec

    from smspartner_async._wire.rows import MULTI_STATUS_ITEM, _Item

    names = tuple(name for names in MULTI_STATUS_ITEM for name in names)
    assert _Item.__struct_fields__ == names
    assert msgspec.structs.fields(_Item)[0].default is None


JSON_BODIES = {
    "plain": json_answer([OK, FAILED]),
    "other spellings": orjson.dumps(
        {
            "success": True,
            "code": 200,
            LIST_KEY: [
                {
                    "success": True,
                    "code": "200",
                    "number": "+33600000001",
                    "message_id": "1",
                    "statut": "Delivered",
                    "stopSMS": True,
                    "date": 1517934416,
                },
                {"success": True, "code": 200, "phoneNumber": "+33600000002", "messageId": 2},
            ],
        }
    ),
    "an item that is not an object": orjson.dumps(
        {"success": True, "code": 200, LIST_KEY: [1, {"phoneNumber": "+33600000001"}, "x"]}
    ),
    "no list": orjson.dumps({"success": True, "code": 200}),
    "an error": orjson.dumps({"success": False, "code": 9, "message": "bad"}),
    "not an object": b"[1]",
    "not JSON": b"<html>",
}


@pytest.mark.parametrize("case", list(JSON_BODIES))
def test_the_msgspec_path_reads_what_the_general_path_reads(case: str) -> None:
    from smspartner_async._wire.json import decode_json
    from smspartner_async._wire.rows import decode_multi_status, rows_of

    body = JSON_BODIES[case]
    fast = decode_multi_status(body, LIST_KEY)
    if fast is None:  # the general path takes it, whatever it is
        assert case in ("an item that is not an object", "not an object", "not JSON")
        return
    general = decode_json(body)
    for key in ("success", "code", "message"):
        assert fast[key] == general.get(key), key
    assert (LIST_KEY in fast) is (LIST_KEY in general)
    if LIST_KEY in general:
        assert list(rows_of(fast[LIST_KEY], LIST_KEY)) == list(rows_of(general[LIST_KEY], LIST_KEY))
