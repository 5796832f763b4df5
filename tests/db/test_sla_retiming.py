"""`retiming_impact`: what a new app version would do to open SLA clocks; closed
clocks are never re-timed. Also: the worker loads the SLA timer handlers."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from test_sla_support import LAB, Harness, at, lab_app, utc_now

from flowdesk.engine.sla import clock_status, retiming_impact, sla_fields
from flowdesk.jobs.handlers import import_handler_modules, registry
from flowdesk.model.compiler import compile_texts


def _new_version(old: str, new: str, version: str = "1.1.0"):  # type: ignore[no-untyped-def]
    texts = dict(LAB)
    texts["app.yaml"] = texts["app.yaml"].replace("version: 1.0.0", f"version: {version}")
    assert old in texts["sla/case_sla.yaml"]
    texts["sla/case_sla.yaml"] = texts["sla/case_sla.yaml"].replace(old, new)
    result = compile_texts(texts)
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


def test_open_clocks_are_retimed_and_closed_ones_are_not(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    open_issue = lab.create("issue", {"title": "printer"}, at(2026, 3, 2, 9))
    closed = lab.create("issue", {"title": "scanner"}, at(2026, 3, 2, 9))
    closed = lab.update("issue", closed, {"answered": True}, at(2026, 3, 2, 9, 30))
    lab.move("issue", closed, "done", "close", at(2026, 3, 2, 10))
    shorter = _new_version("goals: {response: 4h, resolution: 16h}",
                           "goals: {response: 2h, resolution: 16h}")
    with engine.connect() as connection:
        assert retiming_impact(connection, lab.app, lab.app, now=at(2026, 3, 2, 12)) == {}
        impact = retiming_impact(connection, lab.app, shorter, now=at(2026, 3, 2, 12))
        assert impact == {"issue": (1, 1)}  # open response clock: 3h elapsed of a 2h goal
        early = retiming_impact(connection, lab.app, shorter, now=at(2026, 3, 2, 10))
        assert early == {"issue": (1, 0)}
    assert lab.clock(open_issue, "response")["goal_seconds"] == 4 * 3600  # a report only


def test_a_calendar_change_retimes_running_clocks(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    lab.create("issue", {"title": "printer"}, at(2026, 3, 2, 9))
    texts = dict(LAB)
    texts["app.yaml"] = texts["app.yaml"].replace("version: 1.0.0", "version: 1.1.0")
    texts["calendars/calendars.yaml"] = texts["calendars/calendars.yaml"].replace(
        '["09:00-17:00"]', '["08:00-18:00"]')
    longer_days = compile_texts(texts).app
    assert longer_days is not None
    with engine.connect() as connection:
        # response (4h from 09:00) is due at 13:00 either way; resolution (16h) moves
        # from Tuesday 17:00 to Tuesday 15:00
        assert retiming_impact(connection, lab.app, longer_days,
                               now=at(2026, 3, 2, 10)) == {"issue": (1, 0)}


def test_status_of_a_record_without_clocks(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    with engine.connect() as connection:
        assert clock_status(connection, lab.app, "issue", 999) == []
    assert sla_fields([]) == {"sla_status": None, "sla_due_at": None, "sla_breached": False,
                              "sla_paused": False}


def test_naive_instants_are_refused(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    with pytest.raises(ValueError, match="timezone-aware"):
        lab.create("issue", {"title": "printer"}, at(2026, 3, 2, 9).replace(tzinfo=None))


def test_the_worker_loads_the_sla_handlers() -> None:
    import_handler_modules("")
    assert {"sla.warning", "sla.breach"} <= set(registry.kinds())


def test_flowdesk_plan_reports_the_retiming(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from test_deploy_cli import flowdesk, write_app

    from flowdesk.store.engine import make_engine
    from flowdesk.store.snapshots import load_active

    folder = write_app(tmp_path / "lab", LAB)
    deployed = flowdesk("deploy", str(folder), "--yes", url=database_url)
    assert deployed.returncode == 0, deployed.stderr
    engine = make_engine(database_url)
    try:
        lab = Harness(engine, load_active(engine, "slalab"))
        lab.create("issue", {"title": "printer"}, utc_now() - dt.timedelta(days=30))
    finally:
        engine.dispose()
    sla = folder / "sla" / "case_sla.yaml"
    sla.write_text(sla.read_text().replace("response: 4h", "response: 1h"))
    app = folder / "app.yaml"
    app.write_text(app.read_text().replace("version: 1.0.0", "version: 1.1.0"))
    planned = flowdesk("plan", str(folder), url=database_url)
    assert planned.returncode == 0, planned.stderr
    assert ("SLA: 1 open clock(s) of `issue` would be re-timed, 1 of them would become "
            "breached") in planned.stdout
