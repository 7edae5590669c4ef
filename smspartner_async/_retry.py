"""When to try again and how long to wait: the retry policy and `Retry-After`.

Why not stamina or tenacity: a wait here is not only a function of the attempt.
A 429's `Retry-After` pauses every request of the client and a wait must never
hold a concurrency slot (`_flow`); what remains (backoff, header parsing) is
twenty lines with no dependency. The testing switch stamina made popular is
`RetryPolicy.testing()`: same decisions, no waiting.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time

import attrs

__all__ = ["RetryPolicy", "parse_retry_after"]


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter, capped; `Retry-After` honoured up to a cap.

    The wait after failed attempt n (0-based) is `min(initial_backoff * 2**n,
    max_backoff)`, of which up to half is taken off at random when `jitter` is on (so
    chunks that failed together do not all come back together, and a wait is
    never zero).

    Only errors whose `retryable` flag is set are retried: connection errors,
    timeouts, 408, 429, 5xx and answers that are not the API's. API errors
    (bad key, bad input, IP not authorised) are final.
    """

    max_retries: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    """Attempts after the first one; 0 sends each request once."""
    initial_backoff: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    """Seconds waited after the first failed attempt, doubled after each next one."""
    max_backoff: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    """The longest backoff, in seconds."""
    max_retry_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    """The longest `Retry-After` obeyed, in seconds; a longer one ends the retries."""
    jitter: bool = True
    """Take a random part off each backoff."""

    @classmethod
    def testing(cls, max_retries: int = 3) -> RetryPolicy:
        """Same retry decisions, zero waiting: for test suites."""
        return cls(max_retries=max_retries, initial_backoff=0, max_backoff=0, max_retry_after=0)

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (0-based)."""
        ceiling = min(self.initial_backoff * 2.0**attempt, self.max_backoff)
        if not self.jitter:
            return ceiling
        # Half fixed, half random: spreads chunks out without ever waiting 0.
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto

    def wait_for(self, attempt: int, retry_after: float | None) -> float | None:
        """The wait before the next attempt, or None when `Retry-After` is beyond the cap."""
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.max_retry_after and self.max_retry_after > 0:
            return None
        return min(retry_after, self.max_retry_after)


_RETRY_AFTER_LIMIT = 24 * 3600.0


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date.

    Garbage, NaN and infinity give None (fall back to backoff); a date in the
    past gives 0; anything over a day is clamped to a day (the policy's cap
    decides what to do with it).
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _finite(raw_ms)
        if seconds is not None:
            return _clamp(seconds / 1000)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _finite(raw)
    if seconds is not None:
        return _clamp(seconds)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    try:
        return _clamp(when.timestamp() - (time() if now is None else now))
    except OverflowError:
        return None


def _finite(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _clamp(seconds: float) -> float:
    return min(max(seconds, 0.0), _RETRY_AFTER_LIMIT)
