"""Testing helpers: a client wired to the built-in sandbox, in-process, with no sockets.

    from smspartner_async.testing import sandbox_client

    async with sandbox_client() as client:
        results = await client.multi_status(pairs)

Retries wait zero seconds here (`RetryPolicy.testing()`), so fault-injection
tests run at full speed. For pytest, add ``pytest_plugins = ["smspartner_async.testing"]``
to a conftest to get the `smspartner_sandbox` and `smspartner_client` fixtures
(async fixtures need pytest-asyncio or anyio's plugin).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ._client import SMSPartnerClient
from ._retry import RetryPolicy
from .sandbox import Sandbox

__all__ = ["SANDBOX_BASE_URL", "sandbox_client", "sandbox_http_client"]

SANDBOX_BASE_URL = "http://sandbox.invalid/v1"


def sandbox_http_client(sandbox: Sandbox) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose requests go straight into `sandbox.app`."""
    transport = httpx.ASGITransport(app=sandbox.app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport)


@asynccontextmanager
async def sandbox_client(
    sandbox: Sandbox | None = None, **options: Any
) -> AsyncIterator[SMSPartnerClient]:
    """A client talking to `sandbox` (a fresh one accepting any key when None), closed on exit."""
    sandbox = sandbox if sandbox is not None else Sandbox(api_key=None)
    options.setdefault("retry", RetryPolicy.testing())
    api_key = options.pop("api_key", None) or sandbox.api_key or "sandbox-key"
    async with (
        sandbox_http_client(sandbox) as http,
        SMSPartnerClient(api_key, base_url=SANDBOX_BASE_URL, http_client=http, **options) as client,
    ):
        yield client


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixtures
    pass
else:

    @pytest.fixture
    def smspartner_sandbox() -> Sandbox:
        """A fresh, seeded sandbox; tweak `.faults` or `.latency` in the test."""
        return Sandbox(seed=0)

    @pytest.fixture
    async def smspartner_client(smspartner_sandbox: Sandbox) -> AsyncIterator[SMSPartnerClient]:
        """A client wired in-process to `smspartner_sandbox`."""
        async with sandbox_client(smspartner_sandbox) as client:
            yield client
