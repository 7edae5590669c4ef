"""Records -> models: wire records (JSON or XML, any documented spelling) -> models.

The second floor of parsing (the first, `_wire`, turns bytes into records).
One converter, kept apart from the models, and no cattrs: its hooks only
called `structure_model`, and its own generated structuring knows neither the
API's spellings nor its aliases (and costs 1.3x on multi-status). Value parsers absorb the variants
the API documents (`stopSms` as `false` or `"0"`, dates as Paris local time or
epoch seconds, ids as numbers or strings, `statut` or `status`). Each model
field lists its wire names in its `aliases` metadata; `structure_model` reads
the first one present and hands the value to the field's parser. A bad value
raises `ValueError` or `TypeError`, which the call layer turns into
`ResponseFormatError`.

Parsers keep small caches: a million results hold a handful of distinct status
texts, dates and flags, and a dict lookup is cheaper than parsing again.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo

import attrs

from ._errors import misfit
from ._models import (
    BulkStatus,
    DeliveryStatus,
    MessageStatus,
    MultiStatusResult,
    RecipientStatus,
    TagPage,
)
from ._scalars import parse_bool, parse_int
from ._validate import DEFAULT_REGION, normalize_phone

__all__ = [
    "DATE_CACHE",
    "PARIS",
    "STATUS_CACHE",
    "TEXT_CACHE",
    "Converter",
    "bulk_status",
    "make_converter",
    "message_status",
    "parse_bool",
    "parse_date",
    "parse_int",
    "parse_status",
    "parse_status_text",
    "parse_str",
    "structure",
    "tag_page",
]

T = TypeVar("T")

PARIS = ZoneInfo("Europe/Paris")

_MODELS = (MessageStatus, MultiStatusResult, RecipientStatus, BulkStatus, TagPage)
for _model in _MODELS:
    attrs.resolve_types(_model)

_STATUS_BY_TEXT = {
    "delivered": DeliveryStatus.DELIVERED,
    "not delivered": DeliveryStatus.NOT_DELIVERED,
    "waiting": DeliveryStatus.WAITING,
    "ko": DeliveryStatus.FAILED,
}
_CACHE_LIMIT = 4096
#: What each raw value parsed to so far (the multi-status matcher reads them inline).
STATUS_CACHE: dict[str, DeliveryStatus] = {}
TEXT_CACHE: dict[str, str] = {}
DATE_CACHE: dict[object, datetime | None] = {}


def parse_status(value: object) -> DeliveryStatus:
    """Case-insensitive; any undocumented text is UNKNOWN, never an error."""
    try:
        return STATUS_CACHE[value]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    if not isinstance(value, str):
        raise TypeError(f"status must be text, not {type(value).__name__}")
    status = _STATUS_BY_TEXT.get(" ".join(value.split()).lower(), DeliveryStatus.UNKNOWN)
    if len(STATUS_CACHE) < _CACHE_LIMIT:
        STATUS_CACHE[value] = status
    return status


def parse_status_text(value: object) -> str:
    """The API's own status text, stripped and shared between results."""
    try:
        return TEXT_CACHE[value]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    text = sys.intern(parse_str(value).strip())
    if len(TEXT_CACHE) < _CACHE_LIMIT:
        TEXT_CACHE[value] = text  # type: ignore[index]
    return text


def parse_str(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected text, not {type(value).__name__}")


def parse_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a number, not {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def parse_date(value: object) -> datetime | None:
    """Every date the API writes, as an aware datetime in UTC.

    The API spells one instant as epoch seconds (number or digits) or as Paris
    wall time (`YYYY-MM-DD HH:MM:SS`, read in Europe/Paris, summer time
    included); both come out in UTC, so that the same report compares and
    prints the same from every endpoint. Empty and zero mean "no date yet" (a
    message still waiting).
    """
    try:
        return DATE_CACHE[value]
    except (KeyError, TypeError):
        pass
    date = _parse_date(value)
    if len(DATE_CACHE) >= _CACHE_LIMIT:
        DATE_CACHE.clear()
    DATE_CACHE[value] = date
    return date


def _parse_date(value: object) -> datetime | None:
    if isinstance(value, bool):
        raise TypeError("a date cannot be a boolean")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.isascii() and text.isdigit():
            value = int(text)
        else:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=PARIS)
            return parsed.astimezone(UTC)
    if isinstance(value, int | float):
        if value == 0:
            return None
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"epoch out of range: {value!r}") from exc
    raise TypeError(f"expected a date, not {type(value).__name__}")


Parser = Callable[[Any], Any]
_PARSERS: dict[Any, Parser] = {
    bool: parse_bool,
    int: parse_int,
    str: parse_str,
    Decimal: parse_decimal,
    datetime: parse_date,
    DeliveryStatus: parse_status,
}


@attrs.frozen
class FieldReader:
    """How one model field is read from a wire record."""

    name: str
    aliases: tuple[str, ...]
    parse: Parser
    required: bool


def structure_model(record: object, cls: type[Any], readers: tuple[FieldReader, ...]) -> Any:
    """`cls` from a wire record: each field from the first of its wire names present.

    A field absent from the record takes its model default (`None` counts as
    absent: XML has no null, and the API sends empty values for "not yet").
    """
    if record.__class__ is not dict:
        raise TypeError(f"expected an object, not {type(record).__name__}")
    get = record.get
    values: dict[str, Any] = {}
    for reader in readers:
        value = None
        for alias in reader.aliases:
            value = get(alias)
            if value is not None:
                break
        if value is not None:
            values[reader.name] = reader.parse(value)
        elif reader.required:
            raise ValueError(f"missing field {reader.aliases[0]!r}")
    return cls(**values)


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


class Converter:
    """Wire records -> models for one default region (national numbers become E.164 with it).

    One strategy for every model: each field with `aliases` metadata is read
    from the first of its wire names present and parsed by its type's parser
    (`_PARSERS`), a nested model or a list of them by this converter again.
    Multi-status results, the hot path, are built by `_matching` with the same
    parsers from rows (`_wire.rows`).
    """

    def __init__(self, default_region: str = DEFAULT_REGION) -> None:
        self.default_region = default_region
        self._readers: dict[type[Any], tuple[FieldReader, ...]] = {}

    def structure(self, record: object, cls: type[T]) -> T:
        """`cls` from a wire record; `ValueError` or `TypeError` when it does not fit."""
        readers = self._readers.get(cls)
        if readers is None:
            readers = self._readers[cls] = self.readers(cls)
        built: T = structure_model(record, cls, readers)
        return built

    def readers(self, cls: type[Any]) -> tuple[FieldReader, ...]:
        """The wire fields of a model: the ones with `aliases` metadata."""
        readers = []
        for field in attrs.fields(cls):
            aliases: tuple[str, ...] = field.metadata.get("aliases", ())
            if aliases:
                parse = self._parser(field.name, _strip_optional(field.type))
                readers.append(
                    FieldReader(field.name, aliases, parse, field.default is attrs.NOTHING)
                )
        return tuple(readers)

    def phone_hook(self, value: Any) -> str:
        """E.164 when the echo reads as a number; else the API's text, kept."""
        if value.__class__ is str and value[:1] == "+" and value[-1:].isdigit():
            return value
        text = parse_str(value).strip()
        if text.startswith("+"):
            return text
        try:
            return normalize_phone(text, self.default_region)
        except ValueError:
            return text  # keep what the API said; matching falls back on it

    def _parser(self, name: str, tp: Any) -> Parser:
        if name == "phone_number":
            return self.phone_hook
        if name == "status_text":
            return parse_status_text
        if get_origin(tp) is list:
            (item_type,) = get_args(tp)
            return functools.partial(_structure_list, structure=self.structure, cls=item_type)
        hook = _PARSERS.get(tp)
        if hook is not None:
            return hook
        if attrs.has(tp):
            return functools.partial(self.structure, cls=tp)
        raise TypeError(f"no parser for {tp!r} ({name})")


def _structure_list(value: object, *, structure: Callable[..., Any], cls: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, not {type(value).__name__}")
    # Consumed from the end (the list is the answer's, read once): each record is freed
    # once structured, so a bulk-status answer's 100,000 dicts never all outlive the
    # collector's young generations together (`benchmarks/loop_lag.py`).
    value.reverse()
    pop = value.pop
    out = []
    while value:
        out.append(structure(pop(), cls))
    return out


@functools.cache
def make_converter(default_region: str = DEFAULT_REGION) -> Converter:
    """The converter for one default region, made once."""
    return Converter(default_region)


def structure(record: dict[str, Any], cls: type[T], default_region: str) -> T:
    """`cls` from an answer's record, or `ResponseFormatError` naming the model."""
    try:
        return make_converter(default_region).structure(record, cls)
    except (ValueError, TypeError) as exc:
        raise misfit(exc, cls.__name__) from None


def message_status(
    record: dict[str, Any], *, phone: str, message_id: int, default_region: str
) -> MessageStatus:
    """A message-status answer; the number is ours (the API may echo it in national form)."""
    record["number"] = phone
    record.setdefault("messageId", message_id)
    return structure(record, MessageStatus, default_region)


def bulk_status(record: dict[str, Any], *, message_id: int, default_region: str) -> BulkStatus:
    """A bulk-status answer, the message id ours when the API leaves it out."""
    record.setdefault("message_id", message_id)
    return structure(record, BulkStatus, default_region)


def tag_page(record: dict[str, Any], *, default_region: str) -> TagPage:
    """One page of bulk-status-by-tag."""
    return structure(record, TagPage, default_region)
