"""Human numbers: formatting, yearly periods, and allocation in the caller's transaction
(a rolled back allocation is given back, so numbers have no gaps)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from flowdesk.store.numbers import NumberPattern, SequenceAllocator


@pytest.mark.parametrize(
    ("pattern", "seq", "expected", "period"),
    [
        ("TCK-{seq:06}", 42, "TCK-000042", ""),
        ("PR-{yyyy}-{seq:05}", 17, "PR-2026-00017", "2026"),
        ("CSAT-{yyyy}{mm}-{seq:05}", 3, "CSAT-202603-00003", "202603"),
        ("N{seq}", 1234567, "N1234567", ""),
        ("{yy}{mm}{dd}-{seq:3}", 5, "260301-005", "260301"),
    ],
)
def test_formats(pattern: str, seq: int, expected: str, period: str) -> None:
    number = NumberPattern(pattern)
    day = dt.date(2026, 3, 1)
    assert number.format(seq, day) == expected
    assert number.period(day) == period


def test_allocation_is_per_period_and_transactional(engine: sa.Engine) -> None:
    allocator = SequenceAllocator(engine.dialect.name)
    with engine.begin() as connection:
        assert [allocator.next(connection, "app", "ticket", "") for _ in range(3)] == [1, 2, 3]
        assert allocator.next(connection, "app", "ticket", "2027") == 1
        assert allocator.next(connection, "app", "other", "") == 1
    with pytest.raises(RuntimeError), engine.begin() as connection:
        assert allocator.next(connection, "app", "ticket", "") == 4
        raise RuntimeError("the create failed")
    with engine.begin() as connection:
        assert allocator.next(connection, "app", "ticket", "") == 4  # no gap
