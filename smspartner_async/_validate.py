"""Input validation: phone numbers to E.164, message ids to positive ints, (phone, id) pairs.

The API wants mobile numbers in international format. Whether a number is a
mobile is the API's call (it answers code 9 per item); here we only make sure
that what we send is well-formed E.164, so the common case (already E.164) is a
single compiled-regex match, far cheaper than a full `phonenumbers` parse
(`benchmarks/micro.py`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import TypeAlias

from ._errors import InvalidInputError

__all__ = [
    "DEFAULT_REGION",
    "MAX_MESSAGE_ID",
    "REGIONS",
    "Key",
    "Pair",
    "Pairs",
    "is_e164",
    "normalize_message_id",
    "normalize_phone",
    "validate_all",
    "validate_pair",
]

DEFAULT_REGION = "FR"

#: A validated pair: (E.164 phone number, message id).
Key: TypeAlias = tuple[str, int]
#: A pair as callers give it: a (phone, id) tuple, or a mapping with the documented keys.
Pair: TypeAlias = tuple[str, int | str] | Mapping[str, object]
Pairs: TypeAlias = Iterable[Pair] | AsyncIterable[Pair]

#: region -> (country calling code, national trunk prefix, national number lengths)
REGIONS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "FR": ("33", "0", (9,)),
    "BE": ("32", "0", (8, 9)),
    "CH": ("41", "0", (9,)),
    "LU": ("352", "", (6, 7, 8, 9, 10, 11)),
    "MC": ("377", "", (8, 9)),
    "DE": ("49", "0", (10, 11)),
    "GB": ("44", "0", (10,)),
    "ES": ("34", "", (9,)),
    "IT": ("39", "", (9, 10)),
    "PT": ("351", "", (9,)),
    "NL": ("31", "0", (9,)),
    "MA": ("212", "0", (9,)),
    "TN": ("216", "", (8,)),
    "DZ": ("213", "0", (9,)),
    "SN": ("221", "", (9,)),
    "CI": ("225", "", (10,)),
    "RE": ("262", "0", (9,)),
    "GP": ("590", "0", (9,)),
    "MQ": ("596", "0", (9,)),
    "GF": ("594", "0", (9,)),
    "US": ("1", "", (10,)),
    "CA": ("1", "", (10,)),
}

#: The largest id a signed 64-bit column holds; the API's ids are far below it.
MAX_MESSAGE_ID = 2**63 - 1
_E164 = re.compile(r"\+[1-9][0-9]{6,14}").fullmatch
is_e164 = _E164
_SEPARATORS = str.maketrans("", "", " .-()/\u00a0")


def normalize_phone(
    value: object, region: str = DEFAULT_REGION, *, index: int | None = None
) -> str:
    """E.164 for `value`, reading a national number as one of `region`.

    The same string object comes back when it already is E.164, so a million
    valid inputs cost no new strings.
    """
    if type(value) is str and _E164(value):
        return value
    if not isinstance(value, str):
        raise InvalidInputError(
            "phone number must be a string (an int loses the leading zero)",
            value=value,
            index=index,
        )
    # "+33 (0)6 ...": the (0) is the trunk prefix, written for national callers.
    text = value.strip().replace("(0)", "").translate(_SEPARATORS)
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        if _E164(text):
            return text
        raise InvalidInputError("not an E.164 phone number", value=value, index=index)
    try:
        code, trunk, lengths = REGIONS[region]
    except KeyError:
        raise InvalidInputError(
            f"unknown default region {region!r}; give numbers in E.164", value=value, index=index
        ) from None
    if text.isascii() and text.isdigit():
        national = text[len(trunk) :] if trunk and text.startswith(trunk) else text
        if (not trunk or text.startswith(trunk)) and len(national) in lengths:
            return f"+{code}{national}"
    raise InvalidInputError(
        f"not a phone number in E.164 or {region} national format", value=value, index=index
    )


def normalize_message_id(value: object, *, index: int | None = None) -> int:
    """A positive 64-bit int from an int or a string of digits."""
    if type(value) is int:
        if 0 < value <= MAX_MESSAGE_ID:
            return value
    elif isinstance(value, str):
        text = value.strip()
        # Longer strings are not ids (and int() refuses over 4,300 digits).
        if text.isascii() and text.isdigit() and len(text) <= 19:
            number = int(text)
            if 0 < number <= MAX_MESSAGE_ID:
                return number
    raise InvalidInputError(
        "message id must be a positive integer of at most 64 bits", value=value, index=index
    )


# The spellings the API documents for a pair, accepted from callers' dicts and CSV rows.
_PHONE_KEYS = ("phone_number", "phoneNumber", "number")
_ID_KEYS = ("message_id", "messageId")


def _from_mapping(pair: Mapping[str, object], index: int) -> tuple[object, object]:
    phone = next((pair[k] for k in _PHONE_KEYS if k in pair), None)
    message_id = next((pair[k] for k in _ID_KEYS if k in pair), None)
    if phone is None or message_id is None:
        raise InvalidInputError(
            "a pair given as a mapping needs a phone_number (or phoneNumber) and a "
            "message_id (or messageId) key",
            value=pair,
            index=index,
        )
    return phone, message_id


def validate_pair(pair: object, index: int, region: str) -> Key:
    """One (phone, id) pair or mapping -> its key; `InvalidInputError` naming `index` otherwise."""
    phone: object
    message_id: object
    if isinstance(pair, Mapping):
        phone, message_id = _from_mapping(pair, index)
    elif isinstance(pair, str | bytes):
        raise InvalidInputError(
            "each pair must be a (phone_number, message_id) tuple, not a string",
            value=pair,
            index=index,
        )
    else:
        try:
            phone, message_id = pair  # type: ignore[misc]
        except (TypeError, ValueError):
            raise InvalidInputError(
                "each pair must be a (phone_number, message_id) tuple", value=pair, index=index
            ) from None
    return normalize_phone(phone, region, index=index), normalize_message_id(
        message_id, index=index
    )


def validate_all(pairs: Iterable[object], region: str, start: int = 0) -> list[Key]:
    """Every pair checked before anything is sent; the first bad one raises, naming its index.

    A pair that already is `(E.164 str, positive int)` is kept as it is (no new
    tuple, no new string): the common case of a million pairs costs one regex
    match each (`benchmarks/micro.py` measures it).
    """
    keys: list[Key] = []
    append = keys.append
    for index, pair in enumerate(pairs, start):
        if pair.__class__ is tuple and len(pair) == 2:
            phone, message_id = pair
            if (
                message_id.__class__ is int
                and 0 < message_id <= MAX_MESSAGE_ID
                and phone.__class__ is str
                and is_e164(phone)
            ):
                append(pair)
                continue
        append(validate_pair(pair, index, region))
    return keys
