"""The client over real sockets against the sandbox, for every endpoint in both formats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from smspartner_async import (
    AuthenticationError,
    DeliveryStatus,
    MultiStatusResult,
    NotFoundError,
    RetryPolicy,
    SMSPartnerClient,
)
from smspartner_async.sandbox import Faults, Sandbox, serve

KEY = "sandbox-key"


def frozen_clock() -> float:
    return 0.0  # statuses do not settle while a test runs


@pytest.fixture
async def served() -> AsyncIterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(seed=7, clock=frozen_clock, shuffle_multi=True)
    async with serve(sandbox) as base_url:
        yield sandbox, base_url


def check_result(sandbox: Sandbox, result: MultiStatusResult) -> None:
    record = sandbox.data.status_of(result.phone_number, result.message_id)
    if record is None:
        assert not result.ok
        assert result.code == 4
        assert result.error is None
        return
    assert result.ok, result
    assert result.status is DeliveryStatus(record.status)
    assert result.date == datetime.fromtimestamp(record.date, UTC)
    assert result.stop_sms is record.stop_sms
    assert result.is_spam is record.is_spam


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_every_endpoint(served, fmt):
    sandbox, base_url = served
    pairs = list(sandbox.data.sample_pairs(1234, national_share=0.2))
    async with SMSPartnerClient(KEY, base_url=base_url, response_format=fmt) as client:
        results = await client.multi_status(pairs)
        assert [r.index for r in results] == list(range(len(pairs)))
        for result in results:
            check_result(sandbox, result)
        assert any(not r.ok for r in results)  # the sandbox's unknown pairs

        phone, mid = next((p, m) for p, m in pairs if sandbox.data.status_of(p, m) is not None)
        single = await client.message_status(phone, mid)
        record = sandbox.data.status_of(phone, mid)
        assert single.message_id == mid
        assert single.status is DeliveryStatus(record.status)
        assert single.date == datetime.fromtimestamp(record.date, UTC)
        assert single.country_code == record.country_code

        message_id = next(m for _, m in pairs if sandbox.data.recipients(m))
        bulk = await client.bulk_status(message_id)
        assert bulk.message_id == message_id
        assert [r.phone_number for r in bulk.recipients] == sandbox.data.recipients(message_id)

        tagged = await client.status_by_tag("demo")
        assert [(r.phone_number) for r in tagged] == [p for p, _ in sandbox.data.tag_items("demo")]
        assert sandbox.stats.requests["bulk-status-by-tag"] == 3

        with pytest.raises(NotFoundError):
            await client.bulk_status(
                next(m for m in range(1, 10**6) if not sandbox.data.message_known(m))
            )

    assert max(sandbox.stats.pairs_per_call) == 500


async def test_bad_key_over_sockets(served):
    _, base_url = served
    async with SMSPartnerClient("bad-key", base_url=base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.multi_status([("+33612345678", 1)])
    assert caught.value.code == 10


async def test_server_ignoring_page_cannot_loop():
    sandbox = Sandbox(clock=frozen_clock, ignore_page=True, page_size=100)
    async with serve(sandbox) as base_url, SMSPartnerClient(KEY, base_url=base_url) as client:
        items = await client.status_by_tag("tag-1000")
    assert len(items) == 100  # page 1 once, then the repeat is detected
    assert len({(i.phone_number, i.date) for i in items}) == 100
    assert sandbox.stats.requests["bulk-status-by-tag"] <= 1 + client._shared.flow.max_concurrency


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_twenty_percent_faults_lose_nothing(fmt):
    """20% of calls fail in every injected way; every pair still gets its true status."""
    kinds = ("429", "500", "502", "503", "html", "html200", "drop", "truncate", "slow")
    faults = Faults(rate=0.2, kinds=kinds, retry_after=0, slow_seconds=0.8, seed=11)
    faults.script(kinds)  # every kind at least once, then 20% at random
    sandbox = Sandbox(seed=3, clock=frozen_clock, faults=faults, shuffle_multi=True)
    pairs = list(sandbox.data.sample_pairs(20_000, national_share=0.1))
    async with (
        serve(sandbox) as base_url,
        SMSPartnerClient(
            KEY,
            base_url=base_url,
            response_format=fmt,
            timeout=0.4,
            retry=RetryPolicy.testing(max_retries=10),
        ) as client,
    ):
        results = await client.multi_status(pairs)
        assert len(results) == len(pairs)
        assert [r.index for r in results] == list(range(len(pairs)))
        assert all(r.error is None for r in results)
        for result in results:
            check_result(sandbox, result)
        assert client.stats.retries >= 5
        assert client.stats.retries == sum(sandbox.stats.faults.values())
        assert set(sandbox.stats.faults) == set(kinds)
        print(f"{fmt}: {client.stats.retries} retries for faults {dict(sandbox.stats.faults)}")
