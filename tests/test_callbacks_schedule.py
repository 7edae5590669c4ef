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


def test_pairs_sent_while_callbacks_flow_keep_the_push_intervals() -> None:
    clock = Clock()
    push = PushSchedule(clock=clock, live_for=600)
    push.heard()
    # Sent then: sparse for its whole window, whatever is heard later.
    got = checks(push, SENT, SENT + 49 * 3600)
    assert len(got) <= 5
    # Sent before the first callback was heard, in the same stretch: sparse from then on.
    early = SENT - 300
    assert push.next_check(early, SENT) > Schedule().next_check(early, SENT) + 600


def test_pairs_sent_long_after_the_last_callback_get_the_plain_schedule() -> None:
    clock = Clock()
    push = PushSchedule(clock=clock, live_for=600)
    push.heard()
    later = SENT + 601
    clock.now = later
    assert not push.live(later)
    assert checks(push, later, later + 49 * 3600) == checks(Schedule(), later, later + 49 * 3600)
    push.heard()  # callbacks again
    assert push.live(later)
    assert push.first_check(later) > Schedule().first_check(later)


def test_options_are_validated() -> None:
    with pytest.raises(InvalidInputError):
        PushSchedule(live_for=0)
    with pytest.raises(InvalidInputError):
        PushSchedule(push_intervals=())
    assert PushSchedule(push_intervals=[60, 600]).push_intervals == (60.0, 600.0)
