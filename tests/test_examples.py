"""The examples in `examples/`, driven against the sandbox in-process.

FastAPI through `httpx.ASGITransport` (which skips lifespan events, so the
test enters `app.router.lifespan_context` itself); aiohttp through its own
`TestServer`/`TestClient`, with no pytest plugin; the poll worker through its
`main`. The watches run on simulated time (`FakeClock`, shared by the sandbox
and the watcher: a sleep moves it at once) or on a very fast `FastClock`, so a
48-hour window ends in well under a second.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from fastapi import FastAPI

from smspartner_async import AuthenticationError, DeliveryStatus, SMSPartnerClient
from smspartner_async.sandbox import WAITING, Faults, Sandbox, SandboxData
from smspartner_async.testing import sandbox_client
from smspartner_async.watch import SettleReason, SQLiteStore, StatusChange, Watcher

from .test_watch_fakes import T0, FakeClock

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
    """A sandbox-backed client factory that remembers the clients it made.

    With `watcher` set (how to find the app's watcher), it also records, as each
    client is about to close, whether that watcher was already closed.
    """

    def __init__(self, sandbox: Sandbox, **options: Any) -> None:
        self.sandbox = sandbox
        self.options = options
        self.clients: list[SMSPartnerClient] = []
        self.watcher: Callable[[], Watcher] | None = None
        self.watcher_closed_first: list[bool] = []

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[SMSPartnerClient]:
        async with sandbox_client(self.sandbox, **self.options) as client:
            self.clients.append(client)
            try:
                yield client
            finally:
                if self.watcher is not None:
                    self.watcher_closed_first.append(self.watcher().closed)


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


# -- watching: shared helpers ----------------------------------------------------

WINDOW = 48 * 3600.0
#: Real seconds a whole simulated watch may take before a test gives up on it.
WATCH_BUDGET = 10.0


def waiting_pairs(sandbox: Sandbox, n: int, *, skip: int = 0) -> list[tuple[str, int]]:
    """`n` pairs the sandbox says are Waiting at first, past the first `skip` samples."""
    found = []
    for i, pair in enumerate(sandbox.data.sample_pairs(20_000)):
        rec = sandbox.data.status_of(*pair)
        if i >= skip and rec is not None and rec.status == WAITING:
            found.append(pair)
            if len(found) == n:
                return found
    raise AssertionError("not enough Waiting pairs in the sample")


def watch_mix(sandbox: Sandbox, n: int) -> list[tuple[str, int]]:
    """`n` mixed pairs (some national, some unknown) and 30 Waiting ones, all distinct."""
    pairs = mixed_pairs(sandbox, n) + waiting_pairs(sandbox, 30, skip=n)
    fates = {settled_as(sandbox.data, *p)[0] for p in pairs}
    assert fates == set(SettleReason)  # every way to settle is in it
    return pairs


def settled_as(
    data: SandboxData, phone: str, message_id: int
) -> tuple[SettleReason, DeliveryStatus]:
    """How the watch must settle a pair: the sandbox's status once everything has happened."""
    rec = data.status_of(phone, message_id, elapsed=1e9)
    if rec is None:
        return SettleReason.API_ERROR, DeliveryStatus.UNKNOWN
    if rec.status == WAITING:
        return SettleReason.EXPIRED, DeliveryStatus.WAITING
    return SettleReason.FINAL, DeliveryStatus(rec.status)


def changes_expected(data: SandboxData, phone: str, message_id: int) -> int | None:
    """How many changes the watch reports for a pair added at the sandbox's start (first
    check 5 s later); None when it depends on timing this helper does not model."""
    rec = data.status_of(phone, message_id)
    if rec is None or rec.status != WAITING:
        return 1  # settled by its first answer (or the not-found grace running out)
    if rec.settles_at is None or rec.settles_at > 10:
        return 2  # Waiting first, then its final status or the end of its window
    return None


def never_settles(sandbox: Sandbox, pair: tuple[str, int]) -> bool:
    rec = sandbox.data.status_of(*pair)
    return rec is not None and rec.status == WAITING and rec.settles_at is None


def watch_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("smspartner-watch")]


def pair_items(pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"phone_number": p, "message_id": m} for p, m in pairs]


async def idle(watcher: Watcher) -> None:
    async with asyncio.timeout(WATCH_BUDGET):
        await watcher.wait_idle()


def simulated(seed: int = 3) -> tuple[FakeClock, Sandbox]:
    """A simulated clock, and a sandbox on it (its Waiting statuses settle on that time)."""
    clock = FakeClock()
    return clock, Sandbox(seed=seed, api_key=None, clock=clock)


# -- FastAPI: the watch ----------------------------------------------------------


async def test_fastapi_watch_follows_registered_pairs_until_they_settle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="fastapi_app")
    clock, sandbox = simulated()
    factory = Factory(sandbox)
    app = fastapi_app.create_app(factory, clock=clock, sleep=clock.sleep)
    factory.watcher = lambda: app.state.watcher
    pairs = watch_mix(sandbox, 200)
    async with running(app) as http:
        watcher: Watcher = app.state.watcher
        assert len(watch_tasks()) == 2  # the poller and the on_change deliverer
        stranger = await http.get("/watch/+33612345678/5")
        first = await http.post("/watch", json={"pairs": pair_items(pairs)})
        again = await http.post("/watch", json={"pairs": pair_items(pairs[:10])})
        await idle(watcher)
        answers = [await http.get(f"/watch/{phone}/{mid}") for phone, mid in pairs]
    assert stranger.status_code == 404
    assert first.status_code == 202, first.text
    assert first.json() == {"pairs": len(pairs), "added": len(pairs)}
    assert again.json() == {"pairs": 10, "added": 0}  # already watched
    assert clock.now - T0 >= WINDOW  # the stuck ones were followed to the end of their window
    total = 0
    for (phone, mid), answer in zip(pairs, answers, strict=True):
        assert answer.status_code == 200, (phone, mid)
        change = answer.json()
        reason, status = settled_as(sandbox.data, phone, mid)
        assert change["phone_number"] == e164(phone)  # a national number finds it too
        assert (change["settled"], change["reason"], change["status"]) == (
            True,
            reason.value,
            status.value,
        )
        count = changes_expected(sandbox.data, phone, mid)
        if count is not None:
            assert change["sequence"] == count
            assert change["previous"] == ("Waiting" if count == 2 else None)
        total += change["sequence"]
    # on_change logged every change, the pair's number masked.
    logged = [r.getMessage() for r in caplog.records if r.name == "fastapi_app"]
    assert len(logged) == total
    assert sum("settled:" in line for line in logged) == len(pairs)
    assert not any(e164(phone) in line for line in logged for phone, _ in pairs[:20])
    # Closed with the app, before its client: no task left.
    assert watcher.closed
    assert not watch_tasks()
    assert factory.watcher_closed_first == [True]
    assert factory.clients[0].is_closed


async def test_fastapi_watch_refuses_bad_input_and_counts_from_sent_at() -> None:
    clock, sandbox = simulated()
    app = fastapi_app.create_app(Factory(sandbox), clock=clock, sleep=clock.sleep)
    stuck = next(p for p in waiting_pairs(sandbox, 50) if never_settles(sandbox, p))
    good = {"phone_number": "+33612345678", "message_id": 5}
    async with running(app) as http:
        bad = await http.post(
            "/watch", json={"pairs": [good, {"phone_number": "nope", "message_id": 5}]}
        )
        naive = await http.post("/watch", json={"pairs": [good], "sent_at": "2025-01-01T10:00:00"})
        # Sent three days ago: its window has run out, it settles at its first check.
        old = await http.post(
            "/watch", json={"pairs": pair_items([stuck]), "sent_at": T0 - 3 * 86_400}
        )
        then = await http.post("/watch", json={"pairs": [good]})
        await idle(app.state.watcher)
        change = (await http.get(f"/watch/{stuck[0]}/{stuck[1]}")).json()
    assert bad.status_code == 422
    assert bad.json()["detail"]["index"] == 1
    assert naive.status_code == 422
    assert old.json() == {"pairs": 1, "added": 1}
    assert then.json()["added"] == 1  # the refused requests added nothing
    assert (change["reason"], change["status"], change["sequence"]) == ("expired", "Waiting", 1)
    assert datetime.fromisoformat(change["checked_at"]) == datetime.fromtimestamp(T0, UTC)


async def test_fastapi_watch_state_in_sqlite_survives_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "watch.db"
    monkeypatch.setenv("SMSPARTNER_WATCH_DB", str(db))
    clock, sandbox = simulated()
    pairs = mixed_pairs(sandbox, 100)
    app = fastapi_app.create_app(Factory(sandbox), clock=clock, sleep=clock.sleep)
    async with running(app) as http:
        first = await http.post("/watch", json={"pairs": pair_items(pairs)})
        await idle(app.state.watcher)
    store = SQLiteStore(db)
    await store.open()
    try:
        counts = await store.counts()
    finally:
        await store.close()
    assert first.json()["added"] == len(pairs)
    assert (counts.total_settled, counts.total_pending) == (len(pairs), 0)
    restarted = fastapi_app.create_app(Factory(sandbox), clock=clock, sleep=clock.sleep)
    async with running(restarted) as http:
        again = await http.post("/watch", json={"pairs": pair_items(pairs)})
        # No wait_idle here: after an add of known pairs only, it does not return (the
        # watcher wakes no consumer when nothing was added).
    assert again.json()["added"] == 0  # the file remembers them settled: not watched again


async def test_fastapi_watch_stopped_by_a_bad_key_answers_503() -> None:
    clock, sandbox = simulated()
    app = fastapi_app.create_app(
        Factory(sandbox, api_key="bad-key"), clock=clock, sleep=clock.sleep
    )
    body = {"pairs": [{"phone_number": "+33612345678", "message_id": 5}]}
    async with running(app) as http:
        accepted = await http.post("/watch", json=body)
        with pytest.raises(AuthenticationError):
            await idle(app.state.watcher)
        refused = await http.post("/watch", json=body)
        assert not watch_tasks()
    assert accepted.status_code == 202
    assert refused.status_code == 503


def test_fastapi_latest_changes_keeps_the_most_recent_pairs() -> None:
    latest = fastapi_app.LatestChanges(limit=2)

    def change(phone: str, sequence: int) -> StatusChange:
        return StatusChange(0, phone, 7, DeliveryStatus.WAITING, None, False, None, sequence, T0)

    latest.record(change("+33600000001", 1))
    latest.record(change("+33600000002", 1))
    latest.record(change("+33600000001", 2))  # the newest again
    latest.record(change("+33600000003", 1))  # the oldest goes: 2
    assert len(latest) == 2
    assert latest.get("+33600000002", 7) is None
    first = latest.get("+33600000001", 7)
    assert first is not None and first.sequence == 2
    assert latest.get("+33600000003", 7) is not None


async def test_fastapi_sandbox_app_watches_on_a_fast_clock() -> None:
    """The `--sandbox` app: the emulator and the watch on one FastClock."""
    app = fastapi_app.sandbox_app(speed=1_000_000)  # 48 hours in 0.17 s
    data = SandboxData(0)  # the sandbox's dataset (seed 0)
    pairs = list(data.sample_pairs(300))
    assert {settled_as(data, *p)[0] for p in pairs} == set(SettleReason)
    async with running(app) as http:
        added = await http.post("/watch", json={"pairs": pair_items(pairs)})
        await idle(app.state.watcher)
        answers = [(await http.get(f"/watch/{p}/{m}")).json() for p, m in pairs]
    assert added.json()["added"] == len(pairs)
    for pair, change in zip(pairs, answers, strict=True):
        reason, status = settled_as(data, *pair)
        assert (change["settled"], change["reason"], change["status"]) == (
            True,
            reason.value,
            status.value,
        )
    assert app.state.watcher.closed and not watch_tasks()


# -- aiohttp: the watch ----------------------------------------------------------


async def test_aiohttp_watch_notifies_each_change_until_settled() -> None:
    clock, sandbox = simulated()
    factory = Factory(sandbox)
    app = aiohttp_app.create_app(factory, clock=clock, sleep=clock.sleep)
    factory.watcher = lambda: app[aiohttp_app.WATCHER]
    pairs = watch_mix(sandbox, 150)
    async with TestClient(TestServer(app)) as http:
        watcher = app[aiohttp_app.WATCHER]
        garbage = await http.post("/watch", data=b"not json")
        a_list = await http.post("/watch", json=pair_items(pairs[:1]))
        bad_phone = await http.post(
            "/watch", json={"pairs": [{"phone_number": "nope", "message_id": 1}]}
        )
        naive = await http.post(
            "/watch", json={"pairs": pair_items(pairs[:1]), "sent_at": "2025-01-01T10:00"}
        )
        accepted = await http.post("/watch", json={"pairs": pair_items(pairs)})
        accepted_json, bad_phone_json = await accepted.json(), await bad_phone.json()
        await idle(watcher)
        first = await (await http.get("/watch/notifications")).json()
        second = await (await http.get("/watch/notifications")).json()
    assert (garbage.status, a_list.status, bad_phone.status, naive.status) == (400, 400, 400, 400)
    assert bad_phone_json["index"] == 0
    assert accepted.status == 202
    assert accepted_json == {"pairs": len(pairs), "added": len(pairs)}  # none of the bad ones
    assert second == []  # drained
    assert len({n["id"] for n in first}) == len(first)
    by_pair: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for n in first:
        by_pair.setdefault((n["phone_number"], n["message_id"]), []).append(n)
    assert set(by_pair) == {(e164(p), m) for p, m in pairs}
    for phone, mid in pairs:
        notes = by_pair[(e164(phone), mid)]
        reason, status = settled_as(sandbox.data, phone, mid)
        assert [n["settled"] for n in notes] == [False] * (len(notes) - 1) + [True]
        last = notes[-1]
        assert (last["reason"], last["status"]) == (reason.value, status.value)
        assert last["reply"].startswith(f"{e164(phone)}, message {mid}: {status.value}")
        if reason is SettleReason.API_ERROR:
            assert "does not know" in last["reply"]
        count = changes_expected(sandbox.data, phone, mid)
        assert count is None or len(notes) == count
    assert watcher.closed
    assert not watch_tasks()
    assert factory.watcher_closed_first == [True]  # the watcher's cleanup_ctx ran first
    assert factory.clients[0].is_closed


async def test_aiohttp_watch_waits_for_the_chat_instead_of_dropping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aiohttp_app, "MAX_NOTIFICATIONS", 5)
    clock, sandbox = simulated()
    app = aiohttp_app.create_app(Factory(sandbox), clock=clock, sleep=clock.sleep)
    pairs = mixed_pairs(sandbox, 200)
    batches: list[list[dict[str, Any]]] = []
    async with TestClient(TestServer(app)) as http:
        await http.post("/watch", json={"pairs": pair_items(pairs)})
        async with asyncio.timeout(WATCH_BUDGET):
            settled = 0
            while settled < len(pairs):  # each GET lets the watcher queue more
                batch = await (await http.get("/watch/notifications")).json()
                batches.append(batch)
                settled += sum(n["settled"] for n in batch)
        await idle(app[aiohttp_app.WATCHER])
        rest = await (await http.get("/watch/notifications")).json()
    got = [n for batch in batches for n in batch]
    assert max(len(batch) for batch in batches) == 5  # the queue filled up, and no more
    assert rest == []
    assert len({n["id"] for n in got}) == len(got)
    assert {(n["phone_number"], n["message_id"]) for n in got if n["settled"]} == {
        (e164(p), m) for p, m in pairs
    }


# -- the poll worker -------------------------------------------------------------


def worker_summary(data: SandboxData, pairs: list[tuple[str, int]], changes: int) -> str:
    reasons: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for pair in pairs:
        reason, status = settled_as(data, *pair)
        reasons[reason.value] += 1
        statuses[status.value] += 1
    by_reason = ", ".join(f"{reasons[r.value]} {r.value}" for r in SettleReason)
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    return f"{len(pairs)} pairs, {changes} changes; settled: {by_reason} ({by_status})"


def check_worker_output(out: str, data: SandboxData, pairs: list[tuple[str, int]]) -> None:
    """One line per change, each pair's settled as the sandbox says, then the summary."""
    *lines, summary = out.splitlines()
    settled: dict[tuple[str, int], str] = {}
    for line in lines:
        number, message_id = line.partition(":")[0].split()
        if "(settled:" in line:
            assert (number, int(message_id)) not in settled
            settled[(number, int(message_id))] = line
    assert set(settled) == {(e164(p), m) for p, m in pairs}
    for phone, mid in pairs:
        reason, status = settled_as(data, phone, mid)
        assert f" {status.value} (settled: {reason.value}" in settled[(e164(phone), mid)]
    assert summary == worker_summary(data, pairs, len(lines))


@pytest.mark.parametrize("speed", [None, "1000000"], ids=["simulated", "fast-clock"])
def test_worker_main_watches_sandbox_pairs_until_settled(
    speed: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--sandbox", "--pairs", "300", "--seed", "3"]
    assert poll_worker.main([*argv, "--speed", speed] if speed else argv) == 0
    data = SandboxData(3)
    pairs = list(data.sample_pairs(300))
    assert {settled_as(data, *p)[0] for p in pairs} == set(SettleReason)
    check_worker_output(capsys.readouterr().out, data, pairs)


def test_worker_main_reads_a_csv_and_resumes_from_its_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = SandboxData(3)
    pairs = list(data.sample_pairs(80, national_share=0.5))
    lines = ["phone_number,message_id,sent_at"]
    for phone, mid in pairs:
        rec = data.status_of(phone, mid)
        # Final from the start: a send time long past changes nothing for them.
        sent = "2025-01-01T09:00:00+01:00" if rec and rec.status != WAITING else ""
        lines.append(f"{phone},{mid},{sent}")
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = [str(csv_file), "--sandbox", "--seed", "3", "--state", str(tmp_path / "w.db")]
    assert poll_worker.main(argv) == 0
    check_worker_output(capsys.readouterr().out, data, pairs)
    assert poll_worker.main(argv) == 0  # every pair already settled in the state file
    assert capsys.readouterr().out.splitlines() == [
        "80 pairs, 0 changes; settled: 0 final, 0 api_error, 0 expired"
    ]


def test_worker_main_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_phone = tmp_path / "phone.csv"
    bad_phone.write_text("0612345678,5\nnope,6\n", encoding="utf-8")
    assert poll_worker.main([str(bad_phone), "--sandbox"]) == 2
    assert "'nope'" in capsys.readouterr().err
    bad_time = tmp_path / "time.csv"
    bad_time.write_text("0612345678,5,2025-01-01T10:00\n", encoding="utf-8")
    assert poll_worker.main([str(bad_time), "--sandbox"]) == 2
    assert "line 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        poll_worker.main(["--speed", "10", str(bad_phone)])  # --speed needs --sandbox


def test_worker_reads_pairs_and_send_times() -> None:
    pairs, sent_at = poll_worker.read_pairs(
        ["phone,message_id,sent_at", "0612345678, 5", "", "+33612345679,6,1700000000"]
    )
    assert pairs == [("0612345678", "5"), ("+33612345679", "6")]
    assert sent_at == [None, 1_700_000_000.0]
    assert poll_worker.read_pairs(["0612345678,5"]) == ([("0612345678", "5")], None)
