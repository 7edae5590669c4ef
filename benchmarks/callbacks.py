"""Push and pull: look-ups and staleness with delivery-report callbacks as hints, in simulated time.

    python -m benchmarks.callbacks                    # 100,000 messages, every scenario
    python -m benchmarks.callbacks --messages 20000 --json

Each message is sent at a time spread over `--send-over` seconds; its report
becomes available at the API after a delay drawn from a realistic spread: most
within seconds, some within minutes, a few over hours and a tail up to 47 hours
(`_report_delay`; 0.3% never get a report and expire at 48 hours). A callback
for a report is delivered with the scenario's probability, 0.1 to 2 seconds
after the report is available (never before: the API would not know it yet).

Scenarios, all on the same messages and draws, in one run:

- **poll-only**: the plain `Schedule()`, no callback;
- **push 100% / 90% / 0%**: `PushSchedule()` and that share of callbacks;
- **hints, plain schedule**: 100% of callbacks with the plain `Schedule()`, to
  show what the schedule change is worth on its own.

What runs is the watch's policy, event by event: the real `Schedule` /
`PushSchedule` (its liveness included: `heard()` at each hint taken), a pair's
checks and settling as `watch._changes.decide` does them (a check at or after
the report settles it; the window's end expires it), and the hint semantics of
`WatchStore.hint` (a pending pair becomes due, a settled one is ignored). A
hinted pair is asked in the first round after its hint, rounds after hints
being on a `--round-every` grid (the bound the watcher documents); a scheduled
check is asked at its due time. Staleness is from the report becoming available
at the API to the round that finds it (the consumer's change). Look-ups are
pairs asked; calls are `ceil(pairs / 500)` per round.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
import time
from typing import Any

from smspartner_async.callbacks import PushSchedule
from smspartner_async.watch import Schedule

T0 = 1_700_000_000.0
BATCH = 500


def _report_delay(rng: random.Random) -> float | None:
    """Seconds from send to report at the API; None: never (the pair expires)."""
    u = rng.random()
    if u < 0.92:
        return rng.lognormvariate(math.log(4.0), 0.7)  # seconds: median 4 s, 90% within 10 s
    if u < 0.97:
        return rng.lognormvariate(math.log(120.0), 1.0)  # minutes: a phone briefly off
    if u < 0.99:
        return math.exp(rng.uniform(math.log(600.0), math.log(86_400.0)))  # hours
    if u < 0.997:
        return rng.uniform(86_400.0, 47 * 3_600.0)  # the tail, up to the 48-hour validity
    return None


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def simulate(
    messages: list[tuple[float, float | None, float | None]],
    schedule: Schedule,
    clock: _Clock,
    round_every: float,
) -> dict[str, Any]:
    """Runs the watch's policy over `messages` ((sent, report at, callback at) each)."""
    n = len(messages)
    push = schedule if isinstance(schedule, PushSchedule) else None
    due = [0.0] * n
    version = [0] * n
    settled = [False] * n
    # Events: (time, kind, message, version); kinds in the order they run at one instant.
    send, hint, check = 0, 1, 2
    events: list[tuple[float, int, int, int]] = []
    for i, (sent, _, callback) in enumerate(messages):
        events.append((sent, send, i, 0))
        if callback is not None:
            events.append((callback, hint, i, 0))
    heapq.heapify(events)
    asked_at: dict[float, int] = {}  # round time -> pairs asked (calls are per round)
    staleness: list[float] = []
    looks = expired = hinted_settled = ignored_hints = 0
    while events:
        at, kind, i, v = heapq.heappop(events)
        clock.now = at
        sent, report, _ = messages[i]
        if kind == send:
            due[i] = schedule.first_check(sent)
            heapq.heappush(events, (due[i], check, i, version[i]))
        elif kind == hint:
            if settled[i]:
                ignored_hints += 1
                continue
            if push is not None:
                push.heard()
            when = math.ceil(at / round_every) * round_every
            if when < due[i]:
                version[i] += 1
                due[i] = when
                heapq.heappush(events, (when, check, i, version[i]))
        else:
            if v != version[i] or settled[i]:
                continue
            looks += 1
            asked_at[at] = asked_at.get(at, 0) + 1
            if report is not None and at >= report:
                settled[i] = True
                staleness.append(at - report)
                hinted_settled += messages[i][2] is not None and messages[i][2] <= at
                continue
            if at >= sent + schedule.window:
                settled[i] = True
                expired += 1
                continue
            version[i] += 1
            due[i] = schedule.next_check(sent, max(due[i], at))
            heapq.heappush(events, (due[i], check, i, version[i]))
    staleness.sort()
    calls = sum(math.ceil(k / BATCH) for k in asked_at.values())
    return {
        "messages": n,
        "lookups": looks,
        "lookups_per_message": looks / n,
        "calls": calls,
        "rounds": len(asked_at),
        "pairs_per_call": looks / max(calls, 1),
        "stale_p50_s": _quantile(staleness, 0.5),
        "stale_p99_s": _quantile(staleness, 0.99),
        "stale_max_s": staleness[-1] if staleness else 0.0,
        "reported": len(staleness),
        "expired": expired,
        "ignored_hints": ignored_hints,
    }


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


def draw(n: int, seed: int, send_over: float) -> list[tuple[float, float | None, float]]:
    """(sent, report at or None, callback delay) per message; one draw for every scenario."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sent = T0 + rng.uniform(0.0, send_over)
        delay = _report_delay(rng)
        out.append((sent, None if delay is None else sent + delay, rng.uniform(0.1, 2.0)))
    return out


def scenario(
    drawn: list[tuple[float, float | None, float]], share: float, seed: int
) -> list[tuple[float, float | None, float | None]]:
    """The messages with `share` of their callbacks delivered (the same ones at every run)."""
    rng = random.Random(seed + 1)
    out: list[tuple[float, float | None, float | None]] = []
    for sent, report, lag in drawn:
        keep = rng.random() < share
        out.append((sent, report, report + lag if report is not None and keep else None))
    return out


def run(n: int, seed: int, send_over: float, round_every: float) -> list[dict[str, Any]]:
    drawn = draw(n, seed, send_over)
    plans: list[tuple[str, float, bool]] = [
        ("poll-only", 0.0, False),
        ("push 100%", 1.0, True),
        ("push 90%", 0.9, True),
        ("push 0%", 0.0, True),
        ("hints, plain schedule", 1.0, False),
    ]
    results = []
    for name, share, with_push in plans:
        clock = _Clock()
        schedule: Schedule = PushSchedule(clock=clock) if with_push else Schedule()
        started = time.perf_counter()
        result = simulate(scenario(drawn, share, seed), schedule, clock, round_every)
        result.update(scenario=name, share=share, wall_s=time.perf_counter() - started)
        results.append(result)
    return results


def check_goals(results: list[dict[str, Any]]) -> list[str]:
    """The issue's goals, each as a line saying met or not."""
    by = {r["scenario"]: r for r in results}
    poll, full, most, none = by["poll-only"], by["push 100%"], by["push 90%"], by["push 0%"]
    goals = [
        ("push 100%: <= 1.05 look-ups per message", full["lookups_per_message"] <= 1.05),
        ("push 100%: p99 staleness <= 3 s", full["stale_p99_s"] <= 3.0),
        ("push 90%: <= 1.3 look-ups per message", most["lookups_per_message"] <= 1.3),
        (
            "push 0%: the poll-only outcome (look-ups, calls, staleness)",
            (none["lookups"], none["calls"], none["stale_p99_s"], none["stale_max_s"])
            == (poll["lookups"], poll["calls"], poll["stale_p99_s"], poll["stale_max_s"]),
        ),
        ("push 0%: no more calls than poll-only", none["calls"] <= poll["calls"]),
    ]
    return [f"{'met    ' if ok else 'NOT MET'}  {text}" for text, ok in goals]


def table(results: list[dict[str, Any]]) -> str:
    head = "| scenario | look-ups / message | calls | pairs / call | staleness p50 / p99 / max |"
    lines = [head, "|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['lookups_per_message']:.3f} | {r['calls']:,} "
            f"| {r['pairs_per_call']:.0f} | {_seconds(r['stale_p50_s'])} / "
            f"{_seconds(r['stale_p99_s'])} / {_seconds(r['stale_max_s'])} |"
        )
    return "\n".join(lines)


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    if value < 3_600:
        return f"{value / 60:.1f} min"
    return f"{value / 3_600:.1f} h"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--send-over", type=float, default=600.0, help="seconds of sends")
    parser.add_argument(
        "--round-every", type=float, default=0.5, help="grid of the rounds after hints (s)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario")
    args = parser.parse_args(argv)
    results = run(args.messages, args.seed, args.send_over, args.round_every)
    if args.json:
        for result in results:
            print(json.dumps(result))
        return 0
    print(
        f"{args.messages:,} messages sent over {args.send_over:g} s, seed {args.seed}, "
        f"rounds after hints every {args.round_every:g} s (simulated time)\n"
    )
    print(table(results))
    print()
    for line in check_goals(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
