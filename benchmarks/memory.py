"""Peak RSS, each scenario in a fresh subprocess (VmHWM, else `ru_maxrss`; KiB on Linux).

Child: `python -m benchmarks.memory SCENARIO N URL` prints one JSON line
`{"baseline_kib": ..., "peak_kib": ..., "count": ...}`; `run(profile)` drives the children.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import baselines, library
from ._common import gen_pairs, make_pairs
from ._profile import Profile
from ._report import Goal, Section
from .server import NAME, ServerProcess

SCENARIOS = ("stream", "keep", "raw-keep")


def _rss_kib() -> int:
    """Peak RSS of this process image, KiB.

    Linux carries `ru_maxrss` over from the forking parent across exec (a child of a 200 MiB
    parent starts at 200 MiB), so read this image's own high-water mark, VmHWM, when there is one.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(scenario: str, n: int, url: str) -> dict[str, Any]:
    gc.collect()
    if scenario == "stream":
        baseline = _rss_kib()
        count = asyncio.run(library.iter_multi_status(url, gen_pairs(n), 8))
    else:
        pairs = make_pairs(n)
        gc.collect()
        baseline = _rss_kib()
        if scenario == "keep":
            results: list[Any] = asyncio.run(library.multi_status(url, pairs, 8))
        else:
            results = asyncio.run(baselines.raw_aiohttp(url, pairs, 8))
        count = len(results)
    return {"baseline_kib": baseline, "peak_kib": _rss_kib(), "count": count}


def _spawn(scenario: str, n: int, url: str) -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "benchmarks.memory", scenario, str(n), url]
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{scenario} child failed: {tail}")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def run(profile: Profile) -> Section:
    section = Section(
        "memory",
        "Memory: peak RSS, one fresh process per scenario, concurrency 8",
        ["scenario", "pairs", "baseline MiB", "peak MiB", "B per result over baseline"],
    )
    skip = library.unavailable()
    plan = [("raw-keep", profile.keep_pairs)]
    if not skip:
        plan = [("stream", profile.stream_pairs), ("keep", profile.keep_pairs), *plan]
    else:
        section.notes.append(f"library skipped: {skip}")
    with ServerProcess() as srv:
        for scenario, n in plan:
            try:
                d = _spawn(scenario, n, srv.url)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                section.notes.append(str(exc))
                continue
            if d["count"] != n:
                section.notes.append(f"{scenario}: {d['count']} results for {n} pairs")
            per = (d["peak_kib"] - d["baseline_kib"]) * 1024 / n
            section.rows.append([scenario, n, d["baseline_kib"] / 1024, d["peak_kib"] / 1024, per])
            section.data[scenario] = {"pairs": n, **d, "bytes_per_result": per}
            if scenario == "stream":
                # Streaming from a generator: the goal is on the whole process.
                goal = f"peak RSS streaming {n:,} pairs through iter_multi_status"
                section.goals.append(Goal(goal, d["peak_kib"] / 1024, 120.0, " MiB"))
            elif scenario == "keep":
                section.goals.append(Goal("bytes per kept result", per, 400.0, " B"))
    section.notes += [
        "stream: results dropped as they come; keep: multi_status, every result kept "
        "(baseline taken after building the input list); raw-keep: raw aiohttp + orjson dicts",
        f"server: {NAME}",
    ]
    return section


if __name__ == "__main__":
    scenario, n, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if scenario not in SCENARIOS:
        raise SystemExit(f"unknown scenario {scenario!r}; one of {SCENARIOS}")
    print(json.dumps(child(scenario, n, url)))
