"""Injected failures: what flaky gateways and overloaded servers do to an HTTP client.

Each kind, as it appears on the wire:
- "429": status 429, JSON error body (code 429), `Retry-After: <retry_after>`;
- "500": status 500, JSON error body (code 500);
- "502": status 502 with an empty body;
- "503": status 503, an HTML page and `Retry-After`;
- "html": status 502 with an nginx-style HTML page (`<h1>502 Bad Gateway</h1>`);
- "html200": status 200 with an HTML maintenance page (not in the default random mix);
- "drop": the normal status and full Content-Length, half the body, then the connection is
  closed (over TCP the client sees a protocol error; in-process, a short body);
- "truncate": the normal status, half the body, Content-Length matching the half;
- "slow": the normal answer after `slow_seconds`.

Scripted faults run first, in order, so tests need no luck; random ones follow at `rate`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = ["DEFAULT_KINDS", "FAULT_KINDS", "DroppedConnection", "Faults"]

FAULT_KINDS: Final = ("429", "500", "502", "503", "html", "html200", "drop", "truncate", "slow")
DEFAULT_KINDS: Final = ("429", "500", "502", "503", "html", "drop", "truncate", "slow")


class DroppedConnection(Exception):
    """Raised inside the app to make the server cut the connection mid-body (fault "drop")."""


def _check(kind: str | None) -> None:
    if kind is not None and kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")


class Faults:
    """Decides, request by request, whether and how the sandbox misbehaves."""

    def __init__(
        self,
        rate: float = 0.0,
        kinds: Sequence[str] = DEFAULT_KINDS,
        retry_after: int | str = 1,
        slow_seconds: float = 30.0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rate and not kinds:
            raise ValueError("kinds must not be empty when rate > 0")
        for kind in kinds:
            _check(kind)
        self.rate = rate
        self.kinds = tuple(kinds)
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self._rng = random.Random(seed)  # noqa: S311 - test faults, not secrets
        self._script: deque[str | None] = deque()

    def script(self, kinds: Iterable[str | None]) -> None:
        """Queue faults for the next requests, in order; None means "answer normally"."""
        items = list(kinds)
        for kind in items:
            _check(kind)
        self._script.extend(items)

    @property
    def pending(self) -> int:
        """Scripted faults not yet consumed."""
        return len(self._script)

    def next(self) -> str | None:
        """The fault for the request being handled, if any."""
        if self._script:
            return self._script.popleft()
        if self.rate and self._rng.random() < self.rate:
            return self._rng.choice(self.kinds)
        return None
