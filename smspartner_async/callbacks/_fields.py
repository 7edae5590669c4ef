"""What a delivery-report callback names: message ids and phone numbers, under any spelling.

SMS Partner does not document the payload it pushes to `urlDlr` (method, field
names, signing), so nothing here trusts its shape: a callback is read as a bag
of fields, and only two things are taken from it, the message id and, when
there is one, the phone number. The status it carries is not read at all: the
watch asks the API (a push is a hint; the API is the truth).

Field names are compared after folding case and dropping everything but letters
and digits, so `messageId`, `message_id`, `message-id` and `MESSAGEID` are one
name. A JSON body may be an object, an object under one level of nesting
(`{"data": {...}}`), or a list of objects (a batch), capped in count.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from .._errors import InvalidInputError
from .._validate import is_e164, normalize_message_id, normalize_phone

__all__ = ["MAX_ITEMS", "Hint", "hints_from"]

#: Reports in one callback (a JSON list): the receiver answers a longer list 413, and
#: `hints_from` reads no more than this many.
MAX_ITEMS: Final = 1_000

# Folded names (lower case, letters and digits only), most specific first.
_ID_NAMES: Final = (
    "messageid",
    "msgid",
    "smsid",
    "idmessage",
    "idsms",
    "messageids",
)
# A bare "id" is many things (a callback's own id, a UUID); taken only when it is digits
# and no name above is present.
_LOOSE_ID_NAMES: Final = ("id",)
_PHONE_NAMES: Final = (
    "phonenumber",
    "phone",
    "number",
    "msisdn",
    "mobile",
    "mobilenumber",
    "recipient",
    "to",
    "destination",
    "dest",
    "tel",
    "telephone",
    "numero",
    "gsm",
)
_NESTED_NAMES: Final = ("data", "report", "dlr", "message", "sms", "payload", "result")
_FOLD = re.compile(r"[^a-z0-9]")
_DIGITS_ONLY = re.compile(r"\+?[0-9]{8,15}")


class Hint(NamedTuple):
    """A callback said something happened to this message: ask the API about it now."""

    message_id: int
    phone_number: str | None
    """E.164, or None: every pending pair of the message id (a bulk send has one id)."""


@functools.lru_cache(maxsize=512)  # callbacks repeat their few names; strangers stay bounded
def _fold(name: str) -> str:
    return _FOLD.sub("", name.lower())


def _folded(fields: Mapping[str, object]) -> dict[str, object]:
    """Field names folded; the first spelling met wins when two fold to the same name."""
    out: dict[str, object] = {}
    for name, value in fields.items():
        if isinstance(name, str):
            out.setdefault(_fold(name), value)
    return out


def _scalar(value: object) -> object:
    """A form field given twice (or a one-item JSON list) is read by its first value."""
    if isinstance(value, list) and value:
        return value[0]
    return value


def _message_id(fields: Mapping[str, object]) -> int | None:
    for names in (_ID_NAMES, _LOOSE_ID_NAMES):
        for name in names:
            if name in fields:
                value = _scalar(fields[name])
                if isinstance(value, str | int) and not isinstance(value, bool):
                    try:
                        return normalize_message_id(value)
                    except InvalidInputError:
                        continue
    return None


def _phone(fields: Mapping[str, object], region: str) -> str | None:
    """E.164 for the first phone-like field, or None (then the hint covers the whole id).

    A number the region cannot read may still be international without its `+`
    (`447700900123`): then the digits are taken as E.164. A number read wrongly
    names no pending pair: its hint costs nothing and polling stays the fallback.
    """
    for name in _PHONE_NAMES:
        if name not in fields:
            continue
        value = _scalar(fields[name])
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a JSON number: no leading zero to lose in E.164 digits
        if not isinstance(value, str) or len(value) > 32:
            continue
        try:
            return normalize_phone(value, region)
        except InvalidInputError:
            text = value.strip()
            if _DIGITS_ONLY.fullmatch(text):
                e164 = text if text.startswith("+") else "+" + text
                if is_e164(e164):
                    return e164
    return None


def _one(fields: Mapping[str, object], region: str) -> Hint | None:
    folded = _folded(fields)
    message_id = _message_id(folded)
    if message_id is None:
        for name in _NESTED_NAMES:
            inner = folded.get(name)
            if isinstance(inner, Mapping):
                return _one(inner, region)
        return None
    return Hint(message_id, _phone(folded, region))


def hints_from(reports: Iterable[object], region: str) -> list[Hint]:
    """The hints in a callback's reports (mappings of fields); items naming no id are left out.

    Reads at most `MAX_ITEMS` reports.
    """
    hints: list[Hint] = []
    for count, report in enumerate(reports):
        if count == MAX_ITEMS:
            break
        if isinstance(report, Mapping):
            hint = _one(report, region)
            if hint is not None:
                hints.append(hint)
    return hints
