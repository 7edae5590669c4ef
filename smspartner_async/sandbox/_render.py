"""JSON and positional XML rendering, shaped after the published examples.

The XML answers have no field names: one `<entry>` per value, in the JSON key order. The seeds
disagree on layout, and the sandbox reproduces each page as published:
- "block" (multi-status, bulk-status pages): a CDATA section on its own indented line, so the
  element text carries surrounding whitespace a client has to strip;
- "inline" (bulk-status-by-tag page): `<entry><![CDATA[...]]></entry>`;
- error answers carry their message as plain, escaped text (no CDATA) on every page.
"""

from __future__ import annotations

import re
from typing import Literal, TypeAlias

import orjson

__all__ = ["Doc", "XmlStyle", "render_json", "render_xml"]

Value: TypeAlias = "bool | int | float | str | list[Value] | dict[str, Value] | None"
Doc: TypeAlias = "dict[str, Value]"
XmlStyle = Literal["inline", "block"]

_INDENT = "    "
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_json(doc: Doc) -> bytes:
    return orjson.dumps(doc)


def _cdata(text: str) -> str:
    text = _XML_INVALID.sub("", text)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _escape(text: str) -> str:
    text = _XML_INVALID.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _emit(value: Value, depth: int, out: list[str], style: XmlStyle, plain: bool) -> None:
    pad = _INDENT * depth
    if isinstance(value, bool):
        out.append(f"{pad}<entry>{'true' if value else 'false'}</entry>")
    elif isinstance(value, int | float):
        out.append(f"{pad}<entry>{value!r}</entry>")
    elif isinstance(value, str):
        if plain:
            out.append(f"{pad}<entry>{_escape(value)}</entry>")
        elif style == "inline":
            out.append(f"{pad}<entry>{_cdata(value)}</entry>")
        else:
            out.append(f"{pad}<entry>\n{pad}{_INDENT}{_cdata(value)}\n{pad}</entry>")
    elif value is None:
        out.append(f"{pad}<entry/>")
    else:
        children = list(value.values()) if isinstance(value, dict) else value
        if not children:
            out.append(f"{pad}<entry/>")
            return
        out.append(f"{pad}<entry>")
        for child in children:
            _emit(child, depth + 1, out, style, plain)
        out.append(f"{pad}</entry>")


def render_xml(doc: Doc, *, style: XmlStyle = "inline", plain_strings: bool = False) -> bytes:
    """Render a JSON-shaped answer as the API's positional XML."""
    out = ["<?xml version='1.0' encoding='UTF-8'?>", "<result>"]
    for value in doc.values():
        _emit(value, 1, out, style, plain_strings)
    out.append("</result>\n")
    return "\n".join(out).encode()
