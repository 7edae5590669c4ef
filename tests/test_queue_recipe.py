"""The queue recipe (`examples/queue_watch`): SAQ workers watching pairs on one Redis.

Real Redis (the conventions of test_redis_flow.py: SMSPARTNER_TEST_REDIS_URL, skipped
outside CI without it), real worker processes (`python -m saq ...`, as a user starts
them), and the sandbox served on a port. Time is compressed: the sandbox's clock runs
SPEED times faster from the moment the pairs are registered (its Waiting statuses settle
0.2 to 6 s later), and the workers' schedule checks every 0.5 to 1 s and gives up after
WINDOW seconds. Each test has its own queue, store namespace and sink; its keys are
deleted afterwards (never a FLUSH).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from smspartner_async import DeliveryStatus
from smspartner_async.sandbox import Sandbox, SandboxData, normalize_phone, serve
from smspartner_async.testing import sandbox_client
from smspartner_async.watch import SettleReason, watch

from .redis_support import ROOT, in_ci
from .test_watch_fakes import FakeClock

try:
    import redis.asyncio
    from saq import Queue, Status

    from examples.queue_watch import service, worker
    from examples.queue_watch.config import Config
except ImportError as exc:  # pragma: no cover - depends on the environment
    if in_ci():
        raise
    pytest.skip(f"needs saq and the redis extra ({exc})", allow_module_level=True)

SEED = 14
SPEED = 10.0
WINDOW = 10.0
LEASE = 3.0
SCHEDULE = {"intervals": [0.5, 0.5, 1.0], "window": WINDOW, "not_found_grace": 1.5}
Outcome = tuple[DeliveryStatus, SettleReason]


class LaunchClock:
    """The sandbox's clock: stopped at 0 until `launch()`, then SPEED times real time."""

    def __init__(self) -> None:
        self.launched: float | None = None

    def __call__(self) -> float:
        return 0.0 if self.launched is None else (time.monotonic() - self.launched) * SPEED

    def launch(self) -> None:
        self.launched = time.monotonic()


class Fleet:
    """SAQ worker processes of the recipe, their logs in files (kept across a SIGKILL)."""

    def __init__(self, base_url: str, redis_url: str, logs: Path) -> None:
        tag = uuid.uuid4().hex[:12]
        self.redis_url = redis_url
        self.queue_name = f"qw-test-{tag}"
        self.namespace = f"smspartner:watch-test:{tag}"
        self.changes_key = f"smspartner:changes-test:{tag}"
        self.logs = logs
        self.env = {
            **os.environ,
            "SMSPARTNER_API_KEY": "queue-recipe-test",
            "SMSPARTNER_BASE_URL": base_url,
            "SMSPARTNER_REDIS_URL": redis_url,
            "SMSPARTNER_WATCH_QUEUE": self.queue_name,
            "SMSPARTNER_WATCH_NAMESPACE": self.namespace,
            "SMSPARTNER_CHANGES_KEY": self.changes_key,
            "SMSPARTNER_WATCH_SCHEDULE": json.dumps(SCHEDULE),
            "SMSPARTNER_WATCH_LEASE": str(LEASE),
            "SMSPARTNER_JOB_TIMEOUT": "2",
            "SMSPARTNER_SWEEP_EVERY": "1",
            # SAQ's sweeper goes through the jobs in flight one at a time, waiting up to 5 s
            # for each dead one to abort: one job in flight per worker, quicker recovery.
            "SMSPARTNER_WORKER_CONCURRENCY": "1",
        }
        self.workers: list[tuple[asyncio.subprocess.Process, Path]] = []

    async def start(self, n: int) -> None:
        for _ in range(n):
            log = self.logs / f"worker{len(self.workers)}.log"
            command = [sys.executable, "-m", "saq", "examples.queue_watch.worker.settings", "-v"]
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    cwd=ROOT,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.workers.append((process, log))
        async with asyncio.timeout(30):
            while not all("watch worker ready" in self.log(i) for i in range(len(self.workers))):
                for i, (process, _) in enumerate(self.workers):
                    assert process.returncode is None, f"worker {i} died:\n{self.log(i)}"
                await asyncio.sleep(0.05)

    def log(self, i: int) -> str:
        return self.workers[i][1].read_text(errors="replace")

    def kill(self, i: int) -> None:
        self.workers[i][0].send_signal(signal.SIGKILL)

    async def stop(self) -> list[int | None]:
        """SIGTERM to the live workers (SAQ's clean stop); their exit codes."""
        for process, _ in self.workers:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for process, _ in self.workers:
            try:
                async with asyncio.timeout(15):
                    codes.append(await process.wait())
            except TimeoutError:
                process.kill()
                await process.wait()
                codes.append(None)
        return codes

    def count(self, pattern: str) -> Counter[str]:
        """How many times `pattern` (one group: a job key) occurs in the workers' logs."""
        found: Counter[str] = Counter()
        for i in range(len(self.workers)):
            found.update(re.findall(pattern, self.log(i)))
        return found

    def enqueued(self) -> Counter[str]:
        """`status_changed` jobs enqueued by `on_change` (SAQ logs none for a duplicate key)."""
        return self.count(r"Enqueuing Job<function: status_changed, [^>]*key: (change-\w+)")

    def recorded(self) -> Counter[str]:
        return self.count(r"change (change-\w+) recorded")

    def repeated(self) -> Counter[str]:
        return self.count(r"change (change-\w+) repeated")

    async def cleanup(self) -> None:
        async with redis.asyncio.Redis.from_url(self.redis_url) as r:
            for pattern in (
                f"saq:{self.queue_name}:*",
                f"saq:job:{self.queue_name}:*",
                f"{{{self.namespace}}}:*",
                self.changes_key,
            ):
                keys = [key async for key in r.scan_iter(match=pattern, count=1000)]
                for start in range(0, len(keys), 500):
                    await r.delete(*keys[start : start + 500])


@contextlib.asynccontextmanager
async def running(redis_url: str, logs: Path) -> AsyncIterator[tuple[Fleet, LaunchClock]]:
    clock = LaunchClock()
    sandbox = Sandbox(seed=SEED, api_key=None, clock=clock)
    async with serve(sandbox) as base_url:
        fleet = Fleet(base_url, redis_url, logs)
        try:
            yield fleet, clock
        finally:
            await fleet.stop()
            await fleet.cleanup()


async def sink(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """What `status_changed` recorded: change id -> the change (as a dict)."""
    async with redis.asyncio.Redis.from_url(fleet.redis_url) as r:
        raw = await r.hgetall(fleet.changes_key)
    return {
        key.decode() if isinstance(key, bytes) else key: json.loads(value)
        for key, value in raw.items()
    }


async def until(
    done: Callable[[dict[str, dict[str, Any]]], bool], fleet: Fleet, *, seconds: float
) -> dict[str, dict[str, Any]]:
    """The sink, once `done` says so of it."""
    async with asyncio.timeout(seconds):
        while not done(changes := await sink(fleet)):  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.05)
    return changes


def settled(n: int) -> Callable[[dict[str, dict[str, Any]]], bool]:
    return lambda changes: sum(change["settled"] for change in changes.values()) >= n


def by_pair(changes: dict[str, dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Each pair's changes in sequence order, checked to form one unbroken chain."""
    chains: defaultdict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for change_id, change in changes.items():
        assert change_id == change["id"]
        chains[(change["phone_number"], change["message_id"])].append(change)
    for chain in chains.values():
        chain.sort(key=lambda change: change["sequence"])
        assert [c["sequence"] for c in chain] == list(range(1, len(chain) + 1))
        assert [c["previous"] for c in chain] == [None] + [c["status"] for c in chain[:-1]]
        assert [c["settled"] for c in chain] == [False] * (len(chain) - 1) + [True]
    return dict(chains)


def truth(pairs: list[tuple[str, int]]) -> dict[tuple[str, int], Outcome]:
    """How each pair settles, from the sandbox's data once every Waiting one has settled."""
    data = SandboxData(SEED)
    outcome: dict[tuple[str, int], Outcome] = {}
    for phone, mid in pairs:
        record = data.status_of(phone, mid, elapsed=1e9)
        key = (normalize_phone(phone) or phone, mid)
        if record is None:
            outcome[key] = (DeliveryStatus.UNKNOWN, SettleReason.API_ERROR)
        elif record.status == "Waiting":
            outcome[key] = (DeliveryStatus.WAITING, SettleReason.EXPIRED)
        else:
            outcome[key] = (DeliveryStatus(record.status), SettleReason.FINAL)
    return outcome


async def watched_in_process(pairs: list[tuple[str, int]]) -> dict[tuple[str, int], Outcome]:
    """The same pairs through `watch()` in this process, in simulated time."""
    clock = FakeClock()
    sandbox = Sandbox(seed=SEED, api_key=None, clock=clock)
    outcome: dict[tuple[str, int], Outcome] = {}
    async with (
        sandbox_client(sandbox) as client,
        aclosing(watch(client, pairs, clock=clock, sleep=clock.sleep)) as changes,
    ):
        async for change in changes:
            if change.settled:
                assert change.reason is not None
                outcome[(change.phone_number, change.message_id)] = (change.status, change.reason)
    return outcome


def final(chains: dict[tuple[str, int], list[dict[str, Any]]]) -> dict[tuple[str, int], Outcome]:
    return {
        pair: (DeliveryStatus(chain[-1]["status"]), SettleReason(chain[-1]["reason"]))
        for pair, chain in chains.items()
    }


def sample(n: int, national_share: float = 0.0) -> list[tuple[str, int]]:
    return list(SandboxData(SEED).sample_pairs(n, national_share=national_share))


# -- without Redis --------------------------------------------------------------------------


def test_config_from_the_environment() -> None:
    config = Config.from_env(
        {
            "SMSPARTNER_WATCH_SCHEDULE": json.dumps(SCHEDULE),
            "SMSPARTNER_WATCH_LEASE": "2.5",
            "SMSPARTNER_MAX_REQUESTS_PER_SECOND": "10",
            "SMSPARTNER_JOB_TIMEOUT": "0.2",
        }
    )
    assert config.schedule.intervals == (0.5, 0.5, 1.0)
    assert config.schedule.window == WINDOW
    assert (config.lease, config.max_requests_per_second, config.job_timeout) == (2.5, 10.0, 1)
    assert config.queue == "smspartner-watch"
    with pytest.raises(ValueError, match="SMSPARTNER_WATCH_LEASE"):
        Config.from_env({"SMSPARTNER_WATCH_LEASE": "-1"})


# -- real Redis, real workers ---------------------------------------------------------------


async def test_two_workers_hand_every_change_to_one_job(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered through the service's command line; every change recorded exactly once,
    each pair's chain unbroken, and each pair ends as the sandbox and `watch()` say."""
    pairs = sample(300)
    async with running(redis_url, tmp_path) as (fleet, clock):
        await fleet.start(2)
        for name in ("SMSPARTNER_REDIS_URL", "SMSPARTNER_WATCH_QUEUE"):
            monkeypatch.setenv(name, fleet.env[name])
        clock.launch()
        argv = ["--sandbox-pairs", str(len(pairs)), "--seed", str(SEED)]
        assert await asyncio.to_thread(service.main, argv) == 0
        changes = await until(settled(len(pairs)), fleet, seconds=WINDOW + 15)
        await asyncio.sleep(0.5)  # nothing more arrives
        assert await sink(fleet) == changes
        assert await fleet.stop() == [0, 0]  # SIGTERM: a clean stop
        enqueued, recorded, repeated = fleet.enqueued(), fleet.recorded(), fleet.repeated()
        worker_logs = [fleet.log(i) for i in range(2)]
    chains = by_pair(changes)
    assert final(chains) == truth(pairs) == await watched_in_process(pairs)
    keys = {worker.change_key(change_id) for change_id in changes}
    # The watch handed each change to one worker's on_change, once: one job each.
    assert enqueued == Counter(dict.fromkeys(keys, 1))
    # Each was recorded once. A job SAQ runs twice anyway (its sweeper can take a job just
    # dequeued for a stuck one, tobymao/saq#277) finds it recorded and changes nothing.
    assert recorded == Counter(dict.fromkeys(keys, 1))
    assert set(repeated) <= keys
    # Both workers ran status_changed jobs, and some pairs changed more than once.
    assert all("recorded: message" in log for log in worker_logs)
    assert any(len(chain) > 1 for chain in chains.values())


async def test_a_worker_killed_mid_run_loses_nothing(redis_url: str, tmp_path: Path) -> None:
    """SIGKILL to one of two workers once a third of the changes are in: every pair still
    settles as the sandbox says, and no change is recorded twice (repeats are dropped)."""
    pairs = sample(300, national_share=0.3)
    async with running(redis_url, tmp_path) as (fleet, clock):
        await fleet.start(2)
        queue = Queue.from_url(redis_url, name=fleet.queue_name)
        await queue.connect()
        try:
            clock.launch()
            jobs = await service.register(queue, pairs, chunk=100)
            assert len(jobs) == 3
            async with asyncio.timeout(10):  # every pair is in the shared store
                for job in jobs:
                    while job.status is not Status.COMPLETE:
                        await asyncio.sleep(0.02)
                        await job.refresh()
        finally:
            await queue.disconnect()
        await until(lambda changes: len(changes) >= len(pairs) // 3, fleet, seconds=10)
        fleet.kill(0)
        killed_at = time.monotonic()
        changes = await until(settled(len(pairs)), fleet, seconds=WINDOW + 30)
        print(f"all settled {time.monotonic() - killed_at:.1f} s after the kill")
        codes = await fleet.stop()
        enqueued, recorded, repeated = fleet.enqueued(), fleet.recorded(), fleet.repeated()
    assert codes == [-signal.SIGKILL, 0]
    chains = by_pair(changes)
    assert final(chains) == truth(pairs)
    keys = {worker.change_key(change_id) for change_id in changes}
    assert set(enqueued) == keys  # at least once each; again if the dead worker had it
    # Recorded once each: a job run again (killed after recording, or swept) finds it there.
    # (The dead worker may have recorded one and died before logging it.)
    assert set(recorded) | set(repeated) <= keys
    assert set(recorded.values()) == {1}
    print(f"enqueued again: {enqueued.total() - len(keys)}; repeats dropped: {repeated.total()}")
