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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from ._call import RequestEvent
from ._client import SMSPartnerClient
from ._flow import FlowBackend
from ._options import DEFAULT_MAX_RESPONSE_BYTES
from ._retry import RetryPolicy
from ._validate import DEFAULT_REGION
from ._wire.endpoints import ResponseFormat
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
    sandbox: Sandbox | None = None,
    *,
    api_key: str | None = None,
    timeout: float | httpx.Timeout | None = None,  # noqa: ASYNC109 - the client's option
    response_format: ResponseFormat = "json",
    max_concurrency: int = 8,
    batch_size: int = 500,
    max_retries: int | None = None,
    retry: RetryPolicy | None = None,
    deadline: float | None = 120.0,
    max_requests_per_second: float | None = None,
    shared_limits: str | FlowBackend | None = None,
    default_region: str = DEFAULT_REGION,
    fail_fast: bool = False,
    max_pages: int = 10_000,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    on_request: Callable[[RequestEvent], None] | None = None,
) -> AsyncIterator[SMSPartnerClient]:
    """A client talking to `sandbox` (a fresh one accepting any key when None), closed on exit.

    The options are `SMSPartnerClient`'s (its base URL and HTTP client aside, which lead
    to the sandbox), with two defaults of its own: retries that wait zero seconds
    (`RetryPolicy.testing()`), and the sandbox's key (or any) as `api_key`.
    """
    sandbox = sandbox if sandbox is not None else Sandbox(api_key=None)
    key = api_key or sandbox.api_key or "sandbox-key"
    async with (
        sandbox_http_client(sandbox) as http,
        SMSPartnerClient(
            key,
            base_url=SANDBOX_BASE_URL,
            http_client=http,
            timeout=timeout,
            response_format=response_format,
            max_concurrency=max_concurrency,
            batch_size=batch_size,
            max_retries=max_retries,
            retry=retry if retry is not None else RetryPolicy.testing(),
            deadline=deadline,
            max_requests_per_second=max_requests_per_second,
            shared_limits=shared_limits,
            default_region=default_region,
            fail_fast=fail_fast,
            max_pages=max_pages,
            max_response_bytes=max_response_bytes,
            on_request=on_request,
        ) as client,
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
