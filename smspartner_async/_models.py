"""Result types: frozen, slotted attrs classes and the delivery-status enum.

Models hold no parsing logic, and no `__weakref__` slot: 8 bytes less per
result, and a layout the converter can fill with plain attribute stores (see
`_convert.structure_code`). Where a field may come under several names on
the wire (`status`/`statut`, `stopSms`/`stopSMS`), the names are listed in the
field's `aliases` metadata and `_convert` builds the structuring code from them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from ._errors import SMSPartnerError

__all__ = [
    "BulkStatus",
    "DeliveryStatus",
    "MessageStatus",
    "MultiStatusResult",
    "RecipientStatus",
    "TagPage",
]


def _wire(*aliases: str) -> dict[str, Any]:
    return {"aliases": aliases}


class DeliveryStatus(enum.StrEnum):
    """What became of a message. `str()` gives the API's text; compare to members."""

    DELIVERED = "Delivered"
    NOT_DELIVERED = "Not delivered"
    WAITING = "Waiting"
    #: `ko` on the API's error-code page: the operator refused the message.
    FAILED = "ko"
    #: Any text the API documents nowhere; the raw text stays in `status_text`.
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        """Whether polling again can still change it."""
        return self in (
            DeliveryStatus.DELIVERED,
            DeliveryStatus.NOT_DELIVERED,
            DeliveryStatus.FAILED,
        )


@attrs.frozen(weakref_slot=False)
class RecipientStatus:
    """One recipient of a send, as bulk-status and bulk-status-by-tag list them."""

    phone_number: str = attrs.field(metadata=_wire("phoneNumber", "number"))
    status: DeliveryStatus = attrs.field(metadata=_wire("status", "statut"))
    status_text: str = attrs.field(default="", metadata=_wire("status", "statut"))
    date: datetime | None = attrs.field(default=None, metadata=_wire("date"))
    stop_sms: bool = attrs.field(default=False, metadata=_wire("stopSMS", "stopSms"))


@attrs.frozen(weakref_slot=False)
class MessageStatus:
    """One message's status (message-status), with what it cost."""

    phone_number: str = attrs.field(metadata=_wire("number", "phoneNumber"))
    message_id: int = attrs.field(metadata=_wire("messageId", "message_id"))
    status: DeliveryStatus = attrs.field(metadata=_wire("statut", "status"))
    status_text: str = attrs.field(default="", metadata=_wire("statut", "status"))
    date: datetime | None = attrs.field(default=None, metadata=_wire("date"))
    stop_sms: bool = attrs.field(default=False, metadata=_wire("stopSms", "stopSMS"))
    cost: Decimal | None = attrs.field(default=None, metadata=_wire("cost"))
    country_code: str | None = attrs.field(default=None, metadata=_wire("countryCode"))
    currency: str | None = attrs.field(default=None, metadata=_wire("currency"))


@attrs.frozen(weakref_slot=False)
class MultiStatusResult:
    """The answer for one input pair of `multi_status`.

    `ok` is False for a per-item failure (then `code` is the API's, e.g. 4, and
    `message` its text), and for an item whose request failed for good (then
    `code` is None and `error` is the exception that ended it).
    """

    phone_number: str = attrs.field(metadata=_wire("phoneNumber", "number"))
    message_id: int = attrs.field(metadata=_wire("messageId", "message_id"))
    ok: bool = attrs.field(metadata=_wire("success"))
    code: int | None = attrs.field(metadata=_wire("code"))
    status: DeliveryStatus = attrs.field(
        default=DeliveryStatus.UNKNOWN, metadata=_wire("status", "statut")
    )
    status_text: str = attrs.field(default="", metadata=_wire("status", "statut"))
    date: datetime | None = attrs.field(default=None, metadata=_wire("date"))
    stop_sms: bool = attrs.field(default=False, metadata=_wire("stopSms", "stopSMS"))
    is_spam: bool = attrs.field(default=False, metadata=_wire("isSpam"))
    #: Position of the pair in the caller's input.
    index: int = attrs.field(default=-1, metadata=_wire("_index"))
    error: SMSPartnerError | None = attrs.field(default=None, eq=False, metadata=_wire())

    @property
    def message(self) -> str | None:
        """Why this item failed, in the API's words or the library's."""
        if self.ok:
            return None
        if self.error is not None:
            return str(self.error)
        return self.status_text or None


@attrs.frozen(weakref_slot=False)
class BulkStatus:
    """Every recipient of one send (bulk-status)."""

    message_id: int = attrs.field(metadata=_wire("message_id", "messageId"))
    recipients: list[RecipientStatus] = attrs.field(metadata=_wire("StatutResponse_List"))


@attrs.frozen(weakref_slot=False)
class TagPage:
    """One page of bulk-status-by-tag; `total` counts items over all pages."""

    current_page: int = attrs.field(metadata=_wire("currentPage"))
    total: int = attrs.field(metadata=_wire("total"))
    recipients: list[RecipientStatus] = attrs.field(metadata=_wire("StatutResponse_List"))
    #: Items over this page and the ones before it, as the paginator counted them.
    seen: int = 0

    @property
    def missing(self) -> int:
        """On the last page of an iteration: how many of `total` items it never reached
        (0 when it reached them all). The paginator also logs a warning then."""
        return max(self.total - self.seen, 0)
