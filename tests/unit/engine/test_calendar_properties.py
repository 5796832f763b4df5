"""Property tests of business-time arithmetic over calendars that exercise lunch
breaks, country holidays, make-up days, DST in both directions, night shifts
meeting at midnight, a zone that jumps at midnight, and sparse working time.

The oracle for `business_time_between` is a plain day-by-day sum over
`working_intervals`, which shares the day rules but none of the year blocks,
bisection or interval merging the fast path relies on.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowdesk.engine.calendar import BusinessCalendar
from flowdesk.model.calendar import Calendar
from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import read_app

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
US = dt.timedelta(microseconds=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LOW = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC) - EPOCH) // US
HIGH = (dt.datetime(2028, 12, 31, tzinfo=dt.UTC) - EPOCH) // US
VIEW_ZONES = [dt.UTC, ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")]


def utc(instant: dt.datetime) -> dt.datetime:
    """Compare and shift instants in UTC: `+`, `-` and `==` on datetimes sharing a
    zone work on wall clocks and ignore `fold`, which DST makes matter."""
    return instant.astimezone(dt.UTC)


def _make(name: str, timezone: str, **fields: Any) -> BusinessCalendar:
    data = {"apiVersion": "flowdesk/v1", "kind": "Calendar", "name": name, "timezone": timezone}
    doc = Calendar.model_validate({**data, **fields}, strict=True)
    return BusinessCalendar.from_model(doc, {name: doc}, "UTC")


def _calendars() -> dict[str, BusinessCalendar]:
    desk = compile_source(read_app(REPO / "apps" / "service_desk")).app
    assert desk is not None
    return {
        "cn_business": BusinessCalendar.from_app(desk, "cn_business"),
        "us_office": _make(
            "us_office",
            "America/New_York",
            country="US",
            hours={"mon-fri": ["09:00-12:00", "13:00-17:30"], "sat": ["10:00-14:00"]},
            holidays=["2026-11-27", {"date": "2026-12-24", "hours": ["09:00-12:00"]}],
        ),
        "berlin_nights": _make(
            "berlin_nights",
            "Europe/Berlin",
            country="DE",
            hours={"mon-sun": ["00:00-06:00", "22:00-24:00"]},
        ),
        "new_york_24x7": _make(
            "new_york_24x7", "America/New_York", hours="24x7", holidays=["2026-07-04"]
        ),
        "havana_midnight": _make(
            "havana_midnight", "America/Havana", hours={"mon-fri": ["00:00-02:00"]}
        ),
        "sparse": _make(
            "sparse", "Asia/Kolkata", hours={"wed": ["10:00-10:30"]}, holidays=["2026-01-07"]
        ),
    }


CALENDARS = _calendars()
calendars = st.sampled_from(sorted(CALENDARS)).map(CALENDARS.__getitem__)


durations = st.one_of(
    st.integers(1, 20 * 24 * 3600 * 10**6).map(lambda n: n * US),
    st.integers(1, 7200).map(lambda m: dt.timedelta(minutes=m)),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


WALL_TIMES = [
    dt.time(h, m)
    for h, m in [
        (0, 0),
        (1, 30),
        (2, 0),
        (2, 30),
        (3, 0),
        (9, 0),
        (12, 0),
        (13, 0),
        (17, 30),
        (18, 0),
        (22, 0),
    ]
]
CALENDAR_ZONES = sorted({c.timezone.key for c in CALENDARS.values()})


@st.composite
def instants(draw: st.DrawFn) -> dt.datetime:
    """Any instant of 2025-2028 seen from one of several zones, or (half the time) one
    at or next to a working-interval edge or a DST change, either fold."""
    if draw(st.booleans()):
        t = EPOCH + draw(st.integers(LOW, HIGH)) * US
        return t.astimezone(draw(st.sampled_from(VIEW_ZONES)))
    day = draw(st.dates(dt.date(2025, 1, 1), dt.date(2028, 12, 30)))
    zone = ZoneInfo(draw(st.sampled_from(CALENDAR_ZONES)))
    wall = dt.datetime.combine(day, draw(st.sampled_from(WALL_TIMES)), tzinfo=zone)
    wall = wall.replace(fold=draw(st.integers(0, 1)))
    return utc(wall) + draw(st.sampled_from([-1, 0, 1])) * US


def oracle(calendar: BusinessCalendar, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
    """Working time in [a, b), a <= b, summed day by day."""
    ua, ub = a.astimezone(dt.UTC), b.astimezone(dt.UTC)
    day = ua.astimezone(calendar.timezone).date() - dt.timedelta(days=1)
    last = ub.astimezone(calendar.timezone).date() + dt.timedelta(days=1)
    total = dt.timedelta(0)
    while day <= last:
        for start, end in calendar.working_intervals(day):
            lo, hi = max(ua, start.astimezone(dt.UTC)), min(ub, end.astimezone(dt.UTC))
            total += max(hi - lo, dt.timedelta(0))
        day += dt.timedelta(days=1)
    return total


@SETTINGS
@given(calendars, instants(), durations)
def test_between_undoes_add(calendar: BusinessCalendar, start: dt.datetime, d: dt.timedelta):
    due = calendar.add_business_time(start, d)
    assert utc(due) > utc(start)
    assert calendar.business_time_between(start, due) == d
    # the earliest such instant: a microsecond sooner is not enough
    assert calendar.business_time_between(start, utc(due) - US) < d


@SETTINGS
@given(calendars, instants(), durations)
def test_from_a_working_instant(calendar: BusinessCalendar, moment: dt.datetime, d: dt.timedelta):
    start = calendar.next_working_instant(moment)
    assert calendar.is_working_time(start)
    assert calendar.business_time_between(moment, start) == dt.timedelta(0)
    assert calendar.business_time_between(start, calendar.add_business_time(start, d)) == d


@SETTINGS
@given(calendars, instants(), durations)
def test_subtracting_is_the_inverse(calendar: BusinessCalendar, end: dt.datetime, d: dt.timedelta):
    start = calendar.add_business_time(end, -d)
    assert calendar.business_time_between(start, end) == d
    assert calendar.business_time_between(utc(start) + US, end) < d  # the latest such instant


@SETTINGS
@given(calendars, instants(), durations, durations)
def test_monotone_in_duration(
    calendar: BusinessCalendar, start: dt.datetime, d1: dt.timedelta, d2: dt.timedelta
):
    small, large = sorted((d1, d2))
    assert utc(calendar.add_business_time(start, small)) <= utc(
        calendar.add_business_time(start, large)
    )


@SETTINGS
@given(calendars, instants(), instants(), durations)
def test_monotone_in_start(
    calendar: BusinessCalendar, a: dt.datetime, b: dt.datetime, d: dt.timedelta
):
    early, late = sorted((a, b), key=utc)
    assert utc(calendar.add_business_time(early, d)) <= utc(calendar.add_business_time(late, d))


@SETTINGS
@given(calendars, instants(), durations, durations)
def test_adding_in_two_steps(
    calendar: BusinessCalendar, start: dt.datetime, d1: dt.timedelta, d2: dt.timedelta
):
    once = calendar.add_business_time(start, d1 + d2)
    twice = calendar.add_business_time(calendar.add_business_time(start, d1), d2)
    assert utc(once) == utc(twice)


@SETTINGS
@given(calendars, instants(), instants(), instants())
def test_elapsed_is_additive(
    calendar: BusinessCalendar, a: dt.datetime, b: dt.datetime, c: dt.datetime
):
    between = calendar.business_time_between
    assert between(a, b) + between(b, c) == between(a, c)
    assert between(a, b) == -between(b, a)


@SETTINGS
@given(calendars, instants(), st.integers(0, 25 * 24 * 3600 * 10**6))
def test_elapsed_matches_the_day_by_day_sum(calendar: BusinessCalendar, a: dt.datetime, span: int):
    b = utc(a) + span * US
    elapsed = calendar.business_time_between(a, b)
    assert elapsed == oracle(calendar, a, b)
    assert dt.timedelta(0) <= elapsed <= utc(b) - utc(a)


@SETTINGS
@given(calendars, instants())
def test_working_time_is_where_the_clock_runs(calendar: BusinessCalendar, t: dt.datetime):
    runs = calendar.business_time_between(t, utc(t) + US) == US
    assert calendar.is_working_time(t) == runs


@SETTINGS
@given(instants(), instants(), durations)
def test_the_24x7_shortcut_agrees_with_the_intervals(
    a: dt.datetime, b: dt.datetime, d: dt.timedelta
):
    shortcut = _make("fast", "Europe/Berlin", hours="24x7")
    general = _make("slow", "Europe/Berlin", hours="24x7", holidays=["2099-12-31"])
    assert shortcut.always_working and not general.always_working
    assert utc(shortcut.add_business_time(a, d)) == utc(general.add_business_time(a, d))
    assert shortcut.business_time_between(a, b) == general.business_time_between(a, b)
    assert shortcut.business_time_between(a, b) == utc(b) - utc(a)
