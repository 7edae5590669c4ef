"""Counters a test or a benchmark reads to see what the client actually did to the server."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Stats"]


@dataclass
class Stats:
    """Requests per endpoint, batch sizes, concurrency and injected faults."""

    requests: Counter[str] = field(default_factory=Counter)  # per endpoint name
    total: int = 0
    pairs_per_call: list[int] = field(default_factory=list)  # multi-status batch sizes
    in_flight: int = 0
    max_in_flight: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # per fault kind
    errors: Counter[int] = field(default_factory=Counter)  # per API error code answered

    def reset(self) -> None:
        """Zero the counters; requests still running keep counting as in flight."""
        self.requests.clear()
        self.total = 0
        self.pairs_per_call.clear()
        self.max_in_flight = self.in_flight
        self.faults.clear()
        self.errors.clear()

    def _begin(self, endpoint: str) -> None:
        self.requests[endpoint] += 1
        self.total += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _end(self) -> None:
        self.in_flight -= 1
