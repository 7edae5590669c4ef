"""Building frozen results fast: the library's one construction trick, kept in one place.

A frozen attrs class stores each field through `object.__setattr__` in its
`__init__`, the slowest way CPython has to fill a slot. A plain class with the
same `__slots__` (its "twin") takes ordinary attribute stores; once filled, the
object becomes an instance of the model by assigning `__class__`, which CPython
allows when the two layouts match (and refuses with a `__weakref__` slot, which
the models therefore leave out).

Only multi-status results, built once per pair (`_matching.new_result`), and
the watch's changes, built once per change found and again by a store reading
them back (`watch._records.new_change`), go this way; `benchmarks/micro.py`
measures the gain over the model's own `__init__`, and `tests/test_build.py`
fails when a model leaves this path or a field is forgotten.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["twin"]


def twin(cls: type[Any]) -> type[Any] | None:
    """A plain class with `cls`'s slots whose instances may become `cls` instances.

    None when `cls` does more in `__init__` than store its fields (validators,
    converters, factories, hooks) or when the runtime refuses the swap: then
    build `cls` the ordinary way.
    """
    if not _plain(cls):
        return None
    namespace = {"__slots__": cls.__slots__, "__module__": cls.__module__}
    builder = type(f"_{cls.__name__}Twin", (), namespace)
    probe: Any = object.__new__(builder)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return builder


def _plain(cls: type[Any]) -> bool:
    """Slotted, and nothing in __init__ but assignments of its fields' values."""
    fields = attrs.fields(cls)
    return (
        "__slots__" in cls.__dict__
        and set(cls.__slots__) == {f.name for f in fields}
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
