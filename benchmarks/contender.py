"""One contender of the `previous` scenario, in a process of its own, driven over stdin/stdout.

`python -P -m benchmarks.contender NAME` imports whichever `smspartner_async` comes first on
`PYTHONPATH` (`-P` keeps the working directory off `sys.path`, so the previous release's source
can come first), prints one JSON line naming the module it loaded, then answers jobs:

- stdin, one JSON job per line: `{"url": ..., "pairs": N, "concurrency": C, "format": "json"}`,
  with `"profile": PATH` to write a cProfile of the run there;
- stdout, one JSON line per job: `{"wall": s, "cpu": s, "items": n}`, the wall time and this
  process's CPU time (user + system, every thread) over one `asyncio.run` of the job.

Contenders (NAME): `previous` and `httpx` (the library's default client), `before` (the
default client, `transport="httpx"`, of whichever tree is first on `PYTHONPATH`: the design
before cancellation safety in the `safety` scenario), `one-pool` (this tree's client over one
httpcore pool, as before: `library.multi_status_one_pool`), `aiohttp` (`transport="aiohttp"`), `raw`
(aiohttp + orjson, or lxml for XML: `baselines.raw_aiohttp`).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import sys
import time
from collections.abc import Coroutine
from functools import cache
from typing import Any

from . import baselines, library
from ._common import make_pairs

CONTENDERS = ("previous", "before", "one-pool", "aiohttp", "httpx", "raw")


@cache
def _pairs(n: int) -> list[tuple[str, int]]:
    return make_pairs(n)


def _work(name: str, job: dict[str, Any]) -> Coroutine[Any, Any, list[Any]]:
    url, concurrency, fmt = job["url"], job["concurrency"], job["format"]
    pairs = _pairs(job["pairs"])
    if name == "raw":
        return baselines.raw_aiohttp(url, pairs, concurrency, xml=fmt == "xml")
    if name == "one-pool":
        return library.multi_status_one_pool(url, pairs, concurrency, fmt)
    transport = {"previous": None, "before": "httpx", "aiohttp": "aiohttp", "httpx": "httpx"}[name]
    return library.multi_status(url, pairs, concurrency, fmt, transport)


def run_job(name: str, job: dict[str, Any]) -> dict[str, Any]:
    gc.collect()  # every contender starts its run with the same clean heap
    profiler = cProfile.Profile() if job.get("profile") else None
    c0, t0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    out = asyncio.run(_work(name, job))
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if profiler is not None:
        profiler.dump_stats(job["profile"])
    return {"wall": wall, "cpu": cpu, "items": len(out)}


def main() -> None:
    name = sys.argv[1]
    if name not in CONTENDERS:
        raise SystemExit(f"unknown contender {name!r}; one of {CONTENDERS}")
    import smspartner_async

    print(json.dumps({"library": smspartner_async.__file__}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run_job(name, json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
