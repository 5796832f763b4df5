"""Field codecs refuse out-of-range input with a field error, never an exception of
the decimal module (schemathesis sent -2.9e+97 to a decimal(10, 2) field)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flowdesk.model.entity import DecimalField
from flowdesk.store.values import Invalid, build_codec


@pytest.mark.parametrize("value", [-2.941604047539397e97, 1e300, "9" * 60, 100_000_000])
def test_huge_decimals_are_out_of_range(value: object) -> None:
    codec = build_codec("price", DecimalField(type="decimal", precision=10, scale=2))
    with pytest.raises(Invalid) as caught:
        codec.coerce(value)
    assert caught.value.code == "out-of-range"


def test_a_decimal_in_range_is_kept_exactly() -> None:
    codec = build_codec("price", DecimalField(type="decimal", precision=10, scale=2))
    assert codec.coerce("12345678.90") == Decimal("12345678.90")


@pytest.mark.parametrize("value", [2**63, -(2**70), "99999999999999999999999"])
def test_integers_beyond_64_bits_are_refused(value: object) -> None:
    from flowdesk.model.entity import IntegerField, ReferenceField

    number = build_codec("quantity", IntegerField(type="integer"))
    with pytest.raises(Invalid) as caught:
        number.coerce(value)
    assert caught.value.code == "out-of-range"
    reference = build_codec("site", ReferenceField(type="reference", to="site"))
    with pytest.raises(Invalid) as caught:
        reference.coerce(abs(int(value)))
    assert caught.value.code == "not-an-id"
