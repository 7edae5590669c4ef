"""The sandbox dataset: a pure function of a seed, so any number of pairs costs no memory.

Every answer is derived from a keyed hash of (seed, phone, message id). Nothing is stored, so a
benchmark can ask for a million pairs and a test can compute the expected answer for any pair
with the same `SandboxData` the server uses.

Model:
- a message id is unknown with a 1% chance (ids <= 0 always are);
- a (phone, message id) pair of a known message is unknown with a 2% chance; phones that are not
  French mobiles (+336 / +337) are always unknown;
- a known pair is Delivered (85%), Not delivered (7%) or Waiting (8%); three quarters of the
  Waiting ones settle 2 to 60 seconds after the sandbox started (on its clock);
- all recipients of a message share its send time; the report date comes a few minutes later.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final, NamedTuple, overload

__all__ = [
    "DELIVERED",
    "NOT_DELIVERED",
    "WAITING",
    "SandboxData",
    "StatusRecord",
    "TagItems",
    "normalize_phone",
    "paris_local_time",
]

DELIVERED: Final = "Delivered"
NOT_DELIVERED: Final = "Not delivered"
WAITING: Final = "Waiting"

_SPACE: Final = 10**8  # eight free digits after +336
_STEP: Final = 7_654_321  # coprime with _SPACE, so i -> base + i * _STEP is a bijection
_TRIES: Final = 16  # candidates tried to find a known pair; 0.02**16 never fails in practice
_BASE_EPOCH: Final = 1_735_689_600  # 2025-01-01T00:00:00Z
_SPAN: Final = 180 * 86_400
_PAIRS_PER_SAMPLE_MESSAGE: Final = 20
_TAG_MESSAGE_SIZE: Final = 100
_MAX_TAG_ITEMS: Final = 10_000_000

_DIGITS = re.compile(r"[0-9]+")
_TAG_N = re.compile(r"tag-([0-9]{1,8})")
_NAMED_TAGS: Final = {"demo": 250, "newsletter": 120, "montag": 2}


def normalize_phone(raw: str) -> str | None:
    """Return the E.164 form (`+336…`) of a phone number, or None if it cannot be one.

    Accepts national French numbers (`06…`), `0033…`, `33…` and a `+` turned into a space by
    an unencoded query string.
    """
    if len(raw) == 12 and raw.startswith(("+336", "+337")) and raw.isascii() and raw[1:].isdigit():
        return raw  # the common case, kept cheap
    s = raw.strip().replace(" ", "").replace(".", "").replace("-", "")
    if s.startswith("+"):
        digits = s[1:]
    elif s.startswith("00"):
        digits = s[2:]
    elif s.startswith("0") and len(s) == 10:
        digits = "33" + s[1:]
    elif s.startswith("33"):
        digits = s
    else:
        return None
    if not _DIGITS.fullmatch(digits) or not 8 <= len(digits) <= 15:
        return None
    return "+" + digits


def _national(e164: str) -> str:
    return "0" + e164[3:]


def _last_sunday(year: int, month: int) -> int:
    # Day of month of the last Sunday: 31 exists in both March and October.
    last = datetime(year, month, 31)
    return 31 - (last.weekday() + 1) % 7


def paris_local_time(epoch: int) -> str:
    """Format epoch seconds as Europe/Paris wall time, the way message-status shows dates.

    Uses the EU rule (summer time from the last Sunday of March to the last Sunday of October,
    01:00 UTC), exact since 1996, so the output does not depend on the host's tz database.
    """
    utc = datetime.fromtimestamp(epoch, tz=UTC)
    y = utc.year
    start = datetime(y, 3, _last_sunday(y, 3), 1, tzinfo=UTC)
    end = datetime(y, 10, _last_sunday(y, 10), 1, tzinfo=UTC)
    offset = 2 if start <= utc < end else 1
    return (utc + timedelta(hours=offset)).strftime("%Y-%m-%d %H:%M:%S")


class StatusRecord(NamedTuple):
    """What the sandbox knows about one (phone, message id) pair at one instant.

    A NamedTuple because it is built per pair on the server's hot path (a frozen dataclass
    costs several times more to construct).
    """

    phone: str  # E.164
    message_id: int
    status: str  # DELIVERED, NOT_DELIVERED or WAITING
    date: int  # epoch seconds
    stop_sms: bool
    is_spam: bool
    cost: float
    country_code: str
    currency: str
    settles_at: float | None  # elapsed seconds at which a Waiting record settles, if it does


class SandboxData:
    """The deterministic dataset behind the sandbox; equal seeds give equal answers."""

    __slots__ = ("_hasher", "_message", "seed")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        key = hashlib.blake2b(str(seed).encode(), digest_size=32).digest()
        self._hasher = hashlib.blake2b(digest_size=16, key=key)  # copied: cheaper than new
        # Batches share message ids; a bounded cache keeps memory O(1).
        self._message = lru_cache(maxsize=4096)(self._message_uncached)

    def _hash(self, data: str) -> int:
        h = self._hasher.copy()
        h.update(data.encode())
        return int.from_bytes(h.digest(), "little")

    # messages

    def message_known(self, message_id: int) -> bool:
        return message_id > 0 and self._hash(f"m|{message_id}") % 100 >= 1

    def _message_uncached(self, message_id: int) -> tuple[int, int, int] | None:
        """(send time, recipient count, phone base) of a known message."""
        if message_id <= 0:
            return None
        hm = self._hash(f"m|{message_id}")
        if hm % 100 < 1:
            return None
        sent_at = _BASE_EPOCH + (hm >> 8) % _SPAN
        count = 1 + (hm >> 40) % 60
        base = (hm >> 64) % _SPACE
        return sent_at, count, base

    # pairs

    def status_of(self, phone: str, message_id: int, elapsed: float = 0.0) -> StatusRecord | None:
        """The record for a pair after `elapsed` seconds of sandbox time, or None if unknown.

        `phone` may be E.164 or national; the record carries the E.164 form.
        """
        e164 = normalize_phone(phone)
        if e164 is None or len(e164) != 12 or not e164.startswith(("+336", "+337")):
            return None
        msg = self._message(message_id)
        if msg is None:
            return None
        h = self._hash(f"p|{e164}|{message_id}")
        if h % 1000 < 20:
            return None
        sent_at = msg[0]
        roll = (h >> 10) % 1000
        delay = 3 + (h >> 20) % 600
        settles_at: float | None = None
        if roll < 850:
            status, date = DELIVERED, sent_at + delay
        elif roll < 920:
            status, date = NOT_DELIVERED, sent_at + delay
        else:
            status, date = WAITING, sent_at
            if (h >> 30) % 100 < 75:
                settles_at = float(2 + (h >> 37) % 59)
                if elapsed >= settles_at:
                    status = DELIVERED if (h >> 44) % 100 < 80 else NOT_DELIVERED
                    date = sent_at + delay
        return StatusRecord(
            phone=e164,
            message_id=message_id,
            status=status,
            date=date,
            stop_sms=(h >> 51) % 1000 < 10,
            is_spam=(h >> 61) % 1000 < 3,
            cost=0.09 if (h >> 71) % 10 == 0 else 0.045,
            country_code="FR",
            currency="EUR",
            settles_at=settles_at,
        )

    def _pair_known(self, e164: str, message_id: int) -> bool:
        return self._hash(f"p|{e164}|{message_id}") % 1000 >= 20

    def _known_phone(self, base: int, index: int, message_id: int) -> str:
        """The index-th phone of a stream whose pair with message_id is known; all distinct."""
        phone = ""
        for attempt in range(_TRIES):
            phone = f"+336{(base + (index * _TRIES + attempt) * _STEP) % _SPACE:08d}"
            if self._pair_known(phone, message_id):
                return phone
        return phone  # pragma: no cover - probability 0.02**16

    def recipients(self, message_id: int) -> list[str] | None:
        """E.164 phones of every recipient of a message (what bulk-status lists), or None."""
        msg = self._message(message_id)
        if msg is None:
            return None
        _, count, base = msg
        return [self._known_phone(base, k, message_id) for k in range(count)]

    # tags

    def tag_size(self, tag: str) -> int:
        """Items under a tag: "demo" 250, "newsletter" 120, "montag" 2, "tag-<n>" n, else 0."""
        if tag in _NAMED_TAGS:
            return _NAMED_TAGS[tag]
        m = _TAG_N.fullmatch(tag)
        return min(int(m.group(1)), _MAX_TAG_ITEMS) if m else 0

    def tag_items(self, tag: str) -> TagItems:
        """The (phone, message id) pairs under a tag, computed on access (no list is built)."""
        return TagItems(self, tag)

    def _tag_item(self, tag: str, index: int) -> tuple[str, int]:
        ht = self._hash(f"t|{tag}")
        block = index // _TAG_MESSAGE_SIZE
        first = 50_000_000 + (ht % 10**6) * 1000 + block * _TRIES
        mid = first
        for mid in range(first, first + _TRIES):
            if self.message_known(mid):
                break
        return self._known_phone((ht >> 32) % _SPACE, index, mid), mid

    # samples

    def sample_pairs(self, n: int, *, national_share: float = 0.0) -> Iterator[tuple[str, int]]:
        """n distinct (phone, message id) pairs, about 3% of them unknown; lazily generated.

        A share of the phones comes in national form (`06…`), chosen deterministically; the
        sandbox echoes those as E.164 in multi-status.
        """
        if not 0 <= n <= _SPACE:
            raise ValueError(f"n must be between 0 and {_SPACE}")
        if not 0.0 <= national_share <= 1.0:
            raise ValueError("national_share must be between 0 and 1")
        hs = self._hash("s")
        base = hs % _SPACE
        first_mid = 1_000_000 + (hs >> 32) % 10**6
        threshold = int(national_share * 10_000)
        for i in range(n):
            phone = f"+336{(base + i * _STEP) % _SPACE:08d}"
            if threshold and self._hash(f"n|{i}") % 10_000 < threshold:
                phone = _national(phone)
            yield phone, first_mid + i // _PAIRS_PER_SAMPLE_MESSAGE


class TagItems(Sequence[tuple[str, int]]):
    """A lazy, indexable view of the items under one tag."""

    __slots__ = ("_data", "_len", "_tag")

    def __init__(self, data: SandboxData, tag: str) -> None:
        self._data = data
        self._tag = tag
        self._len = data.tag_size(tag)

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> tuple[str, int]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, int]]: ...
    def __getitem__(self, index: int | slice) -> tuple[str, int] | list[tuple[str, int]]:
        if isinstance(index, slice):
            return [self._data._tag_item(self._tag, i) for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("tag item index out of range")
        return self._data._tag_item(self._tag, index)
