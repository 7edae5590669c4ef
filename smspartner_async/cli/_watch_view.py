"""What `watch` shows: counts kept from the changes, drawn live on a terminal, summed up at the end.

Counts only, like every summary of the CLI: no phone number is drawn. The live
view is redrawn a few times a second by rich from `WatchView.render`, on stderr,
so that stdout stays a clean stream of rows.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.live import Live
from rich.text import Text

from .. import DeliveryStatus
from ..watch import SettleReason, StatusChange, StoreCounts, WatchRound, WatchStore
from ._report import console

__all__ = ["WatchView", "duration"]

# The order statuses are listed in, finals first; None is a pair not answered yet.
_ORDER: tuple[DeliveryStatus | None, ...] = (
    DeliveryStatus.DELIVERED,
    DeliveryStatus.NOT_DELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.WAITING,
    DeliveryStatus.UNKNOWN,
    None,
)
_LABELS: dict[DeliveryStatus | None, str] = {
    DeliveryStatus.DELIVERED: "Delivered",
    DeliveryStatus.NOT_DELIVERED: "Not delivered",
    DeliveryStatus.FAILED: "ko",
    DeliveryStatus.WAITING: "Waiting",
    DeliveryStatus.UNKNOWN: "no status",
    None: "no answer yet",
}
#: Pairs added by this run and not asked about yet: shown apart from those asked and not
#: answered yet (the API's "not found" within the grace period, or a failed call).
_UNASKED = "not asked yet"
_REFRESH = 0.5  # seconds between two looks at the store's next due time


def duration(seconds: float) -> str:
    """`3 h 05 min`, `4 min 10 s`, `12 s`: what a person reads at a glance."""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


class WatchView:
    """The watch's counts, fed by each change and each round.

    `statuses` counts every pair by the status its last change reported (a pair
    resumed from a state file starts with what the file says); `reasons` counts
    the pairs that settled during this run.
    """

    def __init__(self, *, speed: float | None, output: str, state: str | None) -> None:
        self._clock: Callable[[], float] = time.time
        self._speed = speed
        self._output = "stdout" if output == "-" else output
        self._state = state
        self._started = time.monotonic()
        self._sim_started = self._clock()
        self.total = 0
        self.pending = 0
        self.settled_before = 0
        self.statuses: Counter[DeliveryStatus | None] = Counter()
        self.reasons: Counter[SettleReason] = Counter()
        self.written = 0
        self.rounds = 0
        self.next_due: float | None = None
        self.unasked = 0
        self._first_check = float("inf")

    def start(
        self,
        counts: StoreCounts,
        clock: Callable[[], float],
        started: float,
        *,
        new: int = 0,
        first_check: float | None = None,
    ) -> None:
        """The pairs as the store holds them once the input is added, the watch's clock, and
        when the watch started on it (a change checked before is an earlier run's).

        `new` pairs were added by this run, all at once: none has been asked about until
        the first round at or after their `first_check`, which asks every pair due by
        then. Pairs without a status from an earlier run count as asked (their first
        check was due long ago, at the speed a watch runs).
        """
        self._clock = clock
        self._sim_started = started
        self.unasked = new
        self._first_check = float("inf") if first_check is None else first_check
        self.statuses.update(counts.pending)
        self.statuses.update(counts.settled)
        self.pending = counts.total_pending
        self.settled_before = counts.total_settled
        self.total = self.pending + self.settled_before

    def change(self, change: StatusChange) -> None:
        self.written += 1
        if change.checked_at < self._sim_started:
            # Found by an earlier run and delivered again (it was killed holding it): the
            # store's counts at the start already have it.
            return
        if change.previous is None and self.unasked > 0:
            self.unasked -= 1  # asked, since it has an answer
        if self.statuses[change.previous] > 0:
            self.statuses[change.previous] -= 1
        self.statuses[change.status] += 1
        if change.settled and change.reason is not None:
            self.reasons[change.reason] += 1
            self.pending = max(self.pending - 1, 0)

    def round(self, report: WatchRound) -> None:
        self.rounds += 1
        if report.at >= self._first_check:
            self.unasked = 0

    async def follow(self, store: WatchStore) -> None:
        """Keeps `next_due` current (for the live view) until cancelled."""
        while True:
            self.next_due = await store.next_due()
            await asyncio.sleep(_REFRESH)

    # -- drawing -----------------------------------------------------------------------

    def status_line(self) -> str:
        unasked = min(self.unasked, self.statuses[None])
        shown = [(_LABELS[s], self.statuses[s]) for s in _ORDER if s is not None]
        shown += [(_LABELS[None], self.statuses[None] - unasked), (_UNASKED, unasked)]
        return "  ".join(f"{label} {n:,}" for label, n in shown if n > 0) or "no pairs"

    def reason_line(self) -> str:
        settled = self.total - self.pending
        parts = [f"{n:,} {reason.value}" for reason, n in sorted(self.reasons.items()) if n]
        if self.settled_before:
            parts.append(f"{self.settled_before:,} before this run")
        detail = f" ({', '.join(parts)})" if parts else ""
        return f"pending {self.pending:,}, settled {settled:,}{detail}"

    def render(self) -> Text:
        lines = [
            f"watching {self.total:,} pairs"
            + (f", state in {self._state}" if self._state else ", state in memory (not kept)"),
            self.status_line(),
            self.reason_line(),
            f"{self.written:,} changes written to {self._output}, {self.rounds:,} rounds",
        ]
        now = self._clock()
        if self.pending and self.next_due is not None:
            lines.append(f"next check in {duration(self.next_due - now)}")
        if self._speed is not None:
            lines.append(
                f"sandbox clock x{self._speed:g}: {duration(now - self._sim_started)} "
                "of watch time so far"
            )
        return Text("\n".join(lines))

    def summary(self) -> list[str]:
        elapsed = time.monotonic() - self._started
        return [
            self.status_line(),
            self.reason_line(),
            f"{self.written:,} changes written to {self._output} in {elapsed:.1f} s",
        ]

    @contextmanager
    def live(self, enabled: bool) -> Iterator[None]:
        """Redraws `render()` on stderr while the body runs, when enabled (a terminal)."""
        if not enabled:
            yield
            return
        with Live(
            get_renderable=self.render,
            console=console(stderr=True),
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        ):
            yield
