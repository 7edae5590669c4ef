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
   time, as the watcher does (an acknowledgement must be durable when `ack` returns: a round
   trip per change); changes a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def take_and_ack(url: str, namespace: str, n: int) -> float:
    """Commits n changes, then takes and acknowledges them one by one; the seconds that took."""
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
            for change in batch:
                await store.ack((change.id,))
        return time.perf_counter() - began
    finally:
        await store.close()


def section_acks(url: str, n: int) -> list[str]:
    namespace = f"bench:{uuid.uuid4().hex}"
    try:
        seconds = asyncio.run(take_and_ack(url, namespace, n))
    finally:
        drop(url, namespace)
    return [
        f"### Take + ack, one at a time ({n:,} changes, one consumer)",
        "",
        "| changes/s | per change (us) |",
        "|---:|---:|",
        f"| {n / seconds:,.0f} | {seconds / n * 1e6:,.0f} |",
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
        lines += section_acks(url, min(n, 20_000))
    print("\n".join(lines))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
