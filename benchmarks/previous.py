"""The speed floor: this tree against the release before the one-pipeline redesign, side by side.

Four contenders, each in its own process (`benchmarks.contender`), against the canned server in
a third: the previous release's default client (its aiohttp pool driven directly), this tree's
`transport="aiohttp"` and default (`"httpx"`) clients, and raw aiohttp + orjson. They take turns
within one run (A B C D, then D C B A, ...) and the floors are ratios of one run's figures:
the VM's speed drifts by tens of percent between runs.

The previous release's package is extracted from git (`PREVIOUS_RELEASE`) under the temp
directory on first use, and put first on its contender's `PYTHONPATH`. Only the package is
extracted (`git archive`), not a whole worktree: the old `benchmarks/` must not shadow these.
Without git, or in a clone that lacks the commit (a shallow one), the scenario says so and
compares the other three.

`python -m benchmarks.previous --profile CONTENDER [--format xml] [--pairs N]` writes a
cProfile of one warm run of a contender to `$TMPDIR/smspartner-async-bench/CONTENDER-FORMAT.prof`
and prints its top functions.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from . import library
from ._profile import Profile
from ._report import Goal, Section
from .contender import CONTENDERS
from .server import NAME, ServerProcess

PREVIOUS_RELEASE = "efc6f03"
ROOT = Path(__file__).resolve().parent.parent
LABELS = {
    "previous": f"previous release {PREVIOUS_RELEASE}, default (direct aiohttp)",
    "aiohttp": 'this tree, transport="aiohttp"',
    "httpx": 'this tree, default transport="httpx"',
    "raw": "raw aiohttp + orjson (lxml for XML)",
}


@dataclass(frozen=True)
class Cell:
    """One measurement: every contender runs it in turn."""

    name: str
    latency: float
    concurrency: int
    format: str
    metric: str  # "cpu": client CPU per item; "wall": wall seconds


LATENCY = 0.05
CELLS = (
    Cell("cpu-json", 0.0, 8, "json", "cpu"),
    Cell("cpu-xml", 0.0, 8, "xml", "cpu"),
    Cell("wall-c32", LATENCY, 32, "json", "wall"),
    Cell("wall-c8", LATENCY, 8, "json", "wall"),
)


def previous_source(commit: str = PREVIOUS_RELEASE) -> tuple[Path | None, str]:
    """The directory holding `commit`'s `smspartner_async`, or None and why not."""
    target = Path(tempfile.gettempdir()) / "smspartner-async-bench" / commit
    if (target / "smspartner_async" / "__init__.py").is_file():
        return target, ""
    git = shutil.which("git")
    if git is None:
        return None, "git is not installed"
    found = subprocess.run(
        [git, "-C", str(ROOT), "rev-parse", "--verify", "--quiet", commit + "^{commit}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        return None, (f"commit {commit} is not in this clone (shallow? `git fetch --unshallow`)")
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", "--format=tar", commit, "smspartner_async"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return None, f"git archive {commit} failed: {archive.stderr.decode().strip()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=commit + ".", dir=target.parent))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(staging, filter="data")
    try:
        staging.rename(target)
    except OSError:  # another run extracted it first
        shutil.rmtree(staging, ignore_errors=True)
    return target, ""


class Contender:
    """A `benchmarks.contender` process; `run(job)` gives one run's wall and CPU seconds."""

    def __init__(self, name: str, source: Path | None = None) -> None:
        self.name = name
        self.source = source
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        path = [str(self.source)] if self.source else []
        path += [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "benchmarks.contender", self.name],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        loaded = Path(self._read()["library"]).resolve()
        expected = (self.source or ROOT) / "smspartner_async"
        if not loaded.is_relative_to(expected.resolve()):
            raise RuntimeError(f"{self.name}: loaded {loaded}, expected it under {expected}")

    def _read(self) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"contender {self.name} exited ({self._proc.wait()})")
        data: dict[str, Any] = json.loads(line)
        return data

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(job) + "\n")
        self._proc.stdin.flush()
        out = self._read()
        if out["items"] != job["pairs"]:
            raise RuntimeError(f"{self.name}: {out['items']} results for {job['pairs']} pairs")
        return out

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.close()  # the contender's loop ends at end of input
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()

    def __enter__(self) -> Contender:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _measure(
    contenders: list[Contender], servers: dict[float, str], n: int, turns: int
) -> dict[str, dict[str, list[float]]]:
    """{cell: {contender: [one figure per turn]}}: CPU us per item, or wall seconds."""
    figures: dict[str, dict[str, list[float]]] = {}
    for cell in CELLS:
        job = {
            "url": servers[cell.latency],
            "pairs": n,
            "concurrency": cell.concurrency,
            "format": cell.format,
        }
        for contender in contenders:
            contender.run(job)  # warm-up: the server's answer cache, imports, parser caches
        by_name: dict[str, list[float]] = {c.name: [] for c in contenders}
        for turn in range(turns):
            order = contenders if turn % 2 == 0 else contenders[::-1]
            for contender in order:
                out = contender.run(job)
                value = out["cpu"] / n * 1e6 if cell.metric == "cpu" else out["wall"]
                by_name[contender.name].append(value)
        figures[cell.name] = by_name
    return figures


def _ratio(figures: dict[str, list[float]], a: str, b: str) -> tuple[float, list[float]]:
    """Best of `a` / best of `b`, and the ratios of each turn (a and b ran side by side)."""
    if a not in figures or b not in figures:
        return math.nan, []
    return min(figures[a]) / min(figures[b]), [
        x / y for x, y in zip(figures[a], figures[b], strict=True)
    ]


def _spread(turns: list[float]) -> str:
    if not turns:
        return "n/a"
    return f"median {statistics.median(turns):.3f}, range {min(turns):.3f}-{max(turns):.3f}"


def run(profile: Profile) -> Section:
    n, lat = profile.floor_pairs, LATENCY
    section = Section(
        "previous",
        f"Against the previous release ({PREVIOUS_RELEASE}): {n:,} pairs, each contender in its "
        f"own process, taking turns, best of {profile.floor_turns}",
        [
            "contender",
            "JSON us CPU/item",
            "XML us CPU/item",
            "wall s c=32",
            "wall s c=8",
            "JSON CPU / prev",
            "XML CPU / prev",
            "c=32 wall / prev",
            "c=8 wall / raw",
        ],
    )
    skip = library.unavailable()
    if skip:
        section.notes.append(f"library skipped: {skip}")
        return section
    source, why = previous_source()
    names = [name for name in CONTENDERS if name != "previous" or source is not None]
    if source is None:
        section.notes.append(f"previous release skipped: {why}")
    with ServerProcess() as fast, ServerProcess(latency=lat) as slow:
        contenders = [Contender(name, source if name == "previous" else None) for name in names]
        try:
            for contender in contenders:
                contender.start()
            figures = _measure(contenders, {0.0: fast.url, lat: slow.url}, n, profile.floor_turns)
        finally:
            for contender in contenders:
                contender.stop()
    best = {cell: {name: min(values) for name, values in f.items()} for cell, f in figures.items()}
    ratios: dict[str, Any] = {}
    for name in names:
        row: list[Any] = [LABELS[name]]
        row += [best[cell.name][name] for cell in CELLS]
        row += [
            _ratio(figures["cpu-json"], name, "previous")[0],
            _ratio(figures["cpu-xml"], name, "previous")[0],
            _ratio(figures["wall-c32"], name, "previous")[0],
            _ratio(figures["wall-c8"], name, "raw")[0],
        ]
        section.rows.append(row)
    floors = (
        ("cpu-json", "aiohttp", "previous", 1.05, 'transport="aiohttp" client CPU per item, JSON'),
        ("cpu-xml", "aiohttp", "previous", 1.05, 'transport="aiohttp" client CPU per item, XML'),
        (
            "wall-c32",
            "aiohttp",
            "previous",
            1.05,
            f'transport="aiohttp" wall, {n:,} pairs, 50 ms, c=32',
        ),
        ("wall-c8", "httpx", "raw", 1.10, f"default transport wall, {n:,} pairs, 50 ms, c=8"),
    )
    for cell, a, b, limit, what in floors:
        ratio, turns = _ratio(figures[cell], a, b)
        against = "previous default" if b == "previous" else "raw aiohttp + orjson"
        ratios[f"{cell}:{a}/{b}"] = {"best": ratio, "turns": turns}
        if not math.isnan(ratio):
            section.goals.append(Goal(f"{what} / {against}", ratio, limit))
            section.notes.append(f"{what} / {against}, turn by turn: {_spread(turns)}")
    section.notes += [
        "client CPU per item: the contender process's CPU time (user + system, every thread) "
        "over one asyncio.run of multi_status (client created and closed inside), / pairs; "
        "no server latency, concurrency 8",
        f"wall: {lat * 1000:.0f} ms server latency; every cell starts with one warm-up run "
        "per contender; turns alternate A B C D / D C B A",
        f"server: {NAME} (one without latency, one with)",
    ]
    section.data = {"pairs": n, "figures": figures, "best": best, "ratios": ratios}
    return section


def profile_contender(name: str, fmt: str, n: int) -> Path:
    """cProfile of one warm run of `name` (no latency, concurrency 8); returns the .prof path."""
    source, why = previous_source() if name == "previous" else (None, "")
    if name == "previous" and source is None:
        raise SystemExit(f"previous release unavailable: {why}")
    out = Path(tempfile.gettempdir()) / "smspartner-async-bench" / f"{name}-{fmt}.prof"
    out.parent.mkdir(parents=True, exist_ok=True)
    with ServerProcess() as srv, Contender(name, source) as contender:
        job: dict[str, Any] = {"url": srv.url, "pairs": n, "concurrency": 8, "format": fmt}
        contender.run(job)
        timing = contender.run(job)
        contender.run({**job, "profile": str(out)})
    print(f"{name} {fmt}: unprofiled run {timing['cpu'] / n * 1e6:.2f} us CPU/item")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.previous", description=__doc__)
    parser.add_argument("--profile", choices=CONTENDERS, required=True)
    parser.add_argument("--format", choices=("json", "xml"), default="json")
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    path = profile_contender(args.profile, args.format, args.pairs)
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
