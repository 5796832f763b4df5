"""Calendar documents: business hours, holidays and make-up working days.

SLA clocks and business-time timers count only working time of a calendar.
Country holidays (and China's make-up working weekends) come from the
`holidays` package by country code; explicit dates override them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ._base import Document, Identifier, Label, Strict

__all__ = ["DAY_KEY_PATTERN", "INTERVAL_PATTERN", "Calendar", "DateText", "DatedDay"]

DAY_KEY_PATTERN = r"^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$"
INTERVAL_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


DayKey = Annotated[
    str,
    StringConstraints(pattern=DAY_KEY_PATTERN),
    Field(description="A day (`mon`) or a range of days (`mon-fri`)."),
]
Interval = Annotated[
    str,
    StringConstraints(pattern=INTERVAL_PATTERN),
    Field(description="`HH:MM-HH:MM`; `24:00` ends a day."),
]


DateText = Annotated[
    str, StringConstraints(pattern=DATE_PATTERN), Field(description="A date, `YYYY-MM-DD`.")
]


class DatedDay(Strict):
    date: DateText
    label: Label | None = None
    hours: list[Interval] | None = Field(
        None, description="Working intervals of a make-up day (default: the normal weekday hours)."
    )


class Calendar(Document):
    kind: Literal["Calendar"]
    timezone: str | None = Field(
        None,
        description="IANA timezone, e.g. `Asia/Shanghai` (default: the app's).",
        examples=["Asia/Shanghai", "America/New_York"],
    )
    extends: Identifier | None = Field(
        None, description="Calendar whose settings this one starts from."
    )
    hours: dict[DayKey, list[Interval]] | Literal["24x7"] | None = Field(
        None,
        description="Working intervals per day, e.g. `mon-fri: [09:00-12:00, 13:00-18:00]`, "
        "or `24x7`. Days not listed are off.",
    )
    country: str | None = Field(
        None, pattern=r"^[A-Z]{2}$", description="Public holidays of this country (ISO code)."
    )
    subdivision: str | None = Field(None, description="State or province code for holidays.")
    holidays: list[DateText | DatedDay] = Field(
        default_factory=list, description="Extra days off: `YYYY-MM-DD` or `{date, label}`."
    )
    workdays: list[DateText | DatedDay] = Field(
        default_factory=list, description="Make-up working days (worked although weekend)."
    )
    first_day_of_week: Literal["mon", "sun"] = "mon"
