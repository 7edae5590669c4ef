from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import respx

from smspartner_async import RetryPolicy, SMSPartnerClient

# The fixtures users get (smspartner_sandbox, smspartner_client), and the Redis tests' own
# (redis_url, own_redis: tests/redis_support.py).
pytest_plugins = ["smspartner_async.testing", "tests.redis_support"]

BASE_URL = "https://api.smspartner.fr/v1"
API_KEY = "test-key-9f8e7d6c5b4a"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """Routes for the fake API, patched into httpx's own transport as users' respx mocks are.

    Clients made by `make_client` use their default pool: the tests run the
    library's real request path, down to httpcore, and nothing reaches a network.
    """
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def make_client(
    router: respx.MockRouter,
) -> AsyncIterator[Callable[..., SMSPartnerClient]]:
    """Clients with their default pool (seen by `router`) and no retry waits; closed at teardown."""
    made: list[SMSPartnerClient] = []

    def make(**options: Any) -> SMSPartnerClient:
        options.setdefault("retry", RetryPolicy.testing())
        client = SMSPartnerClient(API_KEY, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
