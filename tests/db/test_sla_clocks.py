"""SLA clocks on SQLite and PostgreSQL: golden due instants, pauses, re-targeting,
stop and reset, and the warning / breach timers run by the real worker."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from test_jobs_support import Clock
from test_records_support import shipped_app
from test_sla_support import SHANGHAI, Harness, at, lab_app, utc

from flowdesk.engine import sla as sla_module
from flowdesk.engine.sla import clock_status, sla_fields
from flowdesk.jobs.worker import Worker

H = dt.timedelta(hours=1)


def cn(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return at(year, month, day, hour, minute, SHANGHAI)


def ticket(desk: Harness, when: dt.datetime, priority: str = "p3") -> dict:
    values = {"title": "VPN is down", "contact_email": "a@example.com", "priority": priority,
              "description": "The VPN drops every few minutes since this morning."}
    return desk.create("ticket", values, when)


def run_worker(engine: sa.Engine, now: dt.datetime) -> list[str]:
    """Run every job due at `now`, including the timers that fired ones queue next (a
    clock holds one timer job at a time); the kinds of those that ran."""
    worker = Worker(engine, "w", clock=Clock(utc(now)), batch=50)
    return [outcome.job.kind for outcome in worker.drain() if outcome.status == "done"]


# --------------------------------------------------------------------------- golden cases


def test_friday_evening_ticket_is_due_on_monday(engine: sa.Engine) -> None:
    desk = Harness(engine, shipped_app("service_desk"))
    record = ticket(desk, cn(2026, 3, 13, 17, 30))  # a Friday, 30 minutes before closing
    response, resolution = desk.clock(record, "response", "ticket"), desk.clock(
        record, "resolution", "ticket")
    assert response["target"] == "p3" and response["goal_seconds"] == 4 * 3600
    assert response["due_at"] == utc(cn(2026, 3, 16, 13, 30))  # 0.5h Fri + 09-12 + 13-13:30
    assert resolution["due_at"] == utc(cn(2026, 3, 26, 17, 30))  # 72 working hours
    queued = [j for j in desk.jobs() if j.payload["metric"] == "response"]
    assert [j.payload["at"] for j in queued] == [50]  # one timer at a time: the next one
    assert run_worker(desk.engine, cn(2026, 3, 16, 13, 30)).count("sla.breach") == 1
    breach = [j for j in desk.jobs("sla.breach") if j.payload["metric"] == "response"]
    assert [utc(j.run_at.replace(tzinfo=j.run_at.tzinfo or dt.UTC)) for j in breach] == [
        utc(cn(2026, 3, 16, 13, 30))]


def test_a_pause_spanning_a_weekend_costs_no_time(engine: sa.Engine) -> None:
    desk = Harness(engine, shipped_app("service_desk"))
    record = ticket(desk, cn(2026, 3, 12, 10), "p2")  # Thursday; resolution goal 16h
    record = desk.move("ticket", record, "in_progress", "accept", cn(2026, 3, 12, 10, 30))
    response = desk.clock(record, "response", "ticket")
    assert response["stopped_at"] == utc(cn(2026, 3, 12, 10, 30)) and response["attained"]
    record = desk.move("ticket", record, "pending_customer", "resolve", cn(2026, 3, 13, 16))
    paused = desk.clock(record, "resolution", "ticket")
    assert paused["paused_at"] == utc(cn(2026, 3, 13, 16)) and paused["due_at"] is None
    assert paused["elapsed_seconds"] == 13 * 3600  # Thu 7h + Fri 6h
    record = desk.move("ticket", record, "reopened", "reject_resolution", cn(2026, 3, 16, 10))
    resumed = desk.clock(record, "resolution", "ticket")
    assert resumed["elapsed_seconds"] == 13 * 3600 and resumed["paused_at"] is None
    assert resumed["due_at"] == utc(cn(2026, 3, 16, 14))  # 3h left: 10-12, 13-14
    with engine.connect() as connection:
        status = {s.metric: s for s in clock_status(connection, desk.app, "ticket",
                                                    record["id"], now=cn(2026, 3, 16, 11))}
    assert status["resolution"].elapsed == 14 * H and status["resolution"].remaining == 2 * H
    assert status["response"].stopped and status["response"].attained is True


def test_holiday_evening_and_make_up_working_day(engine: sa.Engine) -> None:
    desk = Harness(engine, shipped_app("service_desk"))
    holiday = ticket(desk, cn(2026, 10, 5, 20), "p2")  # National Day week, evening
    assert desk.clock(holiday, "response", "ticket")["due_at"] == utc(cn(2026, 10, 8, 10))
    friday = ticket(desk, cn(2026, 10, 9, 17, 30), "p2")  # Saturday 10-10 is a make-up workday
    assert desk.clock(friday, "response", "ticket")["due_at"] == utc(cn(2026, 10, 10, 9, 30))
    assert desk.clock(friday, "resolution", "ticket")["due_at"] == utc(cn(2026, 10, 12, 17, 30))


def test_dst_in_new_york(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    issue = lab.create("issue", {"title": "printer"}, at(2026, 3, 6, 16))  # Friday, EST
    assert lab.clock(issue, "response")["due_at"] == utc(at(2026, 3, 9, 12))  # Monday, EDT
    assert utc(at(2026, 3, 9, 12)).hour == 16
    quiet = lab.create("issue", {"title": "server"}, at(2026, 3, 7, 10))
    with pytest.raises(AssertionError, match="no restore clock"):
        lab.clock(quiet, "restore")  # starts only when the priority is high
    quiet = lab.update("issue", quiet, {"priority": "high"}, at(2026, 3, 7, 12))
    restore = lab.clock(quiet, "restore")
    assert restore["started_at"] == utc(at(2026, 3, 7, 12))
    assert restore["due_at"] == utc(at(2026, 3, 8, 13))  # 24 real hours: the night lost one


# --------------------------------------------------------------------------- timers


def test_warnings_and_breach_fire_at_their_instants(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[tuple] = []
    monkeypatch.setattr(sla_module, "run_actions", lambda connection, app, entity, record_id,
                        actions: called.append((entity, record_id, [a.set for a in actions])))
    lab = Harness(engine, lab_app())
    issue = lab.create("issue", {"title": "printer"}, at(2026, 3, 2, 9))  # Monday
    assert run_worker(engine, at(2026, 3, 2, 10, 59)) == []
    assert run_worker(engine, at(2026, 3, 2, 11)) == ["sla.warning"]  # 50% of 4h
    assert lab.clock(issue, "response")["status"] == "amber" and called == []
    assert run_worker(engine, at(2026, 3, 2, 12, 12)) == ["sla.warning"]  # 80%
    assert called == [("issue", issue["id"], [{"answered": False}])]
    assert run_worker(engine, at(2026, 3, 2, 13)) == ["sla.breach"]
    response = lab.clock(issue, "response")
    assert response["status"] == "red" and response["breached"]
    assert response["breached_at"] == utc(at(2026, 3, 2, 13))
    assert len(called) == 1  # the breach escalation is for resolution only
    actions = [e.action for e in lab.timeline("issue", issue)]
    assert actions == ["create", "sla_warning", "sla_warning", "sla_breach"]
    # resolution (16h): 50% at Monday 17:00, 80% Tuesday 13:48, breach Tuesday 17:00
    assert run_worker(engine, at(2026, 3, 3, 17)) == ["sla.warning", "sla.warning", "sla.breach"]
    assert called[-1] == ("issue", issue["id"], [{"priority": "high"}])
    with engine.connect() as connection:
        statuses = clock_status(connection, lab.app, "issue", issue["id"], now=at(2026, 3, 4, 9))
    fields = sla_fields(statuses)
    assert fields["sla_status"] == "red" and fields["sla_breached"]
    assert run_worker(engine, at(2026, 3, 9, 9)) == []  # each timer fires once


def test_the_default_escalation_is_written_on_the_timeline(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    issue = lab.create("issue", {"title": "printer"}, at(2026, 3, 2, 9))
    run_worker(engine, at(2026, 3, 2, 12, 12))
    escalations = [e for e in lab.timeline("issue", issue) if e.action == "sla_escalation"]
    assert len(escalations) == 1 and escalations[0].changes["actions"]["new"] == ["set"]


def test_jobs_of_a_paused_run_are_stale(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    issue = lab.create("issue", {"title": "printer"}, at(2026, 3, 2, 9))
    issue = lab.move("issue", issue, "waiting", "wait", at(2026, 3, 2, 10))
    assert lab.clock(issue, "response")["paused_at"] == utc(at(2026, 3, 2, 10))
    ran = run_worker(engine, at(2026, 3, 2, 13))  # the first run's 50% timer, now stale
    assert ran == ["sla.warning"]  # ignored, so it queues no 80% or breach timer after it
    response = lab.clock(issue, "response")
    assert response["status"] == "green" and not response["breached"]
    assert [e.action for e in lab.timeline("issue", issue)] == ["create", "transition"]
    issue = lab.move("issue", issue, "open", "back", at(2026, 3, 3, 9))  # 3h left
    assert lab.clock(issue, "response")["due_at"] == utc(at(2026, 3, 3, 12))
    assert "sla.breach" in run_worker(engine, at(2026, 3, 3, 12))
    assert lab.clock(issue, "response")["breached"]


def test_raising_the_priority_retargets_and_keeps_the_elapsed_time(engine: sa.Engine) -> None:
    desk = Harness(engine, shipped_app("service_desk"))
    record = ticket(desk, cn(2026, 3, 16, 9), "p4")  # standard: response 8h
    assert desk.clock(record, "response", "ticket")["due_at"] == utc(cn(2026, 3, 16, 18))
    record = desk.update("ticket", record, {"priority": "p2"}, cn(2026, 3, 16, 9, 30))
    response = desk.clock(record, "response", "ticket")
    assert (response["target"], response["goal_seconds"]) == ("p2", 3600)
    assert response["elapsed_seconds"] == 1800
    assert response["due_at"] == utc(cn(2026, 3, 16, 10))
    assert run_worker(desk.engine, cn(2026, 3, 16, 10)).count("sla.breach") == 1
    assert desk.clock(record, "response", "ticket")["breached"]
    run_worker(desk.engine, cn(2026, 3, 16, 18))  # the p4 run's jobs: all stale
    breaches = [e for e in desk.timeline("ticket", record) if e.action == "sla_breach"]
    assert len(breaches) == 1


def test_stop_and_reset(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    issue = lab.create("issue", {"title": "printer"}, at(2026, 3, 2, 9))
    issue = lab.update("issue", issue, {"answered": True}, at(2026, 3, 2, 10))
    response = lab.clock(issue, "response")
    assert response["stopped_at"] == utc(at(2026, 3, 2, 10)) and response["attained"] is True
    assert response["elapsed_seconds"] == 3600
    issue = lab.move("issue", issue, "done", "close", at(2026, 3, 4, 10))  # 17h of 16h
    resolution = lab.clock(issue, "resolution")
    assert resolution["attained"] is False and resolution["elapsed_seconds"] == 17 * 3600
    issue = lab.move("issue", issue, "open", "reopen", at(2026, 3, 5, 9))
    reset = lab.clock(issue, "resolution")
    assert reset["stopped_at"] is None and reset["elapsed_seconds"] == 0
    assert reset["started_at"] == utc(at(2026, 3, 5, 9)) and reset["attained"] is None
    assert reset["due_at"] == utc(at(2026, 3, 6, 17))
    assert lab.clock(issue, "response")["stopped_at"] == utc(at(2026, 3, 2, 10))  # stays


def test_repeated_saves_enqueue_each_timer_once(engine: sa.Engine) -> None:
    lab = Harness(engine, lab_app())
    issue = lab.create("issue", {"title": "printer"}, at(2026, 3, 2, 9))
    count = len(lab.jobs())
    issue = lab.update("issue", issue, {"title": "printer jam"}, at(2026, 3, 2, 9, 30))
    assert len(lab.jobs()) == count == 2  # 2 metrics x their next timer (50%)
