"""The exception tree, and the one table from every failure to it.

    SMSPartnerError
    ├── InvalidInputError (also ValueError)   bad arguments, refused before sending
    ├── ClientStateError (also RuntimeError)  closed client, foreign event loop
    │   ├── SharedLimitsUnavailableError      Redis holding the shared limits is down
    │   └── WatchStoreUnavailableError        Redis holding a shared watch is down
    ├── APIConnectionError                    the request did not get an answer
    │   └── APITimeoutError
    ├── ResponseFormatError                   an answer that is not the API's
    │   └── ResponseTooLargeError             over `max_response_bytes`, raw or inflated
    └── APIError                              the API said no (.code, .message)
        ├── AuthenticationError               1, 10
        ├── PermissionDeniedError             96
        ├── NotFoundError                     4
        ├── InvalidRequestError               2, 3, 5, 6, 9, 50, 90
        ├── RateLimitError                    HTTP 429
        └── ServerError                       HTTP 408 / 5xx without an API body

Every translation into this tree lives here, in the order a call meets them
(the aiohttp transport first maps aiohttp's exceptions to httpx's, as httpx's
own transport does for httpcore's): `transport_error` (httpx's exceptions),
`rate_limited` (HTTP 429), `undecodable` (a body that does not decode),
`envelope_error` (`success`, `code`, the HTTP status), `error_from_code` (the
API's codes) and `misfit` (a record that does not fit the models). Whether
the API answered is a property of each class, `answered`.

The classes show under `smspartner_async` in tracebacks (`__module__`), where
they are exported. No message or attribute ever holds the API key: messages
are built here from codes, excerpts and endpoint names, and excerpts are
redacted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from ._redact import redact
from ._retry import parse_retry_after
from ._scalars import parse_bool, parse_int

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "ClientStateError",
    "InvalidInputError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "SMSPartnerError",
    "ServerError",
    "SharedLimitsUnavailableError",
    "WatchStoreUnavailableError",
    "envelope_error",
    "error_from_code",
    "misfit",
    "rate_limited",
    "transport_error",
    "undecodable",
]


class SMSPartnerError(Exception):
    """Root of every exception this library raises on purpose."""

    retryable: bool = False
    """Whether sending the same request again may succeed (the client retries those)."""
    answered: ClassVar[bool] = False
    """Whether the API itself answered: an `APIError` from its envelope (code 2, say) is an
    answer; no connection, a timeout, a 429, a 5xx page or a body that is not the API's
    are not. A batch in which no call got an answer raises instead of returning failed
    items, and a watch keeps asking about pairs whose call got none."""


class InvalidInputError(SMSPartnerError, ValueError):
    """An argument the API would refuse, or an option out of range; raised before sending."""

    value: object
    """The value refused (for an option: the value given)."""
    index: int | None
    """The position of the refused pair in the input, for batch calls."""

    def __init__(self, message: str, *, value: object = None, index: int | None = None) -> None:
        where = f" (item {index})" if index is not None else ""
        super().__init__(f"{message}{where}: {value!r}")
        self.value = value
        self.index = index


class ClientStateError(SMSPartnerError, RuntimeError):
    """The client cannot send now: closed, or bound to another event loop."""


class SharedLimitsUnavailableError(ClientStateError):
    """Redis, which holds the shared rate limit and pause, did not answer: nothing was sent.

    Raised from the call (not retried: the limit cannot be kept without Redis); the client
    stays usable, and the next call succeeds once Redis answers again.
    """


class WatchStoreUnavailableError(ClientStateError):
    """Redis, which holds the shared watch state, did not answer or refused a command.

    A `ClientStateError`, like `SharedLimitsUnavailableError`, but its own class: the
    watch state and the rate limit may live on different Redis servers, and a caller
    stopping a watcher should not catch a rate-limit outage by mistake. Nothing is lost
    that Redis keeps: what the failed call may have done there is undone by the leases,
    and once Redis answers again a new `Watcher` on the namespace goes on where it was.
    """


class APIConnectionError(SMSPartnerError):
    """No answer: connection refused, reset or dropped mid-body."""

    retryable = True
    endpoint: str | None
    """The endpoint called (`message-status`, ...)."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(redact(message))
        self.endpoint = endpoint


class APITimeoutError(APIConnectionError):
    """No answer in time (one operation, or the call's whole deadline)."""


class ResponseFormatError(SMSPartnerError):
    """A body that is not what the API documents: HTML, truncated, wrong types."""

    retryable = True
    excerpt: str
    """The start of the body (at most 200 characters), key redacted."""
    status_code: int | None
    """The HTTP status of the answer."""
    endpoint: str | None
    """The endpoint called."""

    def __init__(
        self,
        message: str,
        *,
        body: bytes | str | None = None,
        status_code: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.excerpt = _excerpt(body)
        self.status_code = status_code
        self.endpoint = endpoint
        detail = f" (HTTP {status_code})" if status_code is not None else ""
        tail = f": {self.excerpt!r}" if self.excerpt else ""
        super().__init__(f"{message}{detail}{tail}")


class ResponseTooLargeError(ResponseFormatError):
    """An answer over the client's `max_response_bytes`, raw or once inflated.

    Not retried: the same request would bring the same body back.
    """

    retryable = False


class APIError(SMSPartnerError):
    """The API answered with `success: false`, or an HTTP error status."""

    answered = True
    code: int | None
    """The API's error code (`code` in its answer), None for an HTTP-only error."""
    message: str
    """The API's message, key redacted."""
    status_code: int | None
    """The HTTP status of the answer."""
    endpoint: str | None
    """The endpoint called."""

    def __init__(
        self,
        code: int | None,
        message: str,
        *,
        status_code: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.code = code
        self.message = redact(message)
        self.status_code = status_code
        self.endpoint = endpoint
        label = f"code {code}" if code is not None else f"HTTP {status_code}"
        where = f" on {endpoint}" if endpoint else ""
        super().__init__(f"{label}{where}: {self.message}")

    def __reduce__(self) -> tuple[Any, ...]:
        # The state (retry_after, notes) rides along: pickling for a process pool or a
        # job queue must not lose what the exception says about waiting.
        args = (type(self), self.code, self.message, self.status_code, self.endpoint)
        return (_rebuild, args, self.__dict__)


def _rebuild(
    cls: type[APIError], code: int | None, message: str, status: int | None, endpoint: str | None
) -> APIError:
    return cls(code, message, status_code=status, endpoint=endpoint)


class AuthenticationError(APIError):
    """Missing or invalid API key: no request of this client can succeed."""


class PermissionDeniedError(APIError):
    """The caller's IP address is not authorised for this key."""


class NotFoundError(APIError):
    """No such message (for this phone number)."""


class InvalidRequestError(APIError):
    """The API refused the request's content; sending it again will not help."""


class RateLimitError(APIError):
    """HTTP 429: every request of the client pauses until `retry_after` has passed."""

    retryable = True
    answered = False
    retry_after: float | None
    """The server's `Retry-After` in seconds, when it gave one."""

    def __init__(
        self,
        message: str = "too many requests",
        *,
        retry_after: float | None = None,
        status_code: int | None = 429,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(None, message, status_code=status_code, endpoint=endpoint)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.message, self.retry_after, self.endpoint)
        return (_rebuild_rate_limit, args, self.__dict__)


def _rebuild_rate_limit(message: str, retry_after: float | None, endpoint: str | None) -> Any:
    return RateLimitError(message, retry_after=retry_after, endpoint=endpoint)


class ServerError(APIError):
    """HTTP 408 or 5xx with no API error in the body: the server may recover.

    `retry_after` is the server's `Retry-After` (a 503 may send one), in seconds.
    """

    retryable = True
    answered = False
    retry_after: float | None = None
    """The server's `Retry-After` in seconds (a 503 may send one)."""


# -- the table: every failure -> one exception ------------------------------------

#: Errors that no other request of the same client can escape: a batch stops on them.
FATAL_ERRORS: tuple[type[APIError], ...] = (AuthenticationError, PermissionDeniedError)

# httpx's exceptions -> ours, most specific first.
_TRANSPORT_ERRORS: tuple[tuple[type[Exception], Callable[..., SMSPartnerError]], ...] = (
    (httpx.DecodingError, ResponseFormatError),  # a mock's body that does not inflate
    (httpx.TimeoutException, APITimeoutError),
    (httpx.RequestError, APIConnectionError),  # refused, reset, dropped mid-body, redirects
)

# The API's error codes (its error-code page) -> ours.
_BY_CODE: dict[int, type[APIError]] = {
    1: AuthenticationError,
    10: AuthenticationError,
    96: PermissionDeniedError,
    4: NotFoundError,
    **dict.fromkeys((2, 3, 5, 6, 9, 50, 90), InvalidRequestError),
}


def transport_error(exc: Exception, endpoint: str) -> SMSPartnerError:
    """Our exception for an httpx one; its message names the class, never the URL."""
    if isinstance(exc, httpx.HTTPStatusError):
        return _hook_status_error(exc.response, endpoint)
    for source, target in _TRANSPORT_ERRORS:
        if isinstance(exc, source):
            return target(f"{endpoint}: {type(exc).__name__}: {exc}", endpoint=endpoint)
    raise exc  # not a transport failure: a bug, let it show


def _hook_status_error(response: httpx.Response, endpoint: str) -> SMSPartnerError:
    """An `HTTPStatusError` that an event hook of the caller's own httpx client raised
    (`raise_for_status`): its message is the URL, key included, so the status is told as
    the library tells it, retried as the same status would be; the body went unread."""
    status = response.status_code
    if status == 429:
        return rate_limited(response.headers, endpoint)
    why = "raised by the http_client's own event hook"
    if server_failed(status):
        return _server_error(why, status, response.headers, endpoint)
    return APIError(None, why, status_code=status, endpoint=endpoint)


def _server_error(
    message: str, status_code: int, headers: Mapping[str, str], endpoint: str
) -> ServerError:
    error = ServerError(None, message, status_code=status_code, endpoint=endpoint)
    error.retry_after = parse_retry_after(headers)  # a 503 may say when to come back
    return error


def rate_limited(headers: Mapping[str, str], endpoint: str) -> RateLimitError:
    """HTTP 429, whatever its body says, with the server's `Retry-After`."""
    return RateLimitError(retry_after=parse_retry_after(headers), endpoint=endpoint)


def undecodable(
    exc: ResponseFormatError, status_code: int, headers: Mapping[str, str], endpoint: str
) -> SMSPartnerError:
    """A body that does not decode: a server error on 408/5xx (a proxy's HTML page), else
    the format error itself, told its status and endpoint."""
    if server_failed(status_code) and exc.retryable:
        return _server_error(f"server error, body: {exc.excerpt!r}", status_code, headers, endpoint)
    exc.status_code, exc.endpoint = status_code, endpoint
    return exc


def envelope_error(
    record: Mapping[str, Any],
    status_code: int,
    headers: Mapping[str, str],
    endpoint: str,
    body: bytes | str | None = None,
) -> SMSPartnerError | None:
    """The error a decoded answer stands for, or None when the API says success.

    Whether the API's HTTP statuses mirror its error codes is undocumented, so
    the body decides when it is the API's (`success`, `code`, `message`); the
    HTTP status decides only when the body is not: 408 and 5xx are a server
    error, anything else an answer we cannot read.
    """
    success = record.get("success")
    try:
        ok = parse_bool(success) if success is not None else None
        code = parse_int(record["code"]) if record.get("code") not in (None, "") else None
    except ValueError:
        return ResponseFormatError(
            "the API's success flag or code is malformed",
            body=body,
            status_code=status_code,
            endpoint=endpoint,
        )
    error: SMSPartnerError
    if ok is True:
        return None
    if ok is False:
        message = record.get("message")
        text = message if isinstance(message, str) else "no message"
        error = error_from_code(code, text, status_code=status_code, endpoint=endpoint)
    elif server_failed(status_code):
        error = ServerError(None, "server error", status_code=status_code, endpoint=endpoint)
    else:
        return ResponseFormatError(
            "the answer has no success flag", body=body, status_code=status_code, endpoint=endpoint
        )
    if isinstance(error, ServerError):
        error.retry_after = parse_retry_after(headers)
    return error


def error_from_code(
    code: int | None, message: str, *, status_code: int | None = None, endpoint: str | None = None
) -> APIError:
    """The exception for an API error code.

    An undocumented code is an `APIError`, or a retryable `ServerError` when the
    HTTP status says the server failed (a gateway's JSON error page, say).
    """
    cls = _BY_CODE.get(code) if code is not None else None
    if cls is None:
        cls = ServerError if status_code is not None and server_failed(status_code) else APIError
    return cls(code, message, status_code=status_code, endpoint=endpoint)


def misfit(exc: ValueError | TypeError, what: str) -> ResponseFormatError:
    """A record that decoded but does not fit the models (retried like a garbled body)."""
    return ResponseFormatError(f"the answer does not fit {what}: {exc}")


def server_failed(status_code: int) -> bool:
    """HTTP 408 or 5xx: the server, not the request, failed (worth another try)."""
    return status_code == 408 or status_code >= 500


_EXCERPT_CHARS = 200


def _excerpt(body: bytes | str | None) -> str:
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body[: _EXCERPT_CHARS * 4].decode("utf-8", "replace")
    text = " ".join(body[: _EXCERPT_CHARS * 2].split())
    return redact(text)[:_EXCERPT_CHARS]


# Tracebacks and reprs name the public path, where the classes are exported.
for _name in __all__:
    _member = globals()[_name]
    if isinstance(_member, type):
        _member.__module__ = "smspartner_async"
