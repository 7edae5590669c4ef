"""A base_url typed without `/v1` (the sandbox's address as one types it) still reaches the API.

It used to end in a bare `APIError: code 404 ... Ressource introuvable`: the
endpoints live under /v1, and nothing said so.
"""

from __future__ import annotations

import pytest

from smspartner_async import SMSPartnerClient
from smspartner_async.sandbox import Sandbox, serve


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_a_bare_host_gets_v1(suffix):
    sandbox = Sandbox(api_key=None)
    async with serve(sandbox) as base_url:
        host = base_url.removesuffix("/v1")
        async with SMSPartnerClient("any-key", base_url=host + suffix) as client:
            phone, message_id = next(iter(sandbox.data.sample_pairs(1)))
            [result] = await client.multi_status([(phone, message_id)])
            assert "base_url='" + host + "/v1'" in repr(client)
    assert result.error is None, result.error


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("https://api.smspartner.fr/", "https://api.smspartner.fr/v1"),
        ("https://api.smspartner.fr/v1/", "https://api.smspartner.fr/v1"),
        # A path of the user's own (a gateway) is theirs: kept as given.
        ("https://gateway.example/smspartner", "https://gateway.example/smspartner"),
    ],
)
def test_the_api_root(given, used):
    client = SMSPartnerClient("k", base_url=given)
    assert f"base_url={used!r}" in repr(client)
