"""What one answer means for one watched pair: the monotonic rules, in one place.

The API is not monotonic: a status can leave a final state (Delivered, then
Waiting again), per-item answers can be "not found" for a while right after a
send, and a call can fail for reasons that have nothing to do with the pair.
The watch is monotonic: it reports a status only when it differs from the last
one reported, and stops asking about a pair the moment it settles, so nothing
the API says later can replace a final status.

- A failed call (`error` set, or no answer at all) says nothing about the pair:
  it is asked again soon (`retry_delay`), not later than its next check.
- A per-item answer (`ok=False` with the API's `code`) is taken for a report not
  yet indexed during the not-found grace; after it, if no status was ever known,
  the pair settles as API_ERROR. Once a status is known, such an answer is a
  glitch and changes nothing.
- A final status settles the pair (FINAL); another status is a change when it
  differs from the last one.
- At or past the pair's deadline, whatever did not settle it settles it as EXPIRED,
  with the last status known.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .._models import DeliveryStatus, MultiStatusResult
from ._records import PairUpdate, SettleReason, StatusChange, WatchedPair, new_change
from ._schedule import Schedule

__all__ = ["decide"]

_UNKNOWN = DeliveryStatus.UNKNOWN
_FINAL = SettleReason.FINAL
_API_ERROR = SettleReason.API_ERROR
_EXPIRED = SettleReason.EXPIRED
_FINAL_STATUSES = frozenset(status for status in DeliveryStatus if status.is_final)
_update = PairUpdate._make


def decide(
    pair: WatchedPair,
    result: MultiStatusResult | None,
    now: float,
    schedule: Schedule,
    retry_delay: float,
    next_check: Callable[[float, float], float] | None = None,
) -> tuple[PairUpdate, StatusChange | None]:
    """The pair's new state, and the change to report, if any, after a check at `now`.

    `result` is None when the pair's call failed without an answer (an outage).
    `next_check` stands for `schedule.next_check` (the poller passes a cached one:
    pairs added together share their send time, and so their checks).
    """
    phone, message_id, _, sent_at, due_at, last, sequence = pair
    if next_check is None:
        next_check = schedule.next_check
    expired = now >= sent_at + schedule.window
    if result is None or result.error is not None or (not result.ok and result.code is None):
        if expired:
            return _report(pair, now, last or _UNKNOWN, None, _EXPIRED)
        due = min(schedule.retry_at(now, retry_delay), next_check(sent_at, max(due_at, now)))
        return _update((phone, message_id, due, last, sequence, None)), None
    date: datetime | None
    if not result.ok:
        if last is None and now - sent_at >= schedule.not_found_grace:
            return _report(
                pair, now, _UNKNOWN, None, _API_ERROR, code=result.code, message=result.message
            )
        status = last
        date = None
    else:
        status = result.status
        date = result.date
        if status in _FINAL_STATUSES:
            return _report(pair, now, status, None, _FINAL, date=date)
    if expired:
        return _report(pair, now, status or _UNKNOWN, None, _EXPIRED, date=date)
    due = next_check(sent_at, max(due_at, now))
    if status is None or status is last:
        return _update((phone, message_id, due, last, sequence, None)), None
    return _report(pair, now, status, due, date=date)


def _report(
    pair: WatchedPair,
    now: float,
    status: DeliveryStatus,
    due: float | None,
    reason: SettleReason | None = None,
    *,
    date: datetime | None = None,
    code: int | None = None,
    message: str | None = None,
) -> tuple[PairUpdate, StatusChange]:
    """The pair's next change, `status`, and its new state: next checked at `due`, or
    settled (for `reason`) when `due` is None."""
    phone, message_id, position, _, _, last, sequence = pair
    sequence += 1
    settled = due is None
    change = new_change(
        position,
        phone,
        message_id,
        status,
        last,
        settled,
        reason,
        sequence,
        now,
        date,
        code,
        message,
    )
    update = _update((phone, message_id, due, status, sequence, now if settled else None))
    return update, change
