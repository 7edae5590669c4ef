from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from smspartner_async import RetryPolicy, SMSPartnerClient

# The fixtures users get: smspartner_sandbox, smspartner_client.
pytest_plugins = ["smspartner_async.testing"]

BASE_URL = "https://api.smspartner.fr/v1"
API_KEY = "test-key-9f8e7d6c5b4a"


@pytest.fixture
def router() -> respx.Router:
    """Routes for the fake API; every test client sends through it, nothing reaches a network."""
    return respx.Router(base_url=BASE_URL, assert_all_called=False)


@pytest.fixture
async def make_client(
    router: respx.Router,
) -> AsyncIterator[Callable[..., SMSPartnerClient]]:
    """Clients wired to `router` with no retry waits; all closed at teardown."""
    made: list[tuple[SMSPartnerClient, httpx.AsyncClient]] = []

    def make(**options: Any) -> SMSPartnerClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
        options.setdefault("retry", RetryPolicy.testing())
        client = SMSPartnerClient(API_KEY, http_client=http, **options)
        made.append((client, http))
        return client

    yield make
    for client, http in made:
        await client.aclose()
        await http.aclose()
