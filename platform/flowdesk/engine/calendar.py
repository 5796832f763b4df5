"""Business calendars at run time: due dates and working time between instants.

SLA clocks, business-time timers and `flowdesk sla` all ask a calendar the same
two questions: "when is START plus N working minutes?" and "how much working
time lies between A and B?". `BusinessCalendar` answers both from a Calendar
document (with its `extends` chain resolved) without ever walking minutes.

How it is fast: instants are integers (microseconds since the Unix epoch, UTC)
and the working time of one local calendar year is built once, lazily, as a
sorted list of disjoint intervals with running totals. A due date is then one
`bisect` to find where START falls, one addition, and one `bisect` to find the
interval where the total is reached; whole non-working days (weekends,
holidays) cost nothing because they are simply absent from the list.

Rules for a day, first match wins:

1. an explicit `holidays` / `workdays` entry of the calendar (the nearest
   calendar in the `extends` chain wins; within one calendar a workday wins
   over a holiday for the same date). A holiday is off all day unless it gives
   `hours` (a shortened day); a workday works its `hours`, else that weekday's
   own hours, else the calendar's standard hours (those of the first day from
   Monday on that has any: for `mon-fri: [...]` the Monday-Friday hours);
2. the country's public holidays (`holidays` package, by country and
   subdivision) are off; the country's make-up working days (China's
   `weekend_workdays`) work like a workday without `hours`;
3. the weekly hours.

DST: hours are wall-clock times in the calendar's timezone and a working
interval counts the *real* time between its two ends. On the day clocks go
forward a 00:00-06:00 shift lasts five hours, on the day they go back seven. A
wall-clock time that does not exist that day (02:30 when clocks jump from
02:00 to 03:00) is read as the moment of the jump; a time that occurs twice is
read as its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from numbers import Real
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flowdesk.model.calendar import Calendar, DatedDay

if TYPE_CHECKING:
    from flowdesk.model.appmodel import AppModel

__all__ = ["BusinessCalendar", "CalendarError", "DurationLike"]

DurationLike = dt.timedelta | int | float | Fraction
"""A business duration: a `timedelta`, or a number of minutes."""

Minutes = tuple[tuple[int, int], ...]
"""Working intervals of one day as (start, end) minutes after local midnight."""

_US = dt.timedelta(microseconds=1)
_US_PER_MINUTE = 60_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_DAY = dt.timedelta(days=1)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ALL_DAY: Minutes = ((0, 1440),)
# A year's block needs the midnights of its neighbours; datetime stops at 1 and 9999.
_FIRST_YEAR, _LAST_YEAR = 2, 9998
# Looking this many years ahead without finding working time means there is none.
_MAX_EMPTY_YEARS = 50


class CalendarError(ValueError):
    """A calendar that cannot be built (unknown parent, cycle, unknown timezone or
    subdivision) or cannot answer (no working time ahead, outside years 2-9998)."""


@dataclass(frozen=True, slots=True)
class _Year:
    """Working time of one local year: intervals [starts[i], ends[i]) in epoch
    microseconds, with the working time before each start and after each end."""

    lo: int  # local midnight of 1 January
    hi: int  # local midnight of 1 January of the next year
    starts: list[int]
    ends: list[int]
    before: list[int]  # working microseconds of the year before starts[i]
    through: list[int]  # ... up to ends[i]
    total: int

    def position(self, t: int) -> int:
        """Working microseconds of the year before instant `t` (lo <= t < hi)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return min(self.before[i] + t - self.starts[i], self.through[i])

    def forward(self, x: int) -> int:
        """The earliest instant with `x` working microseconds before it (0 < x <= total)."""
        j = bisect_left(self.through, x)
        return self.ends[j] - (self.through[j] - x)

    def backward(self, x: int) -> int:
        """The latest instant with `x` working microseconds before it (0 <= x < total)."""
        j = bisect_right(self.before, x) - 1
        return self.starts[j] + (x - self.before[j])


class BusinessCalendar:
    """One resolved calendar. Immutable to its users; it caches a year's working
    intervals the first time an instant of that year is asked about.

    Every instant given must be timezone-aware (a naive one raises `ValueError`:
    guessing its zone is how SLA clocks end up hours off); every instant
    returned is in the calendar's timezone.
    """

    def __init__(
        self,
        name: str,
        timezone: str,
        weekly: tuple[Minutes, ...],
        explicit: Mapping[dt.date, Minutes] | None = None,
        country: str | None = None,
        subdivision: str | None = None,
        first_day_of_week: str = "mon",
    ) -> None:
        """Prefer `from_model`; this is for calendars built in code (tests, tools).

        Args:
            weekly: seven days' working intervals, Monday first.
            explicit: dates whose working intervals replace every other rule.
        """
        try:
            self.timezone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise CalendarError(f"calendar `{name}`: unknown timezone `{timezone}`") from error
        if len(weekly) != 7:
            raise ValueError("weekly hours need seven days, Monday first")
        self.name = name
        self.first_day_of_week = first_day_of_week
        self._weekly = tuple(tuple(day) for day in weekly)
        self._standard = next((day for day in self._weekly if day), ())
        self._explicit = dict(explicit or {})
        self._country = country
        self._subdivision = subdivision
        if country:
            _holiday_table(country, subdivision)  # fail now, not at the first due date
        self._years: dict[int, _Year] = {}
        self._always = self._weekly == (_ALL_DAY,) * 7 and not country and not self._explicit
        self._never = not any(self._weekly) and not any(self._explicit.values())

    # -- construction from the model ----------------------------------------------------

    @classmethod
    def from_model(
        cls,
        calendar: Calendar,
        calendars_by_name: Mapping[str, Calendar],
        default_timezone: str,
    ) -> BusinessCalendar:
        """Resolve `calendar` and its `extends` chain into a runnable calendar.

        A key written in a calendar replaces its parent's (`country: null`
        clears an inherited country; setting `country` alone also clears the
        inherited `subdivision`, which belongs to the parent's country).
        `holidays` and `workdays` merge along the chain, the nearest calendar
        winning for a date. A calendar with no `timezone` in its chain uses
        `default_timezone` (the app's).
        """
        chain = _chain(calendar, calendars_by_name)
        settings: dict[str, object] = {"first_day_of_week": "mon"}
        days: dict[dt.date, tuple[bool, Minutes | None]] = {}  # date -> (works, hours)
        for link in reversed(chain):
            written = link.model_fields_set
            for key in ("timezone", "hours", "country", "subdivision", "first_day_of_week"):
                if key in written:
                    settings[key] = getattr(link, key)
            if "country" in written and "subdivision" not in written:
                settings["subdivision"] = None
            for works, entries in ((False, link.holidays), (True, link.workdays)):
                for entry in entries:
                    days[_date(entry)] = (works, _entry_hours(entry))
        weekly = _weekly(settings.get("hours"))  # type: ignore[arg-type]
        standard = next((day for day in weekly if day), ())
        explicit: dict[dt.date, Minutes] = {}
        for day, (works, hours) in days.items():
            if hours is None:
                hours = (weekly[day.weekday()] or standard) if works else ()
            explicit[day] = hours
        country = settings.get("country")
        subdivision = settings.get("subdivision")
        return cls(
            calendar.name,
            str(settings.get("timezone") or default_timezone),
            weekly,
            explicit,
            str(country) if country else None,
            str(subdivision) if subdivision else None,
            str(settings["first_day_of_week"]),
        )

    @classmethod
    def from_app(cls, app: AppModel, name: str | None = None) -> BusinessCalendar:
        """Calendar `name` of a compiled app (default: the app's `calendar`)."""
        manifest = app.manifest
        name = name or getattr(manifest, "calendar", None)
        if not name or name not in app.calendars:
            raise CalendarError(f"app `{app.name}` has no calendar `{name}`")
        timezone = getattr(manifest, "timezone", None) or "UTC"
        return cls.from_model(app.calendars[name], app.calendars, timezone)

    # -- the questions --------------------------------------------------------------------

    @property
    def always_working(self) -> bool:
        """True for `24x7` with no day off: business time is elapsed time."""
        return self._always

    def add_business_time(self, start: dt.datetime, duration: DurationLike) -> dt.datetime:
        """The due instant: `duration` of working time after `start`.

        The answer is the *earliest* instant at which that much working time has
        passed, so a duration ending with the working day gives 18:00, not 09:00
        of the next day. A start outside working time counts from the next
        working instant. Zero returns `start`. A negative duration counts
        backwards and gives the *latest* instant that far before `start`.
        """
        t = _instant(start, "start")
        d = _microseconds(duration)
        if d == 0:
            return start.astimezone(self.timezone)
        if self._always:
            return self._datetime(t + d)
        self._check_some_working_time()
        year, block = self._year_at(t, start.year)
        x = block.position(t) + d
        empty = 0
        if d > 0:
            while x > block.total:
                x -= block.total
                year, block = year + 1, self._year(year + 1)
                empty = empty + 1 if not block.total else 0
                self._check_empty(empty, start)
            return self._datetime(block.forward(x))
        while x < 0:
            year, block = year - 1, self._year(year - 1)
            x += block.total
            empty = empty + 1 if not block.total else 0
            self._check_empty(empty, start)
        return self._datetime(block.backward(x))

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Working time from `start` to `end`; negative when `end` is before `start`,
        so that between(a, b) + between(b, c) == between(a, c) for any order."""
        a, b = _instant(start, "start"), _instant(end, "end")
        if self._always:
            return (b - a) * _US
        if b < a:
            return -self._between(b, end.year, a, start.year) * _US
        return self._between(a, start.year, b, end.year) * _US

    def is_working_time(self, instant: dt.datetime) -> bool:
        """Whether `instant` lies in working time (intervals include their start,
        not their end: at 18:00 of a 09:00-18:00 day work is over)."""
        t = _instant(instant, "instant")
        if self._always:
            return True
        block = self._year_at(t, instant.year)[1]
        i = bisect_right(block.starts, t) - 1
        return i >= 0 and t < block.ends[i]

    def next_working_instant(self, instant: dt.datetime) -> dt.datetime:
        """`instant` itself when it is working time, else the start of the next
        working interval (where a clock paused outside working hours resumes)."""
        t = _instant(instant, "instant")
        if self._always:
            return instant.astimezone(self.timezone)
        self._check_some_working_time()
        year, block = self._year_at(t, instant.year)
        i = bisect_right(block.starts, t) - 1
        if i >= 0 and t < block.ends[i]:
            return instant.astimezone(self.timezone)
        empty = 0
        while i + 1 >= len(block.starts):
            year, block, i = year + 1, self._year(year + 1), -1
            empty = empty + 1 if not block.total else 0
            self._check_empty(empty, instant)
        return self._datetime(block.starts[i + 1])

    def working_intervals(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The working intervals of local date `day` after every rule, in the
        calendar's timezone (for showing "open hours" and for checking rules)."""
        out = []
        for start, end in self.day_hours(day):
            a, b = self._wall(day, start), self._wall(day, end)
            if b > a:
                out.append((self._datetime(a), self._datetime(b)))
        return out

    def day_hours(self, day: dt.date) -> Minutes:
        """The working intervals of `day` as minutes after local midnight."""
        hours = self._explicit.get(day)
        if hours is not None:
            return hours
        weekly = self._weekly[day.weekday()]
        if self._country:
            off, make_up = _country_days(self._country, self._subdivision, day.year)
            if day in off:
                return ()
            if day in make_up:
                return weekly or self._standard
        return weekly

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.name!r}, {self.timezone.key!r})"

    # -- internals ------------------------------------------------------------------------

    def _between(self, a: int, a_hint: int, b: int, b_hint: int) -> int:
        """Working microseconds from a to b, a <= b."""
        year_a, block_a = self._year_at(a, a_hint)
        year_b, block_b = self._year_at(b, b_hint)
        if year_a == year_b:
            return block_b.position(b) - block_a.position(a)
        middle = sum(self._year(y).total for y in range(year_a + 1, year_b))
        return block_a.total - block_a.position(a) + middle + block_b.position(b)

    def _year_at(self, t: int, hint: int) -> tuple[int, _Year]:
        """The local year holding instant `t`; `hint` is the year of the instant in
        its own zone, never more than one off."""
        year, block = hint, self._year(hint)
        while t < block.lo:
            year -= 1
            block = self._year(year)
        while t >= block.hi:
            year += 1
            block = self._year(year)
        return year, block

    def _year(self, year: int) -> _Year:
        block = self._years.get(year)
        if block is None:
            block = self._years[year] = self._build_year(year)
        return block

    def _build_year(self, year: int) -> _Year:
        if not _FIRST_YEAR <= year <= _LAST_YEAR:
            raise CalendarError(
                f"calendar `{self.name}`: year {year} is outside the supported years "
                f"{_FIRST_YEAR}-{_LAST_YEAR}"
            )
        starts: list[int] = []
        ends: list[int] = []
        before: list[int] = []
        through: list[int] = []
        total = 0
        day, stop = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
        while day < stop:
            for start_minute, end_minute in self.day_hours(day):
                a, b = self._wall(day, start_minute), self._wall(day, end_minute)
                if b <= a:
                    continue  # wholly inside a skipped hour
                if ends and ends[-1] == a:  # 24:00 meets 00:00, 12:00 meets 12:00: merge
                    ends[-1] = b
                else:
                    starts.append(a)
                    ends.append(b)
                    before.append(total)
                    through.append(total)
                total += b - a
                through[-1] = total
            day += _ONE_DAY
        lo, hi = self._wall(dt.date(year, 1, 1), 0), self._wall(stop, 0)
        return _Year(lo, hi, starts, ends, before, through, total)

    def _wall(self, day: dt.date, minute: int) -> int:
        """The instant a wall-clock time of `day` names (see DST in the module docs)."""
        if minute == 1440:
            day, minute = day + _ONE_DAY, 0
        first = dt.datetime(  # fold=0: a repeated time's first occurrence
            day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.timezone
        )
        later = first.replace(fold=1)
        if first.utcoffset() >= later.utcoffset():  # type: ignore[operator]
            return (first - _EPOCH) // _US  # an ordinary or a repeated time
        # Skipped: fold=1 reads it with the offset after the jump, fold=0 with the one
        # before; the jump lies between the two readings.
        return self._jump((later - _EPOCH) // _US, (first - _EPOCH) // _US)

    def _jump(self, lo: int, hi: int) -> int:
        """The first instant in (lo, hi] whose offset is the one after a transition."""
        after = self._datetime(hi).utcoffset()
        while hi - lo > 1:
            middle = (lo + hi) // 2
            if self._datetime(middle).utcoffset() == after:
                hi = middle
            else:
                lo = middle
        return hi

    def _datetime(self, t: int) -> dt.datetime:
        return (_EPOCH + t * _US).astimezone(self.timezone)

    def _check_some_working_time(self) -> None:
        if self._never:
            raise CalendarError(f"calendar `{self.name}` has no working hours")

    def _check_empty(self, empty_years: int, since: dt.datetime) -> None:
        if empty_years >= _MAX_EMPTY_YEARS:
            raise CalendarError(
                f"calendar `{self.name}` has no working time in the {_MAX_EMPTY_YEARS} "
                f"years around {since.isoformat()}"
            )


def _chain(calendar: Calendar, by_name: Mapping[str, Calendar]) -> list[Calendar]:
    """`calendar`, its parent, the parent's parent ... (the linker reports these
    errors with positions; here they guard calendars built outside a compile)."""
    chain = [calendar]
    while chain[-1].extends:
        parent = by_name.get(chain[-1].extends)
        if parent is None:
            raise CalendarError(
                f"calendar `{chain[-1].name}` extends `{chain[-1].extends}`, which is not defined"
            )
        if any(link.name == parent.name for link in chain):
            names = " -> ".join([*(link.name for link in chain), parent.name])
            raise CalendarError(f"calendars extend each other in a circle: {names}")
        chain.append(parent)
    return chain


def _weekly(hours: dict[str, list[str]] | str | None) -> tuple[Minutes, ...]:
    if hours == "24x7":
        return (_ALL_DAY,) * 7
    week: list[Minutes] = [()] * 7
    for key, intervals in (hours or {}).items():  # type: ignore[union-attr]
        first, _, last = key.partition("-")
        for index in range(_DAYS.index(first), _DAYS.index(last or first) + 1):
            week[index] = _intervals(intervals)
    return tuple(week)


def _intervals(texts: list[str]) -> Minutes:
    spans = []
    for text in texts:
        start, end = text.split("-")
        spans.append((_minute(start), _minute(end)))
    return tuple(sorted(spans))


def _minute(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _date(entry: str | DatedDay) -> dt.date:
    return dt.date.fromisoformat(entry if isinstance(entry, str) else entry.date)


def _entry_hours(entry: str | DatedDay) -> Minutes | None:
    if isinstance(entry, DatedDay) and entry.hours is not None:
        return _intervals(entry.hours)
    return None


@lru_cache(maxsize=1024)
def _country_days(
    country: str, subdivision: str | None, year: int
) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """(days off, make-up working days) of a country in one year, from `holidays`.

    Cached per process: the package takes milliseconds per country-year, and its
    `weekend_workdays` lists every year it knows, so it is cut to `year` here.
    """
    table = _holiday_table(country, subdivision, year)
    off = frozenset(day for day in table if day.year == year)
    make_up = frozenset(d for d in getattr(table, "weekend_workdays", ()) if d.year == year)
    return off, make_up


def _holiday_table(country: str, subdivision: str | None, year: int | None = None) -> Any:
    """The `holidays` package's table (imported late: it takes ~30 ms to import)."""
    import holidays

    try:
        return holidays.country_holidays(country, subdiv=subdivision, years=year or ())
    except NotImplementedError as error:
        where = f"country `{country}`" + (f", subdivision `{subdivision}`" if subdivision else "")
        raise CalendarError(f"no public holidays are known for {where}: {error}") from error


def _instant(value: dt.datetime, what: str) -> int:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(
            f"{what} {value.isoformat()} has no timezone: business time needs an aware "
            "datetime, e.g. datetime(..., tzinfo=ZoneInfo('Asia/Shanghai'))"
        )
    return (value - _EPOCH) // _US


def _microseconds(duration: DurationLike) -> int:
    if isinstance(duration, dt.timedelta):
        return duration // _US
    if isinstance(duration, int) and not isinstance(duration, bool):
        return duration * _US_PER_MINUTE
    if isinstance(duration, Real) and not isinstance(duration, bool):
        if isinstance(duration, float) and not math.isfinite(duration):
            raise ValueError(f"a duration must be finite, not {duration}")
        return round(Fraction(duration) * _US_PER_MINUTE)  # type: ignore[arg-type]
    raise TypeError(f"a duration is a timedelta or a number of minutes, not {duration!r}")
