"""Bodies -> wire records: the same dicts, keyed as the JSON documents show, for both formats.

JSON needs only parsing. XML answers are positional (nested `<entry>` with no
names), so each endpoint gives the JSON key order its XML follows (`XmlLayout`)
and the XML decoder rebuilds the dict. Everything after this point (envelope,
errors, models) is format-blind.
"""

from __future__ import annotations

from typing import Any, Literal

from ._json import decode_json
from ._xml import FlatRecords, XmlLayout, decode_xml

__all__ = ["FlatRecords", "ResponseFormat", "XmlLayout", "decode_body"]

ResponseFormat = Literal["json", "xml"]


def decode_body(body: bytes, response_format: ResponseFormat, layout: XmlLayout) -> dict[str, Any]:
    """The answer as a dict; `ResponseFormatError` when it is not one."""
    if response_format == "xml":
        return decode_xml(body, layout)
    return decode_json(body)
