"""Shared helpers: input pairs, request bodies, the worker-pool driver, timing, machine facts."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

T = TypeVar("T")

API_KEY = "bench"
CHUNK = 500
PATH = "/v1/multi-status"
JSON_HEADERS = {"Content-Type": "application/json"}
PACKAGES = (
    "smspartner-async",
    "httpx",
    "httpcore",
    "aiohttp",
    "httpx-aiohttp",
    "httpx2",
    "orjson",
    "lxml",
    "attrs",
    "anyio",
    "sniffio",
)


def pair(i: int) -> tuple[str, int]:
    """The i-th benchmark pair: distinct E.164 mobile numbers, three pairs per message id."""
    return f"+336{(i * 7919 + 13) % 100_000_000:08d}", 1_000_000 + i // 3


def gen_pairs(n: int) -> Iterator[tuple[str, int]]:
    return (pair(i) for i in range(n))


def make_pairs(n: int) -> list[tuple[str, int]]:
    return [pair(i) for i in range(n)]


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def request_body(chunk: Sequence[tuple[str, int]]) -> bytes:
    """The multi-status body as the API's samples send it."""
    return orjson.dumps(
        {
            "apiKey": API_KEY,
            "SMSStatut_List": [{"phoneNumber": p, "messageId": m} for p, m in chunk],
        }
    )


async def run_pool(
    jobs: Iterable[T], worker: Callable[[T], Awaitable[Any]], concurrency: int
) -> None:
    """`concurrency` workers pull jobs from one shared iterator: no task per job."""
    it = iter(jobs)

    async def loop() -> None:
        for job in it:
            await worker(job)

    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(loop())


@dataclass
class Timing:
    wall: float
    cpu: float


def timed(fn: Callable[[], T]) -> tuple[T, Timing]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, Timing(time.perf_counter() - t0, time.process_time() - c0)


def best(timings: Sequence[Timing]) -> Timing:
    """Fastest wall time of the repeats (the least disturbed run), with its own CPU."""
    return min(timings, key=lambda t: t.wall)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def tree_state() -> str:
    """The commit measured, `-dirty` when the work tree has changes (or why it is unknown)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(
            ["git", "-C", root, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return out.stdout.strip()


def machine_facts() -> dict[str, Any]:
    return {
        "tree": tree_state(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": {name: version(name) for name in PACKAGES},
    }
