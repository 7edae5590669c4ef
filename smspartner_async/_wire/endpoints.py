"""The four status endpoints, and how one HTTP answer becomes a record or an error.

Whether the API's HTTP statuses mirror its error codes is undocumented, so the
body decides when it is the API's (`success`, `code`, `message`); the HTTP
status decides only when the body is not: 429 is a rate limit, 408 and 5xx a
server error, anything else an answer we cannot read.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from .._errors import (
    RateLimitError,
    ResponseFormatError,
    ServerError,
    error_from_code,
    server_failed,
)
from .._redact import SecretStr
from .._retry import parse_retry_after
from .._structure import parse_bool, parse_int
from .body import Answer
from .json import decode_json
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
        ("success", "code", "phoneNumber", "messageId", "status", "date", "stopSms", "isSpam"),
        flat=True,
    ),
    max_bytes=4096 * _KIB,  # 500 items of a few hundred bytes, with room to spare
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
    """The answer's record when the API says success; the matching exception otherwise."""
    if answer.status == 429:
        retry_after = parse_retry_after(answer.headers)
        raise RateLimitError(retry_after=retry_after, endpoint=endpoint.name)
    try:
        return _record(answer, endpoint, response_format, limit, secret)
    except ServerError as exc:
        exc.retry_after = parse_retry_after(answer.headers)  # a 503 may say when to come back
        raise


def _record(
    answer: Answer,
    endpoint: Endpoint,
    response_format: ResponseFormat,
    limit: int,
    secret: SecretStr,
) -> dict[str, Any]:
    name, status_code = endpoint.name, answer.status
    try:
        body = answer.content(limit, secret)
        xml = response_format == "xml"
        record = decode_xml(body, endpoint.xml) if xml else decode_json(body)
    except ResponseFormatError as exc:
        if server_failed(status_code) and exc.retryable:
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
