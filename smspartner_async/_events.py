"""What a client reports about its requests: one event per HTTP attempt, counters over its life.

Public types (exported from `smspartner_async`): a metrics hook is written
against `RequestEvent`, an exporter reads `ClientStats`.
"""

from __future__ import annotations

import attrs

from ._errors import SMSPartnerError

__all__ = ["ClientStats", "RequestEvent"]


@attrs.frozen
class RequestEvent:
    """One HTTP attempt, for metrics hooks.

    Its fields hold no key and no phone number. `error` is the exception itself, whose
    message may quote the API's answer (phone numbers included, never the key): label
    metrics with `type(event.error).__name__`, not with its text.
    """

    endpoint: str
    attempt: int
    status_code: int | None
    elapsed: float
    pairs: int
    error: SMSPartnerError | None = None
    #: Seconds until the next attempt, when there will be one.
    retry_in: float | None = None


@attrs.define
class ClientStats:
    """Counters over a client's life; cheap enough to leave on."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    rate_limited: int = 0
    by_endpoint: dict[str, int] = attrs.field(factory=dict)
