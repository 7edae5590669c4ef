"""The four status endpoints, and how one HTTP answer becomes a record or an error.

Which error an answer stands for is decided in `_errors`, the one table; here
the body is read and decoded, in the endpoint's format.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from .._errors import ResponseFormatError, envelope_error, rate_limited, undecodable
from .._redact import SecretStr
from .body import Answer
from .json import decode_json
from .rows import MULTI_STATUS_ITEM, decode_multi_status, rows_of
from .xml import XmlLayout, decode_xml

__all__ = [
    "BULK_STATUS",
    "LIST_KEY",
    "MESSAGE_STATUS",
    "MULTI_STATUS",
    "STATUS_BY_TAG",
    "Endpoint",
    "ResponseFormat",
    "read_record",
]

ResponseFormat = Literal["json", "xml"]
LIST_KEY = "StatutResponse_List"
_RECIPIENT_KEYS = ("phoneNumber", "status", "stopSMS", "date")
_KIB = 1024


@attrs.frozen
class Endpoint:
    name: str
    method: str
    xml: XmlLayout
    #: The most an honest answer can weigh; None: only the client's `max_response_bytes`.
    max_bytes: int | None = None
    #: The list comes as rows (`rows.rows_of`), whichever the format.
    rows: bool = False


MESSAGE_STATUS = Endpoint(
    "message-status",
    "GET",
    XmlLayout(
        (
            "success",
            "code",
            "number",
            "messageId",
            "stopSms",
            "date",
            "statut",
            "cost",
            "countryCode",
            "currency",
        )
    ),
    max_bytes=64 * _KIB,  # one message
)
MULTI_STATUS = Endpoint(
    "multi-status",
    "POST",
    XmlLayout(
        ("success", "code", LIST_KEY),
        LIST_KEY,
        tuple(names[0] for names in MULTI_STATUS_ITEM),
        flat=True,
    ),
    max_bytes=4096 * _KIB,  # 500 items of a few hundred bytes, with room to spare
    rows=True,
)
BULK_STATUS = Endpoint(
    "bulk-status",
    "GET",
    XmlLayout(("success", "code", "message_id", LIST_KEY), LIST_KEY, _RECIPIENT_KEYS),
)
STATUS_BY_TAG = Endpoint(
    "bulk-status-by-tag",
    "GET",
    XmlLayout(("success", "code", "currentPage", "total", LIST_KEY), LIST_KEY, _RECIPIENT_KEYS),
)


def read_record(
    answer: Answer,
    endpoint: Endpoint,
    response_format: ResponseFormat,
    limit: int,
    secret: SecretStr,
) -> dict[str, Any]:
    """The answer's record when the API says success; the matching exception otherwise
    (which one: `_errors`, the one table)."""
    name = endpoint.name
    if answer.status == 429:
        raise rate_limited(answer.headers, name)
    try:
        body = answer.content(limit, secret)
        xml = response_format == "xml"
        layout = endpoint.xml
        if xml:
            record = decode_xml(body, layout)
        else:
            fast = decode_multi_status(body, LIST_KEY) if endpoint.rows else None
            record = fast if fast is not None else decode_json(body, layout.list_key)
    except ResponseFormatError as exc:
        raise undecodable(exc, answer.status, answer.headers, name) from None
    error = envelope_error(record, answer.status, answer.headers, name, body)
    if error is not None:
        raise error
    if endpoint.rows:
        record[LIST_KEY] = rows_of(record.get(LIST_KEY), LIST_KEY)
    return record
