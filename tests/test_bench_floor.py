"""The floor ladder (`benchmarks.floor`) keeps running as the library changes: every rung
does the whole job (each checks it got one item per pair) and the report lists them all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.floor import RUNGS

ROOT = Path(__file__).resolve().parent.parent


def test_every_rung_runs_and_the_report_lists_each_with_its_ratio_to_raw() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.floor", "--pairs", "1500", "--turns", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    tables = done.stdout.split("\n## ")[1:]
    assert [t.splitlines()[0] for t in tables] == [
        "json, gc on",
        "json, gc off",
        "xml, gc on",
        "xml, gc off",
    ]
    for table in tables:
        rows = [line for line in table.splitlines() if line.startswith("| ") and "x |" in line]
        assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == list(RUNGS)
        assert rows[0].endswith("| 1.00x |")  # raw, the reference
    assert done.stderr.splitlines()[0].startswith("benchmarks.floor: 4 steps, expect about ")
