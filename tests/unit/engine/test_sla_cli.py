"""`flowdesk sla due | elapsed`, driven as a subprocess from a checkout (`python cli.py`):
shipped calendars, loose files with `extends` and DST, and every error exit."""

from __future__ import annotations

import datetime as dt
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flowdesk.cli.sla import format_minutes

REPO = Path(__file__).resolve().parents[3]
DESK = "apps/service_desk/calendars/calendars.yaml"
BROKEN = REPO / "tests" / "fixtures" / "broken" / "invalid-interval"


def flowdesk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "cli.py", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def due(calendar: str | Path, start: str, minutes: str, *extra: str) -> subprocess.CompletedProcess:
    args = ["sla", "due", "--calendar", calendar, "--start", start, "--minutes", minutes]
    return flowdesk(*args, *extra)


def elapsed(calendar: str | Path, start: str, end: str, *extra: str) -> subprocess.CompletedProcess:
    return flowdesk(
        "sla", "elapsed", "--calendar", calendar, "--start", start, "--end", end, *extra
    )


def test_due_on_the_service_desk_calendar() -> None:
    result = due(DESK, "2026-10-01T20:00:00+08:00", "240", "--name", "cn_business")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "2026-10-08T14:00:00+08:00\n",
        "",
    )


def test_due_reads_a_time_without_offset_in_the_calendar_zone_and_any_offset_else() -> None:
    assert due(DESK, "2026-10-09T17:00", "120", "--name", "cn_business").stdout == (
        "2026-10-10T10:00:00+08:00\n"
    )
    assert due(DESK, "2026-10-09T09:00Z", "120", "--name", "cn_business").stdout == (
        "2026-10-10T10:00:00+08:00\n"
    )
    assert due(DESK, "2026-10-09T17:00+08:00", "7.5", "--name", "support_24x7").stdout == (
        "2026-10-09T17:07:30+08:00\n"
    )


def test_elapsed_prints_minutes() -> None:
    desk = ("--name", "cn_business")
    assert elapsed(DESK, "2026-10-09T17:00+08:00", "2026-10-12T10:00+08:00", *desk).stdout == (
        "600\n"
    )
    assert elapsed(DESK, "2026-10-09T17:00+08:00", "2026-10-12T10:00:30+08:00", *desk).stdout == (
        "600.5\n"
    )
    assert elapsed(DESK, "2026-10-12T10:00+08:00", "2026-10-09T17:00+08:00", *desk).stdout == (
        "-600\n"
    )
    weekend = elapsed(DESK, "2026-11-13T18:00+08:00", "2026-11-16T09:00+08:00", *desk)
    assert (weekend.returncode, weekend.stdout) == (0, "0\n")


def test_a_calendar_extending_another_in_its_pack() -> None:
    result = due(
        "templates/it_ops/calendars/calendars.yaml",
        "2026-09-28T17:00+08:00",
        "60",
        "--name",
        "change_freeze",
    )
    assert (result.returncode, result.stdout) == (0, "2026-10-08T09:00:00+08:00\n")


LOOSE = """\
apiVersion: flowdesk/v1
kind: Calendar
name: base
timezone: America/New_York
hours: 24x7
holidays: ["2099-01-01"]
---
apiVersion: flowdesk/v1
kind: Calendar
name: nights
extends: base
hours:
  mon-sun: ["00:00-06:00"]
"""


def test_a_loose_file_resolves_extends_within_itself_and_crosses_dst(tmp_path: Path) -> None:
    path = tmp_path / "nights.yaml"
    path.write_text(LOOSE, encoding="utf-8")
    assert due(path, "2026-03-07T12:00-05:00", "1440", "--name", "base").stdout == (
        "2026-03-08T13:00:00-04:00\n"
    )
    assert due(path, "2026-03-08T00:00", "360", "--name", "nights").stdout == (
        "2026-03-09T01:00:00-04:00\n"
    )
    assert elapsed(path, "2026-11-01T00:00", "2026-11-01T12:00", "--name", "nights").stdout == (
        "420\n"
    )


def test_a_broken_calendar_prints_located_diagnostics(tmp_path: Path) -> None:
    app = tmp_path / "office_app"
    shutil.copytree(BROKEN, app, ignore=shutil.ignore_patterns("expected.yaml"))
    result = due(app / "calendars" / "office.yaml", "2026-10-01T09:00+08:00", "60")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "office.yaml:5:28: error[invalid-interval]" in result.stderr
    assert "^" in result.stderr and "at /hours/mon-fri/1" in result.stderr
    assert "does not compile: 1 error" in result.stderr


def test_an_unknown_parent_in_a_loose_file_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "orphan.yaml"
    path.write_text(LOOSE.split("---\n")[1], encoding="utf-8")
    result = due(path, "2026-10-01T09:00Z", "60")
    assert result.returncode == 1
    assert "`nights` extends `base`, which is not defined" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--start", "next friday", "--minutes", "60"), "is not an ISO 8601 date and time"),
        (("--start", "2026-13-01T09:00", "--minutes", "60"), "is not an ISO 8601 date and time"),
        (("--start", "2026-10-01T09:00Z", "--minutes", "an hour"), "is not a number of minutes"),
        (("--start", "2026-10-01T09:00Z"), "--minutes"),
    ],
)
def test_bad_arguments_exit_2(args: tuple[str, ...], message: str) -> None:
    result = flowdesk("sla", "due", "--calendar", DESK, "--name", "cn_business", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_calendar_choice_errors_exit_2(tmp_path: Path) -> None:
    several = due(DESK, "2026-10-01T09:00Z", "60")
    assert several.returncode == 2
    assert "holds 2 calendars (cn_business, support_24x7); pick one with --name" in (several.stderr)
    unknown = due(DESK, "2026-10-01T09:00Z", "60", "--name", "cn_busines")
    assert unknown.returncode == 2
    assert "has no calendar `cn_busines` (it has: cn_business, support_24x7)" in unknown.stderr
    missing = due(tmp_path / "nope.yaml", "2026-10-01T09:00Z", "60")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


@pytest.mark.parametrize(
    ("elapsed_", "text"),
    [
        (dt.timedelta(minutes=90), "90"),
        (dt.timedelta(seconds=30), "0.5"),
        (dt.timedelta(seconds=1), "0.016667"),
        (-dt.timedelta(minutes=1, seconds=15), "-1.25"),
        (dt.timedelta(microseconds=1), "0"),
        (-dt.timedelta(microseconds=1), "0"),
        (dt.timedelta(0), "0"),
    ],
)
def test_minutes_are_integers_when_whole(elapsed_: dt.timedelta, text: str) -> None:
    assert format_minutes(elapsed_) == text


def _documented_commands() -> list[tuple[list[str], str]]:
    """(arguments, expected output) of each `$ flowdesk ...` in docs/calendars.md."""
    text = (REPO / "docs" / "calendars.md").read_text(encoding="utf-8")
    examples = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        for command in re.split(r"^\$ ", block, flags=re.M)[1:]:
            lines = command.replace("\\\n", " ").splitlines()
            examples.append((shlex.split(lines[0])[1:], "".join(f"{x}\n" for x in lines[1:])))
    return examples


@pytest.mark.parametrize(("args", "output"), _documented_commands())
def test_the_documented_examples_print_what_the_docs_say(args: list[str], output: str) -> None:
    result = flowdesk(*args)
    assert (result.returncode, result.stdout) == (0, output)


def test_a_file_outside_the_model_of_its_app_exits_2(tmp_path: Path) -> None:
    app = tmp_path / "office_app"
    shutil.copytree(REPO / "tests" / "fixtures" / "broken" / "invalid-interval", app)
    (app / "expected.yaml").unlink()
    (app / "calendars" / "office.yaml").write_text(LOOSE, encoding="utf-8")
    (app / "tests").mkdir()
    scenario = app / "tests" / "nights.yaml"
    scenario.write_text(LOOSE, encoding="utf-8")
    assert due(app / "calendars" / "office.yaml", "2026-01-01T00:00Z", "1", "--name", "base").stdout
    result = due(scenario, "2026-01-01T00:00Z", "60", "--name", "base")
    assert result.returncode == 2
    assert "is not one of the model files of the app" in result.stderr
