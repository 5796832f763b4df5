"""`flowdesk sla due | elapsed`: business-time arithmetic on a calendar file.

For analysts checking what an SLA will say before they deploy ("a P2 opened
Friday 17:30 with a 4-hour target is due when?"). The calendar is compiled
exactly as `flowdesk validate` compiles it: a file inside an app folder with
its whole app (so `extends` resolves against the app's other calendars and the
app's timezone is the default), a loose file on its own. An app that does not
compile prints its located diagnostics and exits 1; usage errors (a bad
`--start`, an unknown `--name`) exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from flowdesk.engine.calendar import BusinessCalendar, CalendarError
from flowdesk.model.calendar import Calendar
from flowdesk.model.compiler import compile_source
from flowdesk.model.loader import load_text
from flowdesk.model.sources import discover
from flowdesk.model.structure import parse_document

from .render import render_text

__all__ = ["LoadError", "format_minutes", "load_calendar", "register"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class LoadError(Exception):
    """Why a calendar file gave no calendar: a message for stderr and its exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def register(subparsers: Any) -> None:
    """Add `sla due` and `sla elapsed` to the `flowdesk` parser's subcommands."""
    sla = subparsers.add_parser("sla", help="business-time arithmetic on a calendar")
    actions = sla.add_subparsers(dest="sla_command", required=True, metavar="ACTION")
    due = actions.add_parser("due", help="the due instant: START plus N business minutes")
    _calendar_arguments(due)
    due.add_argument(
        "--minutes", required=True, type=_minutes, metavar="N", help="business minutes to add"
    )
    due.set_defaults(handler=_due)
    elapsed = actions.add_parser("elapsed", help="business minutes between START and END")
    _calendar_arguments(elapsed)
    elapsed.add_argument("--end", required=True, type=_timestamp, metavar="ISO8601")
    elapsed.set_defaults(handler=_elapsed)


def _calendar_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calendar", required=True, metavar="FILE", help="YAML file holding Calendar documents"
    )
    parser.add_argument("--name", help="which calendar of FILE (needed when it holds several)")
    parser.add_argument(
        "--start",
        required=True,
        type=_timestamp,
        metavar="ISO8601",
        help="e.g. 2026-10-09T17:30:00+08:00 (without an offset: the calendar's local time)",
    )


def _timestamp(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"`{text}` is not an ISO 8601 date and time, e.g. 2026-10-09T17:30:00+08:00"
        ) from None


def _minutes(text: str) -> Fraction:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"`{text}` is not a number of minutes, e.g. 240 or 7.5")
    return Fraction(value)


def _due(args: argparse.Namespace) -> int:
    def run(calendar: BusinessCalendar) -> str:
        start = _aware(args.start, calendar)
        return calendar.add_business_time(start, args.minutes).isoformat()

    return _run(args, run)


def _elapsed(args: argparse.Namespace) -> int:
    def run(calendar: BusinessCalendar) -> str:
        start, end = _aware(args.start, calendar), _aware(args.end, calendar)
        return format_minutes(calendar.business_time_between(start, end))

    return _run(args, run)


def _run(args: argparse.Namespace, answer: Any) -> int:
    try:
        calendar = load_calendar(Path(args.calendar), args.name)
        print(answer(calendar))
    except LoadError as failure:
        print(str(failure), file=sys.stderr)
        return failure.status
    except CalendarError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    return EXIT_OK


def _aware(instant: dt.datetime, calendar: BusinessCalendar) -> dt.datetime:
    """A time without an offset is read as the calendar's local time (first occurrence
    when the clocks go back): what an analyst means by "Friday 17:30"."""
    return instant if instant.utcoffset() is not None else instant.replace(tzinfo=calendar.timezone)


def format_minutes(elapsed: dt.timedelta) -> str:
    """Minutes as an integer when whole, else a decimal (at most 6 places)."""
    minutes = Fraction(elapsed // dt.timedelta(microseconds=1), 60_000_000)
    if minutes.denominator == 1:
        return str(minutes.numerator)
    text = f"{float(minutes):.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@dataclass(frozen=True)
class _Loaded:
    calendars: dict[str, Calendar]  # every calendar extends may name
    in_file: list[str]  # the calendars written in FILE, in order
    timezone: str  # default timezone (the app's)


def load_calendar(path: Path, name: str | None = None) -> BusinessCalendar:
    """The calendar `name` (or the only one) of the YAML file at `path`, compiled.

    Raises:
        LoadError: with exit status 1 for a model that does not compile, 2 for a
            missing file or a `--name` that is not in it.
    """
    if not path.is_file():
        raise LoadError(f"error: --calendar {path}: no such file", EXIT_USAGE)
    loaded = _compile(path)
    if name is None:
        if len(loaded.in_file) != 1:
            found = ", ".join(loaded.in_file) or "none"
            raise LoadError(
                f"error: {path} holds {len(loaded.in_file)} calendars ({found})"
                + ("; pick one with --name" if loaded.in_file else ""),
                EXIT_USAGE,
            )
        name = loaded.in_file[0]
    elif name not in loaded.in_file:
        found = ", ".join(loaded.in_file) or "none"
        raise LoadError(f"error: {path} has no calendar `{name}` (it has: {found})", EXIT_USAGE)
    return BusinessCalendar.from_model(loaded.calendars[name], loaded.calendars, loaded.timezone)


def _compile(path: Path) -> _Loaded:
    """Compile FILE's app (or FILE alone): located diagnostics on failure."""
    source = discover([path])[0]
    source.only = None  # an app that does not compile cannot run: show all of why
    result = compile_source(source)
    errors = [d for d in result.diagnostics if d.is_error]
    where = f"the app {_relative(source.root)}" if source.root else str(path)
    if errors:
        raise LoadError(
            render_text(errors, result.files)
            + f"\n\n{where} does not compile: {len(errors)} error{'s' * (len(errors) != 1)}",
            EXIT_ERRORS,
        )
    display = next((k for k in source.texts if Path(k).resolve() == path.resolve()), None)
    if display is None:  # e.g. under the app's tests/, which is not part of the model
        raise LoadError(f"error: {path} is not one of the model files of {where}", EXIT_USAGE)
    in_file = _calendars_of(display, source.texts[display])
    if result.app is not None:
        timezone = getattr(result.app.manifest, "timezone", None) or "UTC"
        return _Loaded(dict(result.app.calendars), list(in_file), timezone)
    return _Loaded(in_file, list(in_file), "UTC")  # a loose file: no app, no manifest


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _calendars_of(file: str, text: str) -> dict[str, Calendar]:
    """The Calendar documents written in one file (already known to compile)."""
    documents, _ = load_text(text, file)
    calendars: dict[str, Calendar] = {}
    for document in documents:
        if isinstance(document.data, dict) and document.data.get("kind") == "Calendar":
            model, _ = parse_document(document)
            if isinstance(model, Calendar):
                calendars[model.name] = model
    return calendars
