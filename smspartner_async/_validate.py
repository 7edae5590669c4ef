"""Input validation: phone numbers to E.164, message ids to positive ints, (phone, id) pairs.

The API wants mobile numbers in international format. Whether a number is a
mobile is the API's call (it answers code 9 per item); here we only make sure
that what we send is well-formed E.164, so the common case (already E.164) is a
single compiled-regex match, far cheaper than a full `phonenumbers` parse
(`benchmarks/phones.py`).

National numbers are read by `phonenumbers` (Google's libphonenumber), for every
region it knows. One is accepted when its length is possible in its country
(`is_possible_number`) and it has the country's general shape (the metadata's
general pattern: `[1-9]\\d{8}` for France), not only when it falls in a range the
metadata lists (`is_valid_number`): the metadata lags behind the ranges
regulators open, and refusing a real number is worse than letting the API answer
for it. The shape still catches a digit missing after the trunk prefix
(`06 12 34 56 7`, which `is_possible_number` alone reads as `+33061234567`).

`phonenumbers.parse` costs tens of microseconds, so the common national forms
take a fast path: the same steps compiled once per region, from its metadata,
into one regex (`_compile_fast_path`). The rest goes to `phonenumbers` through a
bounded cache (`_parse_national`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import TypeAlias

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, ValidationResult

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

#: The regions whose national numbers are understood: every one `phonenumbers` supports
#: (ISO 3166-1 alpha-2 codes, upper case: "FR", "RE", "JP", ...).
REGIONS: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS)

#: The largest id a signed 64-bit column holds; the API's ids are far below it.
MAX_MESSAGE_ID = 2**63 - 1
_E164 = re.compile(r"\+[1-9][0-9]{6,14}").fullmatch
is_e164 = _E164
_SEPARATORS = str.maketrans("", "", " .-()/\u00a0")
#: Longer strings of digits are no number (15 digits at most, after a national or
#: international prefix and a carrier code), and are not parsed nor cached.
_MAX_DIGITS = 32
#: National numbers the fast path leaves to `phonenumbers`, remembered: repeats cost a dict
#: look-up, and a million distinct ones never hold more than this many entries.
_PARSED_CACHE_SIZE = 4096


def _never(digits: str) -> str | None:
    return None


def _compile_fast_path(region: str) -> Callable[[str], str | None]:
    """What `_parse_national` makes of a string of digits in `region`, without parsing it.

    For a string of ASCII digits without "+", `phonenumbers.parse(digits, region)`
    then `is_possible_number` take these steps: an international prefix (`00`,
    `011`) or the country code at the start makes the number international;
    otherwise the national prefix (`0`; a regex, `national_prefix_for_parsing`) is
    stripped when what remains still matches the region's general pattern (or the
    whole did not) and has one of its possible lengths, unless a transform rule
    rewrites the number (Argentina's `15`); the number is possible when its length
    is one of its country's. `_parse_national` then wants the general pattern of
    one of the country's regions.

    The common outcomes are compiled here into one regex: no international prefix
    in front; then the national prefix as `parse` matches it (an atomic group: its
    first match, no backtracking), not rewritten and not after the country code,
    or no national prefix at all; then the national number, of the region's
    general pattern and a length possible both in the region and in its country
    (so that `parse` does not read a leading country code in it). Anything
    else (None here) goes to `_parse_national`; `tests/test_validation.py` checks
    the two against each other in every region.
    """
    meta = PhoneMetadata.metadata_for_region(region)
    general = meta.general_desc if meta is not None else None
    if meta is None or meta.country_code is None or general is None:
        return _never
    code = meta.country_code
    main = PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    if main is None or main.general_desc is None or not general.national_number_pattern:
        return _never
    # parse keeps a stripped national prefix only for a length possible in the region;
    # is_possible_number checks the country's main region (US for +1, GP for +590).
    own = set(general.possible_length) - set(general.possible_length_local_only)
    country = set(main.general_desc.possible_length) - set(
        main.general_desc.possible_length_local_only
    )
    lengths = sorted(n for n in own & country if 7 <= len(str(code)) + n <= 15)
    if not lengths:
        return _never
    pattern = ""
    if meta.international_prefix:
        pattern += f"(?!(?:{meta.international_prefix}))"
    trunk = meta.national_prefix_for_parsing
    if trunk:
        rewritten = ""
        if meta.national_prefix_transform_rule and re.compile(trunk).groups:
            # parse rewrites the number when the prefix's last group took part: not here.
            rewritten = f"(?({re.compile(pattern + trunk).groups})(?!))"
        # parse reads a leading country code as such when the whole number is not of the
        # region's shape (or too long): never so without a national prefix (see below).
        pattern += f"(?:(?!{code})(?>{trunk}){rewritten}|(?!(?:{trunk})))"
    # The national number, of the region's shape and a possible length: the last group.
    pattern += f"(?=(?:{general.national_number_pattern})\\Z)"
    pattern += "(?=(?:" + "|".join(f"[0-9]{{{n}}}" for n in lengths) + ")\\Z)([0-9]*)"
    regex = re.compile(pattern)
    match, national, plus = regex.fullmatch, regex.groups, f"+{code}"

    def fast(digits: str) -> str | None:
        found = match(digits)
        return None if found is None else plus + found[national]

    return fast


_FAST_PATHS: dict[str, Callable[[str], str | None]] = {}  # at most one per region in REGIONS


def _fast_path(region: str, value: object, index: int | None) -> Callable[[str], str | None]:
    """The region's fast path, made on first use; `InvalidInputError` for an unknown region."""
    fast = _FAST_PATHS.get(region)
    if fast is None:
        if region not in REGIONS:
            raise InvalidInputError(
                f"unknown default region {region!r}; give numbers in E.164",
                value=value,
                index=index,
            )
        fast = _FAST_PATHS[region] = _compile_fast_path(region)
    return fast


@functools.lru_cache(maxsize=_PARSED_CACHE_SIZE)
def _parse_national(digits: str, region: str) -> str | None:
    """E.164 for a string of digits read in `region` by `phonenumbers`, None if not possible."""
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    # IS_POSSIBLE_LOCAL_ONLY (a number without its area code) would send a wrong number.
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None
    significant = phonenumbers.national_significant_number(number)
    if number.country_code is None or not any(
        shape(significant) for shape in _shapes(number.country_code)
    ):
        return None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return e164 if _E164(e164) else None  # some countries have numbers over 15 digits


@functools.cache  # one entry per country calling code phonenumbers knows
def _shapes(code: int) -> tuple[Callable[[str], re.Match[str] | None], ...]:
    """The general patterns of the regions sharing country calling code `code`."""
    shapes = []
    for region in phonenumbers.region_codes_for_country_code(code):
        meta = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        if meta is not None and meta.general_desc and meta.general_desc.national_number_pattern:
            shapes.append(re.compile(meta.general_desc.national_number_pattern).fullmatch)
    return tuple(shapes)


def normalize_phone(
    value: object, region: str = DEFAULT_REGION, *, index: int | None = None
) -> str:
    """E.164 for `value`, reading a national number as one of `region`.

    The same string object comes back when it already is E.164, so a million
    valid inputs cost no new strings. `00` starts an international number in
    every region; a national number is read by `phonenumbers` (see the module's
    docstring), so `612345678` in FR (the leading zero lost in a spreadsheet) is
    `+33612345678` too.
    """
    if type(value) is str and _E164(value):
        return value
    return _normalize(value, region, index)


def _normalize(value: object, region: str, index: int | None) -> str:
    """`normalize_phone` for a value that is not already an E.164 `str`."""
    if not isinstance(value, str):
        raise InvalidInputError(
            "phone number must be a string (an int loses the leading zero)",
            value=value,
            index=index,
        )
    text = value.strip()
    digits = text.isdigit() and text.isascii()
    if not digits:  # translate costs more than the whole fast path
        # "+33 (0)6 ...": the (0) is the trunk prefix, written for national callers.
        text = text.replace("(0)", "").translate(_SEPARATORS)
        digits = text.isdigit() and text.isascii()
    if text.startswith("00"):
        text = "+" + text[2:]
    elif digits and len(text) <= _MAX_DIGITS:
        fast = _FAST_PATHS.get(region) or _fast_path(region, value, index)
        e164 = fast(text) or _parse_national(text, region)
        if e164 is not None:
            return e164
    if text.startswith("+"):
        if _E164(text):
            return text
        raise InvalidInputError("not an E.164 phone number", value=value, index=index)
    _fast_path(region, value, index)  # an unknown region is the message to give
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
    match each. A `(str, positive int)` pair with a national number skips
    `validate_pair`'s shape checks (`benchmarks/phones.py` measures both).
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
            ):
                if is_e164(phone):
                    append(pair)
                else:  # a national number: a new key, with the same checks as validate_pair
                    append((_normalize(phone, region, index), message_id))
                continue
        append(validate_pair(pair, index, region))
    return keys
