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

from datetime import datetime

from .._models import DeliveryStatus, MultiStatusResult
from ._records import PairUpdate, SettleReason, StatusChange, WatchedPair
from ._schedule import Schedule

__all__ = ["decide"]

_UNKNOWN = DeliveryStatus.UNKNOWN
_FINAL = SettleReason.FINAL
_API_ERROR = SettleReason.API_ERROR
_EXPIRED = SettleReason.EXPIRED


def decide(
    pair: WatchedPair,
    result: MultiStatusResult | None,
    now: float,
    schedule: Schedule,
    retry_delay: float,
) -> tuple[PairUpdate, StatusChange | None]:
    """The pair's new state, and the change to report, if any, after a check at `now`.

    `result` is None when the pair's call failed without an answer (an outage).
    """
    last = pair.status
    if result is None or result.error is not None or (not result.ok and result.code is None):
        if now >= pair.sent_at + schedule.window:
            return _settle(pair, now, _EXPIRED, last or _UNKNOWN)
        due = min(
            schedule.retry_at(now, retry_delay),
            schedule.next_check(pair.sent_at, max(pair.due_at, now)),
        )
        return _keep(pair, due), None
    if not result.ok:
        if last is None and now - pair.sent_at >= schedule.not_found_grace:
            return _settle(
                pair, now, _API_ERROR, _UNKNOWN, code=result.code, message=result.message
            )
        status = last
        date = None
    else:
        status = result.status
        date = result.date
        if status.is_final:
            return _settle(pair, now, _FINAL, status, date=date)
    if now >= pair.sent_at + schedule.window:
        return _settle(pair, now, _EXPIRED, status or _UNKNOWN, date=date)
    due = schedule.next_check(pair.sent_at, max(pair.due_at, now))
    if status is None or status is last:
        return _keep(pair, due), None
    return _report(pair, now, status, due, date=date)


def _keep(pair: WatchedPair, due: float) -> PairUpdate:
    return PairUpdate(pair.phone_number, pair.message_id, due, pair.status, pair.sequence, None)


def _settle(
    pair: WatchedPair,
    now: float,
    reason: SettleReason,
    status: DeliveryStatus,
    *,
    date: datetime | None = None,
    code: int | None = None,
    message: str | None = None,
) -> tuple[PairUpdate, StatusChange]:
    return _report(pair, now, status, None, reason, date=date, code=code, message=message)


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
    sequence = pair.sequence + 1
    settled = due is None
    change = StatusChange(
        pair.position,
        pair.phone_number,
        pair.message_id,
        status,
        pair.status,
        settled,
        reason,
        sequence,
        now,
        date,
        code,
        message,
    )
    settled_at = now if settled else None
    return PairUpdate(pair.phone_number, pair.message_id, due, status, sequence, settled_at), change
