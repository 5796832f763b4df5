"""The workflow engine on SQLite and PostgreSQL: gateways, parallel branches and their
join, sub-processes, timers run by the worker, version pinning, refusals with codes,
and approvals in every mode (including concurrent decisions)."""

from __future__ import annotations

import datetime as dt
import threading
from functools import cache

import pytest
import sqlalchemy as sa
from test_records_support import add_user, store_for

from flowdesk.engine.workflow import WorkflowEngine, WorkflowError
from flowdesk.jobs.worker import Worker
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_texts
from flowdesk.store import platform_tables as pt
from flowdesk.store.errors import Conflict
from flowdesk.store.records import Actor

APP = """\
apiVersion: flowdesk/v1
kind: App
name: wf
version: {version}
title: Workflow lab
"""
POLICY = """\
apiVersion: flowdesk/v1
kind: Policy
name: roles
roles:
  staff: {}
  boss: {}
  fin: {}
"""
REQ = """\
apiVersion: flowdesk/v1
kind: Entity
name: req
fields:
  title: {type: string}
  amount: {type: integer, default: 0}
  route: {type: string}
  requester: {type: user, default: current_user}
  hits: {type: integer, default: 0}
"""
TASK = """\
apiVersion: flowdesk/v1
kind: Entity
name: task
fields:
  parent: {type: reference, to: req}
"""
TASK_FLOW = """\
apiVersion: flowdesk/v1
kind: Workflow
name: task_flow
entity: task
initial: open
states:
  open: {}
  done: {category: done}
transitions:
  finish: {from: open, to: done}
"""
REQ_FLOW = """\
apiVersion: flowdesk/v1
kind: Workflow
name: req_flow
entity: req
initial: draft
states:
  draft: {}
  route:
    type: gateway
    branches:
      - {when: 'record.route == "par"', to: split}
      - {when: 'record.route == "sub"', to: child}
      - {when: 'record.route == "wait"', to: waiting}
    default: review
  review:
    type: approval
    levels:
      - {name: l1, when: record.amount >= 100, approvers: [{role: boss}], mode: {mode1}{extra1}}
      - {name: l2, when: record.amount >= 1000, approvers: [{role: fin}], mode: all}
    approved: approved
    rejected: rejected
    returned: draft
  split: {type: parallel, branches: [a1, b1], join: joined}
  a1: {on_enter: [{set: {hits: "= record.hits + 1"}}]}
  b1: {}
  joined: {}
  child:
    {type: subprocess, workflow: task_flow, entity: task, values: {parent: "= record"},
     done: finished, result: {title: "= 'handled by task ' + string(child.id)"}}
  waiting: {on_enter: [{comment: waiting starts}]}
  approved: {}
  rejected: {category: done}
  finished: {category: done}
transitions:
  submit: {from: draft, to: route, roles: [staff], requires: [title], primary: true}
  a_done: {from: a1, to: joined}
  b_done: {from: b1, to: joined}
  close: {from: [joined, approved], to: finished, roles: [boss], comment: required}
  guarded: {from: draft, to: finished, when: record.amount > 5}
  expire: {from: waiting, to: finished, after: 1h}
"""
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@cache
def lab(version: str = "1.0.0", mode1: str = "any", extra1: str = "") -> AppModel:
    texts = {
        "app.yaml": APP.format(version=version),
        "policies/roles.yaml": POLICY,
        "entities/req.yaml": REQ,
        "entities/task.yaml": TASK,
        "workflows/task_flow.yaml": TASK_FLOW,
        "workflows/req_flow.yaml": REQ_FLOW.replace("{mode1}", mode1).replace("{extra1}", extra1),
    }
    result = compile_texts(texts)
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def people(engine: sa.Engine, *specs: tuple[str, str]) -> dict[str, Actor]:
    found = {}
    for name, role in specs:
        uid = add_user(engine, name)
        with engine.begin() as conn:
            conn.execute(pt.user_roles.insert().values(user_id=uid, app="wf", role=role))
        found[name] = Actor(uid, name, roles=(role,))
    return found


def setup(engine: sa.Engine, app: AppModel | None = None) -> tuple[WorkflowEngine, dict, Clock]:
    clock = Clock()
    flow = WorkflowEngine(store_for(engine, app or lab()), clock=clock,
                          versions=lambda v: lab(v))
    users = people(engine, ("sam", "staff"), ("bea", "boss"), ("bob", "boss"),
                   ("fay", "fin"), ("fin2", "fin"))
    return flow, users, clock


def submit(flow: WorkflowEngine, users: dict, **values: object) -> dict:
    record = flow.create("req", {"title": "t", **values}, actor=users["sam"])
    return flow.transition("req", record["id"], "submit", actor=users["sam"],
                           expected_version=record["row_version"])


def test_gateway_default_and_refusals_with_codes(engine: sa.Engine) -> None:
    flow, users, _ = setup(engine)
    record = flow.create("req", {"amount": 1}, actor=users["sam"])
    assert record["state"] == "draft"
    names = [t.name for t in flow.available_transitions("req", record, users["sam"])]
    assert names == ["submit"]  # guarded: amount 1 fails the guard; timers never offered
    cases = [
        ("close", users["bea"], "not-available"),
        ("expire", users["sam"], "not-available"),
        ("submit", users["bea"], "role-not-allowed"),
        ("submit", users["sam"], "field-required"),
        ("guarded", users["sam"], "guard-false"),
    ]
    for name, who, code in cases:
        with pytest.raises(WorkflowError) as caught:
            flow.transition("req", record["id"], name, actor=who,
                            expected_version=record["row_version"])
        assert caught.value.code == code, name
    with pytest.raises(Conflict):
        flow.transition("req", record["id"], "submit", actor=users["sam"], expected_version=99)
    moved = flow.transition("req", record["id"], "submit", actor=users["sam"],
                            expected_version=record["row_version"], values={"title": "x"})
    assert moved["state"] == "approved"  # gateway default -> approval with no level applying
    timeline = flow.store.timeline("req", record["id"])
    steps = [e.changes["transition"]["new"] for e in timeline if e.action == "transition"]
    assert steps == ["submit", "route.default", "review.approved"]
    with pytest.raises(WorkflowError) as caught:
        flow.transition("req", record["id"], "close", actor=users["bea"],
                        expected_version=moved["row_version"])
    assert caught.value.code == "comment-required"


def test_parallel_branches_join_when_all_arrive(engine: sa.Engine) -> None:
    flow, users, _ = setup(engine)
    record = submit(flow, users, route="par")
    assert record["state"] == "split" and record["hits"] == 1
    names = {t.name for t in flow.available_transitions("req", record, users["sam"])}
    assert names == {"a_done", "b_done"}
    record = flow.transition("req", record["id"], "a_done", actor=users["sam"],
                             expected_version=record["row_version"])
    assert record["state"] == "split"
    assert {t.name for t in flow.available_transitions("req", record, users["sam"])} == {"b_done"}
    record = flow.transition("req", record["id"], "b_done", actor=users["sam"],
                             expected_version=record["row_version"])
    assert record["state"] == "joined"


def test_subprocess_parent_waits_for_the_child(engine: sa.Engine) -> None:
    flow, users, _ = setup(engine)
    record = submit(flow, users, route="sub")
    assert record["state"] == "child"
    child = flow.store.list("task", filter=f"record.parent.id == {record['id']}").items
    (task,) = [c for c in child]
    assert task["state"] == "open"
    flow.transition("task", task["id"], "finish", actor=users["sam"],
                    expected_version=task["row_version"])
    parent = flow.store.get("req", record["id"])
    assert parent["state"] == "finished"
    assert parent["title"] == f"handled by task {task['id']}"  # the child's result handed back


def test_timer_job_takes_the_transition_once(engine: sa.Engine) -> None:
    flow, users, clock = setup(engine)
    record = submit(flow, users, route="wait")
    assert record["state"] == "waiting"
    record = flow.update("req", record["id"], {"amount": 3}, expected_version=record["row_version"],
                         actor=users["sam"])  # an edit keeps the timer
    worker = Worker(engine, "w", clock=lambda: clock.now)
    assert worker.run_once() == []  # not due yet
    clock.now = T0 + dt.timedelta(hours=1, seconds=1)
    outcomes = worker.drain()
    assert {o.status for o in outcomes} == {"done"}
    assert flow.store.get("req", record["id"])["state"] == "finished"
    moves = [e for e in flow.store.timeline("req", record["id"]) if e.action == "transition"]
    assert moves[-1].changes["transition"]["new"] == "expire"
    assert len([m for m in moves if m.changes["transition"]["new"] == "expire"]) == 1


def test_pinned_version_runs_on_its_own_model(engine: sa.Engine) -> None:
    flow, users, _ = setup(engine)
    record = flow.create("req", {"title": "old"}, actor=users["sam"])
    with engine.begin() as conn:  # the record started on 0.9.0, whose submit needs no title
        table = flow.store.tables["req"].main
        conn.execute(table.update().values(workflow_version="0.9.0", title=None))
    old = REQ_FLOW.replace("requires: [title], ", "")
    texts = {"app.yaml": APP.format(version="0.9.0"), "policies/roles.yaml": POLICY,
             "entities/req.yaml": REQ, "entities/task.yaml": TASK,
             "workflows/task_flow.yaml": TASK_FLOW,
             "workflows/req_flow.yaml": old.replace("{mode1}", "any").replace("{extra1}", "")}
    pinned = compile_texts(texts).app
    flow2 = WorkflowEngine(flow.store, versions=lambda v: pinned)  # type: ignore[arg-type,return-value]
    moved = flow2.transition("req", record["id"], "submit", actor=users["sam"],
                             expected_version=record["row_version"] + 0)
    assert moved["state"] == "approved" and moved["workflow_version"] == "0.9.0"


@pytest.mark.parametrize(
    ("mode", "extra", "deciders", "expected"),
    [
        ("any", "", ["bea"], "approved"),
        ("all", "", ["bea", "bob"], "approved"),
        ("n_of_m", ", n: 2", ["bea", "bob"], "approved"),
        ("percent", ", percent: 50", ["bea"], "approved"),
    ],
)
def test_approval_modes(engine: sa.Engine, mode: str, extra: str, deciders: list,
                        expected: str) -> None:
    flow, users, _ = setup(engine, lab("1.0.0", mode, extra))
    record = submit(flow, users, amount=100)
    assert record["state"] == "review"
    for name in deciders[:-1]:
        (task,) = flow.approvals.pending_for(users[name].id)
        flow.approvals.decide(task.id, "approve", actor=users[name])
        assert flow.store.get("req", record["id"])["state"] == "review"
    (task,) = flow.approvals.pending_for(users[deciders[-1]].id)
    after = flow.approvals.decide(task.id, "approve", actor=users[deciders[-1]])
    assert after["state"] == expected
    assert all(t.status != "pending" for t in flow.approvals.tasks_of("req", record["id"]))
    decisions = [e for e in flow.store.timeline("req", record["id"]) if e.action == "approval"
                 and "decision" in e.changes]
    assert len(decisions) == len(deciders)


def test_countersign_rejected_midway_and_comment_policy(engine: sa.Engine) -> None:
    flow, users, _ = setup(engine, lab("1.0.0", "any", ""))
    record = submit(flow, users, amount=1000)
    (task,) = flow.approvals.pending_for(users["bea"].id)
    flow.approvals.decide(task.id, "approve", actor=users["bea"], comment="fine")
    (first,) = flow.approvals.pending_for(users["fay"].id)
    (second,) = flow.approvals.pending_for(users["fin2"].id)
    flow.approvals.decide(first.id, "approve", actor=users["fay"])
    with pytest.raises(WorkflowError) as caught:
        flow.approvals.decide(second.id, "reject", actor=users["fin2"])
    assert caught.value.code == "comment-required"
    with pytest.raises(WorkflowError) as caught:
        flow.approvals.decide(second.id, "approve", actor=users["fay"])
    assert caught.value.code == "not-your-task"
    after = flow.approvals.decide(second.id, "reject", actor=users["fin2"], comment="no budget")
    assert after["state"] == "rejected"
    comments = [e.comment for e in flow.store.timeline("req", record["id"])]
    assert "no budget" in comments


def test_delegate_and_return_and_self_approval(engine: sa.Engine) -> None:
    flow, users, _ = setup(engine)
    record = submit(flow, users, amount=100)
    (task,) = flow.approvals.pending_for(users["bea"].id)
    with pytest.raises(WorkflowError) as caught:
        flow.approvals.decide(task.id, "delegate", actor=users["bea"],
                              delegate_to=users["sam"].id)
    assert caught.value.code == "self-approval"
    flow.approvals.decide(task.id, "delegate", actor=users["bea"], delegate_to=users["fay"].id)
    (delegated,) = flow.approvals.pending_for(users["fay"].id)
    after = flow.approvals.decide(delegated.id, "return", actor=users["fay"], comment="fix it")
    assert after["state"] == "draft"
    assert flow.approvals.pending_for(users["bob"].id) == []  # the level closed
    assert record["id"] == after["id"]


def test_concurrent_approvals_count_both_and_move_once(engine: sa.Engine) -> None:
    flow, users, _ = setup(engine, lab("1.0.0", "all", ""))
    record = submit(flow, users, amount=100)
    tasks = [flow.approvals.pending_for(users[n].id)[0] for n in ("bea", "bob")]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def decide(task, who) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            flow.approvals.decide(task.id, "approve", actor=users[who])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=decide, args=(t, w)) for t, w in zip(tasks, ("bea", "bob"),
                                                                             strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = flow.store.get("req", record["id"])
    assert final["state"] == "approved"
    moves = [e for e in flow.store.timeline("req", record["id"]) if e.action == "transition"
             and e.changes["transition"]["new"] == "review.approved"]
    assert len(moves) == 1


PIN_ENTITY = """\
apiVersion: flowdesk/v1
kind: Entity
name: doc
fields:
  title: {type: string}
"""
PIN_FLOW_V1 = """\
apiVersion: flowdesk/v1
kind: Workflow
name: doc_flow
entity: doc
initial: open
states: {open: {}, review: {}, done: {category: done}}
transitions:
  submit: {from: open, to: review}
  approve: {from: review, to: done}
"""
PIN_FLOW_V2 = """\
apiVersion: flowdesk/v1
kind: Workflow
name: doc_flow
entity: doc
initial: open
states: {open: {}, done: {category: done}}
transitions:
  finish: {from: open, to: done}
"""


def test_records_keep_their_workflow_version_across_real_deploys(engine: sa.Engine) -> None:
    from flowdesk.store.deploy import deploy
    from flowdesk.store.records import RecordStore
    from flowdesk.store.snapshots import load_active

    def texts(version: str, flow: str) -> dict[str, str]:
        return {"app.yaml": APP.format(version=version).replace("name: wf", "name: pin"),
                "entities/doc.yaml": PIN_ENTITY, "workflows/doc_flow.yaml": flow}

    actor = Actor(None, "tester")
    deploy(engine, texts("1.0.0", PIN_FLOW_V1), actor="test")
    v1 = WorkflowEngine(RecordStore(engine, load_active(engine, "pin")))  # type: ignore[arg-type]
    old = v1.create("doc", {"title": "started on 1.0.0"}, actor=actor)
    deploy(engine, texts("2.0.0", PIN_FLOW_V2), actor="test")
    v2 = WorkflowEngine(RecordStore(engine, load_active(engine, "pin")))  # type: ignore[arg-type]
    assert v2.app.version == "2.0.0"

    offered = {t.name for t in v2.available_transitions("doc", old, actor)}
    assert offered == {"submit"}  # 1.0.0's transitions, not 2.0.0's `finish`
    moved = v2.transition("doc", old["id"], "submit", actor=actor,
                          expected_version=old["row_version"])
    assert moved["state"] == "review" and moved["workflow_version"] == "1.0.0"  # gone in 2.0.0
    done = v2.transition("doc", old["id"], "approve", actor=actor,
                         expected_version=moved["row_version"])
    assert done["state"] == "done" and done["workflow_version"] == "1.0.0"

    new = v2.create("doc", {"title": "started on 2.0.0"}, actor=actor)
    assert new["workflow_version"] == "2.0.0"
    assert {t.name for t in v2.available_transitions("doc", new, actor)} == {"finish"}
    with pytest.raises(WorkflowError) as refused:
        v2.transition("doc", new["id"], "submit", actor=actor, expected_version=1)
    assert refused.value.code == "not-available"
