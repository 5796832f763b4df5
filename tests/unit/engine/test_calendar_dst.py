"""Daylight saving time: working intervals count real elapsed time.

America/New_York 2026: clocks go forward on 03-08 (02:00 -> 03:00) and back on
11-01 (02:00 -> 01:00). Europe/Berlin 2026: forward on 03-29 (02:00 -> 03:00),
back on 10-25 (03:00 -> 02:00). A 24x7 day then lasts 23 or 25 hours, and a
00:00-06:00 shift 5 or 7 hours. Wall times in a skipped hour are read as the
moment of the jump, repeated ones as their first occurrence.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowdesk.engine.calendar import BusinessCalendar
from flowdesk.model.calendar import Calendar

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
NEW_YORK, BERLIN = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")

# (zone, day clocks go forward, day clocks go back)
ZONES = [
    pytest.param(NEW_YORK, dt.date(2026, 3, 8), dt.date(2026, 11, 1), id="new_york"),
    pytest.param(BERLIN, dt.date(2026, 3, 29), dt.date(2026, 10, 25), id="berlin"),
]


def make(zone: ZoneInfo, **fields: Any) -> BusinessCalendar:
    data = {"apiVersion": "flowdesk/v1", "kind": "Calendar", "name": "c", "timezone": zone.key}
    doc = Calendar.model_validate({**data, **fields}, strict=True)
    return BusinessCalendar.from_model(doc, {"c": doc}, "UTC")


def at(zone: ZoneInfo, day: dt.date, hour: int = 0, minute: int = 0, fold: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone, fold=fold)


def real(start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Elapsed time. (`end - start` of two datetimes sharing a tzinfo is wall-clock
    time in Python, the very thing DST makes differ; so is `==` between them.)"""
    return end.astimezone(dt.UTC) - start.astimezone(dt.UTC)


def shift(zone: ZoneInfo) -> BusinessCalendar:
    return make(zone, hours={"mon-sun": ["00:00-06:00"]})


def round_the_clock(zone: ZoneInfo) -> list[BusinessCalendar]:
    """24x7 twice: the elapsed-time shortcut, and the interval path (a day off far away)."""
    return [make(zone, hours="24x7"), make(zone, hours="24x7", holidays=["2099-01-01"])]


@pytest.mark.parametrize(("zone", "spring", "autumn"), ZONES)
def test_a_24x7_day_lasts_23_and_25_hours(zone: ZoneInfo, spring: dt.date, autumn: dt.date):
    for calendar in round_the_clock(zone):
        nxt = dt.timedelta(days=1)
        assert calendar.business_time_between(at(zone, spring), at(zone, spring + nxt)) == 23 * H
        assert calendar.business_time_between(at(zone, autumn), at(zone, autumn + nxt)) == 25 * H
        # 24 business hours from noon the day before end at 13:00 / 11:00 local
        before = spring - nxt
        assert calendar.add_business_time(at(zone, before, 12), 24 * H) == at(zone, spring, 13)
        before = autumn - nxt
        assert calendar.add_business_time(at(zone, before, 12), 24 * H) == at(zone, autumn, 11)


@pytest.mark.parametrize(("zone", "spring", "autumn"), ZONES)
def test_a_night_shift_spanning_the_change(zone: ZoneInfo, spring: dt.date, autumn: dt.date):
    calendar = shift(zone)
    assert calendar.business_time_between(at(zone, spring), at(zone, spring, 12)) == 5 * H
    assert calendar.business_time_between(at(zone, autumn), at(zone, autumn, 12)) == 7 * H
    day_before = spring - dt.timedelta(days=1)
    assert calendar.business_time_between(at(zone, day_before), at(zone, day_before, 12)) == 6 * H
    # 6 hours from the start of the short shift: 5 that night, 1 the next
    nxt = spring + dt.timedelta(days=1)
    assert calendar.add_business_time(at(zone, spring), 6 * H) == at(zone, nxt, 1)
    # 6 hours from the start of the long shift end an hour before its close, at 05:00
    due = calendar.add_business_time(at(zone, autumn), 6 * H)
    assert due == at(zone, autumn, 5)
    assert due.utcoffset() == at(zone, autumn, 5).utcoffset()
    spans = calendar.working_intervals(spring)
    assert [real(a, b) for a, b in spans] == [5 * H]


def test_new_york_clock_readings_around_the_jump() -> None:
    calendar = shift(NEW_YORK)
    spring = dt.date(2026, 3, 8)
    due = calendar.add_business_time(at(NEW_YORK, spring, 1, 30), 60)
    assert due.isoformat() == "2026-03-08T03:30:00-04:00"  # 01:30 EST + 1 h real
    autumn = dt.date(2026, 11, 1)
    first = calendar.add_business_time(at(NEW_YORK, autumn, 1, 0), 60)
    assert first.isoformat() == "2026-11-01T01:00:00-05:00"  # the repeated hour counts
    second = at(NEW_YORK, autumn, 1, 30, fold=1)  # 01:30 EST, the second one
    assert calendar.business_time_between(at(NEW_YORK, autumn, 1, 30), second) == H
    assert calendar.add_business_time(second, 30).isoformat() == "2026-11-01T02:00:00-05:00"


def test_business_days_keep_their_wall_clock_across_a_weekend_change() -> None:
    office = make(NEW_YORK, hours={"mon-fri": ["09:00-17:00"]})
    friday = dt.datetime(2026, 3, 6, 16, 0, tzinfo=NEW_YORK)
    due = office.add_business_time(friday, 120)
    assert due.isoformat() == "2026-03-09T10:00:00-04:00"
    assert office.business_time_between(friday, due) == 2 * H
    berlin = make(BERLIN, hours={"mon-fri": ["09:00-17:00"]})
    friday = dt.datetime(2026, 10, 23, 16, 0, tzinfo=BERLIN)
    assert berlin.add_business_time(friday, 120).isoformat() == "2026-10-26T10:00:00+01:00"


def test_boundaries_inside_the_skipped_and_the_repeated_hour() -> None:
    # 02:30 does not exist on 03-08: the interval starts when clocks jump to 03:00.
    late = make(NEW_YORK, hours={"mon-sun": ["02:30-04:00"]})
    ((start, end),) = late.working_intervals(dt.date(2026, 3, 8))
    assert start.isoformat() == "2026-03-08T03:00:00-04:00" and real(start, end) == H
    # wholly inside the skipped hour: no work that day
    gone = make(NEW_YORK, hours={"mon-sun": ["02:00-03:00"]})
    assert gone.working_intervals(dt.date(2026, 3, 8)) == []
    assert gone.add_business_time(at(NEW_YORK, dt.date(2026, 3, 8)), 30) == at(
        NEW_YORK, dt.date(2026, 3, 9), 2, 30
    )
    # 01:30 occurs twice on 11-01: the interval starts at the first one
    repeated = make(NEW_YORK, hours={"mon-sun": ["01:30-02:00"]})
    ((start, end),) = repeated.working_intervals(dt.date(2026, 11, 1))
    assert start.isoformat() == "2026-11-01T01:30:00-04:00"
    assert end.isoformat() == "2026-11-01T02:00:00-05:00" and real(start, end) == 90 * M
    # Berlin goes back at 03:00: a 02:00-03:00 interval lasts two real hours
    berlin = make(BERLIN, hours={"mon-sun": ["02:00-03:00"]})
    ((start, end),) = berlin.working_intervals(dt.date(2026, 10, 25))
    assert real(start, end) == 2 * H


def test_midnight_in_a_skipped_hour() -> None:
    """Some zones jump at midnight (America/Havana 2026-03-08 00:00 -> 01:00): the day
    then starts at 01:00 and a 24x7 day lasts 23 hours."""
    havana = ZoneInfo("America/Havana")
    day = dt.date(2026, 3, 8)
    for calendar in round_the_clock(havana):
        ((start, end),) = calendar.working_intervals(day)
        assert start.isoformat() == "2026-03-08T01:00:00-04:00"
        assert real(start, end) == 23 * H
        before = at(havana, day - dt.timedelta(days=1), 23)
        assert calendar.add_business_time(before, 60).isoformat() == "2026-03-08T01:00:00-04:00"
