"""Hostile and broken answers: each gives `ResponseFormatError` (or a result), nothing else.

First the XML attacks (XXE, billion laughs, DTDs of any kind, huge and deep documents), sent
through the client with `response_format="xml"` and retries off. Then hypothesis fuzzes every
endpoint with arbitrary bytes, mutated seed answers, and structured-but-wrong JSON and XML: a
call returns a result of the right type or raises an `SMSPartnerError`, never a KeyError,
TypeError, AttributeError, IndexError or ValueError; multi-status always gives one result per
input pair, in order.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any
from xml.sax.saxutils import escape

import httpx
import orjson
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smspartner_async import (
    AuthenticationError,
    BulkStatus,
    InvalidInputError,
    MessageStatus,
    MultiStatusResult,
    PermissionDeniedError,
    RecipientStatus,
    ResponseFormatError,
    RetryPolicy,
    SMSPartnerClient,
    SMSPartnerError,
)
from smspartner_async._redact import SecretStr
from smspartner_async._wire.body import Answer
from smspartner_async._wire.endpoints import (
    BULK_STATUS,
    MESSAGE_STATUS,
    MULTI_STATUS,
    STATUS_BY_TAG,
    read_record,
)
from tests import seeds

XML_HEAD = "<?xml version='1.0' encoding='UTF-8'?>\n"
PAIRS = [("+33699999992", 1000), ("+33699999991", 1222), ("+33619922264", 1226613)]
ENDPOINTS = ["message_status", "bulk_status", "status_by_tag", "multi_status"]
ROUTES = {
    "message_status": ("GET", "/message-status"),
    "bulk_status": ("GET", "/bulk-status"),
    "status_by_tag": ("GET", "/bulk-status-by-tag"),
    "multi_status": ("POST", "/multi-status"),
}
SEEDS_BY_ENDPOINT = {
    "message_status": (seeds.MESSAGE_STATUS_JSON, seeds.MESSAGE_STATUS_XML),
    "bulk_status": (seeds.BULK_STATUS_JSON, seeds.BULK_STATUS_XML),
    "status_by_tag": (seeds.TAG_JSON, seeds.TAG_XML),
    "multi_status": (seeds.MULTI_STATUS_JSON, seeds.MULTI_STATUS_XML),
}


async def call(client: SMSPartnerClient, endpoint: str, **options: Any) -> Any:
    if endpoint == "message_status":
        return await client.message_status(*PAIRS[0])
    if endpoint == "bulk_status":
        return await client.bulk_status(111)
    if endpoint == "status_by_tag":
        return await client.status_by_tag("montag")
    return await client.multi_status(PAIRS, **options)


def answer_with(router: respx.Router, body: bytes, status: int = 200) -> None:
    for method, path in ROUTES.values():
        router.route(method=method, path__regex=f"{path}$").mock(
            side_effect=lambda _: httpx.Response(status, content=body)
        )


async def assert_format_error(
    router: respx.Router,
    make_client: Callable[..., SMSPartnerClient],
    endpoint: str,
    body: bytes,
    fmt: str = "xml",
) -> ResponseFormatError:
    answer_with(router, body)
    client = make_client(response_format=fmt, max_retries=0)
    with pytest.raises(ResponseFormatError) as info:
        # fail_fast: a chunk's ResponseFormatError raises instead of becoming failed items.
        await call(client, endpoint, fail_fast=True)
    return info.value


def xml(*entries: str, head: str = XML_HEAD, doctype: str = "") -> bytes:
    return (head + doctype + "<result>" + "".join(entries) + "</result>").encode()


def leaf(text: str) -> str:
    return f"<entry>{text}</entry>"


def nest(*entries: str) -> str:
    return "<entry>" + "".join(entries) + "</entry>"


# An answer of each endpoint's shape with `value` in a leaf and in every list item.
# With `in_leaf=False`, `value` goes only into the items' optional `date` slot: a list item
# whose value goes missing there still structures, so only refusing the document helps.
def shaped(endpoint: str, value: str, *, in_leaf: bool = True) -> list[str]:
    top = value if in_leaf else "111"
    phone, date = (value, "1517989111") if in_leaf else ("+33699999992", value)
    if endpoint == "message_status":
        return [leaf("true"), leaf("200"), leaf(value), leaf("1111"), leaf("false")]
    if endpoint == "multi_status":
        item = nest(
            leaf("true"), leaf("200"), leaf(phone), leaf("1000"), leaf("Delivered"), leaf(date)
        )
        return [leaf("true"), leaf("200"), nest(item)]
    item = nest(leaf(phone), leaf("Delivered"), leaf("false"), leaf(date))
    if endpoint == "bulk_status":
        return [leaf("true"), leaf("200"), leaf(top), nest(item)]
    return [leaf("true"), leaf("200"), leaf("1"), leaf("1"), nest(item)]


XXE_FILE = '<!DOCTYPE result [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
XXE_PARAMETER = (
    '<!DOCTYPE result [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>'
)
XXE_NETWORK = '<!DOCTYPE result [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/secret">]>'
EXTERNAL_DTD = '<!DOCTYPE result SYSTEM "file:///etc/passwd">'
BILLION_LAUGHS = (
    '<!DOCTYPE result [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)
QUADRATIC = '<!DOCTYPE result [<!ENTITY a "' + "a" * 50_000 + '">]>'

ATTACKS = {
    "xxe-file": (XXE_FILE, "&xxe;"),
    "xxe-parameter-entity": (XXE_PARAMETER, "x"),
    "xxe-network": (XXE_NETWORK, "&xxe;"),
    "external-dtd": (EXTERNAL_DTD, "x"),
    "billion-laughs": (BILLION_LAUGHS, "&lol9;"),
    "quadratic-blowup": (QUADRATIC, "&a;" * 5_000),
    "plain-doctype": ("<!DOCTYPE result>", "x"),
    "lowercase-doctype": ("<!doctype result>", "x"),
    "internal-entity": ('<!DOCTYPE result [<!ENTITY x "+33699999992">]>', "&x;"),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_dtd_and_entity_attacks_are_refused(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], attack: str, endpoint: str
) -> None:
    doctype, value = ATTACKS[attack]
    body = xml(*shaped(endpoint, value), doctype=doctype)
    error = await assert_format_error(router, make_client, endpoint, body)
    assert "root:" not in str(error)  # nothing of /etc/passwd


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_attacks_without_an_xml_declaration_are_refused(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    body = xml(*shaped(endpoint, "&xxe;"), head="", doctype=XXE_FILE)
    await assert_format_error(router, make_client, endpoint, body)


@pytest.mark.parametrize(
    ("endpoint", "encoding"),
    [
        ("message_status", "utf-16"),
        ("message_status", "utf-32"),
        ("multi_status", "utf-16"),
        ("bulk_status", "utf-16"),
        ("bulk_status", "utf-32"),
        ("status_by_tag", "utf-16"),
    ],
)
async def test_doctype_in_utf16_or_utf32_is_refused(
    router: respx.Router,
    make_client: Callable[..., SMSPartnerClient],
    endpoint: str,
    encoding: str,
) -> None:
    # In list items only (a nested entity reference in a leaf is refused as a nested entry).
    text = xml(*shaped(endpoint, "&xxe;", in_leaf=False), doctype=XXE_FILE).decode()
    text = text.replace("encoding='UTF-8'", f"encoding='{encoding.upper()}'")
    await assert_format_error(router, make_client, endpoint, text.encode(encoding))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_utf16_xxe_never_reads_the_file(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    """Whatever the decoder decides, an external entity is never resolved."""
    text = xml(*shaped(endpoint, "&xxe;"), doctype=XXE_FILE).decode()
    body = text.replace("encoding='UTF-8'", "encoding='UTF-16'").encode("utf-16")
    answer_with(router, body)
    client = make_client(response_format="xml", max_retries=0)
    try:
        result = await call(client, endpoint)
    except ResponseFormatError as exc:
        result = exc
    assert "root:" not in repr(result)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_xinclude_is_not_processed(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    include = (
        '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
        'parse="text"/>'
    )
    body = xml(leaf("true"), leaf("200"), include)
    await assert_format_error(router, make_client, endpoint, body)


async def test_foreign_element_inside_a_list_item_is_refused(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    include = '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>'
    item = nest(leaf("+33699999992"), leaf("Delivered"), leaf("false"), include)
    body = xml(leaf("true"), leaf("200"), leaf("111"), nest(item))
    await assert_format_error(router, make_client, "bulk_status", body)


# -- broken and wrong XML -------------------------------------------------------------------------


def truncations(body: bytes) -> Iterator[bytes]:
    for end in range(0, len(body) - 1, max(1, len(body) // 25)):
        yield body[:end]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_truncated_xml_is_a_format_error(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    for body in truncations(SEEDS_BY_ENDPOINT[endpoint][1].rstrip()):
        await assert_format_error(router, make_client, endpoint, body)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_truncated_json_is_a_format_error(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    for body in truncations(SEEDS_BY_ENDPOINT[endpoint][0].rstrip()):
        await assert_format_error(router, make_client, endpoint, body, fmt="json")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("seed", range(8))
async def test_random_bytes_are_a_format_error(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str, seed: int
) -> None:
    rng = random.Random(seed)
    body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    for fmt in ("xml", "json"):
        router.routes.clear()
        await assert_format_error(router, make_client, endpoint, body, fmt=fmt)


WRONG_XML = {
    "wrong-root": b"<answer><entry>true</entry><entry>200</entry></answer>",
    "namespaced-root": b'<x:result xmlns:x="urn:x"><entry>true</entry></x:result>',
    "foreign-child": xml(leaf("true"), leaf("200"), "<statut>Delivered</statut>"),
    "nested-success": xml(nest(leaf("true")), leaf("200")),
    "nested-code": xml(leaf("true"), nest(leaf("200"), leaf("1"))),
    "no-entries": xml(),
    "success-not-boolean": xml(leaf("maybe"), leaf("200")),
    "code-not-integer": xml(leaf("false"), leaf("ten"), leaf("nope")),
    "undefined-entity": xml(leaf("true"), leaf("&foo;")),
    "two-roots": b"<result><entry>true</entry></result><result></result>",
    "unknown-encoding": b'<?xml version="1.0" encoding="x-nope"?><result></result>',
    "json-instead": seeds.MESSAGE_STATUS_JSON,
    "html-instead": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "whitespace-only": b"   \n  ",
    "nul-bytes": b"\x00" * 64,
    "bom-only": b"\xef\xbb\xbf",
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", list(WRONG_XML))
async def test_wrong_xml_is_a_format_error(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], case: str, endpoint: str
) -> None:
    await assert_format_error(router, make_client, endpoint, WRONG_XML[case])


@pytest.mark.parametrize("endpoint", ["message_status", "bulk_status", "status_by_tag"])
async def test_nested_entries_where_a_leaf_is_expected(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    entries = shaped(endpoint, "x")
    entries[2] = nest(leaf("a"), leaf("b"))
    await assert_format_error(router, make_client, endpoint, xml(*entries))


@pytest.mark.parametrize("endpoint", ["bulk_status", "status_by_tag"])
async def test_text_where_a_list_is_expected(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    entries = shaped(endpoint, "111")
    entries[-1] = leaf("Delivered")
    await assert_format_error(router, make_client, endpoint, xml(*entries))


# -- size ---------------------------------------------------------------------------------------

HUGE = 50 * 1024 * 1024


@pytest.mark.parametrize("endpoint", ["message_status", "multi_status"])
async def test_a_50mb_text_node_is_refused_quickly(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    """lxml without huge_tree refuses a text node over 10 MB; the error excerpt stays short."""
    body = xml(leaf("true"), leaf("200"), leaf("A" * HUGE))
    async with asyncio.timeout(20):
        error = await assert_format_error(router, make_client, endpoint, body)
    assert len(str(error)) < 1_000


@pytest.mark.parametrize("endpoint", ["bulk_status", "status_by_tag"])
async def test_a_50mb_cdata_section_is_refused(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    body = xml(leaf("true"), leaf("200"), leaf("<![CDATA[" + "B" * HUGE + "]]>"))
    async with asyncio.timeout(20):
        await assert_format_error(router, make_client, endpoint, body)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_very_deep_nesting_is_refused(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    depth = 100_000
    body = xml(leaf("true"), leaf("200"), "<entry>" * depth + "x" + "</entry>" * depth)
    await assert_format_error(router, make_client, endpoint, body)


async def test_a_large_list_parses_or_is_refused_within_reason(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient]
) -> None:
    """A body of many well-formed items (~6 MB) is an answer, not an attack: it parses."""
    item = nest(leaf("+33600000001"), leaf("Delivered"), leaf("false"), leaf("1517989111"))
    n = 60_000
    body = xml(leaf("true"), leaf("200"), leaf("111"), nest(*([item] * n)))
    answer_with(router, body)
    client = make_client(response_format="xml", max_retries=0)
    async with asyncio.timeout(20):
        result = await client.bulk_status(111)
    assert isinstance(result, BulkStatus)
    assert len(result.recipients) == n


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_json_nested_too_deep_is_a_format_error(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], endpoint: str
) -> None:
    body = b'{"success": true, "code": 200, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    await assert_format_error(router, make_client, endpoint, body, fmt="json")


# -- wrong value types (JSON) -----------------------------------------------------------------


WRONG_JSON = {
    "array": b"[]",
    "string": b'"success"',
    "null": b"null",
    "number": b"200",
    "success-is-object": b'{"success": {}, "code": 200}',
    "success-is-text": b'{"success": "yes", "code": 200}',
    "code-is-list": b'{"success": false, "code": [10], "message": "x"}',
    "code-is-float-text": b'{"success": false, "code": "1.5", "message": "x"}',
    "list-is-object": b'{"success": true, "code": 200, "message_id": 1, "currentPage": 1, '
    b'"total": 1, "number": "+33699999992", "messageId": 1000, "statut": [], '
    b'"StatutResponse_List": {"a": 1}}',
    "no-success": b'{"code": 200, "StatutResponse_List": []}',
    "nan-literal": b'{"success": true, "code": NaN}',
    "duplicate-garbage": b'{"success": true, "code": 200}{"success": true}',
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", list(WRONG_JSON))
async def test_wrong_json_is_a_format_error(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], case: str, endpoint: str
) -> None:
    await assert_format_error(router, make_client, endpoint, WRONG_JSON[case], fmt="json")


@pytest.mark.parametrize(
    ("phone", "message_id"),
    [
        (["+33699999992"], 1000),
        ({"n": "+33699999992"}, 1000),
        ("+33699999992", [1000]),
        ("+33699999992", {"id": 1000}),
    ],
)
async def test_multi_status_item_with_unhashable_phone_or_id(
    router: respx.Router,
    make_client: Callable[..., SMSPartnerClient],
    phone: object,
    message_id: object,
) -> None:
    item = {"success": True, "code": 200, "phoneNumber": phone, "messageId": message_id}
    body = orjson.dumps({"success": True, "code": 200, "StatutResponse_List": [item]})
    answer_with(router, body)
    client = make_client(max_retries=0)
    results = await client.multi_status(PAIRS)
    assert len(results) == len(PAIRS)
    assert not any(r.ok for r in results)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_multi_status_item_with_an_absurdly_long_message_id(
    router: respx.Router, make_client: Callable[..., SMSPartnerClient], fmt: str
) -> None:
    huge = "9" * 5_000
    if fmt == "json":
        item = {"success": True, "code": 200, "phoneNumber": PAIRS[0][0], "messageId": huge}
        body = orjson.dumps({"success": True, "code": 200, "StatutResponse_List": [item]})
    else:
        body = xml(
            leaf("true"),
            leaf("200"),
            nest(nest(leaf("true"), leaf("200"), leaf(PAIRS[0][0]), leaf(huge))),
        )
    answer_with(router, body)
    client = make_client(response_format=fmt, max_retries=0)
    results = await client.multi_status(PAIRS)
    assert len(results) == len(PAIRS)


async def test_absurdly_long_message_id_input_is_invalid_input(
    make_client: Callable[..., SMSPartnerClient],
) -> None:
    client = make_client()
    with pytest.raises(InvalidInputError):
        await client.multi_status([(PAIRS[0][0], "9" * 5_000)])


# -- hypothesis: every endpoint, arbitrary and structured-but-wrong answers ----------------------


class Harness:
    """Clients over a MockTransport that answers `self.body`, driven from synchronous tests.

    One event loop for the whole module (hypothesis calls the test body many times); a
    client per format, retries off.
    """

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.runner = asyncio.Runner()
        self.clients: dict[str, SMSPartnerClient] = {}
        self.runner.run(self._open())

    async def _open(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(self.status, content=self.body)

        self.http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        for fmt in ("json", "xml"):
            self.clients[fmt] = SMSPartnerClient(
                "fuzz-key-1234abcd",
                http_client=self.http,
                response_format=fmt,
                retry=RetryPolicy.testing(max_retries=0),
                max_pages=20,
            )

    def close(self) -> None:
        async def close() -> None:
            for client in self.clients.values():
                await client.aclose()
            await self.http.aclose()

        self.runner.run(close())
        self.runner.close()

    def check(self, endpoint: str, fmt: str, body: bytes, status: int = 200) -> None:
        """The call returns the right type or raises an SMSPartnerError; nothing else."""
        self.body, self.status = body, status
        client = self.clients[fmt]
        error: SMSPartnerError | None = None
        try:
            result = self.runner.run(call(client, endpoint))
        except SMSPartnerError as exc:
            error = exc
        if error is None:
            check_result(endpoint, result)
        elif endpoint == "multi_status":
            # Failed chunks become failed items; only errors no chunk escapes raise, and the
            # first error when not one call was answered (here, the only call).
            fatal = isinstance(error, (AuthenticationError, PermissionDeniedError))
            assert fatal or "calls got an answer" in str(getattr(error, "__notes__", "")), error


def check_result(endpoint: str, result: Any) -> None:
    if endpoint == "message_status":
        assert isinstance(result, MessageStatus)
    elif endpoint == "bulk_status":
        assert isinstance(result, BulkStatus)
        assert all(isinstance(r, RecipientStatus) for r in result.recipients)
    elif endpoint == "status_by_tag":
        assert isinstance(result, list)
        assert all(isinstance(r, RecipientStatus) for r in result)
    else:
        assert isinstance(result, list)
        assert len(result) == len(PAIRS)
        for index, (item, (phone, mid)) in enumerate(zip(result, PAIRS, strict=True)):
            assert isinstance(item, MultiStatusResult)
            assert (item.index, item.phone_number, item.message_id) == (index, phone, mid)
            assert item.ok or item.error is not None or item.code is not None


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    made = Harness()
    yield made
    made.close()


FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Values the API's fields plausibly hold, to get past the envelope into the models.
PHONES = [p for p, _ in PAIRS]
IDS = [m for _, m in PAIRS]
VALID: dict[str, list[Any]] = {
    "success": [True, "true", 1, "1"],
    "code": [200, "200"],
    "number": [*PHONES, "0699999992"],
    "phoneNumber": [*PHONES, "0699999992", "+336XXXXXXX1"],
    "messageId": [*IDS, *map(str, IDS)],
    "message_id": [111, "111"],
    "status": ["Delivered", "Not delivered", "Waiting", "ko", "Numéro introuvable"],
    "statut": ["Delivered", "Waiting", " delivered "],
    "date": ["2015-02-07 22:39:46", "1517934416", 1517934416, "", 0],
    "stopSms": [True, False, "0", "1"],
    "stopSMS": [True, False, "0", "1"],
    "isSpam": ["0", "1", False],
    "cost": [0.045, "0.045", 1, "0"],
    "countryCode": ["FR"],
    "currency": ["EUR"],
    "currentPage": [1, "1"],
    "total": [1, 2, "3"],
    "message": ["Clé API incorrecte"],
}
PLAUSIBLE = [
    *sorted({str(v) for values in VALID.values() for v in values}),
    "false",
    "-1",
    "1e400",
    "NaN",
    "9" * 30,
    "2015-02-30 25:61:00",
]
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.sampled_from(PLAUSIBLE),
    st.sampled_from(IDS),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=6,
)
wrong_values = st.one_of(json_scalars, json_scalars, json_scalars, json_values)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` nine times in ten: each answer is wrong in a few places, not everywhere."""
    return st.integers(0, 9).flatmap(lambda n: bad if n == 0 else good)


def field(key: str) -> st.SearchStrategy[Any]:
    """Mostly a valid value for `key`, sometimes any JSON value at all."""
    return mostly(st.sampled_from(VALID[key]), wrong_values)


def _for_pair(item: Any, pair: tuple[str, int] | None) -> Any:
    if pair is None or not isinstance(item, dict):
        return item
    return {**item, "phoneNumber": pair[0], "messageId": pair[1]}


def _xml_for_pair(entries: list[Any], pair: tuple[str, int] | None) -> list[Any]:
    if pair is None or len(entries) < 4:
        return entries
    return [*entries[:2], pair[0], str(pair[1]), *entries[4:]]


def json_object(keys: tuple[str, ...], list_key: str | None = None, item_keys=()) -> Any:
    """A dict with `keys` (some missing, some wrong), and maybe unknown extra keys."""
    values: dict[str, Any] = {}
    for key in keys:
        if key == list_key:
            item = json_object(item_keys)
            if "messageId" in item_keys:  # multi-status: mostly items for pairs we asked about
                item = st.builds(_for_pair, item, mostly(st.sampled_from(PAIRS), st.none()))
            values[key] = st.lists(item, max_size=4) | st.lists(item, min_size=3, max_size=3)
        else:
            values[key] = field(key)
    dropped = mostly(st.just(set()), st.sets(st.sampled_from(keys), max_size=2))
    extra = mostly(st.just({}), st.dictionaries(texts, wrong_values, max_size=2))
    document = st.builds(
        lambda d, gone, more: {**more, **{k: v for k, v in d.items() if k not in gone}},
        st.fixed_dictionaries(values),
        dropped,
        extra,
    )
    return mostly(document, wrong_values)


LAYOUTS = {
    "message_status": MESSAGE_STATUS.xml,
    "multi_status": MULTI_STATUS.xml,
    "bulk_status": BULK_STATUS.xml,
    "status_by_tag": STATUS_BY_TAG.xml,
}
JSON_DOCUMENTS = {
    endpoint: json_object(layout.keys, layout.list_key, layout.item_keys)
    for endpoint, layout in LAYOUTS.items()
}


def mutate(body: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(body)
    for position, cut, insert in edits:
        at = position % (len(data) + 1)
        data[at : at + cut] = insert
    return bytes(data)


mutated_seeds = st.builds(
    lambda endpoint_fmt, edits: (endpoint_fmt, edits),
    st.sampled_from([(e, f) for e in ENDPOINTS for f in ("json", "xml")]),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 8), st.binary(max_size=6)),
        min_size=1,
        max_size=6,
    ),
)


@FUZZ
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    fmt=st.sampled_from(["json", "xml"]),
    body=st.binary(max_size=300),
    status=st.sampled_from([200, 200, 400, 404, 408, 500, 503]),
)
def test_fuzz_arbitrary_bytes(
    harness: Harness, endpoint: str, fmt: str, body: bytes, status: int
) -> None:
    harness.check(endpoint, fmt, body, status)


@FUZZ
@given(case=mutated_seeds)
def test_fuzz_mutated_seed_answers(harness: Harness, case: Any) -> None:
    (endpoint, fmt), edits = case
    body = SEEDS_BY_ENDPOINT[endpoint][0 if fmt == "json" else 1]
    harness.check(endpoint, fmt, mutate(body, edits))


@FUZZ
@given(data=st.data(), endpoint=st.sampled_from(ENDPOINTS))
def test_fuzz_structured_json(harness: Harness, data: st.DataObject, endpoint: str) -> None:
    document = data.draw(JSON_DOCUMENTS[endpoint])
    harness.check(endpoint, "json", orjson.dumps(document))


xml_text = st.sampled_from(PLAUSIBLE) | st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x24F), max_size=10
)
xml_trees = st.recursive(xml_text, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


def xml_field(key: str) -> st.SearchStrategy[Any]:
    valid = st.sampled_from([str(v).lower() if isinstance(v, bool) else str(v) for v in VALID[key]])
    return mostly(valid, xml_trees)


def xml_entries(keys: tuple[str, ...], list_key: str | None = None, item_keys=()) -> Any:
    """Entries in `keys` order (the positional layout), sometimes cut short or extended."""
    parts = []
    for key in keys:
        if key == list_key:
            item = xml_entries(item_keys)
            if "messageId" in item_keys:  # multi-status: mostly items for pairs we asked about
                item = st.builds(_xml_for_pair, item, mostly(st.sampled_from(PAIRS), st.none()))
            parts.append(st.lists(item, max_size=4) | st.lists(item, min_size=3, max_size=3))
        else:
            parts.append(xml_field(key))
    return st.builds(
        lambda entries, cut, more: [*entries[:cut], *more],
        st.tuples(*parts).map(list),
        mostly(st.just(len(keys)), st.integers(0, len(keys))),
        mostly(st.just([]), st.lists(xml_trees, max_size=2)),
    )


def render(node: str | list[Any]) -> str:
    if isinstance(node, str):
        return f"<entry>{escape(node)}</entry>"
    return "<entry>" + "".join(render(child) for child in node) + "</entry>"


XML_DOCUMENTS = {
    endpoint: mostly(
        xml_entries(layout.keys, layout.list_key, layout.item_keys),
        st.lists(xml_trees, max_size=6),
    ).map(lambda entries: xml(*(render(node) for node in entries)))
    for endpoint, layout in LAYOUTS.items()
}


@FUZZ
@given(data=st.data(), endpoint=st.sampled_from(ENDPOINTS))
def test_fuzz_structured_xml(harness: Harness, data: st.DataObject, endpoint: str) -> None:
    harness.check(endpoint, "xml", data.draw(XML_DOCUMENTS[endpoint]))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    name=st.sampled_from(ENDPOINTS),
    fmt=st.sampled_from(["json", "xml"]),
    status=st.sampled_from([200, 400, 408, 429, 500, 502]),
)
def test_fuzz_read_answer(data: st.DataObject, name: str, fmt: str, status: int) -> None:
    """The decoder and envelope alone: a dict or an SMSPartnerError, for any input."""
    documents = XML_DOCUMENTS[name] if fmt == "xml" else JSON_DOCUMENTS[name].map(orjson.dumps)
    body = data.draw(st.binary(max_size=200) | documents)
    endpoint = {"message_status": MESSAGE_STATUS, "multi_status": MULTI_STATUS}.get(
        name, BULK_STATUS if name == "bulk_status" else STATUS_BY_TAG
    )
    headers = httpx.Headers({"Retry-After": "1"})
    try:
        answer = Answer(status, headers, body)
        record = read_record(answer, endpoint, fmt, 1 << 20, SecretStr("k" * 8))  # type: ignore[arg-type]
    except SMSPartnerError:
        return
    assert isinstance(record, dict)
    assert status != 429
