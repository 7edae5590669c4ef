"""A schedule that knows it has push: sparse checks while callbacks arrive, else the usual.

With callbacks, most pairs are asked once, right after their report is pushed;
the schedule is only the fallback for reports whose callback never comes. So
while callbacks are arriving, a pair's checks start later and thin out faster
(`PUSH_INTERVALS`). Whether they are arriving is what the schedule *heard*, not
what it was told: `heard()` is called for each hint the watch took (the receiver
does it, `CallbackReceiver.feeding(..., on_hint=schedule.heard)`), and a pair is
scheduled on the push intervals once a callback was heard no earlier than
`live_for` seconds before its send: the pairs sent while callbacks flow. With no
callback at all (a receiver that is down, `urlDlr` not set), every pair is
scheduled exactly as by the plain `Schedule`: the outcome and the number of calls
are the poll-only ones. When callbacks stop, pairs sent more than `live_for`
after the last one get the plain schedule again; pairs sent before keep the push
intervals (their lost reports are found at those sparser checks).

Each process decides from the hints it hears itself. The intervals are chosen
by `benchmarks/callbacks.py` (look-ups per message and staleness, with 100%, 90%
and 0% of callbacks delivered, against the poll-only schedule).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

from .._errors import InvalidInputError
from ..watch import Schedule

__all__ = ["PUSH_INTERVALS", "PushSchedule"]

#: Seconds between checks while callbacks arrive: an hour, then 12 hours, then daily.
PUSH_INTERVALS: tuple[float, ...] = (3_600.0, 11 * 3_600.0, 24 * 3_600.0)


class _Heard:
    """The one mutable thing a push schedule has: when it last heard a callback."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = -math.inf


def _positive(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInputError("live_for must be a positive number of seconds", value=value)
    return float(value)


def _intervals(value: object) -> tuple[float, ...]:
    return Schedule(intervals=value).intervals  # validated there


@attrs.frozen(weakref_slot=False)
class PushSchedule(Schedule):
    """`Schedule`, but on `push_intervals` while callbacks are heard (see the module).

        schedule = PushSchedule()
        async with (
            Watcher(client, schedule=schedule) as watcher,
            receiver.feeding(watcher.hint, on_hint=schedule.heard),
        ):
            ...

    The window, the not-found grace, the grid and the last check are the plain
    schedule's, so a pair expires at the same time either way.
    """

    push_intervals: tuple[float, ...] = attrs.field(default=PUSH_INTERVALS, converter=_intervals)
    """Gaps between checks while callbacks arrive, the first counted from the send."""
    live_for: float = attrs.field(default=3_600.0, converter=_positive)
    """Pairs sent up to this many seconds after the last hint heard get the push intervals."""
    clock: Callable[[], float] = attrs.field(default=time.time, eq=False, repr=False)
    """The watch's clock (`heard()` stamps with it)."""

    _push: Schedule = attrs.field(init=False, repr=False, eq=False)
    _heard: _Heard = attrs.field(init=False, repr=False, eq=False, factory=_Heard)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        push = Schedule(
            intervals=self.push_intervals,
            window=self.window,
            not_found_grace=self.not_found_grace,
            tolerance=self.tolerance,
        )
        object.__setattr__(self, "_push", push)

    def heard(self) -> None:
        """A callback's hint reached the watch: push is working, now."""
        self._heard.at = max(self._heard.at, self.clock())

    def live(self, sent_at: float) -> bool:
        """Whether a pair sent then gets the push intervals: a callback was heard no earlier
        than `live_for` seconds before its send (or at any time after it)."""
        return self._heard.at >= sent_at - self.live_for

    def first_check(self, sent_at: float) -> float:
        if not self.live(sent_at):
            return super().first_check(sent_at)
        return min(self._push.first_check(sent_at), self.last_check(sent_at))

    def next_check(self, sent_at: float, after: float) -> float:
        if not self.live(sent_at):
            return super().next_check(sent_at, after)
        last = self.last_check(sent_at)
        if after >= last:
            return last
        return min(self._push.next_check(sent_at, after), last)
