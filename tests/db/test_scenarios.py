"""`flowdesk test`: every shipped scenario passes, and a failing one is reported with its
step, location, expectation and finding.

SQLite only, by design: the runner always plays scenarios on a throwaway SQLite file
(a scenario tests the app's model, not the database), so the PostgreSQL parameter of
the `engine` fixture does not apply here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowdesk.cli.main import main
from flowdesk.testing.scenarios import run_app_tests

ROOT = Path(__file__).resolve().parents[2]
APPS = ("service_desk", "field_service", "procurement")
FAILING = ROOT / "tests" / "fixtures" / "scenarios" / "failing"


@pytest.mark.parametrize("name", APPS)
def test_shipped_scenarios_pass(name: str) -> None:
    report = run_app_tests(ROOT / "apps" / name)
    assert report.valid, [str(d) for d in report.diagnostics]
    assert len(report.results) >= 1
    failures = {r.name: r.failure for r in report.results if not r.passed}
    assert failures == {}


def test_failing_scenario_is_reported_with_its_step() -> None:
    report = run_app_tests(FAILING)
    results = {r.name: r for r in report.results}
    assert results["expires_after_two_hours"].passed  # the timer fires at 2h, not before
    wrong = results["wrong_expectation"].failure
    assert wrong is not None
    assert (wrong.step, wrong.action, wrong.line) == (3, "expect", 28)
    assert wrong.file.endswith("tests/scenarios.yaml")
    assert wrong.expected == "$t.priority = low"
    assert wrong.found == "$t.priority = high"
    refused = results["refused_step"].failure
    assert refused is not None and refused.step == 2
    assert refused.found.startswith("role-not-allowed: `close` needs one of the roles agent")
    assert not report.passed


def test_cli_exit_codes_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(FAILING), "--scenario", "expires_after_two_hours"]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
    assert main(["test", str(FAILING), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [s["passed"] for s in data["scenarios"]] == [True, False, False]
    assert data["scenarios"][1]["failure"]["found"] == "$t.priority = high"
    assert main(["test", str(FAILING), "--scenario", "nope"]) == 2
    assert "no scenario named nope" in capsys.readouterr().err
    assert main(["test", str(ROOT / "tests")]) == 2


def test_an_invalid_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    broken = ROOT / "tests" / "fixtures" / "broken" / "unknown-user"
    assert main(["test", str(broken)]) == 2
    out = capsys.readouterr().out
    assert "unknown user `alcie`" in out and "nothing was run" in out
