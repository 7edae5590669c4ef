"""The cattrs converter: wire records (JSON or XML, any documented spelling) -> models.

One converter, kept apart from the models. Value parsers absorb the variants
the API documents (`stopSms` as `false` or `"0"`, dates as Paris local time or
epoch seconds, ids as numbers or strings). Field renames come from each field's
`aliases` metadata through a hook factory that generates one flat function per
class, without cattrs' detailed validation: a bad value raises `ValueError` or
`TypeError`, which the endpoint layer turns into `ResponseFormatError`.
"""

from __future__ import annotations

import functools
import linecache
import sys
import types
from collections.abc import Callable, Mapping
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
from ._phone import DEFAULT_REGION, normalize_phone

__all__ = [
    "PARIS",
    "StructureCode",
    "compile_function",
    "make_converter",
    "parse_bool",
    "parse_date",
    "parse_int",
    "parse_status",
    "read_lines",
    "structure_code",
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
_date_cache: dict[object, datetime | None] = {}


def parse_status(value: object, _: object = None) -> DeliveryStatus:
    """Case-insensitive; any undocumented text is UNKNOWN, never an error."""
    if not isinstance(value, str):
        raise TypeError(f"status must be text, not {type(value).__name__}")
    hit = _status_cache.get(value)
    if hit is not None:
        return hit
    status = _STATUS_BY_TEXT.get(" ".join(value.split()).lower(), DeliveryStatus.UNKNOWN)
    if len(_status_cache) < _CACHE_LIMIT:
        _status_cache[value] = status
    return status


_text_cache: dict[str, str] = {}


def parse_status_text(value: object, _: object = None) -> str:
    # Shared: a million results hold a handful of status strings.
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


def parse_bool(value: object, _: object = None) -> bool:
    try:
        return _BOOLS[value]
    except (KeyError, TypeError):
        pass
    if isinstance(value, str) and value.strip().lower() in _BOOLS:
        return _BOOLS[value.strip().lower()]
    raise ValueError(f"not a boolean: {repr(value)[:40]}")


_int_cache: dict[str, int] = {}


def parse_int(value: object, _: object = None) -> int:
    if type(value) is int:
        return value
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


def parse_str(value: object, _: object = None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected text, not {type(value).__name__}")


def parse_decimal(value: object, _: object = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a number, not {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def parse_date(value: object, _: object = None) -> datetime | None:
    """Epoch seconds (number or digits) as UTC; `YYYY-MM-DD HH:MM:SS` as Paris time.

    Empty and zero mean "no date yet" (a message still waiting).
    """
    try:
        hit = _date_cache[value]
    except (KeyError, TypeError):
        pass
    else:
        return hit
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
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=PARIS)
    if isinstance(value, int | float):
        if value == 0:
            return None
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"epoch out of range: {value!r}") from exc
    raise TypeError(f"expected a date, not {type(value).__name__}")


_CACHES: dict[Callable[[Any, Any], Any], dict[Any, Any]] = {
    parse_bool: _BOOLS,
    parse_status: _status_cache,
    parse_date: _date_cache,
}


def _missing(name: str) -> ValueError:
    return ValueError(f"missing field {name!r}")


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _list_hook(item_hook: Callable[[Any, Any], Any], item_type: Any) -> Callable[[Any, Any], Any]:
    def structure_list(value: Any, _: Any) -> list[Any]:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, not {type(value).__name__}")
        return [item_hook(item, item_type) for item in value]

    return structure_list


@attrs.frozen
class StructureCode:
    """Generated statements that build a `cls` into `o` from one record.

    The enclosing code binds the record: a dict's `get` to `g`, or for a flat
    record its `texts`, start `at` and length `n`. Fields named in `given` are
    variables of the same name there. A bad value raises
    `ValueError` or `TypeError`. `env` holds the names the statements use.
    """

    lines: list[str]
    env: dict[str, Any]


def structure_code(
    conv: Converter,
    cls: type[Any],
    given: tuple[str, ...] = (),
    indent: int = 4,
    positions: Mapping[str, int] | None = None,
) -> StructureCode:
    """Each field read from its aliases, then the instance built.

    With `positions` (wire key -> index), the record is a run of values in
    `texts`, starting at `at`, `n` long (XML read flat), instead of a dict.
    Parsers with a cache are inlined as a dict lookup, the common case; a
    miss calls the parser, which fills the cache.
    """
    env: dict[str, Any] = {"cls": cls, "_missing": _missing, "_int_cache": _int_cache}
    lines: list[str] = []
    args = []
    fetched: dict[tuple[str, ...], int] = {}
    for i, field in enumerate(attrs.fields(cls)):
        aliases: tuple[str, ...] = field.metadata.get("aliases", ())
        default = field.default
        if field.name in given:
            args.append(field.name)
            continue
        if not aliases:
            env[f"d{i}"] = default
            args.append(f"d{i}")
            continue
        tp = _strip_optional(field.type)
        hook, cache = _hook_for(conv, field.name, tp)
        env[f"h{i}"], env[f"t{i}"], env[f"c{i}"] = hook, tp, cache
        if aliases in fetched:  # status and status_text read the same key: read it once
            lines.append(f"v{i} = r{fetched[aliases]}")
        else:
            fetched[aliases] = i
            lines += read_lines(f"r{i} = v{i}", aliases, positions)
        if default is attrs.NOTHING:
            lines.append(f"if v{i} is None: raise _missing({aliases[0]!r})")
            indent_ = ""
        else:
            env[f"d{i}"] = default
            lines.append(f"if v{i} is None: v{i} = d{i}")
            lines.append("else:")
            indent_ = "    "
        if cache is not None:
            lines += [
                f"{indent_}try: v{i} = c{i}[v{i}]",
                f"{indent_}except (KeyError, TypeError): v{i} = h{i}(v{i}, t{i})",
            ]
        elif hook is parse_int:  # ints pass; XML's texts hit the cache
            lines += [
                f"{indent_}if v{i}.__class__ is not int:",
                f"{indent_}    try: v{i} = _int_cache[v{i}]",
                f"{indent_}    except (KeyError, TypeError): v{i} = h{i}(v{i}, t{i})",
            ]
        elif hook is parse_str:  # identity on its own type
            lines.append(f"{indent_}if v{i}.__class__ is not str: v{i} = h{i}(v{i}, t{i})")
        else:
            lines.append(f"{indent_}v{i} = h{i}(v{i}, t{i})")
        args.append(f"v{i}")
    builder = _builder_of(cls)
    if builder is not None:
        # Frozen attrs __init__ calls object.__setattr__ per field (~0.1 us each). A plain
        # class with the same slots takes specialised attribute stores (~0.02 us), then
        # the object becomes a `cls`: one check of the two layouts.
        env["new"], env["builder"] = object.__new__, builder
        lines.append("o = new(builder)")
        lines += [f"o.{f.name} = {arg}" for f, arg in zip(attrs.fields(cls), args, strict=True)]
        lines.append("o.__class__ = cls")
    elif _plain(cls):
        # Slot descriptors set the slots directly, skipping the frozen __setattr__.
        env["new"] = object.__new__
        lines.append("o = new(cls)")
        for i, (field, arg) in enumerate(zip(attrs.fields(cls), args, strict=True)):
            env[f"s{i}"] = getattr(cls, field.name).__set__
            lines.append(f"s{i}(o, {arg})")
    else:
        # By keyword, leaving out fields never read: their defaults (factories too) are
        # __init__'s to apply.
        kwargs = [
            f"{f.alias}={arg}"
            for f, arg in zip(attrs.fields(cls), args, strict=True)
            if f.name in given or f.metadata.get("aliases")
        ]
        lines.append(f"o = cls({', '.join(kwargs)})")
    pad = " " * indent
    return StructureCode([pad + line for line in lines], env)


def read_lines(
    target: str, aliases: tuple[str, ...], positions: Mapping[str, int] | None = None
) -> list[str]:
    """Statements setting `target` to the first alias present (None when none is)."""
    if positions is None:
        lines = [f"{target} = g({aliases[0]!r})"]
        var = target.split(" = ")[-1]
        return lines + [f"if {var} is None: {target} = g({alias!r})" for alias in aliases[1:]]
    at = next((positions[alias] for alias in aliases if alias in positions), None)
    if at is None:
        return [f"{target} = None"]
    return [f"{target} = texts[at + {at}] if n > {at} else None"]


def compile_function(source: str, env: dict[str, Any], name: str, filename: str) -> Any:
    """`exec` generated source, kept in linecache for tracebacks as attrs and cattrs do."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), env)  # noqa: S102 - generated from our own models
    return env[name]


@functools.cache
def make_structure_fn(
    conv: Converter, cls: type[Any], given: tuple[str, ...] = ()
) -> Callable[..., Any]:
    """Generate `structure(record, *given_values) -> cls`, reading each field from its aliases.

    Fields named in `given` are passed in by the caller instead of read.
    Generated once per (converter, class, given).
    """
    code = structure_code(conv, cls, given)
    params = ", ".join(["d", *(given or ("_",))])
    lines = [
        f"def structure({params}):",
        "    if d.__class__ is not dict:",
        "        raise TypeError('expected an object, not ' + type(d).__name__)",
        "    g = d.get",
        *code.lines,
        "    return o",
    ]
    suffix = f" given {', '.join(given)}" if given else ""
    filename = f"<smspartner_async structure {cls.__qualname__}{suffix}>"
    structure: Callable[..., Any] = compile_function(
        "\n".join(lines) + "\n", code.env, "structure", filename
    )
    return structure


def _hook_for(
    conv: Converter, name: str, tp: Any
) -> tuple[Callable[[Any, Any], Any], dict[Any, Any] | None]:
    """The parser for a field, and the parser's cache when it is one of ours."""
    if name == "phone_number":
        return conv.phone_hook, None
    if name == "status_text":
        return parse_status_text, _text_cache
    if get_origin(tp) is list:
        (item_type,) = get_args(tp)
        return _list_hook(conv.get_structure_hook(item_type), item_type), None
    hook = conv.get_structure_hook(tp)
    return hook, _CACHES.get(hook)


_builders: dict[type[Any], type[Any] | None] = {}


def _builder_of(cls: type[Any]) -> type[Any] | None:
    """A plain class with `cls`'s slots whose instances may become `cls` instances.

    None when `cls` is not plain, or when the runtime will not swap the two
    classes (a `__weakref__` slot makes CPython refuse: its offset check
    does not count it); the descriptor path then builds `cls`.
    """
    if cls in _builders:
        return _builders[cls]
    builder: type[Any] | None = None
    if _plain(cls):
        namespace = {"__slots__": cls.__slots__, "__module__": cls.__module__}
        builder = type(f"_{cls.__name__}Builder", (), namespace)
        probe: Any = object.__new__(builder)
        try:
            probe.__class__ = cls
        except TypeError:
            builder = None
    _builders[cls] = builder
    return builder


def _plain(cls: type[Any]) -> bool:
    """Slotted, and nothing in __init__ but assignments of its fields' values: no validators,
    converters, hooks or factories, and no slot but the fields' (`cache_hash` adds one)."""
    fields = attrs.fields(cls)
    return (
        "__slots__" in cls.__dict__
        and set(cls.__slots__) - {"__weakref__"} == {f.name for f in fields}
        and not hasattr(cls, "__attrs_post_init__")
        and not hasattr(cls, "__attrs_pre_init__")
        and all(
            f.validator is None
            and f.converter is None
            and f.init
            and f.alias == f.name
            and not isinstance(f.default, attrs.Factory)  # type: ignore[arg-type]
            for f in fields
        )
    )


class Converter(cattrs.Converter):
    """cattrs' converter, plus the phone parser for its default region."""

    __slots__ = ("phone_hook",)

    phone_hook: Callable[[Any, Any], str]


@functools.cache
def make_converter(default_region: str = DEFAULT_REGION) -> Converter:
    """The converter for one default region (national numbers become E.164 with it)."""
    conv = Converter(detailed_validation=False)

    def phone_hook(value: Any, _: Any) -> str:
        if type(value) is str and value[:1] == "+" and value[-1:].isdigit():
            return value
        text = parse_str(value).strip()
        if text.startswith("+"):
            return text
        try:
            return normalize_phone(text, default_region)
        except ValueError:
            return text  # keep what the API said; matching falls back on it

    conv.register_structure_hook(bool, parse_bool)
    conv.register_structure_hook(int, parse_int)
    conv.register_structure_hook(str, parse_str)
    conv.register_structure_hook(Decimal, parse_decimal)
    conv.register_structure_hook(datetime, parse_date)
    conv.register_structure_hook(DeliveryStatus, parse_status)
    conv.phone_hook = phone_hook
    conv.register_structure_hook_factory(
        lambda t: t in _MODELS, lambda t: make_structure_fn(conv, t)
    )
    return conv
