"""Fixtures for the sandbox tests: an in-process client and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from smspartner_async.sandbox import Sandbox

from ._helpers import FakeClock, make_client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Sandbox:
    return Sandbox(seed=7, clock=clock)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(sandbox) as http:
        yield http
