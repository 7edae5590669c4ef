"""Bad arguments are refused before anything is sent."""

from __future__ import annotations

import pytest

from smspartner_async import InvalidInputError
from smspartner_async._validate import normalize_message_id, normalize_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+33612345678", "FR", "+33612345678"),
        ("0612345678", "FR", "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("06.12.34.56.78", "FR", "+33612345678"),
        ("0033612345678", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "FR", "+33612345678"),
        ("0470123456", "BE", "+32470123456"),
        ("612345678", "ES", "+34612345678"),
        ("07700900123", "GB", "+447700900123"),
    ],
)
def test_phone_normalized_to_e164(raw, region, expected):
    assert normalize_phone(raw, region) == expected


def test_e164_input_is_returned_as_is():
    phone = "+33612345678"
    assert normalize_phone(phone) is phone


@pytest.mark.parametrize(
    "raw", ["", "   ", "abc", "06123", "+0612345678", "+33 6x", "612345678", 33612345678, None]
)
def test_bad_phone(raw):
    with pytest.raises(InvalidInputError):
        normalize_phone(raw, "FR")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(1, 1), ("42", 42), (" 7 ", 7), (10**12, 10**12), (2**63 - 1, 2**63 - 1)],
)
def test_message_id(raw, expected):
    assert normalize_message_id(raw) == expected


@pytest.mark.parametrize(
    "raw", [0, -1, "0", "1.5", 1.0, "12a", "", None, True, "١٢", "²", 2**63, str(2**63), 2**70]
)
def test_bad_message_id(raw):
    with pytest.raises(InvalidInputError):
        normalize_message_id(raw)


async def test_refused_before_sending(router, make_client):
    client = make_client()
    with pytest.raises(InvalidInputError):
        await client.message_status("", 1)
    with pytest.raises(InvalidInputError):
        await client.message_status("+33612345678", "abc")
    with pytest.raises(InvalidInputError):
        await client.bulk_status(-5)
    with pytest.raises(InvalidInputError):
        await client.status_by_tag("")
    assert len(router.calls) == 0


async def test_an_id_over_64_bits_is_refused_before_sending(router, make_client):
    """Written as text into the request, it would reach the API; orjson used to raise TypeError."""
    with pytest.raises(InvalidInputError) as caught:
        await make_client().multi_status([("+33612345678", 1), ("+33612345678", 2**70)])
    assert caught.value.index == 1
    assert len(router.calls) == 0


async def test_first_bad_pair_names_its_index_and_value(router, make_client):
    pairs = [("+33612345678", i + 1) for i in range(600)]
    pairs[523] = ("+33612345678", "x12")
    pairs[571] = ("not a phone", 1)
    with pytest.raises(InvalidInputError) as caught:
        await make_client().multi_status(pairs)
    assert caught.value.index == 523
    assert caught.value.value == "x12"
    assert "523" in str(caught.value)
    assert "x12" in str(caught.value)
    assert len(router.calls) == 0  # nothing sent, not even the first chunk


@pytest.mark.parametrize("bad", [("+33612345678",), "+33612345678", None, ("a", 1, 2)])
async def test_pair_shape(router, make_client, bad):
    with pytest.raises(InvalidInputError) as caught:
        await make_client().multi_status([("+33612345678", 1), bad])
    assert caught.value.index == 1


async def test_empty_input_sends_nothing(router, make_client):
    assert await make_client().multi_status([]) == []
    assert len(router.calls) == 0
