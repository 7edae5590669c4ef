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
    """The operator confirmed delivery to the handset (final)."""
    NOT_DELIVERED = "Not delivered"
    """The operator gave up: number off, unreachable for too long, refused (final)."""
    WAITING = "Waiting"
    """No report yet; reports can take up to 48 hours depending on operators."""
    FAILED = "ko"
    """`ko` on the API's error-code page: the operator refused the message (final)."""
    UNKNOWN = "unknown"
    """Any text the API documents nowhere (the raw text stays in `status_text`), and failed
    items."""

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
    """E.164 when the API's echo could be read as a number; else the API's text."""
    status: DeliveryStatus = attrs.field(metadata=_wire("status", "statut"))
    """The status, whatever the API's spelling or case."""
    status_text: str = attrs.field(default="", metadata=_wire("status", "statut"))
    """The API's own status text, stripped."""
    date: datetime | None = attrs.field(default=None, metadata=_wire("date"))
    """When the status was reported (an aware datetime in UTC), or None before any report."""
    stop_sms: bool = attrs.field(default=False, metadata=_wire("stopSMS", "stopSms"))
    """Whether the recipient answered STOP."""


@attrs.frozen(weakref_slot=False)
class MessageStatus:
    """One message's status (message-status), with what it cost."""

    phone_number: str = attrs.field(metadata=_wire("number", "phoneNumber"))
    """The number asked about, in E.164 (ours, not the API's echo)."""
    message_id: int = attrs.field(metadata=_wire("messageId", "message_id"))
    """The message id, as an int whatever the API's spelling."""
    status: DeliveryStatus = attrs.field(metadata=_wire("statut", "status"))
    """The status, whatever the API's spelling or case."""
    status_text: str = attrs.field(default="", metadata=_wire("statut", "status"))
    """The API's own status text, stripped."""
    date: datetime | None = attrs.field(default=None, metadata=_wire("date"))
    """When the status was reported (an aware datetime in UTC), or None before any report."""
    stop_sms: bool = attrs.field(default=False, metadata=_wire("stopSms", "stopSMS"))
    """Whether the recipient answered STOP."""
    cost: Decimal | None = attrs.field(default=None, metadata=_wire("cost"))
    """What the message cost, in `currency`; a `Decimal`, never a float."""
    country_code: str | None = attrs.field(default=None, metadata=_wire("countryCode"))
    """The recipient's country (ISO 3166 alpha-2), as the API gives it."""
    currency: str | None = attrs.field(default=None, metadata=_wire("currency"))
    """The currency of `cost` (ISO 4217)."""


@attrs.frozen(weakref_slot=False)
class MultiStatusResult:
    """The answer for one input pair of `multi_status`.

    Check `ok` before `status`. `ok` is False for a per-item failure (then
    `code` is the API's, e.g. 4 for a number not found, and `message` its
    text), and for a pair whose call failed for good (then `error` is the
    exception that ended the call, and `code` that exception's API code if it
    had one, else None).
    """

    phone_number: str = attrs.field(metadata=_wire("phoneNumber", "number"))
    """The pair's number in E.164 (ours, not the API's echo)."""
    message_id: int = attrs.field(metadata=_wire("messageId", "message_id"))
    """The pair's message id."""
    ok: bool = attrs.field(metadata=_wire("success"))
    """Whether the API answered this pair with a status."""
    code: int | None = attrs.field(metadata=_wire("code"))
    """The API's code for this item (200, or e.g. 4), or the failed call's code."""
    status: DeliveryStatus = attrs.field(
        default=DeliveryStatus.UNKNOWN, metadata=_wire("status", "statut")
    )
    """The status; `UNKNOWN` for a failed item."""
    status_text: str = attrs.field(default="", metadata=_wire("status", "statut"))
    """The API's own status text (for a failed item, its reason)."""
    date: datetime | None = attrs.field(default=None, metadata=_wire("date"))
    """When the status was reported (an aware datetime in UTC), or None."""
    stop_sms: bool = attrs.field(default=False, metadata=_wire("stopSms", "stopSMS"))
    """Whether the recipient answered STOP."""
    is_spam: bool = attrs.field(default=False, metadata=_wire("isSpam"))
    """Whether the API flagged the message as spam."""
    index: int = attrs.field(default=-1, metadata=_wire("_index"))
    """Position of the pair in the caller's input."""
    error: SMSPartnerError | None = attrs.field(default=None, eq=False, metadata=_wire())
    """The exception that ended this pair's call, when it failed for good."""

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
    """The send's message id."""
    recipients: list[RecipientStatus] = attrs.field(metadata=_wire("StatutResponse_List"))
    """One status per recipient, in the API's order."""


@attrs.frozen(weakref_slot=False)
class TagPage:
    """One page of bulk-status-by-tag; `total` counts items over all pages."""

    current_page: int = attrs.field(metadata=_wire("currentPage"))
    """The page number the API says this is (1-based)."""
    total: int = attrs.field(metadata=_wire("total"))
    """Items under the tag over all pages, as the API announced on this page."""
    recipients: list[RecipientStatus] = attrs.field(metadata=_wire("StatutResponse_List"))
    """This page's recipients."""
    seen: int = 0
    """Items over this page and the ones before it, as the paginator counted them."""

    @property
    def missing(self) -> int:
        """On the last page of an iteration: how many of `total` items it never reached
        (0 when it reached them all). The paginator also logs a warning then."""
        return max(self.total - self.seen, 0)
