"""The watch store on Redis (`RedisWatchStore`): how fast a fleet claims, what a pair costs.

    python -m benchmarks.redis_store --redis-url redis://127.0.0.1:6391/1   # about a minute
    python -m benchmarks.redis_store --quick                                # about 20 s

Redis: `--redis-url`, else $SMSPARTNER_TEST_REDIS_URL, else a `redis-server` of its own on a
free port of 127.0.0.1. Everything goes under a fresh namespace, deleted at the end.

1. Add: `add` in the watcher's chunks of 10,000 pairs; pairs a second, then Redis memory per
   pending pair (`MEMORY USAGE` of the store's keys, and the `INFO memory` delta).
2. Claim + commit: N due pairs, then 1 or 3 worker processes, each claiming pages of 8,000
   (the watcher's default page) and committing them, until none is due; pairs a second for
   the fleet, and the median claim and commit of a page. Two kinds of round: "reschedule"
   (every pair stays pending, no change: a later round of a watch) and "settle" (every pair
   settles with one change: the first round of a watch, where most pairs settle).
3. What the "settle" runs leave: Redis memory per settled pair and per unreported change.
4. Take + ack: one consumer takes batches of 1,024 changes and acknowledges them one at a
   time (`Watcher.changes()`: a round trip per change) or a batch at a time
   (`Watcher.batches()`, `on_batch`: a round trip per batch); changes a second.
5. Notice: a worker process runs a `Watcher` on the namespace and adds nothing; this process
   adds pairs due at once, one at a time; the delay from each `add` to that worker's claim,
   p50, p99 and max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from ._common import machine_facts, version
from .redis_flow import redis_for_bench, redis_version

PAGE = 8_000  # the watcher's default page: batch 500 x 2 x concurrency 8
ADD_CHUNK = 10_000  # the watcher's add chunk


def new_pair(i: int) -> Any:
    from smspartner_async.watch import NewPair

    return NewPair(f"+336{(i * 7919 + 13) % 100_000_000:08d}", 1_000_000 + i // 3, i, 0.0, 1.0)


def key_names(namespace: str) -> list[str]:
    from smspartner_async.watch.redis import _Keys

    return list(_Keys.of(namespace))


def memory_of(url: str, keys: list[str]) -> int:
    import redis

    with redis.Redis.from_url(url) as r:
        return sum(r.memory_usage(k, samples=0) or 0 for k in keys)


def used_memory(url: str) -> int:
    import redis

    with redis.Redis.from_url(url) as r:
        return int(r.info("memory")["used_memory"])


def drop(url: str, namespace: str) -> None:
    import redis

    with redis.Redis.from_url(url) as r:
        keys = key_names(namespace)
        r.delete(*keys)


async def add_pairs(url: str, namespace: str, n: int) -> float:
    """Adds n due pairs; returns the seconds it took."""
    from smspartner_async.watch.redis import RedisWatchStore

    store = RedisWatchStore(url, namespace=namespace)
    await store.open()
    try:
        began = time.perf_counter()
        for start in range(0, n, ADD_CHUNK):
            await store.add([new_pair(i) for i in range(start, min(n, start + ADD_CHUNK))])
        return time.perf_counter() - began
    finally:
        await store.close()


async def worker(args: argparse.Namespace) -> None:
    """One process of the fleet: claim and commit pages until none is due; its report."""
    from smspartner_async import DeliveryStatus
    from smspartner_async.watch import PairUpdate, SettleReason, StatusChange
    from smspartner_async.watch.redis import RedisWatchStore

    store = RedisWatchStore(args.redis_url, namespace=args.namespace)
    await store.open()
    claims: list[float] = []
    commits: list[float] = []
    count = 0
    try:
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
        began = time.time()
        while True:
            t = time.perf_counter()
            page = await store.claim(now=10.0, limit=PAGE, lease=60.0)
            claims.append(time.perf_counter() - t)
            if not page:
                break
            if args.kind == "settle":
                updates = [
                    PairUpdate(
                        p.phone_number, p.message_id, None, DeliveryStatus.DELIVERED, 1, 10.0
                    )
                    for p in page
                ]
                changes = [
                    StatusChange(
                        p.position, p.phone_number, p.message_id, DeliveryStatus.DELIVERED,
                        None, True, SettleReason.FINAL, 1, 10.0,
                    )
                    for p in page
                ]  # fmt: skip
            else:
                updates = [
                    PairUpdate(p.phone_number, p.message_id, 1e9, p.status, p.sequence, None)
                    for p in page
                ]
                changes = []
            t = time.perf_counter()
            await store.commit(updates, changes)
            commits.append(time.perf_counter() - t)
            count += len(page)
        ended = time.time()
    finally:
        await store.close()
    full = claims[:-1]  # the last claim found nothing
    report = {
        "count": count,
        "began": began,
        "ended": ended,
        "claim": statistics.median(full) if full else 0.0,
        "commit": statistics.median(commits) if commits else 0.0,
    }
    print(json.dumps(report), flush=True)


def run_fleet(url: str, namespace: str, processes: int, kind: str) -> list[dict[str, Any]]:
    start_at = time.time() + 1.5 + 0.5 * processes  # time to import and connect
    command = [sys.executable, "-m", "benchmarks.redis_store", "--redis-url", url]
    command += ["--worker", kind, "--namespace", namespace, "--start-at", str(start_at)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workers = [
        subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    reports = []
    for process in workers:
        out, _ = process.communicate(timeout=300)
        if process.returncode != 0:
            raise RuntimeError(f"a worker failed ({process.returncode})")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def section_add(url: str, n: int) -> list[str]:
    namespace = f"bench:{uuid.uuid4().hex}"
    before = used_memory(url)
    try:
        seconds = asyncio.run(add_pairs(url, namespace, n))
        info = used_memory(url) - before
        usage = memory_of(url, key_names(namespace))
    finally:
        drop(url, namespace)
    return [
        f"### Add ({n:,} pending pairs, chunks of {ADD_CHUNK:,})",
        "",
        "| pairs/s | bytes per pending pair (MEMORY USAGE) | (INFO used_memory delta) |",
        "|---:|---:|---:|",
        f"| {n / seconds:,.0f} | {usage / n:,.0f} | {info / n:,.0f} |",
    ]


def section_claims(url: str, n: int) -> list[str]:
    lines = [
        f"### Claim + commit ({n:,} due pairs, pages of {PAGE:,}, one Redis)",
        "",
        "| round | processes | pairs/s (fleet) | claim of a page, p50 (ms) | commit, p50 (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    left: list[str] = []
    for kind in ("reschedule", "settle"):
        for processes in (1, 3):
            namespace = f"bench:{uuid.uuid4().hex}"
            try:
                asyncio.run(add_pairs(url, namespace, n))
                reports = run_fleet(url, namespace, processes, kind)
                if kind == "settle" and processes == 3:
                    left = memory_left(url, namespace, n)
            finally:
                drop(url, namespace)
            total = sum(r["count"] for r in reports)
            if total != n:
                raise RuntimeError(f"{total} pairs claimed of {n}")
            span = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
            claim = statistics.median(r["claim"] for r in reports) * 1000
            commit = statistics.median(r["commit"] for r in reports) * 1000
            lines.append(
                f"| {kind} | {processes} | {total / span:,.0f} | {claim:,.0f} | {commit:,.0f} |"
            )
    return [*lines, "", *left]


def memory_left(url: str, namespace: str, n: int) -> list[str]:
    from smspartner_async.watch.redis import _Keys

    keys = _Keys.of(namespace)
    settled = memory_of(url, [keys.settled])
    changes = memory_of(url, [keys.outbox, keys.changes])
    return [
        "### What settling leaves until pruned and acknowledged",
        "",
        "| bytes per settled pair | bytes per unreported change |",
        "|---:|---:|",
        f"| {settled / n:,.0f} | {changes / n:,.0f} |",
    ]


async def take_and_ack(url: str, namespace: str, n: int, batched: bool) -> float:
    """Commits n changes, then takes them (1,024 at a time) and acknowledges them one by one
    (`Watcher.changes()`) or a batch at a time (`Watcher.batches()`); the seconds that took."""
    from smspartner_async import DeliveryStatus
    from smspartner_async.watch import StatusChange
    from smspartner_async.watch.redis import RedisWatchStore

    store = RedisWatchStore(url, namespace=namespace)
    await store.open()
    try:
        for start in range(0, n, PAGE):
            found = [
                StatusChange(
                    i, new_pair(i).phone_number, new_pair(i).message_id,
                    DeliveryStatus.DELIVERED, None, True, None, 1, 10.0,
                )
                for i in range(start, min(n, start + PAGE))
            ]  # fmt: skip
            await store.commit([], found)
        began = time.perf_counter()
        while batch := await store.take_changes(now=0.0, limit=1_024, lease=60.0):
            if batched:
                await store.ack([change.id for change in batch])
            else:
                for change in batch:
                    await store.ack((change.id,))
        return time.perf_counter() - began
    finally:
        await store.close()


def section_acks(url: str, n: int) -> list[str]:
    rows = []
    for batched in (False, True):
        namespace = f"bench:{uuid.uuid4().hex}"
        try:
            seconds = asyncio.run(take_and_ack(url, namespace, n, batched))
        finally:
            drop(url, namespace)
        how = "a batch (1,024) at a time" if batched else "one at a time"
        rows.append(f"| {how} | {n / seconds:,.0f} | {seconds / n * 1e6:,.1f} |")
    return [
        f"### Take + ack ({n:,} changes, one consumer; goal: >= 20,000 changes/s batched)",
        "",
        "| acknowledged | changes/s | per change (us) |",
        "|---|---:|---:|",
        *rows,
    ]


async def notice_worker(args: argparse.Namespace) -> None:
    """A worker with a `Watcher` on the namespace (real time, the sandbox as API) that never
    adds a pair: prints, per pair it claims, the message id and when (epoch seconds)."""
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client
    from smspartner_async.watch import Watcher
    from smspartner_async.watch.redis import RedisWatchStore

    class Logged(RedisWatchStore):
        async def claim(self, *, now: float, limit: int, lease: float) -> list[Any]:
            got = await super().claim(now=now, limit=limit, lease=lease)
            at = time.time()
            for pair in got:
                print(json.dumps([pair.message_id, at]), flush=True)
            return got

    store = Logged(args.redis_url, namespace=args.namespace)
    async with (
        sandbox_client(Sandbox(api_key=None)) as client,
        Watcher(client, store=store, lease=60.0) as watcher,
    ):
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # until the parent is done
        del watcher


async def add_one_at_a_time(url: str, namespace: str, n: int) -> dict[int, float]:
    """Adds n pairs due at once, one add every 20-60 ms; when each add returned."""
    import random

    from smspartner_async.watch import NewPair
    from smspartner_async.watch.redis import RedisWatchStore

    store = RedisWatchStore(url, namespace=namespace)
    await store.open()
    added: dict[int, float] = {}
    try:
        for i in range(n):
            now = time.time()
            await store.add([NewPair(f"+3361{i:07d}", 5_000_000 + i, i, now - 5.0, now)])
            added[5_000_000 + i] = time.time()
            await asyncio.sleep(random.uniform(0.02, 0.06))
    finally:
        await store.close()
    return added


def section_notice(url: str, n: int) -> list[str]:
    """How long until a worker's watcher claims a pair another process added."""
    namespace = f"bench:{uuid.uuid4().hex}"
    command = [sys.executable, "-m", "benchmarks.redis_store", "--redis-url", url]
    command += ["--worker", "notice", "--namespace", namespace]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    watcher = subprocess.Popen(
        command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdin is not None
        if watcher.stdout.readline().strip() != "ready":
            raise RuntimeError("the watcher process did not start")
        time.sleep(1.0)  # its poller has looked at the empty store and waits
        added = asyncio.run(add_one_at_a_time(url, namespace, n))
        time.sleep(1.5)
        watcher.stdin.write("done\n")
        watcher.stdin.flush()
        out, _ = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        drop(url, namespace)
    claimed = dict(json.loads(line) for line in out.splitlines() if line.startswith("["))
    delays = sorted((claimed[m] - at) * 1000 for m, at in added.items() if m in claimed)
    missed = len(added) - len(delays)

    def pct(q: float) -> float:
        return delays[min(len(delays) - 1, math.ceil(q * len(delays)) - 1)]

    return [
        f"### Noticing pairs another process added ({n:,} adds, one at a time)",
        "",
        "From an `add` returning in one process to the claim of that pair by the `Watcher` of",
        "another process that added nothing (a notice on `{ns}:wake`, then a round). Bound: a",
        "notice's delivery plus a round, or `RECHECK` (1 s) when a notice is lost.",
        "",
        "| p50 (ms) | p99 (ms) | max (ms) | never claimed |",
        "|---:|---:|---:|---:|",
        f"| {pct(0.5):,.1f} | {pct(0.99):,.1f} | {delays[-1]:,.1f} | {missed} |",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_store", description=__doc__)
    parser.add_argument("--redis-url")
    parser.add_argument("--quick", action="store_true", help="fewer pairs")
    parser.add_argument("--pairs", type=int, help="due pairs per run (default 200,000)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "notice":
        asyncio.run(notice_worker(args))
        return
    if args.worker:
        args.kind = args.worker
        asyncio.run(worker(args))
        return
    n = args.pairs or (40_000 if args.quick else 200_000)
    with redis_for_bench(args.redis_url) as url:
        facts = machine_facts()
        lines = [
            "## The watch store on Redis (`benchmarks/redis_store.py`)",
            "",
            f"Redis {redis_version(url)} on loopback; Python {facts['python']}, "
            f"{facts['cores']} cores, {facts['platform']}; redis-py {version('redis')}; "
            f"tree {facts['tree']}.",
            "",
        ]
        lines += [*section_add(url, n), ""]
        lines += [*section_claims(url, n), ""]
        lines += [*section_acks(url, min(n, 20_000)), ""]
        lines += section_notice(url, 100 if args.quick else 300)
    print("\n".join(lines))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
