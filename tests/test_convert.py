"""The generated structuring code builds real, frozen model instances, by either path."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from smspartner_async import (
    BulkStatus,
    DeliveryStatus,
    MessageStatus,
    MultiStatusResult,
    RecipientStatus,
    TagPage,
)
from smspartner_async._convert import _builder_of, make_converter, make_structure_fn

MODELS = [MultiStatusResult, RecipientStatus, MessageStatus, BulkStatus, TagPage]
RECORD = {
    "success": True,
    "code": 200,
    "phoneNumber": "+33600000001",
    "messageId": 7,
    "statut": "Delivered",
    "date": "1517934416",
    "stopSms": "0",
    "isSpam": "1",
}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_takes_the_fast_path(model: type[Any]) -> None:
    """A `__weakref__` slot (attrs' default) would silently send models down the slow path."""
    assert "__weakref__" not in model.__slots__
    assert _builder_of(model) is not None


def test_a_built_result_is_the_model_itself() -> None:
    built = make_structure_fn(make_converter("FR"), MultiStatusResult)(RECORD, None)
    direct = MultiStatusResult(
        "+33600000001",
        7,
        ok=True,
        code=200,
        status=DeliveryStatus.DELIVERED,
        status_text="Delivered",
        date=datetime.fromtimestamp(1517934416, UTC),
        is_spam=True,
    )
    assert type(built) is MultiStatusResult
    assert built == direct and hash(built) == hash(direct)
    assert repr(built) == repr(direct)
    assert pickle.loads(pickle.dumps(built)) == built
    assert copy.copy(built) == built
    assert attrs.evolve(built, index=3).index == 3
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.index = 3  # type: ignore[misc]


@attrs.frozen
class WithWeakref:
    """attrs' default slots include `__weakref__`: its layout cannot take the builder's."""

    phone_number: str = attrs.field(metadata={"aliases": ("phoneNumber",)})
    message_id: int = attrs.field(metadata={"aliases": ("messageId",)})


attrs.resolve_types(WithWeakref)


def test_a_model_the_builder_cannot_fill_is_built_through_its_slots() -> None:
    assert _builder_of(WithWeakref) is None
    built = make_structure_fn(make_converter("FR"), WithWeakref)(RECORD, None)
    assert type(built) is WithWeakref
    assert built == WithWeakref("+33600000001", 7)


@attrs.frozen(cache_hash=True, weakref_slot=False)
class CachedHash:
    """`cache_hash` adds a slot of its own that only attrs' __init__ fills."""

    phone_number: str = attrs.field(metadata={"aliases": ("phoneNumber",)})


@attrs.frozen(weakref_slot=False)
class WithFactory:
    phone_number: str = attrs.field(metadata={"aliases": ("phoneNumber",)})
    tags: list[str] = attrs.field(factory=list)


attrs.resolve_types(CachedHash)
attrs.resolve_types(WithFactory)


def test_models_with_more_than_plain_fields_are_built_by_their_init() -> None:
    conv = make_converter("FR")
    cached = make_structure_fn(conv, CachedHash)(RECORD, None)
    assert hash(cached) == hash(CachedHash("+33600000001"))
    made = make_structure_fn(conv, WithFactory)(RECORD, None)
    assert made.tags == []
    assert _builder_of(CachedHash) is None and _builder_of(WithFactory) is None
