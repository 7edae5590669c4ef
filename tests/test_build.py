"""Results are real, frozen model instances, whichever way they are built."""

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
    ServerError,
    TagPage,
)
from smspartner_async._build import twin
from smspartner_async._matching import new_result
from smspartner_async._structure import make_converter
from smspartner_async.watch import SettleReason, StatusChange
from smspartner_async.watch._records import new_change

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
DATE = datetime.fromtimestamp(1517934416, UTC)


def test_multi_status_results_take_the_fast_path() -> None:
    """A `__weakref__` slot (attrs' default) or a validator would leave it silently."""
    assert "__weakref__" not in MultiStatusResult.__slots__
    assert twin(MultiStatusResult) is not None


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_no_model_has_a_weakref_slot(model: type[Any]) -> None:
    assert "__weakref__" not in model.__slots__


def test_new_result_fills_every_field_and_is_the_model_itself() -> None:
    error = ServerError(None, "boom", status_code=503)
    values = ("+33600000001", 7, False, 200, DeliveryStatus.DELIVERED, "Delivered", DATE)
    built = new_result(*values, True, True, 3, error)
    direct = MultiStatusResult(*values, stop_sms=True, is_spam=True, index=3, error=error)
    assert type(built) is MultiStatusResult
    for field in attrs.fields(MultiStatusResult):  # eq=False fields too: every slot is set
        assert getattr(built, field.name) is getattr(direct, field.name), field.name
    assert built == direct and hash(built) == hash(direct)
    assert repr(built) == repr(direct)
    assert pickle.loads(pickle.dumps(built)) == built
    assert copy.copy(built) == built
    assert attrs.evolve(built, index=4).index == 4
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.index = 3  # type: ignore[misc]


def test_watch_changes_take_the_fast_path() -> None:
    assert "__weakref__" not in StatusChange.__slots__
    assert twin(StatusChange) is not None


def test_new_change_fills_every_field_and_is_the_model_itself() -> None:
    values = ("+33600000001", 7, DeliveryStatus.DELIVERED, DeliveryStatus.WAITING, True)
    rest = (SettleReason.FINAL, 2, 5.0, DATE, 200, "ok")
    built = new_change(3, *values, *rest)
    direct = StatusChange(3, *values, *rest)
    assert type(built) is StatusChange
    for field in attrs.fields(StatusChange):
        assert getattr(built, field.name) is getattr(direct, field.name), field.name
    assert built == direct and hash(built) == hash(direct)
    assert repr(built) == repr(direct) and built.id == direct.id
    assert pickle.loads(pickle.dumps(built)) == built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.sequence = 3  # type: ignore[misc]


@attrs.frozen
class WithWeakref:
    phone_number: str = attrs.field(metadata={"aliases": ("phoneNumber",)})


@attrs.frozen(cache_hash=True, weakref_slot=False)
class CachedHash:
    """`cache_hash` adds a slot of its own that only attrs' __init__ fills."""

    phone_number: str = attrs.field(metadata={"aliases": ("phoneNumber",)})


@attrs.frozen(weakref_slot=False)
class WithFactory:
    phone_number: str = attrs.field(metadata={"aliases": ("phoneNumber",)})
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen(weakref_slot=False)
class WithValidator:
    phone_number: str = attrs.field(validator=attrs.validators.instance_of(str))


@pytest.mark.parametrize("model", [WithWeakref, CachedHash, WithFactory, WithValidator])
def test_models_with_more_than_plain_fields_have_no_twin(model: type[Any]) -> None:
    assert twin(model) is None


def test_the_converter_builds_every_model_by_its_init() -> None:
    conv = make_converter("FR")
    result = conv.structure(RECORD, MultiStatusResult)
    assert result == MultiStatusResult(
        "+33600000001",
        7,
        ok=True,
        code=200,
        status=DeliveryStatus.DELIVERED,
        status_text="Delivered",
        date=DATE,
        is_spam=True,
    )
    recipient = conv.structure(RECORD, RecipientStatus)
    assert recipient == RecipientStatus("+33600000001", DeliveryStatus.DELIVERED, "Delivered", DATE)
    page = conv.structure(
        {"currentPage": "2", "total": 9, "StatutResponse_List": [RECORD]}, TagPage
    )
    assert page == TagPage(2, 9, [recipient])
    assert page.seen == 0  # not on the wire: the paginator counts it
