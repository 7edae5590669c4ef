"""Multi-status items -> rows: tuples in one declared order, from JSON and XML alike.

`MULTI_STATUS_ITEM` is the one declaration of an item's layout: the order the
XML form lists its values in (its entries have no names), and the names the
JSON form gives each value (the first one present wins). The XML decoder reads
its positional layout from it (`endpoints.MULTI_STATUS`), this module turns
both forms into rows in its order, and `_matching` unpacks rows in the same
order (`tests/test_xml_records.py` checks the models' wire names agree).

Rows, not dicts, because this is the hot path: a multi-status answer is read
once per 500 pairs, and a tuple per item costs less than a dict per item.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from .._errors import ResponseFormatError
from .xml import FlatRecords

__all__ = ["MULTI_STATUS_ITEM", "Row", "decode_multi_status", "rows_of"]

#: A multi-status item's values, in XML's order, each with its JSON names.
MULTI_STATUS_ITEM: tuple[tuple[str, ...], ...] = (
    ("success",),
    ("code",),
    ("phoneNumber", "number"),
    ("messageId", "message_id"),
    ("status", "statut"),
    ("date",),
    ("stopSms", "stopSMS"),
    ("isSpam",),
)
#: One item: success, code, phone, message id, status, date, stopSms, isSpam.
Row = tuple[Any, Any, Any, Any, Any, Any, Any, Any]
_WIDTH = len(MULTI_STATUS_ITEM)
_SUCCESS, _CODE, _PHONE, _ID, _STATUS, _DATE, _STOP, _SPAM = MULTI_STATUS_ITEM


class _Item(msgspec.Struct, gc=False):
    """A JSON multi-status item: one field per name of `MULTI_STATUS_ITEM`, in its order
    (`tests/test_xml_records.py` checks); untracked by the garbage collector (JSON makes
    no cycles), which then never walks an answer's 500 items."""

    success: Any = None
    code: Any = None
    phoneNumber: Any = None
    number: Any = None
    messageId: Any = None
    message_id: Any = None
    status: Any = None
    statut: Any = None
    date: Any = None
    stopSms: Any = None
    stopSMS: Any = None
    isSpam: Any = None


class _Answer(msgspec.Struct, gc=False):
    success: Any = None
    code: Any = None
    message: Any = None
    StatutResponse_List: list[_Item] | None = None


_DECODER = msgspec.json.Decoder(_Answer)


def decode_multi_status(body: bytes, list_key: str) -> dict[str, Any] | None:
    """A JSON multi-status answer as its envelope and its items, decoded by msgspec into
    private structs (`benchmarks/core.py`: the cheapest way from bytes to rows).

    None for a body that is not a plain answer (not JSON, not an object, an item
    that is not an object): the caller decodes it the general way (`decode_json`),
    whose result and errors are the reference.
    """
    try:
        answer = _DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):  # deep nesting
        return None
    items = answer.StatutResponse_List
    record = {"success": answer.success, "code": answer.code, "message": answer.message}
    if items is not None:
        record[list_key] = items
    return record


def rows_of(items: object, list_key: str) -> Iterator[Row]:
    """The items of a multi-status answer's list as rows, read as they are iterated."""
    if isinstance(items, list):
        if items and items[0].__class__ is _Item:
            return _from_structs(items)
        return _from_dicts(items)
    if isinstance(items, FlatRecords):
        return _from_flat(items)
    raise ResponseFormatError(f"the answer has no {list_key} list")


def _from_dicts(items: list[Any]) -> Iterator[Row]:
    # Written out for the eight values (a loop over the declaration costs a third of the
    # matching). Consumed from the end: each dict is freed once read, so the garbage
    # collector runs less often and never walks the answer's 500 dicts.
    (success,), (code,), (phone_a, phone_b), (id_a, id_b) = _SUCCESS, _CODE, _PHONE, _ID
    (status_a, status_b), (date,), (stop_a, stop_b), (spam,) = _STATUS, _DATE, _STOP, _SPAM
    items.reverse()
    pop = items.pop
    while items:
        item = pop()
        if item.__class__ is not dict:
            continue
        g = item.get
        phone = g(phone_a)
        if phone is None:
            phone = g(phone_b)
        message_id = g(id_a)
        if message_id is None:
            message_id = g(id_b)
        status = g(status_a)
        if status is None:
            status = g(status_b)
        stop_sms = g(stop_a)
        if stop_sms is None:
            stop_sms = g(stop_b)
        yield (g(success), g(code), phone, message_id, status, g(date), stop_sms, g(spam))


def _from_structs(items: list[_Item]) -> Iterator[Row]:
    for i in items:
        yield (
            i.success,
            i.code,
            i.phoneNumber if i.phoneNumber is not None else i.number,
            i.messageId if i.messageId is not None else i.message_id,
            i.status if i.status is not None else i.statut,
            i.date,
            i.stopSms if i.stopSms is not None else i.stopSMS,
            i.isSpam,
        )


def _from_flat(records: FlatRecords) -> Iterator[Row]:
    texts: list[str | None] = records.texts  # type: ignore[assignment]
    padding: list[str | None] = [None] * _WIDTH
    for at, n in zip(records.starts, records.lengths, strict=True):
        if n >= _WIDTH:  # extra trailing values (fields the API may add) are left out
            yield tuple(texts[at : at + _WIDTH])  # type: ignore[misc]
        else:  # a failed item stops early: the missing values are None
            yield tuple(texts[at : at + n] + padding[n:])  # type: ignore[misc]
