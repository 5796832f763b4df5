"""The real `flowdesk` command line, run as a subprocess from a checkout (`python cli.py`).

Uses the broken fixture `tests/fixtures/broken/unknown-field` (copied without
its `expected.yaml`, which is not part of the app), `apps/service_desk` as the
valid app (a scaffolded one when it is absent) and freshly scaffolded apps.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "broken" / "unknown-field"
KEYS = {"file", "line", "column", "pointer", "code", "severity", "message", "hint"}


def flowdesk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "cli.py", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture
def broken_app(tmp_path: Path) -> Path:
    app = tmp_path / "broken"
    shutil.copytree(FIXTURE, app, ignore=shutil.ignore_patterns("expected.yaml"))
    return app


@pytest.fixture
def valid_app(tmp_path: Path) -> Path:
    """The shipped `apps/service_desk` when present, else a freshly scaffolded app."""
    shipped = REPO / "apps" / "service_desk"
    if (shipped / "app.yaml").is_file():
        return shipped
    result = flowdesk("new", "app", "sample_desk", "--dir", tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "sample_desk"


def test_text_format_shows_location_source_line_caret_and_hint(broken_app: Path) -> None:
    result = flowdesk("validate", broken_app)
    assert result.returncode == 1
    assert_no_traceback(result)
    lines = result.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if "ticket.yaml:16:12:" in line)
    assert lines[head] == (
        f"{broken_app / 'entities' / 'ticket.yaml'}:16:12: error[unknown-field] "
        "unknown field `ammount` of entity `ticket`"
    )
    gutter, source = lines[head + 1].split(" | ", 1)
    assert gutter.strip() == "16"
    assert source == "    field: ammount"
    caret = lines[head + 2]
    assert caret.strip() == "^"
    column = caret.index("^") - len(gutter + " | ") + 1
    assert column == 12
    assert source[column - 1 :].startswith("ammount")
    assert "      at /rules/0/field" in lines[head + 3 : head + 5]
    assert "      hint: did you mean `amount`?" in lines[head + 3 : head + 5]
    assert "form.yaml:7:23: error[unknown-field] unknown field `priorty`" in result.stdout
    assert lines[-1] == "1 app checked: 2 errors, 0 warnings"


def test_json_format_has_every_key(broken_app: Path) -> None:
    result = flowdesk("validate", broken_app, "--format", "json")
    assert result.returncode == 1
    diagnostics = json.loads(result.stdout)
    assert isinstance(diagnostics, list) and len(diagnostics) == 2
    for item in diagnostics:
        assert set(item) == KEYS
    first = diagnostics[0]
    assert Path(first["file"]) == broken_app / "entities" / "ticket.yaml"
    assert (first["line"], first["column"]) == (16, 12)
    assert first["pointer"] == "/rules/0/field"
    assert (first["code"], first["severity"]) == ("unknown-field", "error")
    assert first["hint"] == "did you mean `amount`?"


def test_github_format_prints_workflow_commands(broken_app: Path) -> None:
    result = flowdesk("validate", broken_app, "--format", "github")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    pattern = re.compile(
        r"^::error file=(?P<file>[^,]+),line=(?P<line>\d+),col=(?P<col>\d+),"
        r"title=(?P<title>[^:]+)::(?P<message>.+)$"
    )
    matches = [pattern.match(line) for line in lines]
    assert all(matches), lines
    first = matches[0]
    assert first is not None
    assert Path(first["file"]) == broken_app / "entities" / "ticket.yaml"
    assert (first["line"], first["col"], first["title"]) == ("16", "12", "unknown-field")
    assert first["message"] == "unknown field `ammount` of entity `ticket` (did you mean `amount`?)"
    assert "2 errors" in result.stderr


def test_valid_app_exits_0(valid_app: Path) -> None:
    result = flowdesk("validate", valid_app)
    assert result.returncode == 0, result.stdout
    assert "error[" not in result.stdout
    assert re.fullmatch(
        r"1 app (valid|checked: 0 errors, \d+ warnings?)", result.stdout.splitlines()[-1]
    )
    result = flowdesk("validate", valid_app, "--format", "json")
    assert result.returncode == 0
    assert [d for d in json.loads(result.stdout) if d["severity"] == "error"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["validate"],
        ["validate", "--bogus", "apps"],
        ["validate", "apps", "--format", "xml"],
        ["frobnicate"],
        [],
    ],
    ids=["no-path", "unknown-option", "unknown-format", "unknown-command", "no-command"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = flowdesk(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert_no_traceback(result)


def test_missing_path_is_a_located_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "app"
    result = flowdesk("validate", missing)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert result.stdout.splitlines()[0] == (
        f"{missing}:1:1: error[path-not-found] no such file or folder"
    )
    result = flowdesk("validate", missing, "--format", "json")
    assert result.returncode == 1
    [item] = json.loads(result.stdout)
    assert (item["code"], item["line"], item["column"]) == ("path-not-found", 1, 1)


def test_expr_eval_prints_the_value() -> None:
    result = flowdesk("expr", "eval", "record.a + 1", "--data", '{"record": {"a": 2}}')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_bad_expression_exits_1_with_a_caret() -> None:
    source = "record.a + * 2"
    result = flowdesk("expr", "eval", source, "--data", '{"record": {"a": 2}}')
    assert result.returncode == 1
    assert_no_traceback(result)
    lines = result.stderr.splitlines()
    head = re.match(r"^<expression>:1:(\d+): error\[cel-syntax\] ", lines[0])
    assert head, lines
    column = int(head[1])
    assert source[column - 1] == "*"
    assert lines[1] == "    " + source
    assert lines[2] == "    " + " " * (column - 1) + "^"


def test_new_app_twice_fails_cleanly(tmp_path: Path) -> None:
    first = flowdesk("new", "app", "twice", "--dir", tmp_path)
    assert first.returncode == 0, first.stderr
    scaffolded = flowdesk("validate", tmp_path / "twice")
    assert (scaffolded.returncode, scaffolded.stdout.strip()) == (0, "1 app valid")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    second = flowdesk("new", "app", "twice", "--dir", tmp_path)
    assert second.returncode == 1
    assert_no_traceback(second)
    assert "already exists" in second.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
