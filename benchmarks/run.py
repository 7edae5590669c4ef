"""Entry point: `python -m benchmarks.run [--quick|--full] [--only NAME ...]`.

Prints a table per scenario and writes benchmarks/results/latest.md (committed) and
benchmarks/results/latest.json (machine-readable, ignored by git).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import http_scenarios, loop_lag, memory, micro, previous
from ._common import machine_facts
from ._profile import DEFAULT, FULL, QUICK, Profile
from ._report import Progress, Section, as_json, markdown, text_section

RESULTS = Path(__file__).parent / "results"
#: What a whole run takes on the project's 2-core VM, said before it starts.
EXPECT = {"quick": "about 1 min", "default": "about 5 min", "full": "10 min or more"}
SCENARIOS: dict[str, Callable[[Profile], Section | list[Section]]] = {
    "server": http_scenarios.server_ceiling,
    "transports": http_scenarios.transports,
    "latency": http_scenarios.latency_bound,
    "cpu": http_scenarios.cpu_bound,
    "users": http_scenarios.users,
    "previous": previous.run,
    "loop_lag": loop_lag.run,
    "micro": micro.run,
    "memory": memory.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    size.add_argument("--full", action="store_true", help="goal sizes, more repeats")
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), help="run these scenarios only"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL if args.full else DEFAULT
    names = args.only or list(SCENARIOS)
    command = "python -m benchmarks.run" + (f" --{profile.name}" if profile is not DEFAULT else "")
    if args.only:
        command += "".join(f" --only {n}" for n in names)
    facts = machine_facts()
    print(f"profile {profile.name}; machine: {json.dumps(facts)}", flush=True)
    sections: list[Section] = []
    started = time.perf_counter()
    expect = EXPECT[profile.name] if not args.only else "less than a whole run"
    progress = Progress("benchmarks.run", len(names), expect=f"{expect} ({', '.join(names)})")
    for name in names:
        t0 = time.perf_counter()
        result = SCENARIOS[name](profile)
        seconds = round(time.perf_counter() - t0, 1)
        for section in result if isinstance(result, list) else [result]:
            section.data["seconds"] = seconds
            sections.append(section)
            print(text_section(section), flush=True)
        print(f"({seconds} s)\n", flush=True)
        progress.step(name)
    print(f"total {time.perf_counter() - started:.0f} s")
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.md").write_text(markdown(sections, facts, command))
        report = as_json(sections, facts, command)
        (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    failed = [g for s in sections for g in s.goals if not g.passed]
    return 1 if failed and args.full else 0


if __name__ == "__main__":
    sys.exit(main())
