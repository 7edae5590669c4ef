"""GET /v1/bulk-status (page 002) and /v1/bulk-status-by-tag (page 003), with paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smspartner_async.sandbox import Sandbox

from ._helpers import KEY, entries, make_client, value, xml_root

ITEM_KEYS = ["phoneNumber", "status", "stopSMS", "date"]


def known_message(sandbox: Sandbox) -> int:
    return next(m for m in range(1000, 2000) if sandbox.data.recipients(m))


def unknown_message(sandbox: Sandbox) -> int:
    return next(m for m in range(1000, 100_000) if sandbox.data.recipients(m) is None)


def expected_items(sandbox: Sandbox, pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    out = []
    for phone, mid in pairs:
        rec = sandbox.data.status_of(phone, mid, sandbox.elapsed())
        assert rec is not None  # recipients and tag items are known pairs
        out.append(
            {
                "phoneNumber": rec.phone,
                "status": rec.status,
                "stopSMS": rec.stop_sms,
                "date": str(rec.date),
            }
        )
    return out


async def test_bulk_status_json(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    mid = known_message(sandbox)
    phones = sandbox.data.recipients(mid)
    assert phones
    r = await client.get("/bulk-status", params={"apiKey": KEY, "messageId": mid})
    assert r.status_code == 200
    doc = r.json()
    assert list(doc) == ["success", "code", "message_id", "StatutResponse_List"]
    assert doc["message_id"] == str(mid)
    assert doc["StatutResponse_List"] == expected_items(sandbox, [(p, mid) for p in phones])
    for item in doc["StatutResponse_List"]:
        assert list(item) == ITEM_KEYS
        assert isinstance(item["stopSMS"], bool)
        assert item["phoneNumber"].startswith("+336")


async def test_bulk_status_xml_block_layout(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    mid = known_message(sandbox)
    phones = sandbox.data.recipients(mid)
    assert phones
    r = await client.get("/bulk-status", params={"apiKey": KEY, "messageId": mid, "_format": "xml"})
    top = entries(xml_root(r))
    assert [value(e) for e in top[:3]] == ["true", "200", str(mid)]
    items = entries(top[3])
    assert len(items) == len(phones)
    exp = expected_items(sandbox, [(p, mid) for p in phones])
    for item, e in zip(items, exp, strict=True):
        assert [value(x) for x in entries(item)] == [
            e["phoneNumber"],
            e["status"],
            "true" if e["stopSMS"] else "false",
            e["date"],
        ]
    assert f"    <entry>\n        <![CDATA[{mid}]]>\n    </entry>".encode() in r.content


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"messageId": "5"}, 401, 1),
        ({"apiKey": "wrong", "messageId": "5"}, 401, 10),
        ({"apiKey": KEY}, 400, 3),
        ({"apiKey": KEY, "messageId": "5x"}, 400, 3),
        ({"apiKey": KEY, "messageId": "-4"}, 404, 4),
    ],
)
async def test_bulk_status_errors(
    client: httpx.AsyncClient, params: dict[str, str], status: int, code: int
) -> None:
    r = await client.get("/bulk-status", params=params)
    assert r.status_code == status
    assert r.json()["code"] == code
    assert r.json()["success"] is False


async def test_bulk_status_unknown_message(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/bulk-status", params={"apiKey": KEY, "messageId": unknown_message(sandbox)}
    )
    assert r.status_code == 404
    assert r.json() == {"success": False, "code": 4, "message": "Message introuvable"}


async def page(client: httpx.AsyncClient, tag: str, n: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": KEY, "tag": tag}
    if n is not None:
        params["page"] = n
    r = await client.get("/bulk-status-by-tag", params=params)
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


async def test_tag_pages(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    items = sandbox.data.tag_items("demo")
    assert len(items) == 250
    pages = [await page(client, "demo", n) for n in (1, 2, 3, 4)]
    for n, doc in enumerate(pages, start=1):
        assert list(doc) == ["success", "code", "currentPage", "total", "StatutResponse_List"]
        assert doc["currentPage"] == n
        assert doc["total"] == 250
    assert [len(p["StatutResponse_List"]) for p in pages] == [100, 100, 50, 0]
    flat = [i for p in pages for i in p["StatutResponse_List"]]
    assert flat == expected_items(sandbox, list(items))
    assert len({i["phoneNumber"] for i in flat}) == 250
    assert await page(client, "demo") == pages[0]  # page defaults to 1


async def test_tag_sizes(client: httpx.AsyncClient) -> None:
    seed_tag = await page(client, "montag")
    assert seed_tag["total"] == 2
    assert len(seed_tag["StatutResponse_List"]) == 2
    assert (await page(client, "tag-7"))["total"] == 7
    unknown = await page(client, "no-such-tag")
    assert unknown["total"] == 0
    assert unknown["StatutResponse_List"] == []


async def test_page_size_and_ignore_page() -> None:
    sandbox = Sandbox(seed=7, page_size=40, ignore_page=True)
    async with make_client(sandbox) as http:
        first = await page(http, "tag-90", 1)
        third = await page(http, "tag-90", 3)
    assert len(first["StatutResponse_List"]) == 40
    assert third == first
    assert third["currentPage"] == 1


async def test_tag_xml_inline_layout(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/bulk-status-by-tag", params={"apiKey": KEY, "tag": "montag", "_format": "xml"}
    )
    top = entries(xml_root(r))
    assert [value(e) for e in top[:4]] == ["true", "200", "1", "2"]
    items = entries(top[4])
    assert [len(entries(i)) for i in items] == [4, 4]
    phone = sandbox.data.tag_items("montag")[0][0]
    assert f"            <entry><![CDATA[{phone}]]></entry>\n".encode() in r.content


async def test_tag_page_past_the_end_in_xml(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/bulk-status-by-tag", params={"apiKey": KEY, "tag": "montag", "page": 9, "_format": "xml"}
    )
    top = entries(xml_root(r))
    assert [value(e) for e in top[:4]] == ["true", "200", "9", "2"]
    assert len(entries(top[4])) == 0


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"tag": "demo"}, 401, 1),
        ({"apiKey": "wrong", "tag": "demo"}, 401, 10),
        ({"apiKey": KEY}, 400, 3),
        ({"apiKey": KEY, "tag": "demo", "page": "two"}, 400, 6),
        ({"apiKey": KEY, "tag": "demo", "page": "0"}, 400, 6),
    ],
)
async def test_tag_errors(
    client: httpx.AsyncClient, params: dict[str, str], status: int, code: int
) -> None:
    r = await client.get("/bulk-status-by-tag", params=params)
    assert r.status_code == status
    assert r.json()["code"] == code
