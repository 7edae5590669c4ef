"""Result sections, goals, and their rendering as text, markdown and JSON."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


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
