"""Counters, latency, API-key handling, routing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from smspartner_async.sandbox import Sandbox

from ._helpers import KEY, make_client


async def test_counters_per_endpoint(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await client.get("/message-status", params={"apiKey": KEY})
    await client.get("/bulk-status", params={"apiKey": KEY, "messageId": 3})
    await client.get("/bulk-status-by-tag", params={"apiKey": KEY, "tag": "demo"})
    pairs = [{"phoneNumber": "0600000001", "messageId": 1}] * 3
    await client.post("/multi-status", json={"apiKey": KEY, "SMSStatut_List": pairs})
    await client.get("/nowhere")
    stats = sandbox.stats
    assert stats.requests == {
        "message-status": 1,
        "bulk-status": 1,
        "bulk-status-by-tag": 1,
        "multi-status": 1,
        "unknown": 1,
    }
    assert stats.total == 5
    assert stats.pairs_per_call == [3]
    assert stats.errors == {2: 1, 404: 1}
    assert stats.in_flight == 0
    stats.reset()
    assert stats.total == 0
    assert not stats.requests
    assert not stats.pairs_per_call
    assert stats.max_in_flight == 0


async def test_max_in_flight_under_concurrency() -> None:
    sandbox = Sandbox(latency=0.05)
    async with make_client(sandbox) as http:
        params = {"apiKey": KEY, "tag": "montag"}
        start = time.perf_counter()
        answers = await asyncio.gather(
            *(http.get("/bulk-status-by-tag", params=params) for _ in range(12))
        )
        took = time.perf_counter() - start
    assert all(r.status_code == 200 for r in answers)
    assert sandbox.stats.max_in_flight == 12
    assert sandbox.stats.in_flight == 0
    assert 0.05 <= took < 0.5  # latency applies per request, concurrently


async def test_latency_applies_to_each_request() -> None:
    sandbox = Sandbox(latency=0.03)
    async with make_client(sandbox) as http:
        start = time.perf_counter()
        for _ in range(2):
            await http.get("/bulk-status-by-tag", params={"apiKey": KEY, "tag": "montag"})
    assert time.perf_counter() - start >= 0.06


async def test_in_flight_drops_back_on_cancellation() -> None:
    sandbox = Sandbox(latency=10)
    entered = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        await sandbox.app(scope, receive, send)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox/v1") as http:
        task = asyncio.create_task(http.get("/bulk-status-by-tag", params={"apiKey": KEY}))
        await entered.wait()
        await asyncio.sleep(0)
        assert sandbox.stats.in_flight == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sandbox.stats.in_flight == 0


async def test_unknown_path_and_wrong_method(client: httpx.AsyncClient) -> None:
    r = await client.get("/credits", params={"apiKey": KEY})
    assert r.status_code == 404
    assert r.json() == {"success": False, "code": 404, "message": "Ressource introuvable"}
    r = await client.post("/message-status", json={})
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"


async def test_any_key_mode_rejects_only_bad_key() -> None:
    sandbox = Sandbox(api_key=None)
    async with make_client(sandbox) as http:
        ok = await http.get("/bulk-status-by-tag", params={"apiKey": "whatever", "tag": "x"})
        bad = await http.get("/bulk-status-by-tag", params={"apiKey": "bad-key", "tag": "x"})
    assert ok.status_code == 200
    assert bad.json()["code"] == 10


async def test_api_key_is_never_echoed() -> None:
    secret = "s3cr3t-key-value"
    sandbox = Sandbox(api_key=secret)
    bodies = []
    async with make_client(sandbox) as http:
        for params in (
            {"apiKey": secret + "x"},
            {"apiKey": secret, "tag": "demo", "page": "bad"},
            {"apiKey": secret, "tag": "montag"},
        ):
            for fmt in ("json", "xml"):
                r = await http.get("/bulk-status-by-tag", params=params | {"_format": fmt})
                bodies.append(r.content)
        r = await http.post("/multi-status", content=secret.encode())
        bodies.append(r.content)
    assert all(secret.encode() not in b for b in bodies)
    assert secret not in repr(sandbox)
    assert secret not in repr(sandbox.stats)


async def test_lifespan_is_acknowledged() -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await Sandbox().app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
