"""Phone validation: E.164 and national numbers through `validate_all` and `normalize_phone`.

Run with `python -m benchmarks.phones [N]` (N pairs per bulk case, 1,000,000 by default).
Standalone: it needs only the library and `phonenumbers`.

Bulk rows: N pairs through `validate_all`, best of 3, in seconds (goals: E.164 under
1 s per million, national French numbers a few seconds per million). Per-call rows:
microseconds per `normalize_phone` call, best of 3 runs over distinct numbers, for
national numbers of regions other than the default: the fast path, `phonenumbers` for
numbers it leaves (distinct, so each one is parsed, then repeated, so the cache answers),
and a bare `phonenumbers` parse for scale. Wall and CPU time of the fastest run: on a
shared machine, CPU time is the steadier of the two.
"""

from __future__ import annotations

import gc
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version

import phonenumbers

from smspartner_async._validate import _parse_national, normalize_phone, validate_all

from ._report import Progress

REPEAT = 3
PER_CALL = 20_000
#: Wall seconds of a run on the project's 2-core VM: the per-call rows (fixed size), and
#: the bulk rows per million pairs. For the estimate said at the start.
FIXED_SECONDS = 4.0
SECONDS_PER_MILLION = 9.0


def _distinct(i: int) -> int:
    """The i-th of 10**8 distinct 8-digit suffixes, scattered (7919 is coprime with 10**8)."""
    return (i * 7919 + 13) % 100_000_000


def e164_pairs(n: int) -> list[tuple[str, int]]:
    return [(f"+336{_distinct(i):08d}", 1_000_000 + i // 3) for i in range(n)]


def national_pairs(n: int) -> list[tuple[str, int]]:
    return [(f"06{_distinct(i):08d}", 1_000_000 + i // 3) for i in range(n)]


def best(fn: Callable[[], object], repeat: int = REPEAT) -> tuple[float, float]:
    """Wall and CPU seconds of the fastest of `repeat` runs (garbage collection on, as in
    real use). CPU time is the steadier figure on a shared machine."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return min(times)


def per_call(phones: Sequence[str], region: str, *, clear: bool) -> tuple[float, float]:
    """Microseconds per `normalize_phone(phone, region)`; `clear` empties the parse cache first."""

    def run() -> None:
        if clear:
            _parse_national.cache_clear()
        for phone in phones:
            normalize_phone(phone, region)

    run()  # metadata loaded, cache warm when not cleared
    wall, cpu = best(run)
    return wall / len(phones) * 1e6, cpu / len(phones) * 1e6


def bare_parse(phones: Sequence[str], region: str) -> tuple[float, float]:
    """Microseconds per parse + is_possible + E.164 format straight through `phonenumbers`."""

    def run() -> None:
        for phone in phones:
            number = phonenumbers.parse(phone, region)
            phonenumbers.is_possible_number_with_reason(number)
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    wall, cpu = best(run)
    return wall / len(phones) * 1e6, cpu / len(phones) * 1e6


def bulk(pairs: list[tuple[str, int]]) -> tuple[float, float]:
    """Wall and CPU seconds for `validate_all(pairs, "FR")`, best of 3."""
    return best(lambda: validate_all(pairs, "FR"))


def main(argv: Sequence[str]) -> None:
    n = int(argv[0]) if argv else 1_000_000
    m = PER_CALL
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"phonenumbers {version('phonenumbers')}, best of {REPEAT}\n"
    )
    rows: list[tuple[str, str, str, str]] = []
    expect = FIXED_SECONDS + SECONDS_PER_MILLION * n / 1e6
    progress = Progress("benchmarks.phones", 7, expect=f"about {expect:.0f} s")
    for name, pairs, goal in (
        (f"validate_all, {n:,} E.164 pairs", e164_pairs, "< 1 s"),
        (f"validate_all, {n:,} national FR pairs (06...)", national_pairs, "a few s"),
    ):
        wall, cpu = bulk(pairs(n))
        rows.append((name, f"{wall:.3f} s", f"{cpu:.3f} s", f"goal {goal}"))
        progress.step(name)
    jp = [f"090{_distinct(i):08d}" for i in range(m)]
    gb = [f"077009{_distinct(i) % 100_000:05d}" for i in range(m)]
    # Argentina's mobile "15" is rewritten by a transform rule: always phonenumbers.
    ar = [f"01115{_distinct(i):08d}" for i in range(m)]
    per_call_rows = [
        ("national JP (090...), fast path", jp, "JP", False, ""),
        ("national GB (07700...), fast path", gb, "GB", False, ""),
        ("national AR (011 15...), distinct", ar, "AR", True, "phonenumbers"),
        ("national AR, one number repeated", ar[:1] * m, "AR", False, "cache"),
    ]
    for name, phones, region, clear, note in per_call_rows:
        wall, cpu = per_call(phones, region, clear=clear)
        rows.append((f"normalize_phone, {name}", f"{wall:.2f} µs", f"{cpu:.2f} µs", note))
        progress.step(name)
    wall, cpu = bare_parse(jp, "JP")
    rows.append(
        ("phonenumbers parse + is_possible + format, JP", f"{wall:.2f} µs", f"{cpu:.2f} µs", "")
    )
    progress.step("bare phonenumbers parse")
    progress.finish()

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'wall':>10}  {'cpu':>10}  note")
    print(f"{'-' * width}  {'-' * 10}  {'-' * 10}  {'-' * 12}")
    for name, wall_text, cpu_text, note in rows:
        print(f"{name:<{width}}  {wall_text:>10}  {cpu_text:>10}  {note}")
    info = _parse_national.cache_info()
    print(f"\nparse cache: {info.currsize:,} entries of at most {info.maxsize:,}")


if __name__ == "__main__":
    main(sys.argv[1:])
