"""PushSchedule: the plain schedule until callbacks are heard, the sparse one while they are."""

from __future__ import annotations

import pytest

from smspartner_async import InvalidInputError
from smspartner_async.callbacks import PUSH_INTERVALS, PushSchedule
from smspartner_async.watch import Schedule

SENT = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = SENT

    def __call__(self) -> float:
        return self.now


def checks(
    schedule: Schedule, sent: float, until: float, hearing: Clock | None = None
) -> list[float]:
    """A pair's checks; with `hearing`, callbacks keep coming (one heard at each check)."""
    out = [schedule.first_check(sent)]
    while out[-1] < min(until, schedule.last_check(sent)):
        if hearing is not None and isinstance(schedule, PushSchedule):
            hearing.now = out[-1]
            schedule.heard()
        out.append(schedule.next_check(sent, out[-1]))
    return out


def test_never_heard_is_exactly_the_plain_schedule() -> None:
    clock = Clock()
    push, plain = PushSchedule(clock=clock), Schedule()
    for offset in (0.0, 3.7, 1234.5):
        sent = SENT + offset
        clock.now = sent
        assert checks(push, sent, sent + 49 * 3600) == checks(plain, sent, sent + 49 * 3600)


def test_heard_starts_later_and_thins_out_faster() -> None:
    clock = Clock()
    push = PushSchedule(clock=clock)
    push.heard()
    got = checks(push, SENT, SENT + 49 * 3600, hearing=clock)
    plain = checks(Schedule(), SENT, SENT + 49 * 3600)
    assert got[0] - SENT > 0.9 * PUSH_INTERVALS[0]
    assert len(got) <= 5 < len(plain)
    assert got[-1] == plain[-1] == Schedule().last_check(SENT)  # expires at the same time


def test_when_callbacks_stop_the_next_checks_are_the_plain_ones() -> None:
    clock = Clock()
    push = PushSchedule(clock=clock, live_for=600)
    push.heard()
    first = push.first_check(SENT)  # an hour later: nothing heard for longer than live_for
    assert push.next_check(SENT, first) == Schedule().next_check(SENT, first)


def test_liveness_lapses_after_live_for() -> None:
    clock = Clock()
    push = PushSchedule(clock=clock, live_for=600)
    push.heard()
    clock.now += 601
    assert not push.live(clock.now)
    assert push.first_check(clock.now) == Schedule().first_check(clock.now)
    push.heard()
    assert push.live(clock.now)
    assert push.next_check(SENT, clock.now) > Schedule().next_check(SENT, clock.now)


def test_options_are_validated() -> None:
    with pytest.raises(InvalidInputError):
        PushSchedule(live_for=0)
    with pytest.raises(InvalidInputError):
        PushSchedule(push_intervals=())
    assert PushSchedule(push_intervals=[60, 600]).push_intervals == (60.0, 600.0)
