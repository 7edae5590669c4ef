"""Micro benchmarks, in process: decoding one 500-item answer, matching it to its pairs,
building results (the twin-class trick against `__init__`), phone validation."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson
from lxml import etree

from ._common import make_pairs
from ._profile import Profile
from ._report import Goal, Section
from .server import render_multi_status

LIST = "StatutResponse_List"


def _per_call(fn: Callable[[], Any], seconds: float = 0.3) -> float:
    """Seconds per call: best of 3 batches of about `seconds` each."""
    fn()
    t0 = time.perf_counter()
    calls = 1
    while time.perf_counter() - t0 < 0.05:
        fn()
        calls += 1
    per = (time.perf_counter() - t0) / calls
    batch = max(1, int(seconds / per))
    results = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        results.append((time.perf_counter() - t0) / batch)
    return min(results)


def _why(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _matching_rows(body_json: bytes, body_xml: bytes) -> list[list[Any]]:
    """The multi-status hot path on one 500-pair answer: decode, match, build results."""
    from smspartner_async._chunking import chunks_of
    from smspartner_async._matching import match
    from smspartner_async._models import MultiStatusResult
    from smspartner_async._structure import make_converter
    from smspartner_async._validate import validate_all
    from smspartner_async._wire.endpoints import MULTI_STATUS
    from smspartner_async._wire.json import decode_json
    from smspartner_async._wire.rows import decode_multi_status, rows_of
    from smspartner_async._wire.xml import decode_xml

    def as_rows(record: dict[str, Any] | None) -> dict[str, Any]:
        assert record is not None
        return {LIST: rows_of(record[LIST], LIST)}  # what `read_record` gives `match`

    chunk = chunks_of(validate_all(make_pairs(500), "FR"), 500)[0][0]
    records = orjson.loads(body_json)[LIST]

    def match_only() -> None:
        # `match` consumes the answer's list: give it a fresh one (500 references).
        match(chunk, as_rows({LIST: list(records)}), "FR")

    structure = make_converter().structure

    def structure_all() -> None:
        for record in records:
            structure(record, MultiStatusResult)

    return [
        ["_matching.match -> MultiStatusResult (decoded JSON items)", _per_call(match_only) / 500],
        [
            "orjson decode_json + match, 500-item answer (the general path)",
            _per_call(lambda: match(chunk, as_rows(decode_json(body_json)), "FR")) / 500,
        ],
        [
            "msgspec decode_multi_status + match, 500-item answer (the JSON path)",
            _per_call(lambda: match(chunk, as_rows(decode_multi_status(body_json, LIST)), "FR"))
            / 500,
        ],
        [
            "decode_xml + match, 500-item answer",
            _per_call(lambda: match(chunk, as_rows(decode_xml(body_xml, MULTI_STATUS.xml)), "FR"))
            / 500,
        ],
        [
            "Converter.structure -> MultiStatusResult (cold-endpoint path)",
            _per_call(structure_all) / 500,
        ],
    ]


def _construction_rows() -> tuple[list[list[Any]], list[str]]:
    """`_matching.new_result` (twin class + `__class__` swap) against the model's `__init__`."""
    from smspartner_async._matching import new_result
    from smspartner_async._models import DeliveryStatus, MultiStatusResult
    from smspartner_async._structure import parse_date

    date = parse_date("1517934416")
    args = [
        (p, m, True, 200, DeliveryStatus.DELIVERED, "Delivered", date, False, False, i)
        for i, (p, m) in enumerate(make_pairs(500))
    ]

    def via_twin() -> None:
        for a in args:
            new_result(*a)

    def via_init() -> None:
        for a in args:
            MultiStatusResult(*a)

    twin_us = _per_call(via_twin) / 500 * 1e6
    init_us = _per_call(via_init) / 500 * 1e6
    rows = [
        ["MultiStatusResult via _matching.new_result (twin + __class__ swap)", twin_us],
        ["MultiStatusResult(...) (its own frozen attrs __init__)", init_us],
    ]
    notes = [
        f"twin + __class__ swap saves {init_us - twin_us:.2f} us per result "
        f"({init_us / twin_us:.2f}x faster than __init__); same 10 positional values, "
        "500 results per call"
    ]
    return rows, notes


def run(profile: Profile) -> Section:
    section = Section("micro", "Micro benchmarks (us per item)", ["operation", "us/item"])
    items = [{"phoneNumber": p, "messageId": m} for p, m in make_pairs(500)]
    body_json = render_multi_status(items)
    body_xml = render_multi_status(items, xml=True)
    rows: list[list[Any]] = [
        ["json.loads, 500-item answer", _per_call(lambda: json.loads(body_json)) / 500 * 1e6],
        ["orjson.loads, 500-item answer", _per_call(lambda: orjson.loads(body_json)) / 500 * 1e6],
        [
            "lxml etree.fromstring, XML form",
            _per_call(lambda: etree.fromstring(body_xml)) / 500 * 1e6,
        ],
    ]
    section.rows = rows
    try:
        rows += [[name, seconds * 1e6] for name, seconds in _matching_rows(body_json, body_xml)]
    except Exception as exc:
        section.notes.append(f"matching skipped: {_why(exc)}")
    try:
        construction, notes = _construction_rows()
        rows += construction
        section.notes += notes
    except Exception as exc:
        section.notes.append(f"construction skipped: {_why(exc)}")
    try:
        from smspartner_async._validate import normalize_phone

        phones = [p for p, _ in make_pairs(profile.phones)]
        t0 = time.perf_counter()
        for phone in phones:
            normalize_phone(phone)
        seconds = time.perf_counter() - t0
        rows.append(
            [f"normalize_phone, {len(phones):,} E.164 numbers", seconds / len(phones) * 1e6]
        )
        per_million = seconds * 1_000_000 / len(phones)
        section.goals.append(Goal("validation of 1,000,000 E.164 numbers", per_million, 1.0, " s"))
    except Exception as exc:
        section.notes.append(f"phone validation skipped: {_why(exc)}")
    section.data = {str(r[0]): r[1] for r in rows}
    return section
