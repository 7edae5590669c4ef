"""The testing helpers users get: an in-process sandbox client and pytest fixtures."""

from __future__ import annotations

import asyncio
import time

import pytest

from smspartner_async import DeliveryStatus, SMSPartnerClient
from smspartner_async.sandbox import Sandbox
from smspartner_async.testing import FastClock, sandbox_client


async def test_sandbox_client_answers_from_the_sandbox_data():
    sandbox = Sandbox(seed=5, clock=lambda: 0.0)
    pairs = list(sandbox.data.sample_pairs(50))
    async with sandbox_client(sandbox) as client:
        results = await client.multi_status(pairs)
    for (phone, mid), result in zip(pairs, results, strict=True):
        record = sandbox.data.status_of(phone, mid)
        expected = DeliveryStatus(record.status) if record else DeliveryStatus.UNKNOWN
        assert result.status is expected
    assert client.is_closed
    assert sandbox.stats.requests["multi-status"] == 1


async def test_sandbox_client_retries_injected_faults_without_waiting():
    sandbox = Sandbox()
    sandbox.faults.script(["429", "503", "truncate"])
    async with sandbox_client(sandbox) as client:
        pages = [page async for page in client.iter_tag_pages("demo")]
    assert [p.current_page for p in pages] == [1, 2, 3]
    assert client.stats.retries == 3


async def test_fixtures(smspartner_client: SMSPartnerClient, smspartner_sandbox: Sandbox):
    result = await smspartner_client.bulk_status(
        next(m for m in range(1, 1000) if smspartner_sandbox.data.recipients(m))
    )
    assert result.recipients
    assert smspartner_sandbox.stats.total == 1


async def test_fast_clock_runs_and_sleeps_speed_times_faster():
    clock = FastClock(3600, start=1_000.0)
    wall, first = time.monotonic(), clock()
    assert 1_000.0 <= first < 1_000.0 + 3600 * 0.5
    await clock.sleep(360)  # a tenth of a second of real time
    spent = time.monotonic() - wall
    assert 0.09 <= spent < 1.0
    assert clock() - first == pytest.approx(spent * 3600, rel=0.05, abs=36)
    await asyncio.wait_for(clock.sleep(-5), 0.5)  # the past: no wait
    assert "speed=3600" in repr(clock)


def test_fast_clock_refuses_a_speed_that_is_not_positive():
    for speed in (0, -1, True, "fast"):
        with pytest.raises(ValueError, match="speed must be a positive number"):
            FastClock(speed)  # type: ignore[arg-type]
