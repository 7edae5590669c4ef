"""The examples in `examples/`, driven against the sandbox in-process.

FastAPI through `httpx.ASGITransport` (which skips lifespan events, so the
test enters `app.router.lifespan_context` itself); aiohttp through its own
`TestServer`/`TestClient`, with no pytest plugin; the poll worker with a fake
clock shared by the sandbox and the worker's `sleep`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from fastapi import FastAPI

from smspartner_async import DeliveryStatus, SMSPartnerClient
from smspartner_async.sandbox import WAITING, Faults, Sandbox
from smspartner_async.testing import sandbox_client

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    """Import an example by path: `examples/` is not a package."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


fastapi_app = load("fastapi_app")
aiohttp_app = load("aiohttp_app")
poll_worker = load("poll_worker")


class Factory:
    """A sandbox-backed client factory that remembers the clients it made."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.clients: list[SMSPartnerClient] = []

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[SMSPartnerClient]:
        async with sandbox_client(self.sandbox) as client:
            self.clients.append(client)
            yield client


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(seed=3, api_key=None, clock=lambda: 0.0)


def mixed_pairs(sandbox: Sandbox, n: int) -> list[tuple[str, int]]:
    pairs = list(sandbox.data.sample_pairs(n, national_share=0.5))
    assert any(sandbox.data.status_of(*p) is None for p in pairs)
    return pairs


def e164(phone: str) -> str:
    return "+33" + phone[1:] if phone.startswith("0") else phone


# -- FastAPI -------------------------------------------------------------------


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan entered (ASGITransport would skip it) and an HTTP client to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            yield http


async def test_fastapi_batch_tag_and_one_client_for_the_app(sandbox: Sandbox) -> None:
    factory = Factory(sandbox)
    app = fastapi_app.create_app(client_factory=factory)
    pairs = mixed_pairs(sandbox, 1200)
    body = [{"phone_number": p, "message_id": m} for p, m in pairs]
    async with running(app) as http:
        first = await http.post("/statuses", json=body)
        tag = await http.get("/tag/demo")
        again = await http.post("/statuses", json=body[:3])
    assert first.status_code == 200, first.text
    results = first.json()
    assert [r["index"] for r in results] == list(range(len(pairs)))
    for (phone, mid), r in zip(pairs, results, strict=True):
        rec = sandbox.data.status_of(phone, mid)
        assert r["phone_number"] == e164(phone)
        assert r["ok"] is (rec is not None)
        assert r["status"] == (rec.status if rec else None)
        assert r["code"] == (200 if rec else 4)
    assert tag.status_code == 200
    expected = [sandbox.data.status_of(*item) for item in sandbox.data.tag_items("demo")]
    assert [t["phone_number"] for t in tag.json()] == [e.phone for e in expected if e]
    assert again.status_code == 200
    assert len(factory.clients) == 1  # one client for every request...
    assert factory.clients[0].is_closed  # ...closed when the app stopped
    # 1200 pairs in 3 calls, then 1 for 3 pairs, and 3 tag pages: nothing else was sent.
    assert factory.clients[0].stats.by_endpoint == {"multi-status": 4, "bulk-status-by-tag": 3}


async def test_fastapi_bad_pair_is_422_with_its_index(sandbox: Sandbox) -> None:
    app = fastapi_app.create_app(client_factory=Factory(sandbox))
    body = [
        {"phone_number": "+33612345678", "message_id": 5},
        {"phone_number": "nope", "message_id": 5},
    ]
    async with running(app) as http:
        response = await http.post("/statuses", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]["index"] == 1
    assert sandbox.stats.total == 0  # refused before anything was sent


async def test_fastapi_outage_is_502_not_a_200_of_failed_items(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate=1.0, kinds=("503",))
    app = fastapi_app.create_app(client_factory=Factory(sandbox))
    body = [{"phone_number": "+33612345678", "message_id": 5}]
    async with running(app) as http:
        response = await http.post("/statuses", json=body)
    assert response.status_code == 502
    assert "got an answer" not in response.text  # the error itself, not the note
    assert "503" in response.json()["detail"]


async def test_fastapi_timeout_answers_504_and_the_client_recovers(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastapi_app, "HANDLER_BUDGET", 0.05)
    factory = Factory(sandbox)
    app = fastapi_app.create_app(client_factory=factory)
    body = [{"phone_number": "+33612345678", "message_id": 5}]
    async with running(app) as http:
        sandbox.latency = 5.0
        slow = await http.post("/statuses", json=body)
        assert sandbox.stats.in_flight == 0  # the call was cancelled, not left running
        sandbox.latency = 0.0
        fine = await http.post("/statuses", json=body)
    assert slow.status_code == 504
    assert fine.status_code == 200
    assert fine.json()[0]["phone_number"] == "+33612345678"


# -- aiohttp -------------------------------------------------------------------


async def test_aiohttp_one_and_batch(sandbox: Sandbox) -> None:
    factory = Factory(sandbox)
    pairs = mixed_pairs(sandbox, 600)
    known = next(p for p in pairs if sandbox.data.status_of(*p))
    unknown = next(p for p in pairs if sandbox.data.status_of(*p) is None)
    async with TestClient(TestServer(aiohttp_app.create_app(client_factory=factory))) as http:
        one = await http.get(f"/status/{known[0]}/{known[1]}")
        missing = await http.get(f"/status/{unknown[0]}/{unknown[1]}")
        bad = await http.get("/status/hello/1")
        batch = await http.post(
            "/statuses", json=[{"phone_number": p, "message_id": m} for p, m in pairs]
        )
        garbage = await http.post("/statuses", data=b"not json")
        assert factory.clients[0].is_closed is False
        one_json, missing_json, batch_json = (
            await one.json(),
            await missing.json(),
            await batch.json(),
        )
    rec = sandbox.data.status_of(*known)
    assert rec is not None
    assert one.status == 200
    assert one_json["status"] == rec.status
    assert one_json["reply"].startswith(f"{rec.phone}: {rec.status}")
    assert one_json["final"] is (rec.status != WAITING)
    assert missing.status == 404
    assert "No such message" in missing_json["reply"]
    assert bad.status == 400
    assert batch.status == 200
    expected: dict[str, int] = {}
    for p in pairs:
        r = sandbox.data.status_of(*p)
        expected[r.status if r else "unanswered"] = (
            expected.get(r.status if r else "unanswered", 0) + 1
        )
    assert batch_json["counts"] == expected
    assert [r["phone_number"] for r in batch_json["results"]] == [e164(p) for p, _ in pairs]
    assert garbage.status == 400
    assert len(factory.clients) == 1
    assert factory.clients[0].is_closed  # cleanup_ctx closed it with the app


# -- the poll worker -----------------------------------------------------------


def waiting_pairs(sandbox: Sandbox, n: int) -> list[tuple[str, int]]:
    found = []
    for pair in sandbox.data.sample_pairs(20_000):
        rec = sandbox.data.status_of(*pair)
        if rec is not None and rec.status == WAITING:
            found.append(pair)
            if len(found) == n:
                return found
    raise AssertionError("not enough Waiting pairs in the sample")


async def test_worker_polls_until_every_waiting_message_settles() -> None:
    clock = poll_worker.FakeClock()
    sandbox = Sandbox(seed=3, api_key=None, clock=clock)
    waiting = waiting_pairs(sandbox, 300)
    settling = [p for p in waiting if sandbox.data.status_of(*p).settles_at is not None]
    stuck = [p for p in waiting if sandbox.data.status_of(*p).settles_at is None]
    assert settling and stuck
    final = [
        p
        for p in sandbox.data.sample_pairs(200)
        if (rec := sandbox.data.status_of(*p)) is None or rec.status != WAITING
    ][:50]  # already final, or unknown
    pairs = waiting + final
    rounds: list[tuple[int, int, int]] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await clock.sleep(seconds)

    backoff = poll_worker.Backoff(first=2.0, factor=2.0, cap=20.0, max_rounds=9)
    async with sandbox_client(sandbox) as client:
        outcome = await poll_worker.poll_until_settled(
            client, pairs, backoff=backoff, sleep=sleep, on_round=lambda *r: rounds.append(r)
        )
    assert slept == [2, 4, 8, 16, 20, 20, 20, 20]  # doubling, capped, none after the last round
    assert clock.now == sum(slept) > 60  # past the latest settling time
    assert outcome.rounds == 9  # the stuck ones used every round
    asked = [r[1] for r in rounds]
    assert asked[0] == len(pairs)
    assert asked[1] == len(waiting)  # only the still-waiting pairs are asked again
    assert asked == sorted(asked, reverse=True)
    assert sorted(outcome.pending) == sorted(pairs.index(p) for p in stuck)
    for index, result in outcome.settled.items():
        rec = sandbox.data.status_of(*pairs[index], clock.now)
        if rec is None:
            assert not result.ok and result.code == 4
        else:
            assert result.status.is_final
            assert result.status.value == rec.status
    assert {pairs[i] for i in outcome.settled} == set(settling) | set(final)
    assert all(r.status is DeliveryStatus.WAITING for r in outcome.pending.values())


async def test_worker_stops_early_and_reasks_after_failed_calls() -> None:
    clock = poll_worker.FakeClock()
    sandbox = Sandbox(seed=3, api_key=None, clock=clock)
    settling = [p for p in waiting_pairs(sandbox, 200) if sandbox.data.status_of(*p).settles_at]
    sandbox.faults = Faults()
    sandbox.faults.script(["500"] * 4)  # the first call fails for good (1 try + 3 retries)
    async with sandbox_client(sandbox) as client:
        outcome = await poll_worker.poll_until_settled(
            client, settling, backoff=poll_worker.Backoff(max_rounds=20), sleep=clock.sleep
        )
    assert not outcome.pending
    assert len(outcome.settled) == len(settling)
    assert outcome.rounds < 20
    assert all(r.status.is_final and r.error is None for r in outcome.settled.values())


def test_worker_main_against_the_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    assert poll_worker.main(["--sandbox", "--pairs", "400", "--max-rounds", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("round 1: asked 400,")
    assert "round 3: asked" in out
    assert "round 4" not in out
    assert "still pending" in out.splitlines()[-1]
