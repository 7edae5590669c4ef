"""Hints a store keeps for pairs not added yet: bounded in number and in time.

A delivery report can reach the service before the code that sent the message has
added its pair to the watch (a callback racing the `add`). Such a hint is kept, so
that the pair is due as soon as it is added, but only for `HINT_KEEP_SECONDS` of the
watch's clock and only the `HINT_KEEP_MAX` latest: hints are untrusted input (a forged
callback must cost little), and a hint lost costs nothing but a late check (the
schedule still asks).
"""

from __future__ import annotations

from typing import Final

__all__ = ["HINT_KEEP_MAX", "HINT_KEEP_SECONDS", "KeptHints"]

#: Seconds (of the watch's clock) a hint for a pair not added yet is kept.
HINT_KEEP_SECONDS: Final = 300.0
#: Hints for pairs not added yet kept at most; the oldest go first.
HINT_KEEP_MAX: Final = 10_000


class KeptHints:
    """(message id, phone or None) -> when hinted, oldest first, bounded."""

    __slots__ = ("_hints", "_keep", "_most")

    def __init__(self, keep: float = HINT_KEEP_SECONDS, most: int = HINT_KEEP_MAX) -> None:
        self._hints: dict[tuple[int, str | None], float] = {}
        self._keep = keep
        self._most = most

    def __len__(self) -> int:
        return len(self._hints)

    def keep(self, message_id: int, phone_number: str | None, now: float) -> None:
        hints = self._hints
        key = (message_id, phone_number)
        hints.pop(key, None)  # to the back: the newest
        hints[key] = now
        self.expire(now)
        while len(hints) > self._most:
            del hints[next(iter(hints))]

    def expire(self, now: float) -> None:
        hints, oldest = self._hints, now - self._keep
        while hints:
            key = next(iter(hints))
            if hints[key] >= oldest:
                return
            del hints[key]

    def due_at(self, phone_number: str, message_id: int) -> float | None:
        """When a kept hint made this pair due (the pair's hint is used up), or None."""
        hints = self._hints
        if not hints:
            return None
        at = hints.pop((message_id, phone_number), None)
        every = hints.get((message_id, None))  # kept: a bulk send's other recipients
        if every is not None and (at is None or every < at):
            return every
        return at
