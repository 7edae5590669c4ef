"""Micro benchmarks, in process: decoding one 500-item answer, phone validation, structuring."""

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
    records = orjson.loads(body_json)["StatutResponse_List"]
    try:
        from smspartner_async._convert import make_converter

        from smspartner_async._models import MultiStatusResult

        structure = make_converter().structure

        def structure_all() -> None:
            for record in records:
                structure(record, MultiStatusResult)

        rows.append(["cattrs structure -> MultiStatusResult", _per_call(structure_all) / 500 * 1e6])
    except Exception as exc:
        section.notes.append(f"structuring skipped: {_why(exc)}")
    try:
        from smspartner_async._phone import normalize_phone

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
