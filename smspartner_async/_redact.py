"""Keeping the API key out of logs, messages and printed URLs.

The key travels as `apiKey=` in query strings and as `"apiKey": "..."` in
JSON bodies, and httpx logs every request URL at INFO. Every text this library
prints goes through `redact`, and `install_log_filter` rewrites httpx's and
httpcore's records before any handler sees them.
"""

from __future__ import annotations

import logging
import re
import urllib.parse

__all__ = [
    "REDACTED",
    "SecretStr",
    "install_log_filter",
    "mask_phone_params",
    "redact",
    "register_secret",
]

REDACTED = "***"

# apiKey=..., "apiKey": "..." in any case; stops at a delimiter. The value follows the
# `=` or `:` at once, or after a quote: "pass api_key= or ..." is prose, not a key.
_PATTERN = re.compile(
    r"""(?ix)
    (api[_-]?key)              # the name
    (["']?\s*[:=](?:\s*["'])?)  # = or : or ": "
    [^&"'\s,;}<>]+             # the value
    """
)

# Exact key values seen by this process, for texts that carry the key bare.
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a key so that `redact` also catches it outside `apiKey=`."""
    if len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every API key replaced by `***`."""
    text = _PATTERN.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class SecretStr:
    """A key that does not show itself in `repr`, `str` or tracebacks' locals."""

    __slots__ = ("_forms", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        self._forms: tuple[bytes, ...] | None = None
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def byte_forms(self) -> tuple[bytes, ...]:
        """The key as it may come back in a body: as sent, and percent-encoded."""
        forms = self._forms
        if forms is None:
            plain = self._value.encode()
            quoted = urllib.parse.quote_plus(self._value).encode()
            forms = self._forms = (plain,) if quoted == plain else (plain, quoted)
        return forms

    def __repr__(self) -> str:
        return f"SecretStr({REDACTED!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# httpx prints message-status URLs, phone number included, at INFO: keep the last two digits.
_PHONE_PARAM = re.compile(r"(?i)(phone_?number=)(?:%2B|\+)?[0-9]*([0-9]{2})")


def mask_phone_params(text: str) -> str:
    return _PHONE_PARAM.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(2)}", text)


class _RedactingFilter(logging.Filter):
    """Rewrites a record's message so no handler ever formats the key (nor a full number)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's problem, not ours
            return True
        cleaned = mask_phone_params(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()
# Loggers that print request URLs or headers; filters on a logger see its own records.
_LOGGERS = ("httpx", "httpcore", "httpcore.http11", "httpcore.connection", "aiohttp.client")


def install_log_filter() -> None:
    """Attach the redacting filter to the HTTP libraries' loggers (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
