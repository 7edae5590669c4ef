"""The four status endpoints, and how one HTTP answer becomes a record or an error.

Whether the API's HTTP statuses mirror its error codes is undocumented, so the
body decides when it is the API's (`success`, `code`, `message`); the HTTP
status decides only when the body is not: 429 is a rate limit, 408 and 5xx a
server error, anything else an answer we cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._convert import parse_bool, parse_int
from ._decode import ResponseFormat, XmlLayout, decode_body
from ._errors import (
    RateLimitError,
    ResponseFormatError,
    ServerError,
    error_from_code,
    server_failed,
)
from ._retry import parse_retry_after

__all__ = [
    "BULK_STATUS",
    "MESSAGE_STATUS",
    "MULTI_STATUS",
    "STATUS_BY_TAG",
    "Endpoint",
    "read_answer",
]

LIST_KEY = "StatutResponse_List"
_RECIPIENT_KEYS = ("phoneNumber", "status", "stopSMS", "date")


@attrs.frozen
class Endpoint:
    name: str
    method: str
    xml: XmlLayout


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
)
MULTI_STATUS = Endpoint(
    "multi-status",
    "POST",
    XmlLayout(
        ("success", "code", LIST_KEY),
        LIST_KEY,
        ("success", "code", "phoneNumber", "messageId", "status", "date", "stopSms", "isSpam"),
        flat=True,
    ),
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


def read_answer(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    endpoint: Endpoint,
    response_format: ResponseFormat,
) -> dict[str, Any]:
    """The answer's record when the API says success; the matching exception otherwise."""
    if status_code == 429:
        raise RateLimitError(retry_after=parse_retry_after(headers), endpoint=endpoint.name)
    try:
        return _record(status_code, body, endpoint, response_format)
    except ServerError as exc:
        exc.retry_after = parse_retry_after(headers)  # a 503 may say when to come back
        raise


def _record(
    status_code: int, body: bytes, endpoint: Endpoint, response_format: ResponseFormat
) -> dict[str, Any]:
    name = endpoint.name
    try:
        record = decode_body(body, response_format, endpoint.xml)
    except ResponseFormatError as exc:
        if server_failed(status_code):
            raise ServerError(
                None, f"server error, body: {exc.excerpt!r}", status_code=status_code, endpoint=name
            ) from None
        exc.status_code, exc.endpoint = status_code, name
        raise
    success = record.get("success")
    try:
        ok = parse_bool(success) if success is not None else None
        code = parse_int(record["code"]) if record.get("code") not in (None, "") else None
    except ValueError:
        raise ResponseFormatError(
            "the API's success flag or code is malformed", body=body, status_code=status_code
        ) from None
    if ok is False:
        message = record.get("message")
        text = message if isinstance(message, str) else "no message"
        raise error_from_code(code, text, status_code=status_code, endpoint=name)
    if ok is None:
        if server_failed(status_code):
            raise ServerError(None, "server error", status_code=status_code, endpoint=name)
        raise ResponseFormatError(
            "the answer has no success flag", body=body, status_code=status_code, endpoint=name
        )
    return record
