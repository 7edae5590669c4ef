"""What the CLI says on stderr: the progress bar, bad rows, the summary, the demo's checks.

Everything here goes to stderr (or a file asked for) so that stdout stays a
clean CSV or JSONL stream for pipes. Counts only: no phone number is ever part
of a summary. Every rich console, stdout's tables included, comes from
`console()`, the one place that decides about colour.
"""

from __future__ import annotations

import csv
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import attrs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import ClientStats, DeliveryStatus, InvalidInputError, MultiStatusResult
from ..sandbox import SandboxData, Stats
from ._internals import normalize_phone

__all__ = [
    "BadRows",
    "Summary",
    "console",
    "format_stats",
    "mismatch",
    "no_color",
    "progress_bar",
    "stderr_is_terminal",
]

_LABELS = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.NOT_DELIVERED: "not delivered",
    DeliveryStatus.WAITING: "waiting",
    DeliveryStatus.FAILED: "failed (ko)",
    DeliveryStatus.UNKNOWN: "unknown",
}


@attrs.define
class Summary:
    """Counts per status, per API item code, and per error that ended a call."""

    statuses: Counter[DeliveryStatus] = attrs.field(factory=Counter)
    item_codes: Counter[int | None] = attrs.field(factory=Counter)
    call_errors: Counter[str] = attrs.field(factory=Counter)
    #: Input rows left out; None when bad rows are not being skipped (no line then).
    skipped: int | None = None

    def add(self, result: MultiStatusResult) -> None:
        if result.ok:
            self.statuses[result.status] += 1
        elif result.error is not None:
            self.call_errors[type(result.error).__name__] += 1
        else:
            self.item_codes[result.code] += 1

    @property
    def failed_for_good(self) -> int:
        return sum(self.call_errors.values())

    @property
    def total(self) -> int:
        return self.statuses.total() + self.item_codes.total() + self.failed_for_good

    def lines(self) -> list[str]:
        out = [f"{self.total} pairs checked"]
        out += [f"  {label:<28}{self.statuses[s]:>9}" for s, label in _LABELS.items()]
        refused = ", ".join(
            f"code {code}: {n}" for code, n in sorted(self.item_codes.items(), key=_by_code)
        )
        out.append(f"  {'not answered by the API':<28}{self.item_codes.total():>9}")
        if refused:
            out.append(f"    ({refused})")
        out.append(f"  {'calls failed for good':<28}{self.failed_for_good:>9}")
        if self.call_errors:
            out.append(f"    ({', '.join(f'{k}: {n}' for k, n in self.call_errors.items())})")
        if self.skipped is not None:
            out.append(f"  {'bad rows skipped':<28}{self.skipped:>9}")
        return out


def _by_code(item: tuple[int | None, int]) -> int:
    return -1 if item[0] is None else item[0]


def format_stats(client: ClientStats, sandbox: Stats | None = None) -> str:
    text = (
        f"requests {client.requests}, retries {client.retries}, "
        f"failures {client.failures}, rate-limited {client.rate_limited}"
    )
    if sandbox is not None and sandbox.faults:
        injected = ", ".join(f"{k} x{n}" for k, n in sorted(sandbox.faults.items()))
        text += f"; faults injected: {injected}"
    return text


class BadRows:
    """Reports each bad input row (line, reason): on stderr as it comes, or as CSV to a file.

    Every one is reported, not just the first, so that one run is enough to fix them all.
    """

    def __init__(self, file: IO[str] | None = None) -> None:
        self.count = 0
        self.file = file
        self._csv = csv.writer(file, lineterminator="\n") if file is not None else None
        if self._csv is not None:
            self._csv.writerow(("line", "reason"))

    def __call__(self, line: int, reason: str) -> None:
        self.count += 1
        if self._csv is not None:
            self._csv.writerow((line, reason))
        else:
            # sys.stderr as it is now: under the progress bar, rich's proxy prints above the bar.
            print(f"line {line}: {reason}", file=sys.stderr)


def console(
    *, file: IO[str] | None = None, stderr: bool = False, width: int | None = None
) -> Console:
    """A rich console that writes no ANSI style at all when NO_COLOR is set.

    rich reads NO_COLOR itself but drops only colours: bold and dim stay, as
    escape codes, on a terminal or under FORCE_COLOR. Whoever sets NO_COLOR
    wants plain text. The progress bar still moves the cursor on a terminal.
    """
    if no_color():
        return Console(file=file, stderr=stderr, width=width, color_system=None)
    return Console(file=file, stderr=stderr, width=width)


def no_color() -> bool:
    """Whether NO_COLOR is set; empty means unset (no-color.org)."""
    return os.environ.get("NO_COLOR", "") != ""


@contextmanager
def progress_bar(
    enabled: bool, total: int | None = None
) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich bar on stderr fed by the client's progress callback, or None when disabled.

    Only on a terminal: a bar in a log file or a CI transcript is noise. The
    client knows no total when it reads a stream; `total` is one counted before.
    """
    if not enabled:
        yield None
        return
    columns = (TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("checking", total=total)

        def update(done: int, known: int | None) -> None:
            bar.update(task, completed=done, total=known if known is not None else total)

        yield update


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def mismatch(
    result: MultiStatusResult, pair: tuple[str, int], data: SandboxData, region: str
) -> str | None:
    """How `result` differs from what the sandbox's dataset says for its input pair, if it does.

    A call that failed for good is the summary's business, not a mismatch. The
    demo freezes the sandbox's clock, so `elapsed=0` is when every answer was made.
    """
    if result.error is not None:
        return None
    phone, message_id = pair
    try:
        e164 = normalize_phone(phone, region)
    except InvalidInputError:
        e164 = phone
    if (result.phone_number, result.message_id) != (e164, message_id):
        return f"#{result.index}: the answer is for another pair"
    expected = data.status_of(phone, message_id)
    if expected is None:
        if result.ok or result.code != 4:
            return f"#{result.index}: expected code 4 (not found), got code {result.code}"
        return None
    got = (result.status.value, result.stop_sms, result.is_spam)
    want = (expected.status, expected.stop_sms, expected.is_spam)
    if not result.ok or got != want:
        return f"#{result.index}: expected {want}, got {got} (code {result.code})"
    if result.date is None or int(result.date.timestamp()) != expected.date:
        return f"#{result.index}: expected date {expected.date}, got {result.date}"
    return None
