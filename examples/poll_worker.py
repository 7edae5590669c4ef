"""A worker that follows pairs from stdin/CSV or the sandbox until they settle.

    python examples/poll_worker.py --sandbox                       # simulated time: instant
    python examples/poll_worker.py --sandbox --speed 3600          # 48 hours in 48 s
    SMSPARTNER_API_KEY=... python examples/poll_worker.py pairs.csv --state watch.db
    SMSPARTNER_API_KEY=... python examples/poll_worker.py < pairs.csv

Input lines are `phone,message_id[,sent_at]` (a header line is skipped; `sent_at`
is epoch seconds or ISO 8601 with an offset, when the message left: its schedule
and 48-hour window count from it, default now). With `--sandbox`, pairs come from
the file if one is given, else `--pairs` sampled from the emulator's dataset.

The polling is the library's: `watch()` asks about every pending pair on a growing
schedule (seconds apart at first, hourly later), in full 500-pair calls through
the client's concurrency, retries and rate limit, and yields each change: a pair's
first status, then each new one, and last the one that settles it (a final
status, the API's lasting "not found", or its window running out). This worker
prints each and a summary. With `--state FILE` the watch lives in a SQLite file:
stopped (Ctrl-C) or killed, the same command goes on where it stopped, and pairs
already settled are not asked about again.

With `--sandbox`, the emulator's statuses and the watch share one clock: by
default a simulated one that jumps forward when the watch sleeps (the whole
window in an instant), or with `--speed N` one running N times faster than the
wall's (`FastClock`), where changes arrive as they would, compressed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing
from datetime import datetime
from typing import IO

from smspartner_async import InvalidInputError, SMSPartnerClient, SMSPartnerError
from smspartner_async.watch import (
    Clock,
    SentAt,
    SettleReason,
    Sleep,
    SQLiteStore,
    StatusChange,
    WatchStore,
    watch,
)

Pair = tuple[str, str]


class SimulatedClock:
    """Epoch seconds that move only when slept on, at once: 48 hours of watch in an instant."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)  # let the rest of the loop run


def read_pairs(lines: Iterable[str]) -> tuple[list[Pair], list[SentAt | None] | None]:
    """Pairs from `phone,message_id[,sent_at]` lines, and their send times (None: none given).

    Raises ValueError naming the line of a bad `sent_at`; bad phones and ids are
    the watch's to report (`InvalidInputError`, with the pair's index).
    """
    pairs: list[Pair] = []
    times: list[SentAt | None] = []
    for number, row in enumerate(csv.reader(lines), 1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and not (len(cells) > 1 and cells[1].isdigit()):
            continue  # the header: its message id column is not a number
        phone, message_id, sent = (*cells, "", "")[:3]
        pairs.append((phone, message_id))
        times.append(_sent_at(sent, number))
    return pairs, times if any(t is not None for t in times) else None


def _sent_at(text: str, line: int) -> SentAt | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"line {line}: sent_at {text!r} is not a time") from None
    if when.tzinfo is None:
        raise ValueError(f"line {line}: sent_at {text!r} has no offset (say +00:00)")
    return when


def describe(change: StatusChange) -> str:
    previous = change.previous
    was = f"{previous.value} -> " if previous is not None and previous is not change.status else ""
    line = f"{change.phone_number} {change.message_id}: {was}{change.status.value}"
    if change.reason is SettleReason.API_ERROR:
        return f"{line} (settled: api_error, code {change.code})"
    return f"{line} (settled: {change.reason})" if change.reason is not None else line


async def run(args: argparse.Namespace, source: IO[str]) -> int:
    clock: Clock | None = None
    sleep: Sleep | None = None
    client_cm: AbstractAsyncContextManager[SMSPartnerClient]
    sent_at: list[SentAt | None] | None = None
    if args.sandbox:
        from smspartner_async.sandbox import Sandbox
        from smspartner_async.testing import FastClock, sandbox_client

        fast_or_simulated = FastClock(args.speed) if args.speed else SimulatedClock()
        clock, sleep = fast_or_simulated, fast_or_simulated.sleep
        sandbox = Sandbox(seed=args.seed, api_key=None, clock=clock)
        client_cm = sandbox_client(sandbox)
        if args.input is None:
            pairs = [(p, str(m)) for p, m in sandbox.data.sample_pairs(args.pairs)]
        else:
            pairs, sent_at = read_pairs(source)
    else:
        client_cm = SMSPartnerClient()  # SMSPARTNER_API_KEY
        pairs, sent_at = read_pairs(source)
    store: WatchStore | None = SQLiteStore(args.state) if args.state else None

    changes, reasons = 0, Counter[str]()
    statuses = Counter[str]()
    async with client_cm as client:
        # The whole watch: it ends when every pair has settled.
        follow = watch(client, pairs, sent_at=sent_at, store=store, clock=clock, sleep=sleep)
        async with aclosing(follow):
            async for change in follow:
                print(describe(change), flush=True)  # a real worker: update its database
                changes += 1
                if change.reason is not None:
                    reasons[change.reason.value] += 1
                    statuses[change.status.value] += 1
    by_reason = ", ".join(f"{reasons[r.value]} {r.value}" for r in SettleReason)
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    print(
        f"{len(pairs)} pairs, {changes} changes; settled: {by_reason}"
        + (f" ({by_status})" if by_status else "")
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "input",
        nargs="?",
        type=argparse.FileType("r", encoding="utf-8"),
        help="a CSV of phone,message_id[,sent_at] (default: stdin; with --sandbox, samples)",
    )
    parser.add_argument("--state", metavar="FILE", help="SQLite file: resume from it")
    parser.add_argument("--sandbox", action="store_true", help="watch the built-in emulator")
    parser.add_argument("--pairs", type=int, default=500, help="--sandbox: pairs sampled")
    parser.add_argument("--seed", type=int, default=0, help="--sandbox: the dataset's seed")
    parser.add_argument(
        "--speed", type=float, help="--sandbox: a clock N times faster (default: simulated)"
    )
    args = parser.parse_args(argv)
    if args.speed is not None and not args.sandbox:
        parser.error("--speed needs --sandbox")
    if args.speed is not None and args.speed <= 0:
        parser.error("--speed must be positive")
    source = args.input or sys.stdin
    if args.input is None and not args.sandbox and source.isatty():
        parser.error("give a CSV file, pipe pairs in, or use --sandbox")
    try:
        return asyncio.run(run(args, source))
    except (ValueError, InvalidInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SMSPartnerError as exc:  # a bad key, an IP not allowed: asking again will not help
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        again = "the same command resumes" if args.state else "nothing kept (no --state)"
        print(f"stopped; {again}", file=sys.stderr)
        return 130
    finally:
        if args.input is not None:
            args.input.close()


if __name__ == "__main__":
    sys.exit(main())
