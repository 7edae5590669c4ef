"""A multi-status answer's rows -> one result per pair of its chunk, matched by (phone, message id).

Format-blind: the wire floor gives the answer's items as rows, JSON and XML
alike (`_wire.rows`).

Nothing promises that the API keeps the order of the request list or echoes
numbers as they were sent, so each item is matched by its (E.164 phone, id)
key: checked first against the pair after the previous item's (an answer in the
request's order needs no look-up), looked up in a dict made for the first item
that is not there. An item that matches nothing is ignored, a pair answered twice keeps the
first answer, a pair the answer leaves out gets a failed result, and a
malformed item fails alone: the other results of the chunk are kept.

This is the hot path of the library (every pair of every batch goes through
`match`), hence a plain loop over value tuples, parsers' caches, and results
built through `new_result` (see `_build`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from ._build import twin
from ._chunking import Chunk, first_position
from ._errors import InvalidInputError, ResponseFormatError, SMSPartnerError
from ._models import DeliveryStatus, MultiStatusResult
from ._scalars import BOOLS, INT_CACHE
from ._structure import (
    DATE_CACHE,
    STATUS_CACHE,
    TEXT_CACHE,
    parse_bool,
    parse_date,
    parse_int,
    parse_status,
    parse_status_text,
)
from ._validate import Key, normalize_message_id, normalize_phone
from ._wire.endpoints import LIST_KEY
from ._wire.rows import Row

__all__ = ["failed_result", "match", "new_result", "with_index"]


def match(chunk: Chunk, record: dict[str, Any], region: str) -> list[MultiStatusResult]:
    """One result per key of `chunk`, in chunk order, from the answer's items.

    One loop a reader can step through: find the pair an item answers (the next one,
    or a look-up: `tests/test_matching.py` checks any order gives the same), read its
    values from the parsers' caches (the same few texts, codes and dates come
    back item after item), build the result. A value the caches have not seen
    yet, or one that is malformed, takes the full parse (`_result`), which fills
    the caches or fails the item alone.
    """
    keys, positions = chunk.keys, chunk.positions
    count = len(keys)
    lookup: dict[Key, int] | None = None  # made for the first item out of order
    results: list[MultiStatusResult | None] = [None] * count
    bools, ints, statuses, texts, dates = BOOLS, INT_CACHE, STATUS_CACHE, TEXT_CACHE, DATE_CACHE
    answered = 0
    slot: int | None
    after = 0  # the slot after the last item's: where the next item is, in an ordered answer
    rows: Iterator[Row] = record[LIST_KEY]  # in `MULTI_STATUS_ITEM`'s order (`_wire.rows`)
    for success, code, phone, message_id, status, date, stop_sms, is_spam in rows:
        if (
            message_id.__class__ is str
            and len(message_id) < 20
            and message_id.isdigit()
            and message_id.isascii()
        ):
            message_id = int(message_id)  # XML, and some JSON, send ids as text
        if after < count and keys[after][1] == message_id and keys[after][0] == phone:
            slot = after  # the API answers in the request's order: no look-up needed
        else:
            if lookup is None:
                lookup = dict(zip(keys, range(count), strict=True))
            try:
                slot = lookup.get((phone, message_id))
            except TypeError:  # a list or an object where a phone or an id should be
                continue
            if slot is None:  # a number echoed in national format, an id with spaces
                slot = _slot_of_echo(lookup, phone, message_id, region)
            if slot is None:
                continue  # not something we asked for
        after = slot + 1
        if results[slot] is not None:
            continue  # answered twice: the first answer stands
        key, position = keys[slot], positions[slot]
        index = position if position.__class__ is int else first_position(position)
        answered += 1
        try:
            try:
                when = dates[date]
            except KeyError:  # dates vary more than the other values: parse this one alone
                when = None if date is None else parse_date(date)
            results[slot] = new_result(
                key[0],
                key[1],
                bools[success],
                code if code.__class__ is int else ints[code],
                statuses[status],
                texts[status],
                when,
                bools[stop_sms],
                bools[is_spam],
                index,
            )
            continue
        except (KeyError, TypeError, ValueError):
            pass  # not in the caches (yet), or not a value at all: the full parse says
        try:
            results[slot] = _result(key, index, success, code, status, date, stop_sms, is_spam)
        except (ValueError, TypeError) as exc:
            error = ResponseFormatError(f"malformed item in the answer: {exc}")
            results[slot] = failed_result(key, index, error)
    if answered == count:
        return results  # type: ignore[return-value]
    missing = ResponseFormatError("the API's answer left this pair out")
    return [
        result if result is not None else failed_result(key, first_position(position), missing)
        for result, key, position in zip(results, keys, positions, strict=True)
    ]


def _slot_of_echo(lookup: dict[Key, int], phone: Any, message_id: Any, region: str) -> int | None:
    """The slot of an item whose phone or id the API echoed in another form, if any."""
    try:
        return lookup.get((normalize_phone(phone, region), normalize_message_id(message_id)))
    except InvalidInputError:
        return None


def _result(
    key: Key,
    index: int,
    success: Any,
    code: Any,
    status: Any,
    date: Any,
    stop_sms: Any,
    is_spam: Any,
) -> MultiStatusResult:
    """An answered item's result. Phone and id are ours, not the echo: one string per pair."""
    if success is None:
        raise ValueError("missing field 'success'")
    if code is None:
        raise ValueError("missing field 'code'")
    return new_result(
        key[0],
        key[1],
        parse_bool(success),
        parse_int(code),
        DeliveryStatus.UNKNOWN if status is None else parse_status(status),
        "" if status is None else parse_status_text(status),
        None if date is None else parse_date(date),
        False if stop_sms is None else parse_bool(stop_sms),
        False if is_spam is None else parse_bool(is_spam),
        index,
    )


_Twin = twin(MultiStatusResult)
_new = object.__new__


def new_result(
    phone_number: str,
    message_id: int,
    ok: bool,
    code: int | None,
    status: DeliveryStatus,
    status_text: str,
    date: Any,
    stop_sms: bool,
    is_spam: bool,
    index: int,
    error: SMSPartnerError | None = None,
) -> MultiStatusResult:
    """`MultiStatusResult(...)` with every field given, built through its twin class (`_build`)."""
    if _Twin is None:  # the model left the fast path: tests/test_build.py says so
        return MultiStatusResult(
            phone_number,
            message_id,
            ok,
            code,
            status,
            status_text,
            date,
            stop_sms,
            is_spam,
            index,
            error,
        )
    o = _new(_Twin)
    o.phone_number = phone_number
    o.message_id = message_id
    o.ok = ok
    o.code = code
    o.status = status
    o.status_text = status_text
    o.date = date
    o.stop_sms = stop_sms
    o.is_spam = is_spam
    o.index = index
    o.error = error
    o.__class__ = MultiStatusResult
    return o  # type: ignore[no-any-return]


def failed_result(key: Key, index: int, error: SMSPartnerError) -> MultiStatusResult:
    """The result of a pair with no answer: `ok=False`, the API's code if it gave one."""
    code = getattr(error, "code", None)
    return MultiStatusResult(key[0], key[1], ok=False, code=code, index=index, error=error)


def with_index(result: MultiStatusResult, index: int) -> MultiStatusResult:
    """The same answer for another input position (a duplicate pair)."""
    return attrs.evolve(result, index=index)
