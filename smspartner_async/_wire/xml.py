"""Positional XML answers (`_format=xml`) -> the dicts the JSON form gives.

The XML is untrusted: no DTD, no entities, no network, no huge trees. The API
never sends a DOCTYPE, so any document that has one is refused before lxml
sees it, which also rules out billion-laughs and XXE payloads.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

import attrs
from lxml import etree

from .._errors import ResponseFormatError

__all__ = ["FlatRecords", "XmlLayout", "decode_xml"]

_ERROR_KEYS = ("success", "code", "message")
# XML names are case-sensitive and `<!` takes no space: any other spelling fails to parse.
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
# Elements other than the root and <entry> (XInclude, foreign markup). Two counts in C:
# six times faster than testing each element in one XPath predicate.
_FOREIGN = etree.XPath("count(//*) - count(//entry) - 1")


@attrs.frozen
class XmlLayout:
    """The JSON keys an endpoint's XML entries stand for, in order.

    `list_key` names the entry holding a list of records; each record's entries
    follow `item_keys` (a failed multi-status record stops early, after 5).
    """

    keys: tuple[str, ...]
    list_key: str | None = None
    item_keys: tuple[str, ...] = ()
    #: The list may come back as `FlatRecords`, for a reader that takes them.
    flat: bool = False


@attrs.frozen
class FlatRecords:
    """A list's records as one run of texts: record i is `texts[starts[i]:][:lengths[i]]`,
    its values in `keys` order (a record may stop early or carry extra values).

    The multi-status matcher reads values in place: no dict per record, which
    costs more than the XPath that found the texts.
    """

    keys: tuple[str, ...]
    texts: list[str]
    starts: list[int]
    lengths: list[int]

    def as_dicts(self) -> list[dict[str, str]]:
        """The records as the JSON form's dicts (the values' texts, unparsed)."""
        texts, keys = self.texts, self.keys
        return [
            dict(zip(keys, texts[at : at + n], strict=False))
            for at, n in zip(self.starts, self.lengths, strict=True)
        ]


def _parser() -> etree.XMLParser:
    # A parser per call: lxml parsers are not shareable across threads, and this costs ~2 us.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        collect_ids=False,
        remove_blank_text=True,
        remove_comments=True,
        remove_pis=True,
    )


def _text(element: Any) -> str:
    return (element.text or "").strip()


def decode_xml(body: bytes, layout: XmlLayout) -> dict[str, Any]:
    if any(marker in body for marker in _DTD_MARKERS):
        raise ResponseFormatError("the API sent XML with a DTD, refused", body=body)
    try:
        root = etree.fromstring(body, _parser())
    except (etree.XMLSyntaxError, ValueError):
        kind = "an empty answer" if not body.strip() else "XML that does not parse"
        raise ResponseFormatError(f"the API sent {kind}", body=body) from None
    if root is None or root.tag != "result":
        raise ResponseFormatError("the API sent XML without a <result> root", body=body)
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        # The byte check above misses UTF-16/32 documents.
        raise ResponseFormatError("the API sent XML with a DTD, refused", body=body)
    if _FOREIGN(root) != 0:
        raise ResponseFormatError("unexpected element in the API's XML", body=body)
    entries = list(root)
    keys = _ERROR_KEYS if entries and _text(entries[0]).lower() == "false" else layout.keys
    record: dict[str, Any] = {}
    for key, entry in zip(keys, entries, strict=False):
        if key == layout.list_key:
            if not len(entry) and _text(entry):
                raise ResponseFormatError(f"text where {key!r} should be a list", body=body)
            record[key] = _items(entry, layout.item_keys, flat=layout.flat)
        elif len(entry):
            raise ResponseFormatError(f"unexpected nested entries for {key!r}", body=body)
        else:
            record[key] = _text(entry)
    return record


_ITEM_TEXTS = etree.XPath("entry/entry/text()", smart_strings=False)
#: Past this many items, a list's texts are read in Python rather than in one XPath call:
#: a call over a whole bulk-status list holds the GIL, and stalls the event loop, for its
#: whole length; the interpreter lets the loop's thread in every few milliseconds
#: (`benchmarks/loop_lag.py`). It costs about a third more.
SLICE_ITEMS = 2000


def _items(
    entry: Any, keys: tuple[str, ...], *, flat: bool = False
) -> list[dict[str, str | None]] | FlatRecords:
    """The list's records. Fast path, for lists of a call's size: every value's text in one
    XPath call (C), split by each record's length; it holds when every value has exactly
    one text node. Long lists (bulk-status) are read item by item (`SLICE_ITEMS`)."""
    if len(entry) > SLICE_ITEMS:  # iterated, not listed: each element's proxy dies young
        return [_item(item, keys) for item in entry]
    items = list(entry)
    texts: list[str] = _ITEM_TEXTS(entry)  # type: ignore[assignment]
    lengths = [len(item) for item in items]
    if sum(lengths) != len(texts):  # an empty value somewhere: read entry by entry
        return [_item(item, keys) for item in items]
    starts = list(accumulate(lengths, initial=0))
    starts.pop()
    records = FlatRecords(keys, texts, starts, lengths)
    return records if flat else records.as_dicts()  # type: ignore[return-value]


def _item(item: Any, keys: tuple[str, ...]) -> dict[str, str | None]:
    # Raw texts: the converter's parsers strip what they read, and cache by raw text.
    # Extra trailing entries (fields the API may add) are ignored, like unknown JSON keys.
    return dict(zip(keys, [value.text for value in item], strict=False))
