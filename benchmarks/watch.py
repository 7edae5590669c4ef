"""The watch at scale: a million pairs watched to the end of their 48-hour window.

    python -m benchmarks.watch                      # 1,000,000 pairs: plain, memory, SQLite
    python -m benchmarks.watch --pairs 100000 --store sqlite
    python -m benchmarks.watch --redis-url redis://127.0.0.1:6379/9   # and the Redis store
    python -m benchmarks.watch --json               # one JSON object per contender

It says at the start what it will take (time and memory, from the pairs and the
contenders) and reports progress on stderr (`benchmarks._report.Progress`, and the
simulated hours as they go by).

The contenders take turns in one run, each in a fresh process: "plain" is one
`multi_status` over the same pairs (pages of 8,000 as the watch asks them), the
client CPU per item that a check costs at the least; then the watch on each store.
Goals (issue 21): memory <= 2x plain per check, SQLite <= 1.5x memory, peak memory per
pending pair <= 300 B in the memory store.

Simulated time (the watcher's clock and sleep, and the sandbox's clock, are one fake
clock), against the in-process sandbox, whose mix is most pairs final at the first
check, about 6% Waiting that settle within a minute, 2% Waiting for ever (expired at
48 hours) and 3% never found (settled after the not-found grace). Pairs are read
lazily from a generator, so the input costs no memory: what is measured is the watch.

Each store runs in a fresh process (peak RSS is the process's high-water mark,
VmHWM). Reported: rounds, pairs asked, API calls and how full they were, changes,
CPU seconds of the process (every thread: the event loop, SQLite's worker) and of
the sandbox's request handler (measured around it, and taken off to give the
client's share), wall time, baseline and peak RSS and the growth per pending pair
(every pair is pending at the start), and the SQLite files' sizes at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

from ._report import Progress, duration

T0 = 1_700_000_000.0
STORES = ("plain", "memory", "sqlite", "redis")
# What a contender costs per 100,000 pairs on the reference machine (2 cores, shared): wall
# seconds and peak MiB, for the estimate printed at the start. Measured with this benchmark.
COST_PER_100K = {
    "plain": (3.0, 10),
    "memory": (11.0, 25),
    "sqlite": (19.0, 10),
    "redis": (90.0, 20),
}


def _rss_kib(field: str = "VmHWM") -> int:
    """This process's peak (VmHWM) or current (VmRSS) resident set, KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(
    store_kind: str, n: int, seed: int, workdir: Path, redis_url: str | None
) -> dict[str, Any]:
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client
    from smspartner_async.watch import MemoryStore, SQLiteStore, WatchRound, WatchStore, watch

    class Clock:
        def __init__(self) -> None:
            self.now = T0

        def __call__(self) -> float:
            return self.now

        async def sleep(self, seconds: float) -> None:
            self.now += seconds
            await asyncio.sleep(0)

    class TimedSandbox(Sandbox):
        """The sandbox, with the CPU its request handler spends counted (to take it off)."""

        handler_cpu = 0.0

        def _handle(self, *args: Any) -> Any:
            start = time.thread_time()
            try:
                return super()._handle(*args)
            finally:
                self.handler_cpu += time.thread_time() - start

    clock = Clock()
    sandbox = TimedSandbox(seed=seed, clock=clock)
    db = workdir / "watch.db"
    namespace = f"bench-watch:{os.getpid()}"
    store: WatchStore
    if store_kind == "sqlite":
        store = SQLiteStore(db)
    elif store_kind == "redis":
        from smspartner_async.watch.redis import RedisWatchStore

        if redis_url is None:
            raise SystemExit("the redis contender needs --redis-url")
        store = RedisWatchStore(redis_url, namespace=namespace)
    else:
        store = MemoryStore()
    rounds: list[WatchRound] = []
    reasons: Counter[object] = Counter()  # by SettleReason: a member's .value costs more
    changes = 0
    next_hour = [1.0]

    def on_round(report: WatchRound) -> None:
        rounds.append(report)
        hours = (report.at - T0) / 3600
        if hours >= next_hour[0]:
            next_hour[0] = math.floor(hours) + 6.0
            asked = sum(r.asked for r in rounds)
            print(
                f"  {store_kind}: {hours:4.0f} h of 48 simulated, {asked:,} checks, "
                f"{time.process_time():.0f} s CPU",
                file=sys.stderr,
                flush=True,
            )

    async def plain() -> None:
        nonlocal changes
        async with sandbox_client(sandbox) as client:
            page: list[tuple[str, int]] = []
            for pair in sandbox.data.sample_pairs(n):
                page.append(pair)
                if len(page) == 8_000:
                    changes += len(await client.multi_status(page, fail_fast=False))
                    page = []
            if page:
                changes += len(await client.multi_status(page, fail_fast=False))

    async def run() -> None:
        nonlocal changes
        async with sandbox_client(sandbox) as client:
            stream = watch(
                client,
                sandbox.data.sample_pairs(n),
                store=store,
                clock=clock,
                sleep=clock.sleep,
                on_round=on_round,
            )
            async with aclosing(stream) as found:
                async for change in found:
                    changes += 1
                    if change.reason is not None:
                        reasons[change.reason] += 1

    async def drop() -> None:
        import redis.asyncio

        async with redis.asyncio.Redis.from_url(redis_url) as r:
            keys = [k async for k in r.scan_iter(match=f"{{{namespace}}}:*", count=1000)]
            if keys:
                await r.delete(*keys)

    baseline = _rss_kib("VmRSS")
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        asyncio.run(plain() if store_kind == "plain" else run())
    finally:
        if store_kind == "redis":
            asyncio.run(drop())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if store_kind == "plain":
        rounds.append(WatchRound(T0, changes, 0, 0, 0))  # one "round": every pair asked once
    peak = _rss_kib()
    sizes = sandbox.stats.pairs_per_call
    files = {
        suffix or "db": os.path.getsize(f"{db}{suffix}")
        for suffix in ("", "-wal", "-acks")
        if os.path.exists(f"{db}{suffix}")
    }
    asked = sum(r.asked for r in rounds)
    return {
        "store": store_kind,
        "pairs": n,
        "settled": sum(reasons.values()),
        "reasons": {str(reason): count for reason, count in reasons.items()},
        "simulated_hours": (clock.now - T0) / 3600,
        "rounds": len(rounds),
        "pairs_asked": asked,
        "calls": len(sizes),
        "calls_needed": sum(math.ceil(r.asked / 500) for r in rounds),
        "full_calls": sum(1 for size in sizes if size == 500),
        "changes": changes,
        "cpu_s": cpu,
        "sandbox_cpu_s": sandbox.handler_cpu,
        "client_cpu_s": cpu - sandbox.handler_cpu,
        "client_us_per_check": (cpu - sandbox.handler_cpu) / max(asked, 1) * 1e6,
        "wall_s": wall,
        "baseline_mib": baseline / 1024,
        "peak_mib": peak / 1024,
        "bytes_per_pending_pair": (peak - baseline) * 1024 / n,
        "sqlite_bytes": files,
    }


def _spawn(store_kind: str, n: int, seed: int, redis_url: str | None) -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    workdir = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    try:
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.watch",
            "--child",
            store_kind,
            "--pairs",
            str(n),
            "--seed",
            str(seed),
            "--dir",
            str(workdir),
        ]
        if redis_url is not None:
            cmd += ["--redis-url", redis_url]
        # stderr is the child's progress: straight through to ours.
        out = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{store_kind} child failed ({out.returncode}), see above")
        data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return data
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _table(results: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("pairs", lambda r: f"{r['pairs']:,}"),
        ("settled (final / api_error / expired)", lambda r: _reasons(r)),
        ("simulated time", lambda r: f"{r['simulated_hours']:.1f} h"),
        ("rounds", lambda r: f"{r['rounds']}"),
        ("pairs asked (checks)", lambda r: f"{r['pairs_asked']:,}"),
        (
            "API calls (ceil(due/500) per round)",
            lambda r: f"{r['calls']:,} ({r['calls_needed']:,})",
        ),
        ("full calls (500 pairs)", lambda r: f"{r['full_calls']:,}"),
        ("changes reported", lambda r: f"{r['changes']:,}"),
        ("CPU, whole process", lambda r: f"{r['cpu_s']:.1f} s"),
        ("CPU, sandbox handler (taken off)", lambda r: f"{r['sandbox_cpu_s']:.1f} s"),
        ("CPU, client (watch + client + store)", lambda r: f"{r['client_cpu_s']:.1f} s"),
        ("client CPU per check (plain: per item)", lambda r: f"{r['client_us_per_check']:.2f} us"),
        ("wall", lambda r: f"{r['wall_s']:.1f} s"),
        ("RSS baseline / peak", lambda r: f"{r['baseline_mib']:.0f} / {r['peak_mib']:.0f} MiB"),
        ("peak growth per pending pair", lambda r: f"{r['bytes_per_pending_pair']:.0f} B"),
        ("SQLite files at the end", lambda r: _files(r["sqlite_bytes"])),
    ]
    head = "| measure | " + " | ".join(r["store"] for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for name, cell in rows:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in results) + " |")
    return "\n".join(lines)


def _reasons(result: dict[str, Any]) -> str:
    r = result["reasons"]
    return f"{r.get('final', 0):,} / {r.get('api_error', 0):,} / {r.get('expired', 0):,}"


def _files(sizes: dict[str, int]) -> str:
    if not sizes:
        return "-"
    return ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in sizes.items())


def _goals(results: list[dict[str, Any]]) -> str:
    """The issue's goals, from the figures of this run."""
    by = {r["store"]: r for r in results}
    lines = []

    def per_check(kind: str) -> float:
        return float(by[kind]["client_us_per_check"])

    if "plain" in by and "memory" in by:
        ratio = per_check("memory") / per_check("plain")
        lines.append(f"- memory store / plain, CPU per check: {ratio:.2f}x (goal <= 2x)")
    if "memory" in by and "sqlite" in by:
        ratio = per_check("sqlite") / per_check("memory")
        lines.append(f"- SQLite / memory store, CPU per check: {ratio:.2f}x (goal <= 1.5x)")
    if "memory" in by and "redis" in by:
        ratio = per_check("redis") / per_check("memory")
        lines.append(f"- Redis / memory store, CPU per check: {ratio:.2f}x (no goal)")
    if "memory" in by:
        grown = by["memory"]["bytes_per_pending_pair"]
        lines.append(f"- peak growth per pending pair, memory store: {grown:.0f} B (goal <= 300 B)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument(
        "--store",
        choices=(*STORES, "all"),
        default="all",
        help="one contender, or all (plain, memory, SQLite; Redis with --redis-url)",
    )
    parser.add_argument("--redis-url", help="a Redis for the Redis store (a fresh namespace)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object per contender")
    parser.add_argument("--child", choices=STORES, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.pairs, args.seed, args.dir, args.redis_url)
        print(json.dumps(result))
        return 0
    if args.store == "all":
        stores = [kind for kind in STORES if kind != "redis" or args.redis_url]
    else:
        stores = [args.store]
    seconds = sum(COST_PER_100K[kind][0] for kind in stores) * args.pairs / 100_000
    mib = max(COST_PER_100K[kind][1] for kind in stores) * args.pairs / 100_000 + 50
    progress = Progress(
        f"benchmarks.watch ({args.pairs:,} pairs, 48 simulated hours; {', '.join(stores)})",
        len(stores),
        expect=f"about {duration(seconds)} and {mib:.0f} MiB at peak (fewer with --pairs)",
    )
    results = []
    for kind in stores:
        result = _spawn(kind, args.pairs, args.seed, args.redis_url)
        progress.step(kind)
        results.append(result)
        if args.json:
            print(json.dumps(result))
    progress.finish()
    if not args.json:
        print(_table(results))
        print()
        print(_goals(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
