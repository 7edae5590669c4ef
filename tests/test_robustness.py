"""Edges found in review: repeats in streams, odd transport errors, closing mid-call, bursts,
deadlines and queues, keys in traceback locals, hooks that raise, wrong argument types."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import logging
import traceback

import httpx
import pytest

from smspartner_async import (
    AuthenticationError,
    ClientStateError,
    InvalidInputError,
    ResponseFormatError,
    RetryPolicy,
    SMSPartnerClient,
)
from smspartner_async._validate import normalize_phone

from .conftest import API_KEY
from .fakeapi import FakeMultiStatus, pairs

MESSAGE = {
    "success": True,
    "code": 200,
    "number": "+33612345678",
    "messageId": "1",
    "statut": "Delivered",
}


async def test_a_stream_of_repeats_is_sent_as_it_is_read(router, make_client):
    fake = FakeMultiStatus()
    router.post("/multi-status").mock(side_effect=fake)
    read = 0

    def repeats():
        nonlocal read
        for _ in range(10_000):
            read += 1
            yield ("+33612345678", 7)

    first_seen_after = None
    count = 0
    async for result in make_client(max_concurrency=1).iter_multi_status(repeats()):
        if first_seen_after is None:
            first_seen_after = read
        count += 1
        assert result.message_id == 7
    assert count == 10_000
    assert first_seen_after < 10_000  # results flow before the input ends
    assert fake.calls == 5  # one chunk per 2,000 input pairs, each asking one pair


async def test_a_body_that_does_not_match_its_encoding_is_a_format_error(router, make_client):
    fake = FakeMultiStatus(
        script={
            2: lambda: httpx.Response(
                200, content=b"not gzip", headers={"Content-Encoding": "gzip"}
            )
        }
    )
    router.post("/multi-status").mock(side_effect=fake)
    results = await make_client(max_concurrency=1, max_retries=0).multi_status(pairs(1500))
    failed = [r for r in results if r.error is not None]
    assert [r.index for r in failed] == list(range(500, 1000))
    assert all(isinstance(r.error, ResponseFormatError) for r in failed)
    assert sum(r.ok for r in results) >= 900  # the other chunks kept their answers


async def test_a_gzip_body_is_decoded(router, make_client):
    import orjson

    body = gzip.compress(orjson.dumps(MESSAGE))
    router.get("/message-status").respond(200, content=body, headers={"Content-Encoding": "gzip"})
    result = await make_client().message_status("+33612345678", 1)
    assert result.status_text == "Delivered"


async def test_an_injected_client_closed_during_retries(router):
    router.get("/message-status").respond(503)
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    retry = RetryPolicy(max_retries=5, initial_backoff=0.05, jitter=False)
    client = SMSPartnerClient(API_KEY, http_client=http, retry=retry)
    task = asyncio.create_task(client.message_status("+33612345678", 1))
    await asyncio.sleep(0.02)
    await http.aclose()
    with pytest.raises(ClientStateError, match="closed"):
        await task


async def test_a_closed_client_stops_a_batch_instead_of_failing_every_item(router, make_client):
    router.post("/multi-status").respond(503)
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    retry = RetryPolicy(max_retries=5, initial_backoff=0.05, jitter=False)
    client = SMSPartnerClient(API_KEY, http_client=http, retry=retry)
    task = asyncio.create_task(client.multi_status(pairs(1500)))
    await asyncio.sleep(0.02)
    await http.aclose()
    with pytest.raises(ClientStateError):
        await task


async def test_rate_limit_holds_when_slots_free_up_together(router, make_client):
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def stall_then_answer(request):
        starts.append(loop.time())
        if len(starts) <= 4:
            await asyncio.sleep(0.3)  # every slot busy, then all free at once
        return httpx.Response(200, json=MESSAGE)

    router.get("/message-status").mock(side_effect=stall_then_answer)
    client = make_client(max_concurrency=4, max_requests_per_second=20)
    await asyncio.gather(*(client.message_status("+33612345678", 1) for _ in range(12)))
    # The n-th start comes n/20 s after the first at the earliest (a timer may wake one late
    # and the next on time, so single gaps can be short); a burst would put several at once.
    late = [starts[n] - starts[0] - n / 20 for n in range(len(starts))]
    assert min(late) >= -0.02
    bursts = [b - a for a, b in itertools.pairwise(starts) if b - a < 0.01]
    assert not bursts


async def test_deadline_does_not_count_time_queued_behind_other_calls(router, make_client):
    async def slow(request):
        await asyncio.sleep(0.3)
        return httpx.Response(200, json=MESSAGE)

    router.get("/message-status").mock(side_effect=slow)
    client = make_client(max_concurrency=2, deadline=1.0)
    results = await asyncio.gather(*(client.message_status("+33612345678", 1) for _ in range(10)))
    assert len(results) == 10  # the last ones queued ~1.2 s, then answered in 0.3 s
    assert client.stats.failures == 0


async def test_deadline_still_bounds_the_call_itself(router, make_client):
    async def slow(request):
        await asyncio.sleep(0.5)
        return httpx.Response(200, json=MESSAGE)

    router.get("/message-status").mock(side_effect=slow)
    from smspartner_async import APITimeoutError

    with pytest.raises(APITimeoutError, match="deadline"):
        await make_client(deadline=0.2).message_status("+33612345678", 1)


@pytest.mark.parametrize("call", ["message_status", "multi_status", "bulk_status"])
async def test_the_key_is_not_in_traceback_locals(router, make_client, call):
    refusal = {"success": False, "code": 10, "message": "Clé API incorrecte"}
    for method, path in (("GET", "/message-status"), ("POST", "/multi-status")):
        router.route(method=method, path__regex=path).respond(401, json=refusal)
    router.get("/bulk-status").respond(401, json=refusal)
    client = make_client()
    calls = {
        "message_status": lambda: client.message_status("+33612345678", 1),
        "multi_status": lambda: client.multi_status(pairs(3)),
        "bulk_status": lambda: client.bulk_status(1),
    }
    with pytest.raises(AuthenticationError) as caught:
        await calls[call]()
    rendered = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    assert "key hidden" in rendered  # the request is among the locals, shown without its key
    assert API_KEY not in rendered


async def test_a_progress_hook_that_raises_does_not_cancel_the_batch(router, make_client, caplog):
    router.post("/multi-status").mock(side_effect=FakeMultiStatus())

    def broken(done, total):
        raise ZeroDivisionError

    with caplog.at_level(logging.WARNING, logger="smspartner_async"):
        results = await make_client().multi_status(pairs(1200), progress=broken)
    assert len(results) == 1200
    assert "progress hook raised ZeroDivisionError" in caplog.text


async def test_an_on_request_hook_that_raises_is_ignored(router, make_client, caplog):
    router.get("/message-status").respond(json=MESSAGE)

    def broken(event):
        raise KeyError(event.endpoint)

    with caplog.at_level(logging.WARNING, logger="smspartner_async"):
        result = await make_client(on_request=broken).message_status("+33612345678", 1)
    assert result.message_id == 1
    assert "on_request hook raised KeyError" in caplog.text


@pytest.mark.parametrize("bad", [None, 5, "+33612345678", b"x"])
async def test_pairs_must_be_an_iterable_of_pairs(router, make_client, bad):
    client = make_client()
    with pytest.raises(InvalidInputError):
        await client.multi_status(bad)
    with pytest.raises(InvalidInputError):
        async for _ in client.iter_multi_status(bad):
            pass
    assert not router.calls


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_key": 123}, "api_key must be a string"),
        ({"api_key": "k" * 8, "base_url": 5}, "base_url must be an http"),
    ],
)
def test_wrong_argument_types_are_clear(options, message):
    with pytest.raises(InvalidInputError, match=message):
        SMSPartnerClient(**options)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+33 (0)6 12 34 56 78", "+33612345678"), ("+44 (0)7700 900123", "+447700900123")],
)
def test_trunk_prefix_in_brackets(raw, expected):
    assert normalize_phone(raw) == expected
