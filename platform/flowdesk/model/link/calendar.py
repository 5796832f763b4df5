"""Linker checks for calendars: timezones, intervals, dates, inheritance,
and country codes known to the `holidays` package."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache
from itertools import pairwise

from ..calendar import Calendar, DatedDay
from ..diagnostics import did_you_mean
from .context import LinkContext, ParsedDocument

__all__ = ["check", "check_timezone"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@cache
def _countries() -> frozenset[str]:
    import holidays

    return frozenset(holidays.list_supported_countries())


def check_timezone(ctx: LinkContext, doc: ParsedDocument, pointer: str, name: str) -> None:
    if name not in _timezones():
        ctx.error(
            doc,
            pointer,
            "unknown-timezone",
            f"unknown timezone `{name}`",
            did_you_mean(name, _timezones()) or "use an IANA name such as `Asia/Shanghai`",
        )


def check(ctx: LinkContext) -> None:
    for kind in ("App",):
        for doc in ctx.of_kind(kind).values():
            check_timezone(ctx, doc, "/timezone", doc.model.timezone)
    for doc in ctx.of_kind("Calendar").values():
        calendar: Calendar = doc.model
        if calendar.timezone:
            check_timezone(ctx, doc, "/timezone", calendar.timezone)
        if calendar.extends:
            _check_extends(ctx, doc, calendar)
        if calendar.country and calendar.country not in _countries():
            ctx.error(
                doc,
                "/country",
                "unknown-country",
                f"no public holidays are known for country `{calendar.country}`",
                "use an ISO 3166 code such as `CN` or `US`",
            )
        if isinstance(calendar.hours, dict):
            _check_hours(ctx, doc, calendar.hours)
        for key in ("holidays", "workdays"):
            for index, day in enumerate(getattr(calendar, key)):
                _check_day(ctx, doc, f"/{key}/{index}", day)


def _check_extends(ctx: LinkContext, doc: ParsedDocument, calendar: Calendar) -> None:
    seen = [calendar.name]
    current = calendar
    while current is not None and current.extends:
        if current.extends in seen:
            ctx.error(
                doc,
                "/extends",
                "calendar-cycle",
                "calendars extend each other in a circle: " + " -> ".join([*seen, current.extends]),
            )
            return
        seen.append(current.extends)
        current = (
            ctx.resolve(doc, "/extends", "Calendar", current.extends)
            if current is calendar
            else ctx.model("Calendar", current.extends)
        )


def _check_hours(ctx: LinkContext, doc: ParsedDocument, hours: dict[str, list[str]]) -> None:
    covered: dict[str, str] = {}
    for key, intervals in hours.items():
        days = _expand(key)
        if not days:
            ctx.error(
                doc,
                f"/hours/{key}",
                "invalid-day-range",
                f"`{key}` runs backwards; write ranges from Monday on, e.g. `mon-fri`",
                key=True,
            )
        for day in days:
            if day in covered:
                ctx.error(
                    doc,
                    f"/hours/{key}",
                    "duplicate-day",
                    f"`{day}` is given hours twice (also in `{covered[day]}`)",
                    key=True,
                )
            covered[day] = key
        _check_intervals(ctx, doc, f"/hours/{key}", intervals)


def _expand(key: str) -> list[str]:
    first, _, last = key.partition("-")
    start, end = _DAYS.index(first), _DAYS.index(last or first)
    return list(_DAYS[start : end + 1])


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _check_intervals(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, intervals: list[str]
) -> None:
    spans = []
    for index, interval in enumerate(intervals):
        start, end = (_minutes(t) for t in interval.split("-"))
        if start >= end:
            ctx.error(
                doc,
                f"{pointer}/{index}",
                "invalid-interval",
                f"interval `{interval}` ends before it starts",
                "for night shifts, split at midnight: `22:00-24:00` and `00:00-06:00` "
                "on the next day",
            )
        spans.append((start, end, interval))
    spans.sort()
    for (_, end, first), (start, _, second) in pairwise(spans):
        if start < end:
            ctx.error(
                doc, pointer, "overlapping-intervals", f"intervals `{first}` and `{second}` overlap"
            )


def _check_day(ctx: LinkContext, doc: ParsedDocument, pointer: str, day: str | DatedDay) -> None:
    text = day if isinstance(day, str) else day.date
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        ctx.error(
            doc,
            pointer if isinstance(day, str) else pointer + "/date",
            "invalid-date",
            f"`{text}` is not a date in the calendar",
        )
    if isinstance(day, DatedDay) and day.hours:
        _check_intervals(ctx, doc, pointer + "/hours", day.hours)
