"""Cron triggers: run times in the app's timezone across DST (no database), and on
SQLite and PostgreSQL: scheduling is idempotent across concurrent schedulers, and
the `cron` job runs the occurrence and queues the next one exactly once."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import pairwise

import pytest
import sqlalchemy as sa
from test_jobs_support import ROOT, Clock

from flowdesk.jobs import queue, schedule
from flowdesk.jobs.schedule import (
    CronError,
    cron_key,
    next_run,
    next_runs,
    schedule_cron_jobs,
)
from flowdesk.jobs.worker import Worker
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import read_app
from flowdesk.store import platform_tables as pt
from flowdesk.store.engine import make_engine

NEW_YORK, BERLIN, SHANGHAI = "America/New_York", "Europe/Berlin", "Asia/Shanghai"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def iso(runs: list[dt.datetime]) -> list[str]:
    return [run.isoformat() for run in runs]


# --------------------------------------------------------------------------- run times


def test_monthly_rule_in_the_apps_timezone() -> None:
    runs = next_runs("0 8 1 * *", at("2026-11-22T10:00:00+00:00"), SHANGHAI, 3)
    assert iso(runs) == ["2026-12-01T08:00:00+08:00", "2027-01-01T08:00:00+08:00",
                         "2027-02-01T08:00:00+08:00"]
    assert runs[0] == at("2026-12-01T00:00:00+00:00")
    assert runs[0].utcoffset() == dt.timedelta(hours=8)


def test_runs_are_strictly_after_the_given_instant() -> None:
    assert next_run("0 8 * * *", at("2026-05-04T08:00:00+08:00"), SHANGHAI) == at(
        "2026-05-05T08:00:00+08:00")
    assert next_run("0 8 * * *", at("2026-05-04T07:59:59.5+08:00"), SHANGHAI) == at(
        "2026-05-04T08:00:00+08:00")


def test_a_time_skipped_by_spring_forward_runs_when_the_clocks_jump() -> None:
    runs = next_runs("30 2 * * *", at("2026-03-07T12:00:00-05:00"), NEW_YORK, 3)
    assert iso(runs) == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00",
                         "2026-03-10T02:30:00-04:00"]
    runs = next_runs("30 2 * * *", at("2026-03-28T12:00:00+01:00"), BERLIN, 2)
    assert iso(runs) == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_an_hourly_rule_runs_once_for_the_skipped_hour() -> None:
    runs = next_runs("0 * * * *", at("2026-03-08T00:30:00-05:00"), NEW_YORK, 4)
    assert iso(runs) == ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00",
                         "2026-03-08T04:00:00-04:00", "2026-03-08T05:00:00-04:00"]


def test_a_time_repeated_by_fall_back_runs_once_at_its_first_occurrence() -> None:
    runs = next_runs("30 1 * * *", at("2026-10-31T12:00:00-04:00"), NEW_YORK, 2)
    assert iso(runs) == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    runs = next_runs("30 2 * * *", at("2026-10-24T12:00:00+02:00"), BERLIN, 2)
    assert iso(runs) == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    hourly = next_runs("0 * * * *", at("2026-11-01T00:30:00-04:00"), NEW_YORK, 3)
    assert iso(hourly) == ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00",
                           "2026-11-01T03:00:00-05:00"]


def test_starting_inside_the_repeated_hour() -> None:
    second_pass = at("2026-11-01T01:10:00-05:00")  # 01:10 EST, after 01:10 EDT
    assert next_run("30 1 * * *", second_pass, NEW_YORK) == at("2026-11-02T01:30:00-05:00")
    assert next_run("*/30 * * * *", second_pass, NEW_YORK) == at("2026-11-01T02:00:00-05:00")
    first_pass = at("2026-11-01T01:10:00-04:00")
    assert next_run("30 1 * * *", first_pass, NEW_YORK) == at("2026-11-01T01:30:00-04:00")


def test_a_daily_rule_is_23_or_25_hours_apart_across_the_changes() -> None:
    runs = next_runs("0 9 * * *", at("2026-03-27T12:00:00+01:00"), BERLIN, 3)
    assert [(b - a) / dt.timedelta(hours=1) for a, b in pairwise(runs)] == [23, 24]
    runs = next_runs("0 9 * * *", at("2026-10-23T12:00:00+02:00"), BERLIN, 3)
    assert [(b - a) / dt.timedelta(hours=1) for a, b in pairwise(runs)] == [25, 24]
    assert all(run.hour == 9 for run in runs)


def test_bad_expressions_zones_and_naive_times_are_refused() -> None:
    now = at("2026-01-01T00:00:00+00:00")
    with pytest.raises(CronError, match="not a cron schedule"):
        next_run("every monday", now, "UTC")
    with pytest.raises(CronError, match="not an IANA timezone"):
        next_run("0 8 * * *", now, "Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        next_run("0 8 * * *", dt.datetime(2026, 1, 1), "UTC")


# --------------------------------------------------------------------------- scheduling


@cache
def service_desk() -> AppModel:
    app = compile_source(read_app(ROOT / "apps" / "service_desk")).app
    assert app is not None
    return app


def _cron_jobs(engine: sa.Engine, kind: str = "cron") -> list[queue.Job]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(pt.jobs).where(pt.jobs.c.kind == kind).order_by(pt.jobs.c.run_at)
        ).all()
    return [queue.Job.from_row(row) for row in rows]


def test_scheduling_is_idempotent_across_concurrent_schedulers(
    engine: sa.Engine, database_url: str
) -> None:
    app = service_desk()
    now = at("2026-11-22T10:00:00+08:00")
    count = 4
    engines = [make_engine(database_url, pool_size=1, max_overflow=0) for _ in range(count)]
    barrier = threading.Barrier(count)

    def scheduler(index: int) -> list[schedule.Scheduled]:
        barrier.wait(timeout=30)
        with engines[index].begin() as connection:
            scheduled = schedule_cron_jobs(connection, app, now)
            time.sleep(0.05)  # overlap the transactions
            return scheduled

    try:
        with ThreadPoolExecutor(count) as pool:
            results = list(pool.map(scheduler, range(count)))
    finally:
        for own in engines:
            own.dispose()
    first = at("2026-12-01T08:00:00+08:00")
    assert all([(s.rule, s.run_at) for s in r] == [("monthly_service_report", first)]
               for r in results)
    assert len({r[0].job_id for r in results}) == 1
    (job,) = _cron_jobs(engine)
    assert job.run_at == first and job.status == "pending"
    assert job.idempotency_key == cron_key("service_desk", "monthly_service_report", first)
    assert job.idempotency_key == (
        "cron:service_desk:monthly_service_report:2026-12-01T00:00:00+00:00")
    assert job.payload == {"app": "service_desk", "rule": "monthly_service_report",
                           "cron": "0 8 1 * *", "timezone": SHANGHAI,
                           "at": "2026-12-01T00:00:00+00:00"}


def test_a_cron_job_runs_the_rule_and_queues_the_next_occurrence_once(engine: sa.Engine) -> None:
    app = service_desk()
    now = queue.utc_now()
    with engine.begin() as connection:
        (scheduled,) = schedule_cron_jobs(connection, app, now)
    clock = Clock(scheduled.run_at.astimezone(dt.UTC) + dt.timedelta(seconds=1))
    outcomes = Worker(engine, "w", clock=clock).drain()
    assert [(o.job.kind, o.status) for o in outcomes] == [("cron", "done"),
                                                          ("automation_run", "done")]
    following = next_run("0 8 1 * *", scheduled.run_at, SHANGHAI)
    cron_jobs = _cron_jobs(engine)
    assert [(j.run_at, j.status) for j in cron_jobs] == [(scheduled.run_at, "done"),
                                                         (following, "pending")]
    # Another scheduler (a worker starting now) finds the same next occurrence queued.
    with engine.begin() as connection:
        (again,) = schedule_cron_jobs(connection, app, clock.now)
    assert again.job_id == cron_jobs[1].id and len(_cron_jobs(engine)) == 2

    (run,) = _cron_jobs(engine, "automation_run")
    assert run.payload["rule"] == "monthly_service_report" and run.status == "done"
    with engine.connect() as connection:
        audit = connection.execute(
            sa.select(pt.audit).where(pt.audit.c.entity == schedule.AUDIT_ENTITY)
        ).all()
    assert [(a.app, a.action, a.record_id) for a in audit] == [
        ("service_desk", "automation_run", run.id)]
    assert audit[0].changes["rule"] == "monthly_service_report"


def test_a_changed_or_removed_rule_does_not_run_its_old_occurrence(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = service_desk()
    with engine.begin() as connection:
        (scheduled,) = schedule_cron_jobs(connection, app, queue.utc_now())
    clock = Clock(scheduled.run_at.astimezone(dt.UTC) + dt.timedelta(seconds=1))
    monkeypatch.setattr(schedule, "_current_rule", lambda c, p: ("0 9 * * *", SHANGHAI))
    outcomes = Worker(engine, "w", clock=clock).drain()
    assert [(o.job.kind, o.status) for o in outcomes] == [("cron", "done")]
    assert _cron_jobs(engine, "automation_run") == []
    nine = next_run("0 9 * * *", scheduled.run_at, SHANGHAI)
    assert [j.run_at for j in _cron_jobs(engine)] == [scheduled.run_at, nine]

    monkeypatch.setattr(schedule, "_current_rule", lambda c, p: None)  # rule removed
    clock.now = nine.astimezone(dt.UTC) + dt.timedelta(seconds=1)
    outcomes = Worker(engine, "w", clock=clock).drain()
    assert [(o.job.kind, o.status) for o in outcomes] == [("cron", "done")]
    assert len(_cron_jobs(engine)) == 2 and _cron_jobs(engine, "automation_run") == []


@pytest.mark.parametrize(
    ("cron", "due"),
    [("30 1 * * *", "2026-11-01T01:30:00-04:00"),  # first pass of the repeated hour
     ("30 2 * * *", "2026-03-08T03:00:00-04:00")],  # the skipped 02:30, run at the jump
)
def test_occurrences_at_the_dst_changes_run(engine: sa.Engine, cron: str, due: str) -> None:
    occurrence = at(due).astimezone(dt.UTC)
    payload = {"app": "not_deployed", "rule": "nightly", "cron": cron, "timezone": NEW_YORK,
               "at": occurrence.isoformat()}
    with engine.begin() as connection:
        queue.enqueue(connection, "cron", payload, run_at=occurrence)
    outcomes = Worker(engine, "w", clock=Clock(occurrence + dt.timedelta(minutes=1))).drain()
    assert [(o.job.kind, o.status) for o in outcomes] == [("cron", "done"),
                                                          ("automation_run", "done")]
    following = [j.run_at for j in _cron_jobs(engine)][1]
    assert following == next_run(cron, max(occurrence, queue.utc_now()), NEW_YORK)


CRON_APP = """\
apiVersion: flowdesk/v1
kind: App
name: crontest
version: {version}
title: Cron test
timezone: Europe/Berlin
"""
CRON_NOTIFICATION = """\
apiVersion: flowdesk/v1
kind: Notification
name: ping
subject: Ping
body: Ping
to: [{role: admin}]
"""
CRON_RULE = """\
apiVersion: flowdesk/v1
kind: Automation
name: nightly
enabled: {enabled}
trigger: {{cron: "{cron}"}}
do:
  - notify: {{template: ping}}
"""


def _deploy(engine: sa.Engine, version: str, cron: str, enabled: bool = True) -> None:
    from flowdesk.store.deploy import deploy

    deploy(engine, {
        "app.yaml": CRON_APP.format(version=version),
        "notifications.yaml": CRON_NOTIFICATION,
        "automations.yaml": CRON_RULE.format(cron=cron, enabled=str(enabled).lower()),
    }, actor="test")


def test_deployed_apps_are_scheduled_and_follow_redeploys(engine: sa.Engine) -> None:
    now = queue.utc_now()
    _deploy(engine, "1.0.0", "30 2 * * *")
    (first,) = schedule.schedule_deployed_apps(engine, now)
    assert (first.app, first.rule) == ("crontest", "nightly")
    assert first.run_at == next_run("30 2 * * *", now, BERLIN)
    assert schedule.schedule_deployed_apps(engine, now)[0].job_id == first.job_id

    _deploy(engine, "1.1.0", "0 6 * * *")  # the rule moves to 06:00
    (moved,) = schedule.schedule_deployed_apps(engine, now)
    assert moved.run_at == next_run("0 6 * * *", now, BERLIN) and moved.job_id != first.job_id

    # The 02:30 occurrence queued before the redeploy does not run the rule; the chain
    # continues at 06:00, the occurrence the scheduler already queued.
    clock = Clock(max(first.run_at, moved.run_at).astimezone(dt.UTC) + dt.timedelta(seconds=1))
    outcomes = Worker(engine, "w", clock=clock).drain()
    runs = _cron_jobs(engine, "automation_run")
    assert [dt.datetime.fromisoformat(j.payload["at"]) for j in runs] == [moved.run_at]
    # (with the automation engine loaded, the rule's `notify` step also queued a job)
    assert {(o.job.kind, o.status) for o in outcomes if o.job.kind != "notify.send"} == {
        ("cron", "done"), ("automation_run", "done")}
    pending = [j for j in _cron_jobs(engine) if j.status == "pending"]
    assert [j.run_at for j in pending] == [next_run("0 6 * * *", moved.run_at, BERLIN)]

    _deploy(engine, "1.2.0", "0 6 * * *", enabled=False)  # disabled: the chain ends
    assert schedule.schedule_deployed_apps(engine, now) == []
    clock.now = pending[0].run_at.astimezone(dt.UTC) + dt.timedelta(seconds=1)
    outcomes = Worker(engine, "w", clock=clock).drain()
    assert [o.job.kind for o in outcomes if o.job.kind != "notify.send"] == ["cron"]
    assert [j.status for j in _cron_jobs(engine)] == ["done", "done", "done"]
    assert len(_cron_jobs(engine, "automation_run")) == 1
