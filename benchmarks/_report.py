"""Result sections, goals, their rendering as text, markdown and JSON; progress of long runs."""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO


@dataclass
class Goal:
    """One goal of issue 7: `measured` must be at most `limit` (ratios, microseconds, ...)."""

    name: str
    measured: float
    limit: float
    unit: str = "x"

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        goal = f"goal <= {self.limit:g}{self.unit}"
        return f"{verdict} {self.name}: {self.measured:.3g}{self.unit} ({goal})"


@dataclass
class Section:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[fmt(v) for v in row] for row in rows]
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in cells]
    return out


def text_section(section: Section) -> str:
    cells = [[fmt(v) for v in row] for row in section.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(section.columns)]
    lines = [f"== {section.title} =="]
    if section.columns:
        lines.append("  ".join(c.ljust(w) for c, w in zip(section.columns, widths, strict=True)))
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    lines += [g.line() for g in section.goals]
    lines += [f"note: {n}" for n in section.notes]
    return "\n".join(lines)


def markdown(sections: list[Section], facts: dict[str, Any], command: str) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `{command}`.",
        "",
        f"Machine: {facts['cores']} cores, {facts['implementation']} {facts['python']}, "
        f"{facts['platform']}.",
        "",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in facts["packages"].items()) + ".",
        "",
        f"Tree measured: {facts.get('tree', 'unknown')}.",
        "",
    ]
    goals = [g for s in sections for g in s.goals]
    if goals:
        lines += ["## Goals", ""] + [f"- {g.line()}" for g in goals] + [""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        if s.columns and s.rows:
            lines += [*_table(s.columns, s.rows), ""]
        if s.goals:
            lines += [f"- {g.line()}" for g in s.goals] + [""]
        if s.notes:
            lines += [f"- {n}" for n in s.notes] + [""]
    return "\n".join(lines)


def as_json(sections: list[Section], facts: dict[str, Any], command: str) -> dict[str, Any]:
    return {
        "command": command,
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": facts,
        "sections": [
            {**asdict(s), "goals": [{**asdict(g), "passed": g.passed} for g in s.goals]}
            for s in sections
        ],
    }


def duration(seconds: float) -> str:
    """`2 min 30 s`, `45 s`: what a person waiting reads at a glance."""
    seconds = max(round(seconds), 0)
    minutes, secs = divmod(seconds, 60)
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


class Progress:
    """Says before a long benchmark starts what it will take, then how far it has got.

    Written to stderr, so that stdout stays the results (a table, or the JSON a
    parent process reads). The estimate of what is left assumes the remaining
    steps take as long as the done ones did on average.
    """

    def __init__(self, name: str, steps: int, *, expect: str, stream: TextIO | None = None) -> None:
        self._name = name
        self._steps = max(steps, 1)
        self._done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._started = time.monotonic()
        counted = f"{steps} step{'s' if steps != 1 else ''}"
        self._say(f"{name}: {counted}, expect {expect}; progress below, Ctrl-C stops it")

    def step(self, label: str) -> None:
        self._done += 1
        elapsed = time.monotonic() - self._started
        left = elapsed / self._done * (self._steps - self._done)
        tail = f", about {duration(left)} left" if self._done < self._steps else ""
        self._say(f"[{self._done}/{self._steps}] {label}: {duration(elapsed)} so far{tail}")

    def finish(self) -> None:
        self._say(f"{self._name}: done in {duration(time.monotonic() - self._started)}")

    def _say(self, line: str) -> None:
        print(line, file=self._stream, flush=True)
