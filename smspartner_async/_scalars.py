"""The API's scalars as JSON and XML spell them: flags and whole numbers.

The lowest floor of parsing: the envelope (`success`, `code`) and the models
read the same spellings, so both use these. It imports nothing from the
package. Whole numbers keep a small cache: XML repeats the same codes.
"""

from __future__ import annotations

__all__ = ["BOOLS", "INT_CACHE", "parse_bool", "parse_int"]

_CACHE_LIMIT = 4096
#: Whole numbers read from text so far (the multi-status matcher reads it inline).
INT_CACHE: dict[str, int] = {}

BOOLS: dict[object, bool] = {
    False: False,
    True: True,  # also 0 and 1, which hash alike
    "0": False,
    "1": True,
    "false": False,
    "true": True,
    "False": False,
    "True": True,
    "": False,
}


def parse_bool(value: object) -> bool:
    try:
        return BOOLS[value]
    except (KeyError, TypeError):
        pass
    if isinstance(value, str) and value.strip().lower() in BOOLS:
        return BOOLS[value.strip().lower()]
    raise ValueError(f"not a boolean: {repr(value)[:40]}")


def parse_int(value: object) -> int:
    if value.__class__ is int:
        return value
    try:
        return INT_CACHE[value]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 19:
            number = int(text)
            if len(INT_CACHE) < _CACHE_LIMIT:
                INT_CACHE[value] = number  # XML's codes: "200" again and again
            return number
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"not an integer: {repr(value)[:40]}")
