"""The dataset: determinism, shares, consistency between endpoints, settling over time."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import httpx
import pytest

from smspartner_async.sandbox import (
    DELIVERED,
    NOT_DELIVERED,
    WAITING,
    Sandbox,
    SandboxData,
    normalize_phone,
    paris_local_time,
)

from ._helpers import KEY, FakeClock, make_client


def test_same_seed_same_data() -> None:
    a, b, other = SandboxData(5), SandboxData(5), SandboxData(6)
    pairs = list(a.sample_pairs(2000))
    assert pairs == list(b.sample_pairs(2000))
    assert [a.status_of(*p) for p in pairs] == [b.status_of(*p) for p in pairs]
    assert [a.status_of(*p) for p in pairs] != [other.status_of(*p) for p in pairs]
    assert a.recipients(1234) == b.recipients(1234)
    assert list(a.tag_items("demo")) == list(b.tag_items("demo"))


def test_sample_pairs_are_distinct_with_realistic_shares() -> None:
    data = SandboxData(0)
    pairs = list(data.sample_pairs(20_000, national_share=0.25))
    assert len(pairs) == 20_000
    assert len({(normalize_phone(p), m) for p, m in pairs}) == 20_000
    national = sum(p.startswith("06") for p, _ in pairs)
    assert 4_500 < national < 5_500
    records = [data.status_of(p, m) for p, m in pairs]
    unknown = records.count(None)
    assert 300 < unknown < 1_000  # about 3%
    shares = Counter(r.status for r in records if r is not None)
    assert shares[DELIVERED] > shares[WAITING] > 0
    assert shares[NOT_DELIVERED] > 0
    assert all(r.phone.startswith("+336") for r in records if r is not None)


def test_national_and_e164_forms_are_the_same_pair() -> None:
    data = SandboxData(0)
    for phone, mid in data.sample_pairs(200):
        assert data.status_of(phone, mid) == data.status_of("0" + phone[3:], mid)


def test_recipients_and_tag_items_are_known_pairs() -> None:
    data = SandboxData(0)
    known_messages = [m for m in range(1, 300) if data.recipients(m) is not None]
    assert 280 < len(known_messages) < 300  # a few ids are unknown
    for mid in known_messages:
        phones = data.recipients(mid) or []
        assert 1 <= len(phones) <= 60
        assert len(set(phones)) == len(phones)
        assert all(data.status_of(p, mid) is not None for p in phones)
    items = data.tag_items("tag-1000")
    assert len(items) == 1000
    assert len(set(items)) == 1000
    assert all(data.status_of(p, m) is not None for p, m in items)
    assert items[-1] == items[999]
    with pytest.raises(IndexError):
        items[1000]


def test_large_tags_are_lazy() -> None:
    items = SandboxData(0).tag_items("tag-5000000")
    assert len(items) == 5_000_000
    assert len(items[4_999_990:]) == 10


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+33612345678", "+33612345678"),
        ("0612345678", "+33612345678"),
        ("06 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        (" 33612345678", "+33612345678"),
        ("hello", None),
        ("", None),
    ],
)
def test_normalize_phone(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_paris_local_time_matches_the_tz_database() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
    # Every 37 minutes over two years crosses each DST switch closely.
    for epoch in range(start, start + 2 * 366 * 86400, 37 * 60):
        local = dt.datetime.fromtimestamp(epoch, paris).strftime("%Y-%m-%d %H:%M:%S")
        assert paris_local_time(epoch) == local
    assert paris_local_time(1423345186) == "2015-02-07 22:39:46"  # the page's example


async def test_waiting_records_settle_as_the_clock_advances() -> None:
    clock = FakeClock()
    sandbox = Sandbox(seed=7, clock=clock)
    data = sandbox.data
    settling = [
        (p, m, r)
        for p, m in data.sample_pairs(3000)
        if (r := data.status_of(p, m)) is not None and r.settles_at is not None
    ]
    forever = [
        (p, m)
        for p, m in data.sample_pairs(3000)
        if (r := data.status_of(p, m)) is not None and r.status == WAITING and r.settles_at is None
    ]
    assert settling
    assert forever
    phone, mid, rec = settling[0]
    assert rec.status == WAITING

    async def ask(http: httpx.AsyncClient) -> str:
        params = {"apiKey": KEY, "phoneNumber": phone, "messageId": str(mid)}
        status: str = (await http.get("/message-status", params=params)).json()["statut"]
        return status

    async with make_client(sandbox) as http:
        clock.advance(rec.settles_at - 0.5)  # type: ignore[operator]
        assert await ask(http) == WAITING
        clock.advance(0.5)
        settled = await ask(http)
    assert settled in (DELIVERED, NOT_DELIVERED)
    assert settled == data.status_of(phone, mid, sandbox.elapsed()).status  # type: ignore[union-attr]
    assert all(data.status_of(p, m, 10_000.0).status == WAITING for p, m in forever)  # type: ignore[union-attr]
    assert all(
        data.status_of(p, m, 61.0).status != WAITING  # type: ignore[union-attr]
        for p, m, _ in settling
    )
