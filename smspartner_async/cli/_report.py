"""What the CLI says on stderr: the progress bar, the end-of-run summary, the demo's checks.

Everything here goes to stderr so that stdout stays a clean CSV or JSONL
stream for pipes. Counts only: no phone number is ever part of a summary.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._call import ClientStats
from .._errors import InvalidInputError
from .._models import DeliveryStatus, MultiStatusResult
from .._validate import normalize_phone
from ..sandbox import SandboxData, Stats

__all__ = ["Summary", "format_stats", "mismatch", "progress_bar", "stderr_is_terminal"]

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


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich bar on stderr fed by the client's progress callback, or None when disabled.

    Only on a terminal: a bar in a log file or a CI transcript is noise.
    """
    if not enabled:
        yield None
        return
    columns = (TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("checking", total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

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
