"""JSON answers: orjson, and nothing but objects at the top."""

from __future__ import annotations

from typing import Any

import orjson

from .._errors import ResponseFormatError


def decode_json(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        kind = "an empty answer" if not body.strip() else "not valid JSON"
        raise ResponseFormatError(f"the API sent {kind}", body=body) from None
    if not isinstance(data, dict):
        raise ResponseFormatError("the API sent JSON that is not an object", body=body)
    return data
