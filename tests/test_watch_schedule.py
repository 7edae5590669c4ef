"""`Schedule`: checks that thin out from the send, a grid that groups them, the window's end.

And `decide`, the rules that make a watch monotonic, one answer at a time.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smspartner_async import DeliveryStatus, InvalidInputError, MultiStatusResult
from smspartner_async._errors import ServerError
from smspartner_async._structure import parse_status
from smspartner_async.watch import DEFAULT_INTERVALS, Schedule, SettleReason, WatchedPair
from smspartner_async.watch._changes import decide

SENT = 1_700_000_000.0


def checks(schedule: Schedule, sent: float, until: float) -> list[float]:
    """Every check of a pair, by walking `next_check` from its first."""
    at = [schedule.first_check(sent)]
    while at[-1] < schedule.last_check(sent) and at[-1] < until:
        at.append(schedule.next_check(sent, at[-1]))
    return at


def test_the_default_schedule() -> None:
    schedule = Schedule()
    assert schedule.intervals == DEFAULT_INTERVALS
    assert schedule.intervals[0] == 5 and schedule.intervals[-1] == 3600
    assert list(schedule.intervals) == sorted(schedule.intervals)
    assert (schedule.window, schedule.not_found_grace, schedule.tolerance) == (172_800, 600, 0.1)
    at = checks(schedule, SENT, float("inf"))
    assert at[-1] == schedule.last_check(SENT) >= SENT + 172_800
    assert 55 <= len(at) <= 62  # a pair that never settles costs about sixty checks


def test_exact_checks_without_tolerance() -> None:
    schedule = Schedule(intervals=(5, 10, 30), window=100, tolerance=0)
    assert [t - SENT for t in checks(schedule, SENT, float("inf"))] == [5, 15, 45, 75, 100]


def test_checks_run_early_by_at_most_the_tolerance() -> None:
    schedule = Schedule()
    nominal = [5.0, 10, 20, 35, 65, 125, 245, 545, 1145, 2345, 4145, 7745, 11345]
    for sent in (SENT, SENT + 0.3, SENT + 17.9, SENT + 1234.5):
        got = checks(schedule, sent, sent + 12_000)[: len(nominal)]
        gaps = [nominal[0], *(b - a for a, b in itertools.pairwise(nominal))]
        for at, when, gap in zip(got, nominal, gaps, strict=True):
            assert sent + when - 0.1 * gap <= at <= sent + when


def test_pairs_sent_apart_share_their_later_checks() -> None:
    """The point of the grid: 60 pairs sent a second apart are asked in a few rounds once
    their checks are hourly, not in 60."""
    schedule = Schedule()
    hourly = {checks(schedule, SENT + i, SENT + 20_000)[12] for i in range(60)}
    first = {schedule.first_check(SENT + i) for i in range(60)}
    assert len(hourly) <= 2 and len(first) == 60


def test_the_last_check_is_once_the_window_has_run_out() -> None:
    schedule = Schedule(window=timedelta(hours=2))
    for sent in (SENT, SENT + 100.7):
        last = schedule.last_check(sent)
        assert sent + 7200 <= last < sent + 7200 + 256
        assert schedule.next_check(sent, sent + 7000) == last


@given(
    sent=st.floats(min_value=1e9, max_value=2e9),
    elapsed=st.floats(min_value=-10, max_value=200_000),
    tolerance=st.sampled_from([0.0, 0.05, 0.1, 0.5, 0.9]),
)
def test_next_check_is_after_and_within_the_window(
    sent: float, elapsed: float, tolerance: float
) -> None:
    schedule = Schedule(tolerance=tolerance)
    after = sent + elapsed
    nxt = schedule.next_check(sent, after)
    last = schedule.last_check(sent)
    assert nxt <= last
    assert nxt > after or after >= last
    assert schedule.first_check(sent) <= last


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"intervals": ()}, "intervals"),
        ({"intervals": (5, 0)}, "intervals"),
        ({"intervals": 5}, "intervals"),
        ({"intervals": ("5",)}, "interval"),
        ({"window": 0}, "window"),
        ({"window": float("inf")}, "window"),
        ({"not_found_grace": -1}, "not_found_grace"),
        ({"tolerance": 1.0}, "tolerance"),
        ({"tolerance": True}, "tolerance"),
    ],
)
def test_bad_schedules_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Schedule(**options)


# -- decide --------------------------------------------------------------------------------

RULES = Schedule(intervals=(5, 10, 30), window=1000, not_found_grace=100, tolerance=0)


def watched(
    status: DeliveryStatus | None = None, sequence: int = 0, due: float = 5.0
) -> WatchedPair:
    return WatchedPair("+33600000001", 7, 3, SENT, SENT + due, status, sequence)


def answer(status: str | None = None, *, code: int = 200, error: bool = False) -> MultiStatusResult:
    if error:
        return MultiStatusResult(
            "+33600000001", 7, ok=False, code=None, error=ServerError(502, "x")
        )
    if status is None:
        return MultiStatusResult(
            "+33600000001", 7, ok=False, code=code, status_text="Numéro introuvable"
        )
    return MultiStatusResult("+33600000001", 7, ok=True, code=200, status=parse_status(status))


def test_a_final_status_settles_and_a_repeat_is_no_change() -> None:
    update, change = decide(watched(), answer("Delivered"), SENT + 5, RULES, 5.0)
    assert (update.due_at, update.settled_at, update.status) == (
        None,
        SENT + 5,
        DeliveryStatus.DELIVERED,
    )
    assert change is not None and change.settled and change.reason is SettleReason.FINAL
    assert change.id == "+33600000001:7:1" and change.index == 3
    update, change = decide(
        watched(DeliveryStatus.WAITING, 1), answer("Waiting"), SENT + 15, RULES, 5.0
    )
    assert change is None and update.due_at == SENT + 45 and update.sequence == 1


def test_a_new_status_that_is_not_final_is_a_change() -> None:
    update, change = decide(
        watched(DeliveryStatus.WAITING, 1), answer("En cours"), SENT + 5, RULES, 5.0
    )
    assert change is not None and not change.settled
    assert (change.previous, change.status, change.sequence) == (
        DeliveryStatus.WAITING,
        DeliveryStatus.UNKNOWN,
        2,
    )
    assert update.status is DeliveryStatus.UNKNOWN and update.sequence == 2


def test_a_failed_call_says_nothing_and_the_pair_is_asked_again_soon() -> None:
    update, change = decide(
        watched(DeliveryStatus.WAITING, 1, due=45), answer(error=True), SENT + 45, RULES, 5.0
    )
    assert change is None and update.due_at == SENT + 50 and update.status is DeliveryStatus.WAITING
    update, _ = decide(watched(due=5), None, SENT + 5, RULES, 60.0)
    assert update.due_at == SENT + 15  # never later than its next check


def test_not_found_waits_for_the_grace_then_settles() -> None:
    update, change = decide(watched(), answer(code=4), SENT + 45, RULES, 5.0)
    assert change is None and update.due_at == SENT + 75
    update, change = decide(watched(due=105), answer(code=4), SENT + 105, RULES, 5.0)
    assert change is not None and change.reason is SettleReason.API_ERROR
    assert (change.status, change.code, change.message) == (
        DeliveryStatus.UNKNOWN,
        4,
        "Numéro introuvable",
    )


def test_not_found_after_a_status_is_a_glitch() -> None:
    update, change = decide(
        watched(DeliveryStatus.WAITING, 1, due=105), answer(code=4), SENT + 105, RULES, 5.0
    )
    assert change is None and update.due_at == SENT + 135


@pytest.mark.parametrize(
    ("result", "last", "status", "previous"),
    [
        (answer("Waiting"), DeliveryStatus.WAITING, DeliveryStatus.WAITING, DeliveryStatus.WAITING),
        (
            answer(error=True),
            DeliveryStatus.WAITING,
            DeliveryStatus.WAITING,
            DeliveryStatus.WAITING,
        ),
        (None, None, DeliveryStatus.UNKNOWN, None),
        (answer(code=4), DeliveryStatus.WAITING, DeliveryStatus.WAITING, DeliveryStatus.WAITING),
        (
            answer("En cours"),
            DeliveryStatus.WAITING,
            DeliveryStatus.UNKNOWN,
            DeliveryStatus.WAITING,
        ),
    ],
)
def test_at_the_window_s_end_whatever_did_not_settle_expires(
    result: MultiStatusResult | None,
    last: DeliveryStatus | None,
    status: DeliveryStatus,
    previous: DeliveryStatus | None,
) -> None:
    pair = watched(last, 0 if last is None else 1, due=1000)
    update, change = decide(pair, result, SENT + 1000, RULES, 5.0)
    assert change is not None and change.settled and change.reason is SettleReason.EXPIRED
    assert (change.status, change.previous) == (status, previous)
    assert update.due_at is None


def test_a_final_status_at_the_window_s_end_is_final() -> None:
    _, change = decide(
        watched(DeliveryStatus.WAITING, 1, due=1000), answer("ko"), SENT + 1000, RULES, 5.0
    )
    assert change is not None and change.reason is SettleReason.FINAL
    assert change.status is DeliveryStatus.FAILED
