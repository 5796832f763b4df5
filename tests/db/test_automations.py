"""Automation rules at run time, on SQLite and PostgreSQL: the shipped service desk
routing, loop protection (depth, max_runs, cooldown), a 6-level nested rule, a
failing rule that keeps the user's write, the run log and the timeline, and cron and
relative triggers run by the worker with a fake clock."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
import sqlalchemy as sa
from test_records_support import add_department, add_user, shipped_app, store_for

from flowdesk.engine import _automation_schedule
from flowdesk.engine.automations import automations_for
from flowdesk.engine.workflow import WorkflowEngine
from flowdesk.jobs.schedule import schedule_cron_jobs
from flowdesk.jobs.worker import Worker
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_texts
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor

APP = """\
apiVersion: flowdesk/v1
kind: App
name: auto
version: 1.0.0
title: Automation lab
timezone: UTC
"""
ITEM = """\
apiVersion: flowdesk/v1
kind: Entity
name: item
fields:
  title: {type: string}
  a: {type: integer, default: 0}
  b: {type: integer, default: 0}
  level: {type: integer, default: 0}
  path: {type: string}
  hits: {type: integer, default: 0}
  flag: {type: boolean, default: false}
  due: {type: datetime}
"""
RULES = """\
apiVersion: flowdesk/v1
kind: Automation
name: ping
entity: item
trigger: {event: updated, fields: [a]}
do: [{set: {b: "= record.b + 1"}}]
limits: {max_depth: 3, max_runs: 100}
---
apiVersion: flowdesk/v1
kind: Automation
name: pong
entity: item
trigger: {event: updated, fields: [b]}
do: [{set: {a: "= record.a + 1"}}]
limits: {max_depth: 3, max_runs: 100}
---
apiVersion: flowdesk/v1
kind: Automation
name: nested
entity: item
trigger: {event: created}
when: record.title == "nest"
do:
  - if: record.level >= 1
    then:
      - if: record.level >= 2
        then:
          - if: record.level >= 3
            then:
              - if: record.level >= 4
                then:
                  - if: record.level >= 5
                    then:
                      - if: record.level >= 6
                        then: [{set: {path: deepest}}]
                        else: [{set: {path: five}}]
---
apiVersion: flowdesk/v1
kind: Automation
name: counted
entity: item
trigger: {event: updated, fields: [title]}
do: [{set: {hits: "= record.hits + 1"}}]
limits: {max_runs: 2, window: 1h, cooldown: 10m}
---
apiVersion: flowdesk/v1
kind: Automation
name: boom
entity: item
trigger: {event: created}
when: record.title == "boom"
do: [{set: {a: "= int(record.title)"}}]
---
apiVersion: flowdesk/v1
kind: Automation
name: sweep
entity: item
trigger: {cron: "0 3 * * *"}
when: record.flag == true
do: [{set: {path: swept}}]
---
apiVersion: flowdesk/v1
kind: Automation
name: due_soon
entity: item
trigger: {relative: {field: due, before: 1h}}
do: [{set: {path: reminded}}]
---
apiVersion: flowdesk/v1
kind: Automation
name: opened
entity: item
trigger: {event: state_entered, state: open}
do: [{set: {path: opened}}]
---
apiVersion: flowdesk/v1
kind: Automation
name: left_new
entity: item
trigger: {event: state_left, state: new}
when: record.title == "flow"
do: [{transition: close}]
"""
FLOW = """\
apiVersion: flowdesk/v1
kind: Workflow
name: item_flow
entity: item
initial: new
states:
  new: {}
  open: {}
  done: {category: done}
transitions:
  open: {from: new, to: open}
  close: {from: open, to: done}
"""
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@cache
def lab() -> AppModel:
    result = compile_texts({"app.yaml": APP, "entities/item.yaml": ITEM,
                            "automations/rules.yaml": RULES,
                            "workflows/item_flow.yaml": FLOW})
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def setup(engine: sa.Engine, app: AppModel | None = None) -> tuple[WorkflowEngine, Clock]:
    clock = Clock()
    app = app or lab()
    flow = WorkflowEngine(store_for(engine, app), observers=[automations_for(app)], clock=clock)
    return flow, clock


def runs(engine: sa.Engine, **where: object) -> list[sa.Row]:
    runs = pt.automation_runs
    statement = sa.select(runs).order_by(runs.c.id)
    for name, value in where.items():
        statement = statement.where(runs.c[name] == value)
    with engine.connect() as connection:
        return list(connection.execute(statement))


def automation_rows(flow: WorkflowEngine, entity: str, record_id: int) -> list[tuple]:
    return [(e.changes["rule"]["new"], e.changes["outcome"]["new"])
            for e in flow.store.timeline(entity, record_id) if e.action == "automation"]


ALICE = Actor(None, "alice")


# --------------------------------------------------------------------------- events


def test_shipped_routing_raises_a_vip_device_fault_and_sends_it_to_hardware(
    engine: sa.Engine,
) -> None:
    app = shipped_app("service_desk")
    flow, _ = setup(engine, app)
    hardware = add_department(engine, "hardware_support")
    add_user(engine, "hank", department_id=hardware, skills=["network"])
    fixer = add_user(engine, "fiona", department_id=hardware, skills=["hardware"])
    manager = add_user(engine, "manny")
    agent = Actor(add_user(engine, "agnes"), "agnes", roles=("agent",))
    vip = flow.store.create("customer", {"name": "Big Co", "code": "C000001", "level": "vip",
                                         "region": "north", "account_manager": manager},
                            actor=agent)
    ticket = flow.create("ticket", {
        "title": "Laptop device fault", "customer": vip["id"], "priority": "p3",
        "description": "The screen flickers and then goes black after a minute.",
    }, actor=agent)
    assert (ticket["category"], ticket["priority"], ticket["assignee"]) == (
        "hardware", "p2", fixer)
    stored = flow.store.get("ticket", ticket["id"])
    assert stored["row_version"] == ticket["row_version"]  # the caller got the final record
    # keyword_triage stopped processing: vip_routing (order 20) did not run.
    assert automation_rows(flow, "ticket", ticket["id"]) == [("keyword_triage", "stopped")]
    (run,) = runs(engine, record_id=ticket["id"], entity="ticket")
    assert run.rule == "keyword_triage" and run.depth == 1 and run.outcome == "stopped"
    assert [c["holds"] for c in run.conditions] == [True, True]
    assert [a.rsplit("/", 1)[1] for a in run.actions] == [
        "set", "set", "assign", "comment", "stop"]
    assert run.duration_ms >= 0

    plain = flow.store.create("customer", {"name": "Small Co", "code": "C000002",
                                           "region": "north"}, actor=agent)
    other = flow.create("ticket", {"title": "Refund for invoice 7", "customer": plain["id"]},
                        actor=agent)
    assert other["category"] == "billing" and other["priority"] == "p3"
    assert [r for r, _ in automation_rows(flow, "ticket", other["id"])] == [
        "keyword_triage", "vip_routing"]


def test_two_rules_updating_each_other_stop_at_max_depth_and_keep_the_users_write(
    engine: sa.Engine,
) -> None:
    flow, _ = setup(engine)
    item = flow.create("item", {"title": "x"}, actor=ALICE)
    after = flow.update("item", item["id"], {"a": 1}, expected_version=item["row_version"],
                        actor=ALICE)
    # user a=1 -> ping (1) b=1 -> pong (2) a=2 -> ping (3) b=2 -> pong refused at depth 4
    assert (after["a"], after["b"]) == (2, 2)
    assert flow.store.get("item", item["id"])["row_version"] == after["row_version"]
    log = sorted((r.depth, r.rule, r.outcome) for r in runs(engine, record_id=item["id"]))
    assert [(rule, depth, outcome) for depth, rule, outcome in log] == [
        ("ping", 1, "done"), ("pong", 2, "done"), ("ping", 3, "done"), ("pong", 4, "depth")]
    timeline = flow.store.timeline("item", item["id"])
    user_write = next(e for e in timeline if e.action == "update")
    assert user_write.actor == "alice" and user_write.changes["a"] == {"old": 0, "new": 1}
    refusal = next(e for e in timeline if e.action == "automation")  # the innermost ends first
    assert refusal.changes["outcome"]["new"] == "depth" and "max_depth 3" in refusal.comment
    # The next edit starts a new chain from depth 0 on the version the caller holds.
    again = flow.update("item", item["id"], {"title": "y"},
                        expected_version=after["row_version"], actor=ALICE)
    assert again["title"] == "y"


def test_a_rule_nested_six_levels_takes_the_right_branch(engine: sa.Engine) -> None:
    assert any(d.code == "deep-nesting" for d in compile_texts(
        {"app.yaml": APP, "entities/item.yaml": ITEM, "automations/rules.yaml": RULES}
    ).diagnostics)
    flow, _ = setup(engine)
    deepest = flow.create("item", {"title": "nest", "level": 6}, actor=ALICE)
    five = flow.create("item", {"title": "nest", "level": 5}, actor=ALICE)
    shallow = flow.create("item", {"title": "nest", "level": 2}, actor=ALICE)
    other = flow.create("item", {"title": "other", "level": 6}, actor=ALICE)
    assert [deepest["path"], five["path"], shallow["path"], other["path"]] == [
        "deepest", "five", None, None]
    (run,) = runs(engine, rule="nested", record_id=deepest["id"])
    assert len(run.conditions) == 7  # `when` and six `if`s
    assert run.actions == ["/do/0" + "/then/0" * 5 + "/then/0/set"]
    (run,) = runs(engine, rule="nested", record_id=shallow["id"])
    assert [c["holds"] for c in run.conditions] == [True, True, True, False]
    assert run.actions == [] and run.outcome == "done"
    assert runs(engine, rule="nested", record_id=other["id"]) == []  # `when` false: no row


def test_cooldown_and_max_runs_per_record_within_the_window(engine: sa.Engine) -> None:
    flow, clock = setup(engine)
    item = flow.create("item", {"title": "new"}, actor=ALICE)

    def retitle(minutes: int) -> dict:
        nonlocal item
        clock.now = T0 + dt.timedelta(minutes=minutes)
        item = flow.update("item", item["id"], {"title": f"t{minutes}"},
                           expected_version=item["row_version"], actor=ALICE)
        return item

    assert retitle(0)["hits"] == 1
    assert retitle(1)["hits"] == 1  # within the 10m cooldown
    assert retitle(11)["hits"] == 2
    assert retitle(22)["hits"] == 2  # 2 runs within 1h: max_runs
    assert retitle(72)["hits"] == 3  # both earlier runs left the window
    outcomes = [r.outcome for r in runs(engine, rule="counted", record_id=item["id"])]
    assert outcomes == ["done", "cooldown", "done", "max-runs", "done"]
    # Cooldowns stay off the timeline; the max-runs refusal is on it.
    assert [o for r, o in automation_rows(flow, "item", item["id"]) if r == "counted"] == [
        "done", "done", "max-runs", "done"]


def test_a_failing_rule_is_rolled_back_and_logged_and_the_record_is_kept(
    engine: sa.Engine,
) -> None:
    flow, _ = setup(engine)
    item = flow.create("item", {"title": "boom"}, actor=ALICE)
    assert flow.store.get("item", item["id"])["title"] == "boom"
    (run,) = runs(engine, rule="boom")
    assert run.outcome == "failed" and "/do/0/set/a" in run.error
    assert automation_rows(flow, "item", item["id"]) == [("boom", "failed")]


def test_state_rules_run_on_transitions_and_the_caller_gets_the_final_record(
    engine: sa.Engine,
) -> None:
    flow, _ = setup(engine)
    item = flow.create("item", {"title": "plain"}, actor=ALICE)
    assert item["state"] == "new"
    moved = flow.transition("item", item["id"], "open", actor=ALICE,
                            expected_version=item["row_version"])
    assert (moved["state"], moved["path"]) == ("open", "opened")
    assert flow.store.get("item", item["id"])["row_version"] == moved["row_version"]
    # A rule on leaving `new` takes another transition (one level deeper); entering
    # `open` was still the user's doing, so its rule runs at depth 1, after it.
    other = flow.create("item", {"title": "flow"}, actor=ALICE)
    done = flow.transition("item", other["id"], "open", actor=ALICE,
                           expected_version=other["row_version"])
    assert done["state"] == "done"
    log = sorted((r.depth, r.rule, r.outcome) for r in runs(engine, record_id=other["id"]))
    assert log == [(1, "left_new", "done"), (1, "opened", "done")]
    assert flow.store.get("item", other["id"])["path"] == "opened"


# --------------------------------------------------------------------------- schedules


def test_a_cron_rule_runs_on_matching_records_page_by_page_through_the_worker(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_automation_schedule, "PAGE", 2)
    flow, clock = setup(engine)
    flagged = [flow.create("item", {"title": f"f{i}", "flag": True}, actor=ALICE)["id"]
               for i in range(3)]
    plain = flow.create("item", {"title": "p"}, actor=ALICE)["id"]
    with engine.begin() as connection:
        (scheduled,) = schedule_cron_jobs(connection, lab(), T0)
    assert scheduled.rule == "sweep" and scheduled.run_at == dt.datetime(
        2026, 3, 3, 3, 0, tzinfo=dt.UTC)
    clock.now = scheduled.run_at + dt.timedelta(seconds=5)
    outcomes = Worker(engine, "w", clock=clock).drain()
    kinds = [(o.job.kind, o.status) for o in outcomes]
    assert kinds == [("cron", "done"), ("automation_run", "done"), ("automation_run", "done")]
    paths = {i: flow.store.get("item", i)["path"] for i in [*flagged, plain]}
    assert paths == {**dict.fromkeys(flagged, "swept"), plain: None}
    log = runs(engine, rule="sweep")
    assert sorted(r.record_id for r in log) == flagged
    assert {(r.trigger, r.trigger_key, r.outcome) for r in log} == {
        ("cron", "2026-03-03T03:00:00+00:00", "done")}


def test_a_relative_rule_runs_once_per_value_of_its_date(engine: sa.Engine) -> None:
    flow, clock = setup(engine)
    soon = flow.create("item", {"title": "soon", "due": T0 + dt.timedelta(minutes=30)},
                       actor=ALICE)
    later = flow.create("item", {"title": "later", "due": T0 + dt.timedelta(hours=3)},
                        actor=ALICE)
    old = flow.create("item", {"title": "old", "due": T0 - dt.timedelta(days=3)},
                      actor=ALICE)

    def scan(at: dt.datetime) -> None:
        clock.now = at
        with engine.begin() as connection:
            _automation_schedule.schedule_relative_scans(connection, lab(), at)
        Worker(engine, "w", clock=clock).drain()

    scan(T0)
    scan(T0 + dt.timedelta(minutes=5))  # next slot: nothing new
    paths = [flow.store.get("item", r["id"])["path"] for r in (soon, later, old)]
    assert paths == ["reminded", None, None]
    assert [r.record_id for r in runs(engine, rule="due_soon")] == [soon["id"]]
    scan(T0 + dt.timedelta(hours=2, minutes=1))
    assert flow.store.get("item", later["id"])["path"] == "reminded"
    assert len(runs(engine, rule="due_soon")) == 2
