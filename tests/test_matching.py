"""The matching loop reads values from the parsers' caches when it can and parses them
when it must: both ways give the same results, item by item, malformed items included."""

from __future__ import annotations

from typing import Any

import pytest

from smspartner_async import _scalars, _structure
from smspartner_async._chunking import chunks_of
from smspartner_async._matching import match
from smspartner_async._validate import validate_all
from smspartner_async._wire.endpoints import LIST_KEY
from smspartner_async._wire.rows import rows_of

PAIRS = [(f"+3360000{i:04d}", 1000 + i) for i in range(12)]
VALUES: list[dict[str, Any]] = [
    {"success": True, "code": 200, "status": "Delivered", "date": "1517934416", "stopSms": "0"},
    {"success": "true", "code": "200", "statut": "DELIVERED ", "date": 1517934416, "isSpam": "1"},
    {"success": False, "code": 4, "status": "Numéro introuvable"},
    {"success": True, "code": 200, "status": "Waiting", "date": "", "stopSMS": True},
    {"success": True, "code": 200, "status": "weird", "date": "2018-02-06 17:26:56"},
    {"success": "TRUE", "code": 200.0, "status": "ko", "date": 0, "stopSms": 1},
    {"success": True, "code": [200], "status": "Delivered"},  # malformed: fails alone
    {"success": True, "code": 200, "status": "Delivered", "date": "not a date"},  # malformed
    {"code": 200, "status": "Delivered"},  # no success flag: fails alone
    {"success": True, "code": 200, "status": {"x": 1}},  # malformed status
    {"success": True, "code": 200, "status": "Delivered", "isSpam": "maybe"},  # malformed flag
    {"success": True, "code": "0200", "status": "Not delivered", "date": 1.5e9},
]


def answer() -> dict[str, Any]:
    items = [
        {"phoneNumber": phone, "messageId": str(mid), **values}
        for (phone, mid), values in zip(PAIRS, VALUES, strict=True)
    ]
    return {LIST_KEY: rows_of(items, LIST_KEY)}


def results(chunk: Any) -> list[tuple[Any, ...]]:
    return [
        (
            r.phone_number,
            r.message_id,
            r.ok,
            r.code,
            r.status,
            r.status_text,
            r.date,
            r.stop_sms,
            r.is_spam,
            r.index,
            str(r.error),
        )
        for r in match(chunk, answer(), "FR")
    ]


def clear_caches() -> None:
    for cache in (
        _scalars.INT_CACHE,
        _structure.STATUS_CACHE,
        _structure.TEXT_CACHE,
        _structure.DATE_CACHE,
    ):
        cache.clear()


def test_warm_caches_give_what_the_full_parse_gives() -> None:
    chunk = chunks_of(validate_all(PAIRS, "FR"), 500)[0][0]
    clear_caches()
    cold = results(chunk)  # every value parsed (and cached)
    warm = results(chunk)  # every cached value read inline
    assert warm == cold
    assert [ok for _, _, ok, *_ in cold] == [
        True,
        True,
        False,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert "malformed item" in cold[6][-1]


@pytest.mark.parametrize("status", ["Delivered", "DELIVERED", " delivered "])
def test_a_status_spelling_is_parsed_once_then_read_from_the_cache(status: str) -> None:
    chunk = chunks_of(validate_all(PAIRS[:1], "FR"), 500)[0][0]
    clear_caches()
    items = [
        {
            "success": True,
            "code": 200,
            "phoneNumber": PAIRS[0][0],
            "messageId": 1000,
            "status": status,
        }
    ]
    first = match(chunk, {LIST_KEY: rows_of(list(items), LIST_KEY)}, "FR")
    assert status in _structure.STATUS_CACHE
    again = match(chunk, {LIST_KEY: rows_of(list(items), LIST_KEY)}, "FR")
    assert first == again
    assert first[0].status_text == status.strip()


def _orders() -> dict[str, list[int]]:
    n = len(PAIRS)
    return {
        "in order": list(range(n)),
        "reversed": list(range(n))[::-1],
        "shuffled": [5, 0, 11, 3, 8, 1, 10, 2, 7, 4, 9, 6],
        "one left out": [i for i in range(n) if i != 4],
        "answered twice": [0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0],
        "rotated": [*range(6, n), *range(6)],
    }


@pytest.mark.parametrize("order", list(_orders()))
def test_an_answer_in_any_order_gives_what_the_ordered_one_gives(order: str) -> None:
    """The loop takes an item at the next slot without a look-up when the answer keeps the
    request's order; any other order, a gap, a repeat or a stranger goes through the
    look-up. Both ways give the same results (a pair left out fails alone)."""
    chunk = chunks_of(validate_all(PAIRS, "FR"), 500)[0][0]
    items = [
        {"phoneNumber": phone, "messageId": mid, **values}
        for (phone, mid), values in zip(PAIRS, VALUES, strict=True)
    ]
    stranger = {"phoneNumber": "+33699999999", "messageId": 1, "success": True, "code": 200}
    national = {**items[7], "phoneNumber": "0600000007"}  # the same pair, echoed nationally
    expected = match(chunk, {LIST_KEY: rows_of(list(items), LIST_KEY)}, "FR")
    answer = [items[i] for i in _orders()[order]]
    for extra in ([], [stranger], [stranger, national]):
        got = match(chunk, {LIST_KEY: rows_of(extra[:1] + answer + extra[1:], LIST_KEY)}, "FR")
        if order == "one left out":
            assert got[4].error is not None and "left this pair out" in str(got[4].error)
            got[4] = expected[4]
        assert [(r, r.index, str(r.error)) for r in got] == [
            (r, r.index, str(r.error)) for r in expected
        ]
