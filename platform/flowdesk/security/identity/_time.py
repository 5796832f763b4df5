"""Instants in UTC: the caller's clock in, aware UTC values out of both databases.

Every function of the package takes `now` from its caller (tests move it); SQLite
hands instants back without an offset, so everything read is made aware here.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["as_utc", "resolve_now", "utc_now"]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def resolve_now(now: dt.datetime | None) -> dt.datetime:
    """`now` as aware UTC, or the current time; a naive `now` is a caller's mistake."""
    if now is None:
        return utc_now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime (with a timezone), got {now!r}")
    return now.astimezone(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A value read from the database as aware UTC (SQLite returns naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
