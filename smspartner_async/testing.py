"""Testing helpers: a client wired to the built-in sandbox, in-process, with no sockets.

    from smspartner_async.testing import sandbox_client

    async with sandbox_client() as client:
        results = await client.multi_status(pairs)

Retries wait zero seconds here (`RetryPolicy.testing()`), so fault-injection
tests run at full speed. `FastClock` runs a watch (and the sandbox's statuses) on
compressed time: 48 hours in 48 seconds at `speed=3600`.

For pytest, add ``pytest_plugins = ["smspartner_async.testing"]``
to a conftest to get the `smspartner_sandbox` and `smspartner_client` fixtures
(async fixtures need pytest-asyncio or anyio's plugin).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ._client import SMSPartnerClient
from ._retry import RetryPolicy
from .sandbox import Sandbox

__all__ = ["SANDBOX_BASE_URL", "FastClock", "sandbox_client", "sandbox_http_client"]

SANDBOX_BASE_URL = "http://sandbox.invalid/v1"


class FastClock:
    """Epoch seconds running `speed` times faster than real time, and a sleep to match.

        clock = FastClock(3600)                      # an hour a second
        sandbox = Sandbox(clock=clock)               # its Waiting statuses settle on it too
        Watcher(client, clock=clock, sleep=clock.sleep)

    Unlike a simulated clock that jumps when slept on, this one keeps moving while
    the requests are in flight, as real time does: what a demo or a soak test
    wants. `start` is where it begins (default: now), e.g. where a watch resumed
    from a state file had got to.
    """

    def __init__(self, speed: float, *, start: float | None = None) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        self.speed = float(speed)
        self._start = time.time() if start is None else float(start)
        self._origin = time.monotonic()

    def __repr__(self) -> str:
        return f"FastClock(speed={self.speed:g}, now={self():.3f})"

    def __call__(self) -> float:
        return self._start + (time.monotonic() - self._origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        """Waits `seconds` of this clock's time."""
        await asyncio.sleep(max(seconds, 0.0) / self.speed)


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
