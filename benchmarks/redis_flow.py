"""The shared rate limit on Redis (`RedisFlow`): what an acquire costs, how many it sustains.

    python -m benchmarks.redis_flow                 # about 40 s
    python -m benchmarks.redis_flow --quick         # a smoke run, about 15 s
    python -m benchmarks.redis_flow --compare       # + the limiter libraries it was chosen from

Redis: `--redis-url`, else $SMSPARTNER_TEST_REDIS_URL, else a `redis-server` of its own on a
free port of 127.0.0.1 (started and stopped here). Keys go under a fresh scope and expire.

1. Cost per acquire, one task in one process, nothing ever waiting (a rate no one reaches):
   p50 and p99 of `acquire()`, against `LocalFlow` and a bare Redis PING (one round trip).
2. Most acquires a second, 1 and 4 processes of 8 tasks each, same scope, for a few seconds:
   the limiter's own ceiling (rate unreachable), then how close it holds a high limit.
3. `--compare`: `limits` (moving window, with a blocking loop written here, as it has none)
   against pyrate-limiter (sliding-window log with its blocking `try_acquire_async`, and
   GCRA on `RedisStateStore`, the core of `RedisFlow`): cost per acquire as in 1, and
   4 processes x 8 tasks blocking at 10/s on one key: the rate they got, the most starts in
   any 1 s and any 0.2 s. Needs `limits` installed (it is not a dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._common import machine_facts, version

UNREACHABLE = 1_000_000.0  # starts a second: a limit no benchmark here gets near
TASKS = 8  # tasks per process


# -- Redis ----------------------------------------------------------------------------------------


@contextmanager
def redis_for_bench(url: str | None) -> Iterator[str]:
    url = url or os.environ.get("SMSPARTNER_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("no Redis: pass --redis-url, set SMSPARTNER_TEST_REDIS_URL or install it")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", directory]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            import redis

            deadline = time.monotonic() + 10
            while True:
                try:
                    with redis.Redis(port=port) as probe:
                        probe.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("redis-server did not start") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=10)


def redis_version(url: str) -> str:
    import redis

    with redis.Redis.from_url(url) as r:
        info: dict[str, Any] = r.info("server")
        return str(info.get("redis_version", "?"))


# -- the contenders, each an async acquire() ------------------------------------------------------

Acquire = Callable[[], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]


async def make_acquire(kind: str, url: str, key: str, rate: float | None) -> tuple[Acquire, Closer]:
    """A blocking acquire for `kind`, with the function that closes what it opened."""
    if kind == "local":
        from smspartner_async._flow import LocalFlow

        local = LocalFlow(rate)
        return local.acquire, local.aclose
    if kind == "ping":
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(url)

        async def ping() -> None:
            await client.ping()

        return ping, client.aclose
    if kind in ("redisflow", "redisflow-pause-only"):
        from smspartner_async.contrib.redis import RedisFlow

        flow = RedisFlow.from_url(
            url, scope=key, max_requests_per_second=None if kind.endswith("only") else rate
        )
        return flow.acquire, flow.aclose
    if kind == "limits":
        return await _limits_acquire(url, key, rate or UNREACHABLE)
    if kind in ("pyrate-log", "pyrate-gcra"):
        return await _pyrate_acquire(kind, url, key, rate or UNREACHABLE)
    raise ValueError(kind)


async def _limits_acquire(url: str, key: str, rate: float) -> tuple[Acquire, Closer]:
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    storage = RedisStorage(f"async+{url}", implementation="redispy", key_prefix="bench")
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(int(rate), 1)  # a moving window of int(rate) per second
    lock = asyncio.Lock()  # one poller per process, as RedisFlow does

    async def acquire() -> None:
        # limits has no blocking acquire: hit, else ask when the window frees, sleep, again.
        async with lock:
            while not await limiter.hit(item, key):
                stats = await limiter.get_window_stats(item, key)
                wait = max(stats.reset_time - time.time(), 0.0)
                await asyncio.sleep(wait + random.uniform(0, 0.002))

    async def close() -> None:
        await storage.bridge.storage.aclose()

    return acquire, close


async def _pyrate_acquire(kind: str, url: str, key: str, rate: float) -> tuple[Acquire, Closer]:
    import redis.asyncio
    from pyrate_limiter import (
        Limiter,
        Rate,
        RedisBucket,
        RedisStateStore,
        SingleBucketFactory,
        StateBucket,
    )

    client = redis.asyncio.Redis.from_url(url)
    if kind == "pyrate-log":  # the sliding-window log (a sorted set), leaked by a task
        bucket: Any = await RedisBucket.init([Rate(int(rate), 1000)], client, f"bench:{key}")
        limiter = Limiter(bucket, buffer_ms=0)
    else:  # GCRA, evenly spaced (burst 1) unless the rate is unreachable anyway
        burst = 1 if rate <= 100 else 100
        store = RedisStateStore(client, f"bench:{key}")
        bucket = StateBucket([Rate(int(rate), 1000, burst=burst)], store=store)
        limiter = Limiter(SingleBucketFactory(bucket, schedule_leak=False), buffer_ms=0)

    async def acquire() -> None:
        if not await limiter.try_acquire_async("bench", blocking=True):
            raise RuntimeError("pyrate-limiter refused a blocking acquire")

    async def close() -> None:
        limiter.close()
        await client.aclose()

    return acquire, close


# -- measures -------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def cost_per_acquire(kind: str, url: str, n: int) -> dict[str, float]:
    """p50/p99 of one acquire, in microseconds, one task, never waiting."""
    acquire, close = await make_acquire(kind, url, f"cost-{uuid.uuid4().hex}", UNREACHABLE)
    try:
        for _ in range(min(200, n)):
            await acquire()
        latencies = []
        for _ in range(n):
            began = time.perf_counter()
            await acquire()
            latencies.append(time.perf_counter() - began)
    finally:
        await close()
    return {"p50": pct(latencies, 0.5) * 1e6, "p99": pct(latencies, 0.99) * 1e6}


async def worker(args: argparse.Namespace) -> None:
    """One process of a multi-process measure: acquire from `--tasks` tasks, report grants."""
    rate = None if args.rate <= 0 else args.rate
    acquire, close = await make_acquire(args.worker, args.redis_url, args.key, rate)
    grants: list[float] = []
    try:
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
        end = args.start_at + args.seconds

        async def loop() -> None:
            while time.time() < end:
                await acquire()
                grants.append(time.time())

        try:
            async with asyncio.timeout(args.seconds + 2):
                await asyncio.gather(*(loop() for _ in range(args.tasks)))
        except TimeoutError:
            pass
    finally:
        await close()
    within = [t for t in grants if t < end]
    report: dict[str, Any] = {"count": len(within)}
    if args.keep_grants:
        report["grants"] = grants
    print(json.dumps(report), flush=True)


def run_processes(
    kind: str, url: str, processes: int, *, rate: float, seconds: float, keep_grants: bool = False
) -> list[dict[str, Any]]:
    """`processes` workers on one key, started together (a shared wall-clock start)."""
    key = f"multi-{uuid.uuid4().hex}"
    start_at = time.time() + 2.0 + 0.5 * processes  # time to import and connect
    command = [sys.executable, "-m", "benchmarks.redis_flow", "--redis-url", url]
    command += ["--worker", kind, "--key", key, "--rate", str(rate), "--seconds", str(seconds)]
    command += ["--start-at", str(start_at), "--tasks", str(TASKS)]
    if keep_grants:
        command.append("--keep-grants")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workers = [
        subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    reports = []
    for process in workers:
        out, _ = process.communicate(timeout=seconds + 60)
        if process.returncode != 0:
            raise RuntimeError(f"a {kind} worker failed ({process.returncode})")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def most_in_window(times: list[float], width: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


# -- the report -----------------------------------------------------------------------------------


def section_cost(url: str, n: int) -> list[str]:
    rows = [
        ("LocalFlow (in process)", "local"),
        ("Redis PING (one round trip)", "ping"),
        ("RedisFlow, pause only (rate None)", "redisflow-pause-only"),
        ("RedisFlow, pause + rate limit", "redisflow"),
    ]
    results = {kind: asyncio.run(cost_per_acquire(kind, url, n)) for _, kind in rows}
    local = results["local"]
    lines = [
        f"### Cost per acquire ({n} acquires, one task, never waiting)",
        "",
        "| | p50 (us) | p99 (us) | added over LocalFlow, p50 / p99 (us) |",
        "|---|---:|---:|---:|",
    ]
    for label, kind in rows:
        r = results[kind]
        added = f"{r['p50'] - local['p50']:,.0f} / {r['p99'] - local['p99']:,.0f}"
        lines.append(f"| {label} | {r['p50']:,.1f} | {r['p99']:,.1f} | {added} |")
    return lines


def section_throughput(url: str, seconds: float) -> list[str]:
    lines = [
        f"### Most acquires a second ({TASKS} tasks a process, {seconds:g} s, one scope)",
        "",
        "| processes | limit (/s) | acquires/s | per process |",
        "|---:|---:|---:|---:|",
    ]
    for processes in (1, 4):
        for rate in (UNREACHABLE, 1000.0):
            reports = run_processes("redisflow", url, processes, rate=rate, seconds=seconds)
            total = sum(r["count"] for r in reports) / seconds
            limit = "none reached" if rate == UNREACHABLE else f"{rate:,.0f}"
            lines.append(f"| {processes} | {limit} | {total:,.0f} | {total / processes:,.0f} |")
    return lines


def section_compare(url: str, n: int, seconds: float) -> list[str]:
    contenders = [
        ("limits (moving window; blocking loop written here)", "limits"),
        ("pyrate-limiter, sliding-window log (RedisBucket)", "pyrate-log"),
        ("pyrate-limiter, GCRA (RedisStateStore)", "pyrate-gcra"),
        ("RedisFlow (pyrate GCRA + the shared pause)", "redisflow"),
    ]
    lines = [
        "### The limiter libraries compared",
        "",
        f"Cost: {n} acquires, one task, never waiting. Fleet: 4 processes x {TASKS} tasks, "
        f"blocking at 10/s on one key for {seconds:g} s; starts as the processes saw them.",
        "",
        "| | p50 (us) | p99 (us) | fleet rate (/s) | most in any 1 s | most in any 0.2 s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, kind in contenders:
        try:
            cost = asyncio.run(cost_per_acquire(kind, url, n))
            reports = run_processes(kind, url, 4, rate=10, seconds=seconds, keep_grants=True)
        except (ImportError, RuntimeError) as exc:
            lines.append(f"| {label} | {type(exc).__name__}: {exc} | | | | |")
            continue
        grants = sorted(t for r in reports for t in r["grants"])
        within = [t for t in grants if t < grants[0] + seconds]
        rate = (len(within) - 1) / (within[-1] - within[0])
        lines.append(
            f"| {label} | {cost['p50']:,.0f} | {cost['p99']:,.0f} | {rate:.2f} | "
            f"{most_in_window(grants, 1.0)} | {most_in_window(grants, 0.2)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_flow", description=__doc__)
    parser.add_argument("--redis-url")
    parser.add_argument("--quick", action="store_true", help="fewer acquires, shorter runs")
    parser.add_argument("--compare", action="store_true", help="also compare the libraries")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=3.0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--tasks", type=int, default=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--keep-grants", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker(args))
        return
    n = 500 if args.quick else 3000
    seconds = 1.0 if args.quick else 3.0
    with redis_for_bench(args.redis_url) as url:
        facts = machine_facts()
        lines = [
            "## Shared limits on Redis (`benchmarks/redis_flow.py`)",
            "",
            f"Redis {redis_version(url)} on loopback; Python {facts['python']}, "
            f"{facts['cores']} cores, {facts['platform']}; redis-py {version('redis')}, "
            f"pyrate-limiter {version('pyrate-limiter')}, limits {version('limits')}; "
            f"tree {facts['tree']}.",
            "",
        ]
        lines += [*section_cost(url, n), ""]
        lines += [*section_throughput(url, seconds), ""]
        if args.compare:
            lines += [*section_compare(url, n, 3.0 if args.quick else 6.0), ""]
    print("\n".join(lines))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
