"""Golden cases of business calendars: the shipped service desk calendar (Chinese
public holidays, make-up working days, company days), year ends, pauses over a
weekend, explicit overrides, `extends` chains and the errors a caller can meet.

DST cases are in test_calendar_dst.py, properties in test_calendar_properties.py.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest

from flowdesk.engine.calendar import BusinessCalendar, CalendarError
from flowdesk.model.calendar import Calendar
from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import read_app

REPO = Path(__file__).resolve().parents[3]
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def cn(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def calendar(name: str = "office", **fields: Any) -> Calendar:
    data = {"apiVersion": "flowdesk/v1", "kind": "Calendar", "name": name, **fields}
    return Calendar.model_validate(data, strict=True)


def build(doc: Calendar, *others: Calendar, timezone: str = "UTC") -> BusinessCalendar:
    return BusinessCalendar.from_model(doc, {c.name: c for c in (doc, *others)}, timezone)


@pytest.fixture(scope="module")
def desk() -> BusinessCalendar:
    """`cn_business` of the shipped service desk, compiled like the runtime does."""
    result = compile_source(read_app(REPO / "apps" / "service_desk"))
    assert result.app is not None, result.diagnostics
    return BusinessCalendar.from_app(result.app, "cn_business")


# -- the shipped calendar against the holidays package ------------------------------------


def test_the_holidays_package_still_says_what_the_goldens_assume() -> None:
    china = holidays.China(years=2026)
    assert {dt.date(2026, 9, 20), dt.date(2026, 10, 10)} <= set(china.weekend_workdays)
    assert china.is_working_day(dt.date(2026, 9, 20))
    assert china.is_working_day(dt.date(2026, 10, 10))
    for day in range(1, 8):
        assert not china.is_working_day(dt.date(2026, 10, day))


def test_every_day_of_2026_follows_the_package_and_the_explicit_dates(
    desk: BusinessCalendar,
) -> None:
    """Working days = the package's working days, less the service desk's two company
    days off (03-06, 12-31); 10-10 is listed as a workday in the app too."""
    china = holidays.China(years=2026)
    company_days_off = {dt.date(2026, 3, 6), dt.date(2026, 12, 31)}
    day = dt.date(2026, 1, 1)
    while day.year == 2026:
        expected = china.is_working_day(day) and day not in company_days_off
        assert bool(desk.day_hours(day)) == expected, day
        if expected:
            assert desk.day_hours(day) == ((540, 720), (780, 1080)), day
        day += dt.timedelta(days=1)


def test_ticket_created_on_a_holiday_evening(desk: BusinessCalendar) -> None:
    opened = cn(2026, 10, 1, 20, 0)  # National Day, 20:00
    assert not desk.is_working_time(opened)
    assert desk.next_working_instant(opened) == cn(2026, 10, 8, 9, 0)
    assert desk.add_business_time(opened, 15) == cn(2026, 10, 8, 9, 15)
    assert desk.add_business_time(opened, 4 * H) == cn(2026, 10, 8, 14, 0)  # lunch skipped
    assert desk.business_time_between(opened, cn(2026, 10, 8, 9, 0)) == dt.timedelta(0)


def test_make_up_working_weekends(desk: BusinessCalendar) -> None:
    # Friday 17:00 + 2 h: Saturday 10-10 is worked (listed in the app and by the package).
    assert desk.add_business_time(cn(2026, 10, 9, 17, 0), 120) == cn(2026, 10, 10, 10, 0)
    # Sunday 09-20 and Saturday 05-09 come from the package only.
    assert desk.add_business_time(cn(2026, 9, 18, 17, 0), 120) == cn(2026, 9, 20, 10, 0)
    assert desk.add_business_time(cn(2026, 5, 8, 17, 0), 120) == cn(2026, 5, 9, 10, 0)
    assert desk.business_time_between(cn(2026, 10, 9, 17), cn(2026, 10, 12, 10)) == 10 * H
    assert desk.working_intervals(dt.date(2026, 9, 20)) == [
        (cn(2026, 9, 20, 9), cn(2026, 9, 20, 12)),
        (cn(2026, 9, 20, 13), cn(2026, 9, 20, 18)),
    ]


def test_year_end_with_a_make_up_sunday(desk: BusinessCalendar) -> None:
    # 12-31 17:00 + 2 h: 01-01 (holiday), 01-02 (off, made up on Sunday 01-04), 01-03.
    assert desk.add_business_time(cn(2025, 12, 31, 17, 0), 120) == cn(2026, 1, 4, 10, 0)
    assert desk.business_time_between(cn(2025, 12, 31, 17), cn(2026, 1, 4, 10)) == 2 * H


def test_year_end_company_day_and_new_year(desk: BusinessCalendar) -> None:
    # 12-31 is the company's closing day, 2027-01-01 New Year, then a weekend.
    assert desk.add_business_time(cn(2026, 12, 30, 17, 0), 120) == cn(2027, 1, 4, 10, 0)


def test_year_end_us_december_31_to_january_2() -> None:
    office = build(
        calendar(timezone="America/New_York", country="US", hours={"mon-fri": ["09:00-17:00"]})
    )
    assert office.add_business_time(ny(2025, 12, 31, 16, 0), 120) == ny(2026, 1, 2, 10, 0)
    assert office.business_time_between(ny(2025, 12, 31, 12), ny(2026, 1, 2, 12)) == 8 * H


def test_a_pause_spanning_a_weekend_counts_nothing(desk: BusinessCalendar) -> None:
    friday_close, monday_open = cn(2026, 11, 13, 18, 0), cn(2026, 11, 16, 9, 0)
    assert desk.business_time_between(friday_close, monday_open) == dt.timedelta(0)
    assert desk.business_time_between(cn(2026, 11, 13, 20), cn(2026, 11, 15, 23)) == 0 * H
    # An SLA clock paused from Friday 17:30 to Monday 09:30 resumes where it stopped:
    # 30 minutes ran before the pause, so 90 are left of a 2-hour target.
    opened = cn(2026, 11, 13, 17, 0)
    used = desk.business_time_between(opened, cn(2026, 11, 13, 17, 30))
    assert desk.add_business_time(cn(2026, 11, 16, 9, 30), 2 * H - used) == cn(2026, 11, 16, 11)


def test_midnight_night_shift_and_24_00() -> None:
    night = build(
        calendar(hours={"mon-fri": ["00:00-06:00", "22:00-24:00"], "sat": ["00:00-06:00"]})
    )
    friday_late = dt.datetime(2026, 6, 5, 23, 0, tzinfo=dt.UTC)
    assert night.add_business_time(friday_late, 120) == dt.datetime(2026, 6, 6, 1, tzinfo=dt.UTC)
    assert night.add_business_time(friday_late, 60) == dt.datetime(2026, 6, 6, 0, tzinfo=dt.UTC)
    assert night.is_working_time(dt.datetime(2026, 6, 6, 0, tzinfo=dt.UTC))
    saturday_end = dt.datetime(2026, 6, 6, 5, 0, tzinfo=dt.UTC)  # then Monday 00:00
    assert night.add_business_time(saturday_end, 120) == dt.datetime(2026, 6, 8, 1, tzinfo=dt.UTC)


# -- conventions ---------------------------------------------------------------------------


def test_a_duration_ending_with_the_day_gives_the_close_not_the_next_opening(
    desk: BusinessCalendar,
) -> None:
    assert desk.add_business_time(cn(2026, 11, 16, 17, 0), 60) == cn(2026, 11, 16, 18, 0)
    assert desk.add_business_time(cn(2026, 11, 16, 11, 0), 60) == cn(2026, 11, 16, 12, 0)


def test_zero_negative_and_fractional_durations(desk: BusinessCalendar) -> None:
    start = cn(2026, 11, 14, 12, 0)  # Saturday
    assert desk.add_business_time(start, 0) == start
    assert desk.add_business_time(cn(2026, 11, 16, 10), -60) == cn(2026, 11, 16, 9)
    # backwards over the weekend: the latest instant 2 h before Monday 10:00
    assert desk.add_business_time(cn(2026, 11, 16, 10), -120) == cn(2026, 11, 13, 17)
    assert desk.add_business_time(cn(2026, 11, 16, 9), -180) == cn(2026, 11, 13, 15)
    # 5 h back reaches the end of lunch: the latest such instant is 13:00, not 12:00
    assert desk.add_business_time(cn(2026, 11, 16, 9), -300) == cn(2026, 11, 13, 13)
    assert desk.add_business_time(cn(2026, 11, 16, 9), 7.5) == cn(2026, 11, 16, 9, 7, 30)
    assert desk.add_business_time(cn(2026, 11, 16, 9), Fraction(1, 3)) == cn(2026, 11, 16, 9, 0, 20)


def test_working_time_boundaries(desk: BusinessCalendar) -> None:
    assert desk.is_working_time(cn(2026, 11, 16, 9, 0))
    assert not desk.is_working_time(cn(2026, 11, 16, 12, 0))
    assert desk.is_working_time(cn(2026, 11, 16, 11, 59, 59))
    assert not desk.is_working_time(cn(2026, 11, 16, 18, 0))
    assert desk.next_working_instant(cn(2026, 11, 16, 12, 30)) == cn(2026, 11, 16, 13, 0)
    assert desk.next_working_instant(cn(2026, 11, 16, 10, 0)) == cn(2026, 11, 16, 10, 0)
    assert desk.next_working_instant(cn(2026, 12, 30, 18, 0)) == cn(2027, 1, 4, 9, 0)


def test_answers_are_in_the_calendar_timezone(desk: BusinessCalendar) -> None:
    start_in_utc = dt.datetime(2026, 11, 16, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai
    due = desk.add_business_time(start_in_utc, 60)
    assert due.tzinfo == SHANGHAI
    assert due.isoformat() == "2026-11-16T10:00:00+08:00"


def test_24x7_is_elapsed_time() -> None:
    always = build(calendar(hours="24x7", timezone="Asia/Shanghai"))
    assert always.always_working
    start = cn(2026, 10, 1, 20, 0)
    assert always.add_business_time(start, 5 * 24 * 60) == cn(2026, 10, 6, 20, 0)
    assert always.business_time_between(start, cn(2026, 10, 2, 20)) == 24 * H
    # 24x7 with a day off takes the general path; 24:00 meets 00:00 without a seam.
    almost = build(calendar(hours="24x7", timezone="Asia/Shanghai", holidays=["2026-10-03"]))
    assert not almost.always_working
    assert almost.add_business_time(start, 48 * H) == cn(2026, 10, 4, 20, 0)
    assert almost.business_time_between(start, cn(2026, 10, 2, 20)) == 24 * H


# -- explicit dates ------------------------------------------------------------------------

WEEKDAYS = {"mon-fri": ["09:00-12:00", "13:00-18:00"]}


def test_explicit_holiday_workday_and_half_day() -> None:
    office = build(
        calendar(
            hours=WEEKDAYS,
            holidays=["2026-06-01", {"date": "2026-06-02", "hours": ["09:00-12:00"]}],
            workdays=[
                "2026-06-06",  # Saturday, standard hours
                {"date": "2026-06-07", "label": "stock-take", "hours": ["10:00-14:00"]},
            ],
        )
    )
    assert office.day_hours(dt.date(2026, 6, 1)) == ()
    assert office.day_hours(dt.date(2026, 6, 2)) == ((540, 720),)
    assert office.day_hours(dt.date(2026, 6, 6)) == ((540, 720), (780, 1080))
    assert office.day_hours(dt.date(2026, 6, 7)) == ((600, 840),)
    week = dt.datetime(2026, 6, 1, tzinfo=dt.UTC), dt.datetime(2026, 6, 8, tzinfo=dt.UTC)
    assert office.business_time_between(*week) == (3 + 3 * 8 + 8 + 4) * H


def test_explicit_dates_override_the_country() -> None:
    office = build(
        calendar(
            timezone="Asia/Shanghai",
            country="CN",
            hours=WEEKDAYS,
            holidays=["2026-09-20"],  # the package's make-up Sunday, refused
            workdays=[{"date": "2026-10-01", "hours": ["09:00-12:00"]}],  # on call
        )
    )
    assert office.day_hours(dt.date(2026, 9, 20)) == ()
    assert office.day_hours(dt.date(2026, 10, 1)) == ((540, 720),)
    assert office.day_hours(dt.date(2026, 10, 2)) == ()
    assert office.day_hours(dt.date(2026, 10, 10)) == ((540, 720), (780, 1080))


def test_a_workday_wins_over_a_holiday_of_the_same_calendar() -> None:
    office = build(calendar(hours=WEEKDAYS, holidays=["2026-06-03"], workdays=["2026-06-03"]))
    assert office.day_hours(dt.date(2026, 6, 3)) == ((540, 720), (780, 1080))


def test_subdivision_holidays() -> None:
    def german(state: str) -> BusinessCalendar:
        doc = calendar(timezone="Europe/Berlin", country="DE", subdivision=state, hours=WEEKDAYS)
        return build(doc)

    berlin, bavaria = german("BE"), german("BY")
    epiphany, corpus_christi = dt.date(2026, 1, 6), dt.date(2026, 6, 4)
    assert bavaria.day_hours(epiphany) == () and berlin.day_hours(epiphany) != ()
    assert bavaria.day_hours(corpus_christi) == () and berlin.day_hours(corpus_christi) != ()
    assert berlin.day_hours(dt.date(2026, 12, 25)) == bavaria.day_hours(dt.date(2026, 12, 25))


# -- extends -------------------------------------------------------------------------------


def test_extends_chain_overrides_per_key_and_merges_dates() -> None:
    base = calendar(
        "base",
        timezone="Asia/Shanghai",
        country="CN",
        hours=WEEKDAYS,
        holidays=["2026-06-01"],
        workdays=["2026-06-13"],
    )
    region = calendar(
        "region", extends="base", hours={"mon-sat": ["08:00-12:00"]}, holidays=["2026-06-02"]
    )
    team = calendar(
        "team",
        extends="region",
        holidays=["2026-06-13"],
        workdays=["2026-06-01"],
        first_day_of_week="sun",
    )
    resolved = build(team, region, base)
    assert resolved.timezone == SHANGHAI  # from base
    assert resolved.first_day_of_week == "sun"
    assert resolved.day_hours(dt.date(2026, 6, 3)) == ((480, 720),)  # region's hours
    assert resolved.day_hours(dt.date(2026, 6, 6)) == ((480, 720),)  # Saturday now works
    assert resolved.day_hours(dt.date(2026, 6, 2)) == ()  # region's holiday
    assert resolved.day_hours(dt.date(2026, 6, 1)) == ((480, 720),)  # team undoes base's
    assert resolved.day_hours(dt.date(2026, 6, 13)) == ()  # team undoes base's workday
    assert resolved.day_hours(dt.date(2026, 10, 1)) == ()  # CN inherited from base
    assert build(region, base).day_hours(dt.date(2026, 6, 13)) == ((480, 720),)


def test_extends_null_clears_and_country_resets_subdivision() -> None:
    parent = calendar(
        "parent", timezone="America/New_York", country="US", subdivision="NY", hours=WEEKDAYS
    )
    no_country = calendar("plain", extends="parent", country=None)
    assert build(no_country, parent).day_hours(dt.date(2026, 7, 3)) != ()
    german = calendar("german", extends="parent", country="DE", timezone="Europe/Berlin")
    resolved = build(german, parent)  # would fail if it kept NY as a German subdivision
    assert resolved.day_hours(dt.date(2026, 10, 3)) == ()  # German Unity Day, a Saturday
    assert resolved.day_hours(dt.date(2026, 12, 25)) == ()
    assert build(parent).day_hours(dt.date(2026, 7, 3)) == ()  # Independence Day observed


def test_default_timezone_is_the_apps() -> None:
    assert build(calendar(hours=WEEKDAYS), timezone="Europe/Berlin").timezone.key == (
        "Europe/Berlin"
    )


def test_shipped_pack_change_freeze_extends_ops_business() -> None:
    result = compile_source(read_app(REPO / "templates" / "it_ops"))
    assert result.app is not None, result.diagnostics
    freeze = BusinessCalendar.from_app(result.app, "change_freeze")
    ops = BusinessCalendar.from_app(result.app, "ops_business")
    assert freeze.timezone == SHANGHAI
    assert ops.day_hours(dt.date(2026, 9, 29)) == ((510, 720), (780, 1050))
    assert freeze.day_hours(dt.date(2026, 9, 29)) == ()
    assert freeze.add_business_time(cn(2026, 9, 28, 17, 0), 60) == cn(2026, 10, 8, 9, 0)


# -- errors --------------------------------------------------------------------------------


def test_naive_instants_are_refused(desk: BusinessCalendar) -> None:
    naive = dt.datetime(2026, 11, 16, 9, 0)
    with pytest.raises(ValueError, match="no timezone"):
        desk.add_business_time(naive, 60)
    with pytest.raises(ValueError, match="no timezone"):
        desk.business_time_between(cn(2026, 11, 16), naive)
    with pytest.raises(ValueError, match="no timezone"):
        desk.is_working_time(naive)
    with pytest.raises(TypeError):
        desk.add_business_time(dt.date(2026, 11, 16), 60)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        desk.add_business_time(cn(2026, 11, 16), True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        desk.add_business_time(cn(2026, 11, 16), float("nan"))


def test_broken_calendars_raise_calendar_error() -> None:
    with pytest.raises(CalendarError, match="`missing`, which is not defined"):
        build(calendar(extends="missing"))
    a, b = calendar("a", extends="b"), calendar("b", extends="a")
    with pytest.raises(CalendarError, match="circle: a -> b -> a"):
        build(a, b)
    with pytest.raises(CalendarError, match="unknown timezone"):
        build(calendar(timezone="Mars/Olympus"))
    with pytest.raises(CalendarError, match="subdivision `XX`"):
        build(calendar(country="US", subdivision="XX"))


def test_a_calendar_without_working_time_says_so() -> None:
    empty = build(calendar())
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(CalendarError, match="no working hours"):
        empty.add_business_time(start, 60)
    assert empty.business_time_between(start, start + 1000 * H) == dt.timedelta(0)
    assert not empty.is_working_time(start)
    once = build(calendar(workdays=[{"date": "2026-03-02", "hours": ["09:00-10:00"]}]))
    assert once.add_business_time(start, 30) == dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    with pytest.raises(CalendarError, match="no working time in the 50 years"):
        once.add_business_time(start, 120)
