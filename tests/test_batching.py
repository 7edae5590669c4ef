"""multi_status and iter_multi_status at any size: chunks, limits, order, failures, cancelling."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import aclosing

import httpx
import pytest

from smspartner_async import (
    APIConnectionError,
    AuthenticationError,
    DeliveryStatus,
    InvalidInputError,
    MultiStatusResult,
    PermissionDeniedError,
    ServerError,
)

from .fakeapi import FakeMultiStatus, expected_status, missing, pairs


def check(results, inputs, start=0):
    """One result per input, in input order, each the fake's answer for that very pair."""
    assert len(results) == len(inputs)
    for index, (result, (phone, mid)) in enumerate(zip(results, inputs, strict=True), start):
        assert result.index == index
        assert result.message_id == mid
        assert result.phone_number == ("+33" + phone[1:] if phone.startswith("0") else phone)
        if missing(mid):
            assert (result.ok, result.code, result.status) == (False, 4, DeliveryStatus.UNKNOWN)
        else:
            assert result.ok and result.code == 200
            assert result.status_text == expected_status(result.phone_number, mid)


@pytest.mark.parametrize(
    ("n", "calls"), [(0, 0), (1, 1), (500, 1), (501, 2), (1234, 3), (100_000, 200)]
)
async def test_sizes(router, make_client, n, calls):
    fake = FakeMultiStatus(shuffle=True)
    router.post("/multi-status").mock(side_effect=fake)
    inputs = pairs(n)
    results = await make_client(max_concurrency=8).multi_status(inputs)
    check(results, inputs)
    assert fake.calls == calls
    assert sum(fake.pairs_per_call) == n
    assert all(size <= 500 for size in fake.pairs_per_call)
    assert Counter(fake.seen) == Counter(inputs)  # every pair asked exactly once


async def test_batch_size_lowers_the_chunk(router, make_client):
    fake = FakeMultiStatus()
    router.post("/multi-status").mock(side_effect=fake)
    await make_client(batch_size=100).multi_status(pairs(450))
    assert fake.pairs_per_call == [100, 100, 100, 100, 50]


@pytest.mark.parametrize("limit", [1, 3, 8])
async def test_in_flight_never_above_the_limit_and_reaches_it(router, make_client, limit):
    fake = FakeMultiStatus(delay=0.01)
    router.post("/multi-status").mock(side_effect=fake)
    await make_client(max_concurrency=limit).multi_status(pairs(500 * limit * 3))
    assert fake.max_in_flight == limit


async def test_limit_holds_across_concurrent_calls_of_one_client(router, make_client):
    fake = FakeMultiStatus(delay=0.01)
    router.post("/multi-status").mock(side_effect=fake)
    client = make_client(max_concurrency=4)
    await asyncio.gather(*(client.multi_status(pairs(4000)) for _ in range(3)))
    assert fake.max_in_flight == 4


async def test_tasks_are_created_only_for_free_slots(router, make_client):
    fake = FakeMultiStatus(delay=0.02)
    router.post("/multi-status").mock(side_effect=fake)
    client = make_client(max_concurrency=4)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, len(asyncio.all_tasks()))
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    await client.multi_status(pairs(20_000))  # 40 chunks
    watcher.cancel()
    # Two chunk tasks per request slot (one parsing, one waiting), one HTTP exchange per
    # slot (`Caller._send`), the pool's loop guard, the test, the watcher.
    assert peak <= 3 * 4 + 3


async def test_the_next_request_leaves_before_an_answer_is_parsed(router, make_client):
    """One slot: chunk 2 is sent before chunk 1's answer is parsed (`on_request` follows it)."""
    fake = FakeMultiStatus(delay=0.01)
    router.post("/multi-status").mock(side_effect=fake)
    sent_when_parsed: list[int] = []
    client = make_client(
        max_concurrency=1, on_request=lambda _: sent_when_parsed.append(fake.calls)
    )
    assert len(await client.multi_status(pairs(1000))) == 1000
    assert fake.max_in_flight == 1
    # Chunk 2 was waiting for the slot when chunk 1's answer came: it left first.
    assert sent_when_parsed == [2, 2]


async def test_duplicates_are_asked_once(router, make_client):
    fake = FakeMultiStatus()
    router.post("/multi-status").mock(side_effect=fake)
    base = pairs(700)
    inputs = base + base[:10] + [base[650]] + [("06" + base[3][0][4:], base[3][1])]
    results = await make_client().multi_status(inputs)
    assert len(fake.seen) == 700
    assert len(results) == len(inputs)
    assert [r.index for r in results] == list(range(len(inputs)))
    assert results[700].message_id == base[0][1]
    assert results[710] == results[650].__class__(**{**_fields(results[650]), "index": 710})
    assert results[711].phone_number == base[3][0]  # national form of a pair already asked


def _fields(result):
    return {name: getattr(result, name) for name in result.__slots__ if not name.startswith("__")}


async def test_national_inputs_and_national_echo(router, make_client):
    fake = FakeMultiStatus(national_echo=True, shuffle=True)
    router.post("/multi-status").mock(side_effect=fake)
    inputs = pairs(1200, national=True)
    results = await make_client().multi_status(inputs)
    check(results, inputs)
    assert all(phone.startswith("+336") for phone, _ in fake.seen)  # sent as E.164


async def test_per_item_failures_are_results(router, make_client):
    router.post("/multi-status").mock(side_effect=FakeMultiStatus())
    results = await make_client().multi_status(pairs(1000))
    failed = [r for r in results if not r.ok]
    assert [r.message_id for r in failed] == [m for m in range(1, 1001) if missing(m)]
    assert all(r.message == "Numéro introuvable" and r.error is None for r in failed)


async def test_a_failed_chunk_keeps_the_others(router, make_client):
    fake = FakeMultiStatus(script={2: lambda: httpx.Response(503, content=b"down")})
    router.post("/multi-status").mock(side_effect=fake)
    inputs = pairs(1500)
    results = await make_client(max_retries=0, max_concurrency=1).multi_status(inputs)
    assert len(results) == 1500
    bad = [r for r in results if r.error is not None]
    assert [r.index for r in bad] == list(range(500, 1000))
    assert all(isinstance(r.error, ServerError) and not r.ok and r.code is None for r in bad)
    assert "503" in (bad[0].message or "")
    check(results[:500], inputs[:500])
    check(results[1000:], inputs[1000:], start=1000)


async def test_a_failed_chunk_is_retried_first(router, make_client):
    fake = FakeMultiStatus(script={1: lambda: httpx.Response(502, content=b"<html>bad</html>")})
    router.post("/multi-status").mock(side_effect=fake)
    inputs = pairs(600)
    results = await make_client(max_concurrency=1).multi_status(inputs)
    check(results, inputs)
    assert fake.calls == 3


async def test_fail_fast_raises(router, make_client):
    fake = FakeMultiStatus(script={2: lambda: httpx.Response(503)})
    router.post("/multi-status").mock(side_effect=fake)
    with pytest.raises(ServerError):
        await make_client(max_retries=0, max_concurrency=1).multi_status(
            pairs(1500), fail_fast=True
        )


@pytest.mark.parametrize(
    ("code", "cls"),
    [(10, AuthenticationError), (1, AuthenticationError), (96, PermissionDeniedError)],
)
async def test_errors_of_every_chunk_raise_at_once(router, make_client, code, cls):
    async def refuse(request):
        await asyncio.sleep(0.01)
        return httpx.Response(401, json={"success": False, "code": code, "message": "non"})

    route = router.post("/multi-status").mock(side_effect=refuse)
    with pytest.raises(cls):
        await make_client(max_concurrency=2).multi_status(pairs(10_000))
    assert route.call_count <= 2  # the rest were never started


async def test_answer_missing_a_pair(router, make_client):
    def partial(request):
        return httpx.Response(
            200,
            json={
                "success": True,
                "code": 200,
                "StatutResponse_List": [
                    {
                        "success": True,
                        "code": 200,
                        "phoneNumber": "+33600000000",
                        "messageId": 1,
                        "status": "Delivered",
                    },
                    {
                        "success": True,
                        "code": 200,
                        "phoneNumber": "+33600000000",
                        "messageId": 1,
                        "status": "Waiting",
                    },
                    {
                        "success": True,
                        "code": 200,
                        "phoneNumber": "+33699999999",
                        "messageId": 99,
                        "status": "Waiting",
                    },
                    {
                        "success": True,
                        "code": 200,
                        "phoneNumber": "+33600000002",
                        "messageId": 3,
                        "status": "Delivered",
                        "date": {"bad": "type"},
                    },
                    "garbage",
                ],
            },
        )

    router.post("/multi-status").mock(side_effect=partial)
    first, second, third = await make_client().multi_status(pairs(3))
    assert first.ok and first.status is DeliveryStatus.DELIVERED  # the first answer stands
    assert not second.ok and "left this pair out" in (second.message or "")
    assert not third.ok and "malformed" in (third.message or "")


@pytest.mark.parametrize(
    ("item", "ok", "why"),
    [
        ({"success": True, "code": 200, "phoneNumber": "+33600000000", "messageId": "1"}, True, ""),
        ({"success": "1", "code": "200", "number": "0600000000", "message_id": 1}, True, ""),
        ({"code": 200, "phoneNumber": "+33600000000", "messageId": 1}, False, "malformed"),
        (
            {"success": True, "code": 200, "phoneNumber": "+33600000000", "messageId": [1]},
            False,
            "out",
        ),
        (
            {"success": True, "code": 200, "phoneNumber": ["+33600000000"], "messageId": 1},
            False,
            "out",
        ),
        (
            {"success": True, "code": "2OO", "phoneNumber": "+33600000000", "messageId": 1},
            False,
            "malformed",
        ),
        (
            {"success": True, "code": 200, "phoneNumber": "+33600000000", "messageId": "²"},
            False,
            "out",
        ),
    ],
    ids=[
        "id-as-text",
        "other-spellings",
        "no-success",
        "id-a-list",
        "phone-a-list",
        "bad-code",
        "id-unicode-digit",
    ],
)
async def test_each_item_is_matched_or_reported(router, make_client, item, ok, why):
    """Spellings are matched; an item that cannot be read fails that pair alone, never the call."""
    router.post("/multi-status").respond(
        json={"success": True, "code": 200, "StatutResponse_List": [item]}
    )
    (result,) = await make_client().multi_status(pairs(1))
    assert (result.phone_number, result.message_id, result.index) == ("+33600000000", 1, 0)
    assert result.ok is ok
    assert why in (result.message or "")


async def test_streaming_yields_every_index_once(router, make_client):
    fake = FakeMultiStatus(delay=0.001, shuffle=True)
    router.post("/multi-status").mock(side_effect=fake)
    inputs = pairs(5000)

    async def source():
        for pair in inputs:
            yield pair

    seen = {}
    async for result in make_client().iter_multi_status(source()):
        seen[result.index] = result
    assert sorted(seen) == list(range(5000))
    check([seen[i] for i in range(5000)], inputs)


async def test_streaming_reads_its_input_lazily(router, make_client):
    fake = FakeMultiStatus(delay=0.005)
    router.post("/multi-status").mock(side_effect=fake)
    read = 0

    def source():
        nonlocal read
        for pair in pairs(100_000):
            read += 1
            yield pair

    client = make_client(max_concurrency=2)
    async with aclosing(client.iter_multi_status(source())) as stream:
        async for result in stream:
            if result.index >= 0:
                break
    # two chunks in flight plus the one being read, never the whole input
    assert read <= 500 * 4


@pytest.mark.parametrize("bad_at", [0, 1, 600, 5000, 10_000])
async def test_a_bad_pair_in_a_stream_raises_after_every_earlier_result(
    router, make_client, bad_at
):
    """The docs: a bad pair raises when reached, after the earlier results were yielded.
    Reading runs ahead of the answers (a window of chunks); the pairs read before the bad one
    are still asked, and their results yielded, before the error."""
    fake = FakeMultiStatus(delay=0.001, shuffle=True)
    router.post("/multi-status").mock(side_effect=fake)
    inputs = [*pairs(bad_at), ("not a phone", 1), *pairs(1000)]
    seen = []

    async def consume():
        async for result in make_client(max_concurrency=8).iter_multi_status(inputs):
            seen.append(result)

    with pytest.raises(InvalidInputError) as info:
        await consume()
    assert info.value.index == bad_at
    assert sorted(r.index for r in seen) == list(range(bad_at))
    check(sorted(seen, key=lambda r: r.index), inputs[:bad_at])
    assert sum(fake.pairs_per_call) == bad_at  # nothing after the bad pair is sent


async def test_streaming_duplicates_within_a_chunk(router, make_client):
    fake = FakeMultiStatus()
    router.post("/multi-status").mock(side_effect=fake)
    inputs = [("+33600000001", 5), ("0600000001", 5), ("+33600000002", 6)]
    results = [r async for r in make_client().iter_multi_status(inputs)]
    assert sorted(r.index for r in results) == [0, 1, 2]
    assert len(fake.seen) == 2


async def test_progress(router, make_client):
    router.post("/multi-status").mock(side_effect=FakeMultiStatus())
    calls = []
    await make_client(max_concurrency=2).multi_status(
        pairs(1234), progress=lambda done, total: calls.append((done, total))
    )
    assert calls[-1] == (1234, 1234)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert len(calls) == 3
    streamed = []
    async for _ in make_client().iter_multi_status(
        iter(pairs(700)), progress=lambda d, t: streamed.append((d, t))
    ):
        pass
    assert streamed[-1] == (700, None)


async def test_async_iterable_input_to_multi_status(router, make_client):
    router.post("/multi-status").mock(side_effect=FakeMultiStatus())
    inputs = pairs(800)

    async def source():
        for pair in inputs:
            await asyncio.sleep(0)
            yield pair

    check(await make_client().multi_status(source()), inputs)


async def test_cancelling_the_caller_cancels_every_chunk(router, make_client):
    started = asyncio.Event()
    cancelled = 0

    async def slow(request):
        nonlocal cancelled
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return httpx.Response(500)

    router.post("/multi-status").mock(side_effect=slow)
    client = make_client(max_concurrency=4)
    task = asyncio.create_task(client.multi_status(pairs(10_000)))
    await started.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == 4
    # Nothing left behind but this test (and the pool's guard, which ends with the loop).
    left = [t for t in asyncio.all_tasks() if t.get_name() != "smspartner-async pool guard"]
    assert len(left) == 1


async def test_an_outage_raises_instead_of_returning_failed_items(router, make_client):
    route = router.post("/multi-status").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError) as info:
        await make_client(max_retries=1, batch_size=2).multi_status(pairs(3))
    assert info.value.__notes__ == ["not one of the batch's 2 calls got an answer"]
    assert route.call_count == 4


async def test_a_stream_in_an_outage_yields_its_failed_items_then_raises(router, make_client):
    router.post("/multi-status").mock(side_effect=httpx.ConnectError("refused"))
    client = make_client(max_retries=0, batch_size=2)
    seen: list[MultiStatusResult] = []

    async def consume() -> None:
        async for result in client.iter_multi_status(pairs(3)):
            seen.append(result)

    with pytest.raises(APIConnectionError) as info:
        await consume()
    assert sorted(r.index for r in seen) == [0, 1, 2]
    assert all(isinstance(r.error, APIConnectionError) for r in seen)
    assert info.value.__notes__ == ["not one of the batch's 2 calls got an answer"]


async def test_connection_failures_of_some_calls_become_results(router, make_client):
    def refused() -> httpx.Response:
        raise httpx.ConnectError("refused")

    router.post("/multi-status").mock(side_effect=FakeMultiStatus(script={1: refused}))
    client = make_client(max_retries=0, batch_size=2, max_concurrency=1)
    results = await client.multi_status(pairs(3))
    assert [r.index for r in results] == [0, 1, 2]
    assert [isinstance(r.error, APIConnectionError) for r in results] == [True, True, False]
    assert results[2].ok
