"""A fleet: the callback reaches a web process that runs no watch, and another process's
watch acts on it through the shared Redis store (real processes, real sockets)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from smspartner_async.callbacks import CallbackReceiver, store_sink
from smspartner_async.sandbox import DELIVERED, NOT_DELIVERED, SandboxData
from smspartner_async.sandbox._server import serve_app
from smspartner_async.watch import NewPair

from .redis_support import ROOT

TOKEN = "fleet-token-0123456789abcdef"
FINAL = {DELIVERED, NOT_DELIVERED}


def final_pairs() -> tuple[list[tuple[str, int]], tuple[str, int], tuple[str, int]]:
    """Three recipients of one message (a bulk send), one pair of another, one left alone."""
    data = SandboxData(0)
    by_id: dict[int, list[str]] = {}
    for phone, mid in data.sample_pairs(200):
        record = data.status_of(phone, mid, 1e9)
        if record is not None and record.status in FINAL and record.settles_at is None:
            by_id.setdefault(mid, []).append(phone)
    ids = [mid for mid, phones in by_id.items() if len(phones) >= 4]
    bulk, other = ids[0], ids[1]
    return (
        [(phone, bulk) for phone in by_id[bulk][:3]],
        (by_id[other][0], other),
        (by_id[other][1], other),
    )


@pytest.fixture
def watch_worker(redis_url: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    namespace = f"cbtest:{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.callback_worker", redis_url, namespace],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
        yield worker, namespace
    finally:
        worker.terminate()
        worker.wait(timeout=20)


async def test_a_callback_to_one_process_is_acted_on_by_another_workers_watch(
    redis_url: str, watch_worker: tuple[subprocess.Popen[str], str]
) -> None:
    from smspartner_async.watch.redis import RedisWatchStore

    worker, namespace = watch_worker
    bulk, single, untouched = final_pairs()
    store = RedisWatchStore(redis_url, namespace=namespace)
    await store.open()
    try:
        now = time.time()
        pairs = [*bulk, single, untouched]
        await store.add([NewPair(p, m, i, now, now + 3600) for i, (p, m) in enumerate(pairs)])
        receiver = CallbackReceiver(TOKEN, flush_delay=0.01)
        async with (
            serve_app(receiver.asgi) as port,
            receiver.feeding(store_sink(store)),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
        ):
            sent = time.monotonic()
            # The bulk send's report names no phone; the other one does, by GET.
            posted = await http.post(f"/dlr/{TOKEN}", json={"messageId": bulk[0][1]})
            got = await http.get(f"/dlr/{TOKEN}", params={"msgId": single[1], "msisdn": single[0]})
            assert (posted.status_code, got.status_code) == (200, 200)
            seen: set[tuple[str, int]] = set()
            assert worker.stdout is not None
            try:
                async with asyncio.timeout(15):
                    while seen != {*bulk, single}:
                        line = await asyncio.to_thread(worker.stdout.readline)
                        change = json.loads(line)
                        assert change["settled"]
                        seen.add((change["phone"], change["id"]))
            finally:
                worker.terminate()  # ends the reading thread too (end of file)
            elapsed = time.monotonic() - sent
        assert elapsed < 10  # the schedule alone would have asked in an hour
        assert receiver.stats.delivered == 2
    finally:
        await store.close()


async def test_a_callback_to_a_web_process_makes_the_pairs_due_for_every_worker(
    redis_url: str,
) -> None:
    """The receiver's half of the fleet: over a real socket into one connection to the
    store; another worker's connection then claims exactly the hinted pairs, now."""
    from smspartner_async.watch.redis import RedisWatchStore

    namespace = f"cbtest:{uuid.uuid4().hex[:8]}"
    bulk, single, untouched = final_pairs()
    web, worker = (RedisWatchStore(redis_url, namespace=namespace) for _ in range(2))
    await web.open()
    await worker.open()
    try:
        now = time.time()
        pairs = [*bulk, single, untouched]
        await worker.add([NewPair(p, m, i, now, now + 3600) for i, (p, m) in enumerate(pairs)])
        assert await worker.claim(now=time.time(), limit=10, lease=60) == []
        receiver = CallbackReceiver(TOKEN, flush_delay=0)
        async with (
            serve_app(receiver.asgi) as port,
            receiver.feeding(store_sink(web)),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
        ):
            await http.post(f"/dlr/{TOKEN}", data={"message_id": str(bulk[0][1])})
            await http.get(f"/dlr/{TOKEN}", params={"messageId": single[1], "to": single[0]})
            # A forged one for a pair nobody watches costs nothing here.
            await http.get(f"/dlr/{TOKEN}", params={"messageId": 987654321})
        assert receiver.stats.delivered == 3
        claimed = await worker.claim(now=time.time(), limit=10, lease=60)
        assert {(c.phone_number, c.message_id) for c in claimed} == {*bulk, single}
        assert all(c.status is None and c.sequence == 0 for c in claimed)  # no status moved
    finally:
        await web.close()
        await worker.close()
