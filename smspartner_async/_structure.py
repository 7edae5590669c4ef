"""The cattrs converter: wire records (JSON or XML, any documented spelling) -> models.

One converter, kept apart from the models. Value parsers absorb the variants
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
from typing import Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo

import attrs
import cattrs

from ._models import (
    BulkStatus,
    DeliveryStatus,
    MessageStatus,
    MultiStatusResult,
    RecipientStatus,
    TagPage,
)
from ._validate import DEFAULT_REGION, normalize_phone

__all__ = [
    "PARIS",
    "Converter",
    "make_converter",
    "parse_bool",
    "parse_date",
    "parse_int",
    "parse_status",
    "parse_status_text",
    "parse_str",
]

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
_status_cache: dict[str, DeliveryStatus] = {}
_text_cache: dict[str, str] = {}
_date_cache: dict[object, datetime | None] = {}
_int_cache: dict[str, int] = {}


def parse_status(value: object) -> DeliveryStatus:
    """Case-insensitive; any undocumented text is UNKNOWN, never an error."""
    try:
        return _status_cache[value]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    if not isinstance(value, str):
        raise TypeError(f"status must be text, not {type(value).__name__}")
    status = _STATUS_BY_TEXT.get(" ".join(value.split()).lower(), DeliveryStatus.UNKNOWN)
    if len(_status_cache) < _CACHE_LIMIT:
        _status_cache[value] = status
    return status


def parse_status_text(value: object) -> str:
    """The API's own status text, stripped and shared between results."""
    try:
        return _text_cache[value]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    text = sys.intern(parse_str(value).strip())
    if len(_text_cache) < _CACHE_LIMIT:
        _text_cache[value] = text  # type: ignore[index]
    return text


_BOOLS: dict[object, bool] = {
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
        return _BOOLS[value]
    except (KeyError, TypeError):
        pass
    if isinstance(value, str) and value.strip().lower() in _BOOLS:
        return _BOOLS[value.strip().lower()]
    raise ValueError(f"not a boolean: {repr(value)[:40]}")


def parse_int(value: object) -> int:
    if value.__class__ is int:
        return value
    try:
        return _int_cache[value]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 19:
            number = int(text)
            if len(_int_cache) < _CACHE_LIMIT:
                _int_cache[value] = number  # XML's codes: "200" again and again
            return number
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"not an integer: {repr(value)[:40]}")


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
        return _date_cache[value]
    except (KeyError, TypeError):
        pass
    date = _parse_date(value)
    if len(_date_cache) >= _CACHE_LIMIT:
        _date_cache.clear()
    _date_cache[value] = date
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


class Converter(cattrs.Converter):
    """cattrs' converter, plus the phone parser for its default region."""

    __slots__ = ("phone_hook",)

    phone_hook: Parser

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

    def _parser(self, name: str, tp: Any) -> Parser:
        if name == "phone_number":
            return self.phone_hook
        if name == "status_text":
            return parse_status_text
        if get_origin(tp) is list:
            (item_type,) = get_args(tp)
            return functools.partial(
                _structure_list, hook=self.get_structure_hook(item_type), tp=item_type
            )
        hook = _PARSERS.get(tp)
        if hook is not None:
            return hook
        return functools.partial(self.structure, cl=tp)


def _structure_list(value: object, *, hook: Callable[[Any, Any], Any], tp: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, not {type(value).__name__}")
    return [hook(item, tp) for item in value]


@functools.cache
def make_converter(default_region: str = DEFAULT_REGION) -> Converter:
    """The converter for one default region (national numbers become E.164 with it)."""
    conv = Converter(detailed_validation=False)

    def phone_hook(value: Any) -> str:
        if value.__class__ is str and value[:1] == "+" and value[-1:].isdigit():
            return value
        text = parse_str(value).strip()
        if text.startswith("+"):
            return text
        try:
            return normalize_phone(text, default_region)
        except ValueError:
            return text  # keep what the API said; matching falls back on it

    conv.phone_hook = phone_hook
    for tp, parse in _PARSERS.items():
        conv.register_structure_hook(tp, _ignore_type(parse))

    def model_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
        readers = conv.readers(cls)
        return lambda record, _: structure_model(record, cls, readers)

    conv.register_structure_hook_factory(lambda t: t in _MODELS, model_hook)
    return conv


def _ignore_type(parse: Parser) -> Callable[[Any, Any], Any]:
    """A cattrs hook (value, type) around a one-argument parser."""
    return lambda value, _: parse(value)
