"""SLA plans without a database: target choice, pause and stop states, conditions."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from flowdesk.engine._sla_plan import SlaPlan, paused_states, record_view
from flowdesk.engine.sla import SlaClocks
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import read_app

ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 3, 16, 9, tzinfo=dt.UTC)


@cache
def desk() -> AppModel:
    result = compile_source(read_app(ROOT / "apps" / "service_desk"))
    assert result.app is not None
    return result.app


def ticket_sla() -> SlaPlan:
    plan = SlaClocks(desk()).plan("ticket_sla")
    assert plan is not None
    return plan


def target(**record: object) -> str | None:
    found = ticket_sla().target_for({"state": "new", **record}, NOW)
    return None if found is None else found.name


def test_the_first_matching_target_applies() -> None:
    assert target(is_vip=True, priority="p1") == "vip_p1"
    assert target(is_vip=True, priority="p3") == "vip_other"
    assert target(is_vip=False, priority="p2") == "p2"
    assert target(is_vip=False, priority="p4") == "standard"


def test_a_condition_that_cannot_be_evaluated_does_not_match() -> None:
    assert target(priority="p1") == "p1"  # is_vip missing: the VIP targets do not apply


def test_goals_are_seconds_of_working_time() -> None:
    goals = {t.name: dict(t.goals) for t in ticket_sla().targets}
    assert goals["vip_p1"] == {"response": 900, "resolution": 4 * 3600}
    assert goals["p3"]["resolution"] == 72 * 3600  # `3d` is 72 working hours


def test_pause_and_stop_states() -> None:
    metrics = ticket_sla().metrics
    assert metrics["resolution"].pauses("pending_customer")
    assert not metrics["resolution"].pauses("in_progress")
    assert metrics["response"].stops({"state": "in_progress"}, NOW)
    assert metrics["response"].stops({"state": "new", "first_responded_at": NOW}, NOW)
    assert not metrics["response"].stops({"state": "new", "first_responded_at": None}, NOW)
    assert metrics["resolution"].reset_on == {"reopen"}


def test_waiting_states_pause_when_a_metric_names_none() -> None:
    workflow = desk().workflows["ticket_lifecycle"]
    assert paused_states(workflow) == {"pending_customer"}
    assert paused_states(None) == frozenset()


def test_the_24x7_sla_has_its_own_calendar_and_start_condition() -> None:
    plan = SlaClocks(desk()).plan("vip_major_incident_sla")
    assert plan is not None and plan.calendar.always_working
    restore = plan.metrics["restore"]
    assert restore.starts({"is_vip": True, "priority": "p1"}, NOW)
    assert not restore.starts({"is_vip": True, "priority": "p2"}, NOW)


def test_references_are_seen_as_objects() -> None:
    entity = desk().entities["ticket"]
    view = record_view(entity, {"customer": 7, "team": None, "assignee": 3, "title": "x"})
    assert view["customer"] == {"id": 7} and view["team"] is None
    assert view["assignee"] == {"id": 3} and view["title"] == "x"
