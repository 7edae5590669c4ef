"""A client's per-call options, declared once, validated once.

The client's constructor and `with_options` both end here, so a bad value is
refused the same way wherever it comes from: `InvalidInputError` (a
`ValueError`), naming the option. Options that belong to the pool and its flow
control (`max_concurrency`, `max_requests_per_second`, `transport`,
`http_client`, `on_request`) are the client's alone and not here.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import httpx

from ._chunking import MAX_BATCH
from ._errors import InvalidInputError
from ._retry import RetryPolicy
from ._validate import DEFAULT_REGION, REGIONS
from ._wire.endpoints import ResponseFormat

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ClientOptions",
]

DEFAULT_BASE_URL = "https://api.smspartner.fr/v1"
#: Room for a bulk-status answer listing several hundred thousand recipients.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


def _check(ok: bool, name: str, expected: str, value: object) -> None:
    if not ok:
        raise InvalidInputError(f"{name} must be {expected}", value=value)


def _base_url(_: Any, __: Any, value: object) -> None:
    _check(
        isinstance(value, str) and value.startswith(("http://", "https://")),
        "base_url",
        "an http:// or https:// URL",
        value,
    )


def _positive_int(name: str, most: int | None = None) -> Any:
    def check(_: Any, __: Any, value: object) -> None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        expected = "a whole number of at least 1"
        if most is not None:
            ok = ok and value <= most  # type: ignore[operator]
            expected = f"a whole number from 1 to {most}"
        _check(ok, name, expected, value)

    return check


def _positive_or_none(name: str) -> Any:
    def check(_: Any, __: Any, value: object) -> None:
        ok = value is None or (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and value > 0
            and math.isfinite(value)
        )
        _check(ok, name, "a positive number of seconds, or None", value)

    return check


def _timeout(_: Any, __: Any, value: object) -> None:
    ok = value is None or isinstance(value, httpx.Timeout)
    ok = ok or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0)
    _check(ok, "timeout", "a positive number of seconds, an httpx.Timeout, or None", value)


def _one_of(name: str, choices: tuple[str, ...]) -> Any:
    def check(_: Any, __: Any, value: object) -> None:
        _check(value in choices, name, f"one of {', '.join(map(repr, choices))}", value)

    return check


def _region(_: Any, __: Any, value: object) -> None:
    _check(
        isinstance(value, str) and value in REGIONS,
        "default_region",
        "a region code phonenumbers knows, upper case, as 'FR', 'BE' or 'JP'",
        value,
    )


def _retry(_: Any, __: Any, value: object) -> None:
    _check(isinstance(value, RetryPolicy), "retry", "a RetryPolicy", value)


def _bool(name: str) -> Any:
    def check(_: Any, __: Any, value: object) -> None:
        _check(isinstance(value, bool), name, "True or False", value)

    return check


def _strip_slash(url: object) -> object:
    """The API's root without a trailing slash; a bare host gets the API's `/v1`.

    The endpoints live under /v1; a host alone (`http://127.0.0.1:8000`, the
    sandbox's address as one types it) can mean nothing else, and used to end in
    a 404. Any other path is kept as given (a gateway's own).
    """
    if not isinstance(url, str):
        return url
    url = url.rstrip("/")
    _, sep, rest = url.partition("://")
    if sep and rest and "/" not in rest:
        url += "/v1"
    return url


@attrs.frozen
class ClientOptions:
    """What one call needs to know besides its arguments; see `SMSPartnerClient` for each."""

    base_url: str = attrs.field(
        default=DEFAULT_BASE_URL,
        validator=_base_url,
        converter=_strip_slash,
    )
    timeout: float | httpx.Timeout | None = attrs.field(default=None, validator=_timeout)
    response_format: ResponseFormat = attrs.field(
        default="json", validator=_one_of("response_format", ("json", "xml"))
    )
    batch_size: int = attrs.field(
        default=MAX_BATCH, validator=_positive_int("batch_size", MAX_BATCH)
    )
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, validator=_retry)
    deadline: float | None = attrs.field(default=120.0, validator=_positive_or_none("deadline"))
    default_region: str = attrs.field(default=DEFAULT_REGION, validator=_region)
    fail_fast: bool = attrs.field(default=False, validator=_bool("fail_fast"))
    max_pages: int = attrs.field(default=10_000, validator=_positive_int("max_pages"))
    max_response_bytes: int = attrs.field(
        default=DEFAULT_MAX_RESPONSE_BYTES, validator=_positive_int("max_response_bytes")
    )
