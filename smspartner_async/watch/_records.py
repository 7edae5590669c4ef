"""What a watch reports (`StatusChange`), and the records a store keeps between rounds.

The store records are NamedTuples rather than attrs classes: a store builds one
per pair per round (straight from a database row, with `_make`), and a tuple is
what a database driver takes and gives back anyway.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

import attrs

from .._build import twin
from .._models import DeliveryStatus

__all__ = [
    "NewPair",
    "PairUpdate",
    "SettleReason",
    "StatusChange",
    "StoreCounts",
    "WatchedPair",
    "change_id",
    "new_change",
]


class SettleReason(enum.StrEnum):
    """Why a pair is no longer watched."""

    FINAL = "final"
    """The API gave a final status (`Delivered`, `Not delivered`, `ko`)."""
    API_ERROR = "api_error"
    """The API kept answering for the item itself (e.g. code 4, not found) past the
    not-found grace: asking again will not help."""
    EXPIRED = "expired"
    """The pair's window ran out (48 hours after its send, by default) before either."""


def change_id(phone_number: str, message_id: int, sequence: int) -> str:
    """`phone:message_id:sequence`: the same change gets the same id on every delivery."""
    return f"{phone_number}:{message_id}:{sequence}"


@attrs.frozen(weakref_slot=False)
class StatusChange:
    """One new thing learnt about one watched pair.

    The first status known for a pair is a change; then every different status,
    until the pair settles (`settled`, with a `reason`), which is its last change.
    A change can be delivered more than once across a crash (never more than once
    otherwise): `id` is stable, so a consumer can drop a repeat.
    """

    index: int
    """The pair's position in the input (of `watch`, or of the `Watcher.add` call) that
    first gave it."""
    phone_number: str
    """The pair's number, in E.164."""
    message_id: int
    """The pair's message id."""
    status: DeliveryStatus
    """The new status; `UNKNOWN` when none was ever known (an API error, or expired
    without any answer)."""
    previous: DeliveryStatus | None
    """The status the pair's previous change reported; None for its first change."""
    settled: bool
    """Whether this is the pair's last change."""
    reason: SettleReason | None
    """Why the pair settled; None while it is still watched."""
    sequence: int
    """This change's number for its pair: 1, 2, ..."""
    checked_at: float
    """When the check that found it ran, in epoch seconds of the watcher's clock."""
    date: datetime | None = None
    """The report date the API gave with the status, if any (from `SQLiteStore`, the same
    instant in UTC)."""
    code: int | None = None
    """For an API_ERROR: the API's code for the item (e.g. 4)."""
    message: str | None = None
    """For an API_ERROR: the API's text for the item."""

    @property
    def id(self) -> str:
        """`phone:message_id:sequence`, the same on every delivery of this change."""
        return change_id(self.phone_number, self.message_id, self.sequence)


_ChangeTwin = twin(StatusChange)
_new = object.__new__


def new_change(
    index: int,
    phone_number: str,
    message_id: int,
    status: DeliveryStatus,
    previous: DeliveryStatus | None,
    settled: bool,
    reason: SettleReason | None,
    sequence: int,
    checked_at: float,
    date: datetime | None = None,
    code: int | None = None,
    message: str | None = None,
) -> StatusChange:
    """`StatusChange(...)`, built through its twin class (`_build`): a store and the
    poller build one per change found or read back."""
    if _ChangeTwin is None:  # the model left the fast path: tests/test_build.py says so
        return StatusChange(
            index,
            phone_number,
            message_id,
            status,
            previous,
            settled,
            reason,
            sequence,
            checked_at,
            date,
            code,
            message,
        )
    o = _new(_ChangeTwin)
    o.index = index
    o.phone_number = phone_number
    o.message_id = message_id
    o.status = status
    o.previous = previous
    o.settled = settled
    o.reason = reason
    o.sequence = sequence
    o.checked_at = checked_at
    o.date = date
    o.code = code
    o.message = message
    o.__class__ = StatusChange
    return o  # type: ignore[no-any-return]


class NewPair(NamedTuple):
    """A pair to start watching (`WatchStore.add`)."""

    phone_number: str
    message_id: int
    position: int
    """Its position in the input that gave it (`StatusChange.index`)."""
    sent_at: float
    """Epoch seconds."""
    due_at: float
    """Its first check."""


class WatchedPair(NamedTuple):
    """A pending pair as a store holds it (`WatchStore.claim`)."""

    phone_number: str
    message_id: int
    position: int
    """Its position in the input that gave it (`StatusChange.index`)."""
    sent_at: float
    due_at: float
    status: DeliveryStatus | None
    """The status its last change reported; None before its first change."""
    sequence: int
    """How many changes it has had."""


class PairUpdate(NamedTuple):
    """What a round decided for one claimed pair (`WatchStore.commit`)."""

    phone_number: str
    message_id: int
    due_at: float | None
    """Its next check; None when it settled."""
    status: DeliveryStatus | None
    sequence: int
    settled_at: float | None
    """When it settled (the check's time); None while it is pending."""


@attrs.frozen(weakref_slot=False)
class StoreCounts:
    """How many pairs a store holds, by the status each last reported (`SQLiteStore.counts`).

    For a progress display: what a watch resumed from a file has already found.
    """

    pending: Mapping[DeliveryStatus | None, int]
    """Pairs still watched, by the status of their last change (None: none yet)."""
    settled: Mapping[DeliveryStatus, int]
    """Pairs settled and not yet pruned, by the status of their last change."""

    @property
    def total_pending(self) -> int:
        return sum(self.pending.values())

    @property
    def total_settled(self) -> int:
        return sum(self.settled.values())
