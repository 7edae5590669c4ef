"""This tree against a reference commit (main, `REFERENCE`), side by side, in one run.

The figures the core's goals are stated in (issue #23), each beside the reference's,
measured in the same run with the contenders taking turns (A B C, then C B A, ...):

- client CPU per item of `multi_status`, 100,000 pairs, no latency, concurrency 8, JSON and
  XML, on the default transport, against raw aiohttp + orjson (lxml for XML);
- wall time of the same run against raw's (no latency);
- the worst event-loop stall while `bulk_status` decodes a 100,000-recipient answer.

Each contender is a process of its own (`benchmarks.contender`); the reference's package is
extracted from git (`previous.previous_source`) and put first on its `PYTHONPATH`. The lag is
measured in a fresh process per turn and tree (`python -m benchmarks.core --lag FMT`).

    python -m benchmarks.core [--ref bdaea71] [--turns 5] [--pairs 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._profile import Profile
from ._report import Goal, Section
from .previous import ROOT, Contender, previous_source
from .server import ServerProcess

REFERENCE = "bdaea71"
LAG_RECIPIENTS = 100_000


def _env(source: Path | None) -> dict[str, str]:
    path = [str(source)] if source else []
    path += [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _lag_once(source: Path | None, url: str, fmt: str, turns: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "benchmarks.core",
            "--lag",
            fmt,
            "--url",
            url,
            "--turns",
            str(turns),
        ],
        cwd=ROOT,
        env=_env(source),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _lag_main(url: str, fmt: str, turns: int) -> None:
    import asyncio

    from .loop_lag import _lag_of_call

    figures = asyncio.run(_lag_of_call(url, fmt, "httpx", LAG_RECIPIENTS, turns))
    print(json.dumps(figures))


def measure(
    ref: str, n: int, turns: int, lag_only: bool = False, cpu_only: bool = False
) -> dict[str, Any]:
    source, why = previous_source(ref)
    if source is None:
        raise SystemExit(f"{ref} unavailable: {why}")
    labels = {
        "main": (f"{ref} (main), default transport", "httpx", source),
        "tree": ("this tree, default transport", "httpx", None),
        "raw": ("raw aiohttp + orjson / lxml", "raw", None),
    }
    figures: dict[str, dict[str, list[float]]] = {}
    with ServerProcess() as srv:
        contenders = {key: Contender(kind, src) for key, (_, kind, src) in labels.items()}
        try:
            for contender in contenders.values():
                contender.start()
            for fmt in () if lag_only else ("json", "xml"):
                job = {"url": srv.url, "pairs": n, "concurrency": 8, "format": fmt}
                for contender in contenders.values():
                    contender.run(job)  # warm-up
                cpu: dict[str, list[float]] = {key: [] for key in contenders}
                wall: dict[str, list[float]] = {key: [] for key in contenders}
                for turn in range(turns):
                    keys = list(contenders) if turn % 2 == 0 else list(contenders)[::-1]
                    for key in keys:
                        out = contenders[key].run(job)
                        cpu[key].append(out["cpu"] / n * 1e6)
                        wall[key].append(out["wall"])
                figures[f"cpu-{fmt}"] = cpu
                figures[f"wall-{fmt}"] = wall
        finally:
            for contender in contenders.values():
                contender.stop()
        for fmt in () if cpu_only else ("json", "xml"):
            lag: dict[str, list[float]] = {"main": [], "tree": []}
            for turn in range(max(2, turns // 2)):
                order = [("main", source), ("tree", None)]
                for key, src in order if turn % 2 == 0 else order[::-1]:
                    lag[key].append(_lag_once(src, srv.url, fmt, 3)["worst_lag"] * 1e3)
            figures[f"lag-{fmt}"] = lag
    return {"ref": ref, "pairs": n, "turns": turns, "figures": figures, "labels": labels}


def report(data: dict[str, Any]) -> str:
    f = data["figures"]
    best = {cell: {k: min(v) for k, v in by.items()} for cell, by in f.items()}
    lines = [
        f"# this tree vs {data['ref']} (main), {data['pairs']:,} pairs, c=8, no latency, "
        f"best of {data['turns']} turns (lag: worst of 3 calls, best of turns)",
        "",
        "| figure | raw | main | this tree | main / raw | tree / raw | tree / main | "
        "tree / main, turn by turn (median, range) | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("client CPU us/item, JSON", "cpu-json", "<= 2x raw"),
        ("client CPU us/item, XML", "cpu-xml", "<= 2x raw"),
        ("wall s, JSON", "wall-json", "<= 1.4x raw"),
        ("wall s, XML", "wall-xml", ""),
    ]
    for label, cell, goal in rows:
        b = best[cell]
        turns = [t / m for t, m in zip(f[cell]["tree"], f[cell]["main"], strict=True)]
        lines.append(
            f"| {label} | {b['raw']:.3f} | {b['main']:.3f} | {b['tree']:.3f} | "
            f"{b['main'] / b['raw']:.2f}x | {b['tree'] / b['raw']:.2f}x | "
            f"{b['tree'] / b['main']:.2f}x | {statistics.median(turns):.2f}x "
            f"({min(turns):.2f}-{max(turns):.2f}) | {goal} |"
        )
    for fmt in ("json", "xml"):
        lag = f[f"lag-{fmt}"]
        lines.append(
            f"| worst loop stall ms, bulk_status {LAG_RECIPIENTS:,} {fmt.upper()} | - | "
            f"{min(lag['main']):.1f} (median {statistics.median(lag['main']):.1f}) | "
            f"{min(lag['tree']):.1f} (median {statistics.median(lag['tree']):.1f}) | | | "
            f"{min(lag['tree']) / min(lag['main']):.2f}x | | <= 50 ms |"
        )
    return "\n".join(lines)


def run(profile: Profile) -> Section:
    """The `core` scenario of `python -m benchmarks.run`: the table above, with its goals."""
    data = measure(REFERENCE, profile.floor_pairs, profile.floor_turns)
    f = data["figures"]
    best = {cell: {k: min(v) for k, v in by.items()} for cell, by in f.items()}
    section = Section(
        "core",
        f"This tree against {REFERENCE} (main), {data['pairs']:,} pairs, c=8, no latency, "
        f"default transport, best of {data['turns']} turns",
        ["figure", "raw", REFERENCE, "this tree", "tree / raw", "tree / main"],
    )
    for label, cell in (
        ("client CPU us/item, JSON", "cpu-json"),
        ("client CPU us/item, XML", "cpu-xml"),
        ("wall s, JSON", "wall-json"),
        ("wall s, XML", "wall-xml"),
    ):
        b = best[cell]
        row = [label, b["raw"], b["main"], b["tree"], b["tree"] / b["raw"]]
        section.rows.append([*row, b["tree"] / b["main"]])
    for fmt in ("json", "xml"):
        b = best[f"lag-{fmt}"]
        label = f"worst loop stall ms, bulk_status {LAG_RECIPIENTS:,} {fmt.upper()}"
        section.rows.append([label, "-", b["main"], b["tree"], "-", b["tree"] / b["main"]])
    section.goals += [
        Goal(
            "client CPU per item / raw, JSON",
            best["cpu-json"]["tree"] / best["cpu-json"]["raw"],
            2.0,
        ),
        Goal(
            "client CPU per item / raw, XML", best["cpu-xml"]["tree"] / best["cpu-xml"]["raw"], 2.0
        ),
        Goal(
            "wall / raw, JSON, no latency",
            best["wall-json"]["tree"] / best["wall-json"]["raw"],
            1.4,
        ),
        Goal("worst loop stall, bulk_status JSON", best["lag-json"]["tree"], 50.0, " ms"),
        Goal("worst loop stall, bulk_status XML", best["lag-xml"]["tree"], 50.0, " ms"),
    ]
    section.notes.append(
        "raw: aiohttp + orjson (lxml for XML); lag: worst of 3 calls per fresh process, "
        "best of the turns; contenders take turns (A B C, C B A)"
    )
    section.data = data["figures"]
    return section


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.core", description=__doc__)
    parser.add_argument("--ref", default=REFERENCE)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--lag-only", action="store_true", help="the loop stall only")
    parser.add_argument("--cpu-only", action="store_true", help="CPU and wall only")
    parser.add_argument("--lag", choices=("json", "xml"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lag:
        _lag_main(args.url, args.lag, args.turns)
        return
    data = measure(args.ref, args.pairs, args.turns, args.lag_only, args.cpu_only)
    if not (args.lag_only or args.cpu_only):
        print(report(data))
    print(json.dumps(data["figures"]))


if __name__ == "__main__":
    main()
