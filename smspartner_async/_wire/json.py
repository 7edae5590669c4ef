"""JSON answers: orjson, and nothing but objects at the top.

A large answer (bulk-status lists every recipient of a send) is decoded in
slices of its list, each a short orjson call: the decode runs in a worker
thread, and one call over megabytes would hold the GIL, and stall the event
loop, for its whole length (`benchmarks/loop_lag.py`). A slice boundary is a
`},{` between two items; a boundary that falls inside a string or a nested
value leaves a slice that is not a whole JSON array, so any slice that fails
to decode sends the whole body through one orjson call instead: slicing
changes when the GIL is released, never what is decoded
(`tests/test_wire.py` checks both against each other).
"""

from __future__ import annotations

from typing import Any

import orjson

from .._errors import ResponseFormatError

__all__ = ["SLICE_BYTES", "decode_json"]

#: The most a single orjson call decodes of a list (`benchmarks/loop_lag.py`).
SLICE_BYTES = 128 * 1024


def decode_json(
    body: bytes, list_key: str | None = None, slice_bytes: int = SLICE_BYTES
) -> dict[str, Any]:
    """The answer's object; its `list_key` list decoded in slices when the body is large."""
    if list_key is not None and len(body) > 2 * slice_bytes:
        record = _sliced(body, list_key, slice_bytes)
        if record is not None:
            return record
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        kind = "an empty answer" if not body.strip() else "not valid JSON"
        raise ResponseFormatError(f"the API sent {kind}", body=body) from None
    if not isinstance(data, dict):
        raise ResponseFormatError("the API sent JSON that is not an object", body=body)
    return data


def _sliced(body: bytes, list_key: str, slice_bytes: int) -> dict[str, Any] | None:
    """The object with its list decoded slice by slice; None when the body does not lend
    itself to it (the caller then decodes it whole, with the same result or error)."""
    name = b'"' + list_key.encode() + b'"'
    opening = body.find(name + b":[")
    if opening < 0 or body.count(name) != 1:
        return None
    start = opening + len(name) + 1  # the list's "["
    end = body.rfind(b"]")  # its "]", if the body is what it seems (checked below)
    try:
        envelope = orjson.loads(body[:start] + b"[]" + body[end + 1 :])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(envelope, dict) or envelope.get(list_key) != []:
        return None
    items: list[Any] = []
    at = start + 1
    while at < end:
        cut = body.find(b"},{", at + slice_bytes, end)
        stop = end if cut < 0 else cut + 1
        try:
            items += orjson.loads(b"[" + body[at:stop] + b"]")
        except orjson.JSONDecodeError:
            return None
        at = stop + 1  # past the comma
    envelope[list_key] = items
    return envelope
