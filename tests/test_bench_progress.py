"""Long benchmarks say before they start what they will take, then show their progress.

`python -m benchmarks.watch` ran two and a half minutes without a word. The
benchmarks share `benchmarks._report.Progress`, which writes to stderr so that
stdout stays the results.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from benchmarks._report import Progress, duration

ROOT = Path(__file__).resolve().parent.parent


def test_progress_says_what_it_will_take_first_then_each_step() -> None:
    out = io.StringIO()
    progress = Progress("bench", 3, expect="about 2 min", stream=out)
    assert out.getvalue().splitlines() == [
        "bench: 3 steps, expect about 2 min; progress below, Ctrl-C stops it"
    ]
    progress.step("first")
    progress.step("second")
    progress.step("third")
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("[1/3] first: ")
    assert "left" in lines[1]
    assert lines[3].startswith("[3/3] third: ")
    assert "left" not in lines[3]
    assert lines[4].startswith("bench: done in ")


def test_durations() -> None:
    assert [duration(s) for s in (-1, 4.4, 59.6, 150)] == ["0 s", "4 s", "1 min 00 s", "2 min 30 s"]


def test_a_benchmark_announces_itself_on_stderr_and_keeps_stdout_for_results() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.phones", "2000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stderr.splitlines()
    assert lines[0].startswith("benchmarks.phones: 7 steps, expect about ")
    assert sum(line.startswith("[") for line in lines) == 7
    assert "expect" not in done.stdout
    assert "validate_all" in done.stdout
