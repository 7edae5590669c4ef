"""When to ask about a pair again: a growing schedule counted from the send, and its grid.

Operators report most statuses within seconds, the stragglers within minutes and
a few only hours later (up to 48 hours, the documents say). So the checks of a
pair thin out: `intervals` are the gaps between them, the first counted from the
send and the last one repeated until the window runs out.

Why a grid: pairs sent a few seconds apart have checks a few seconds apart, and
asking each on its own second would make many small calls once the set has
thinned. A check may run a little early instead, by at most `tolerance` times
the gap before it: every check time is rounded *down* to a grid whose step is
the largest power of two seconds within that margin (0.5 s for a 5 s gap,
256 s for an hour). Pairs whose checks fall in the same step then fall on the
same instant, and one round asks them together, in full 500-pair calls. The grid
is absolute (multiples of the step since the epoch), so it is a pure function of
the pair and the schedule: any store, process or worker agrees on it.

The last check is at the end of the window, rounded *up* to its grid, so the
window has always run out when a pair is declared expired.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from datetime import timedelta
from itertools import accumulate
from typing import Any

import attrs

from .._errors import InvalidInputError

__all__ = ["DEFAULT_INTERVALS", "Schedule"]

#: Seconds between checks: from five seconds to an hour, then hourly.
DEFAULT_INTERVALS: tuple[float, ...] = (5, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_HOUR = 3600.0


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number of seconds", value=value)
    return float(value)


def _window(value: Any) -> float:
    return _seconds(value, "window")


def _grace(value: Any) -> float:
    return _seconds(value, "not_found_grace")


def _tolerance(value: Any) -> float:
    return _seconds(value, "tolerance")


def _intervals(value: Any) -> tuple[float, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise InvalidInputError("intervals must be a sequence of seconds", value=value) from None
    gaps = tuple(_seconds(item, "each interval") for item in items)
    if not gaps or min(gaps) <= 0:
        raise InvalidInputError("intervals must be positive, and at least one", value=value)
    return gaps


def _grid(gap: float, tolerance: float) -> float:
    """The largest power of two seconds within `tolerance * gap` (0: no rounding)."""
    margin = tolerance * gap
    if margin <= 0:
        return 0.0
    return 2.0 ** math.floor(math.log2(margin))


@attrs.frozen(weakref_slot=False)
class Schedule:
    """How often, and for how long, a watched pair is asked about.

    The checks of a pair sent at `t` happen at `t + intervals[0]`,
    `t + intervals[0] + intervals[1]`, ..., then every `intervals[-1]`, each
    possibly a little early (see `tolerance`), until `window` after the send.
    Durations are seconds (or `timedelta`).
    """

    intervals: tuple[float, ...] = attrs.field(default=DEFAULT_INTERVALS, converter=_intervals)
    """Gaps between checks, the first one counted from the send; the last one repeats."""
    window: float = attrs.field(default=48 * _HOUR, converter=_window)
    """How long after its send a pair is watched; then it settles as expired."""
    not_found_grace: float = attrs.field(default=600.0, converter=_grace)
    """How long after its send an answer like "not found" (code 4) is taken for a report not
    yet indexed, and the pair asked again; after it, such an answer settles the pair."""
    tolerance: float = attrs.field(default=0.1, converter=_tolerance)
    """How early a check may run, as a fraction of the gap before it, so that pairs due at
    about the same time are asked together (0: each at its exact time)."""

    _offsets: tuple[float, ...] = attrs.field(init=False, repr=False, eq=False)
    _grids: tuple[float, ...] = attrs.field(init=False, repr=False, eq=False)
    _last_grid: float = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.window <= 0:
            raise InvalidInputError("window must be positive", value=self.window)
        if self.not_found_grace < 0:
            raise InvalidInputError(
                "not_found_grace must not be negative", value=self.not_found_grace
            )
        if not 0 <= self.tolerance < 1:
            raise InvalidInputError(
                "tolerance must be at least 0 and below 1", value=self.tolerance
            )
        object.__setattr__(self, "_offsets", tuple(accumulate(self.intervals)))
        object.__setattr__(self, "_grids", tuple(_grid(g, self.tolerance) for g in self.intervals))
        # The grid of the gap in effect when the window runs out.
        k = bisect_right(self._offsets, self.window)
        object.__setattr__(self, "_last_grid", self._grids[min(k, len(self._grids) - 1)])

    # -- the schedule of one pair ------------------------------------------------

    def deadline(self, sent_at: float) -> float:
        """When the pair's window runs out."""
        return sent_at + self.window

    def last_check(self, sent_at: float) -> float:
        """The final check: the end of the window, rounded up to its grid."""
        end = sent_at + self.window
        step = self._last_grid
        return math.ceil(end / step) * step if step else end

    def first_check(self, sent_at: float) -> float:
        """The pair's first check (it may already be past for a pair sent long ago)."""
        return min(self._point(sent_at, 0), self.last_check(sent_at))

    def next_check(self, sent_at: float, after: float) -> float:
        """The first check of the pair strictly after `after`, and never past its last one."""
        last = self.last_check(sent_at)
        if after >= last:
            return last  # only reached for a pair already due for its last check
        k = self._index_after(after - sent_at)
        point = self._point(sent_at, k)
        while point <= after:  # rounded down onto `after` or before it; the next one is not
            k += 1
            point = self._point(sent_at, k)
        return min(point, last)

    def retry_at(self, now: float, delay: float) -> float:
        """`now + delay` rounded up to the first interval's grid: failed pairs regroup."""
        at = now + delay
        step = self._grids[0]
        return math.ceil(at / step) * step if step else at

    # -- helpers -------------------------------------------------------------------

    def _index_after(self, elapsed: float) -> int:
        """The index of the first unrounded point strictly after `elapsed` seconds."""
        offsets = self._offsets
        if elapsed < offsets[-1]:
            return bisect_right(offsets, elapsed)
        return len(offsets) + math.floor((elapsed - offsets[-1]) / self.intervals[-1])

    def _point(self, sent_at: float, k: int) -> float:
        """Check number `k` (0-based) of a pair sent at `sent_at`, rounded down to its grid."""
        offsets, n = self._offsets, len(self._offsets)
        if k < n:
            at, step = sent_at + offsets[k], self._grids[k]
        else:
            at, step = sent_at + offsets[-1] + (k - n + 1) * self.intervals[-1], self._grids[-1]
        return math.floor(at / step) * step if step else at
