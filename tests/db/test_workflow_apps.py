"""The shipped apps' workflows run end to end through the engine, on both databases:
the service desk ticket lifecycle (with the timer-driven auto-close), and a purchase
request through the budget service task and the countersign by amount."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from test_records_support import add_department, add_user, shipped_app, store_for

from flowdesk.engine.workflow import WorkflowEngine
from flowdesk.jobs.worker import Worker
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def person(engine: sa.Engine, app: str, name: str, *roles: str, **values: Any) -> Actor:
    uid = add_user(engine, name, **values)
    with engine.begin() as conn:
        for role in roles:
            conn.execute(pt.user_roles.insert().values(user_id=uid, app=app, role=role))
    return Actor(uid, name, roles=roles)


def go(flow: WorkflowEngine, entity: str, record: dict, name: str, who: Actor,
       **options: Any) -> dict:
    return flow.transition(entity, record["id"], name, actor=who,
                           expected_version=record["row_version"], **options)


def test_service_desk_ticket_lifecycle(engine: sa.Engine) -> None:
    clock = Clock()
    flow = WorkflowEngine(store_for(engine, shipped_app("service_desk")), clock=clock)
    agent = person(engine, "service_desk", "ann", "agent")
    other = person(engine, "service_desk", "otto", "agent")
    customer_user = person(engine, "service_desk", "cus", "customer")
    add_department(engine, "network_team")
    customer = flow.create("customer", {"name": "ACME", "code": "C000001", "level": "normal",
                                        "region": "north"}, actor=agent)
    team = flow.create("team", {"name": "Network", "code": "network_team"}, actor=agent)
    ticket = flow.create("ticket", {"title": "VPN down", "customer": customer["id"],
                                    "description": "cannot connect"}, actor=agent)
    assert ticket["state"] == "new"
    ticket = go(flow, "ticket", ticket, "accept", agent)
    assert ticket["state"] == "in_progress" and ticket["assignee"] == agent.id
    assert ticket["first_responded_at"] is not None
    ticket = go(flow, "ticket", ticket, "transfer", agent, comment="network issue",
                values={"team": team["id"], "transfer_note": "please look"})
    assert ticket["state"] == "transferred"
    ticket = go(flow, "ticket", ticket, "accept_transfer", other)
    assert ticket["assignee"] == other.id
    ticket = go(flow, "ticket", ticket, "resolve", other,
                values={"resolution": "reset the tunnel", "category": _category(flow)})
    assert ticket["state"] == "pending_customer" and ticket["resolved_at"] is not None
    ticket = go(flow, "ticket", ticket, "confirm", customer_user)
    assert ticket["state"] == "closed" and ticket["closed_at"] is not None
    surveys = flow.store.list("satisfaction_survey").items
    assert [s["ticket"] for s in surveys] == [ticket["id"]]
    ticket = go(flow, "ticket", ticket, "reopen", customer_user, comment="still broken")
    assert ticket["state"] == "reopened" and ticket["reopen_count"] == 1
    ticket = go(flow, "ticket", ticket, "resume", other)
    ticket = go(flow, "ticket", ticket, "resolve", other)
    clock.now = T0 + dt.timedelta(hours=72, minutes=1)
    Worker(engine, "w", clock=lambda: clock.now).drain()
    final = flow.store.get("ticket", ticket["id"])
    assert final["state"] == "closed"
    timeline = flow.store.timeline("ticket", ticket["id"])
    names = [e.changes["transition"]["new"] for e in timeline if e.action == "transition"]
    assert names == ["accept", "triage.default", "transfer", "accept_transfer", "resolve",
                     "confirm", "reopen", "resume", "resolve", "auto_close"]
    assert "network issue" in [e.comment for e in timeline]
    with engine.connect() as conn:
        jobs = conn.execute(sa.select(pt.jobs.c.kind)).scalars().all()
    assert "notify.send" in jobs


def _category(flow: WorkflowEngine) -> str:
    field = flow.app.entities["ticket"].fields["category"]
    return next(iter(field.value_names))  # type: ignore[attr-defined]


class Finance:
    """A fake budget service: answers with the remaining budget, or fails."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining
        self.calls: list[dict] = []

    def __call__(self, integration: Any, operation: str, given: dict, **options: Any) -> dict:
        self.calls.append(given)
        if self.remaining is None:
            raise TimeoutError("finance did not answer in time")
        return {"remaining": self.remaining}


def procurement(engine: sa.Engine, finance: Finance) -> tuple[WorkflowEngine, dict, Clock]:
    clock = Clock()
    flow = WorkflowEngine(store_for(engine, shipped_app("procurement")), clock=clock,
                          service_caller=finance)
    dept = add_department(engine, "sales")
    people = {
        "boss2": person(engine, "procurement", "boss2", "employee"),
    }
    people["boss"] = person(engine, "procurement", "boss", "employee",
                            manager_id=people["boss2"].id, department_id=dept)
    people["head"] = person(engine, "procurement", "head", "employee")
    people["fd"] = person(engine, "procurement", "fd", "finance_director")
    people["cfo"] = person(engine, "procurement", "cfo", "cfo")
    people["emp"] = person(engine, "procurement", "emp", "employee", manager_id=people["boss"].id,
                           department_id=dept)
    with engine.begin() as conn:
        conn.execute(pt.departments.update().where(pt.departments.c.id == dept)
                     .values(head_id=people["head"].id))
    budget = flow.create("budget", {"code": "SA-2026", "name": "Sales", "department": dept,
                                    "year": 2026, "amount": "100000"}, actor=people["fd"])
    people["budget"] = budget
    people["dept"] = dept
    return flow, people, clock


def request(flow: WorkflowEngine, people: dict, price: str) -> dict:
    record = flow.create("purchase_request", {
        "title": "Chairs", "department": people["dept"], "category": "facilities",
        "items": [{"description": "chair", "quantity": 1, "unit_price": price}],
        "budget": people["budget"]["id"], "justification": "old ones broke",
    }, actor=people["emp"])
    return go(flow, "purchase_request", record, "submit", people["emp"])


@pytest.mark.parametrize("price", ["12000"])
def test_purchase_countersign_by_amount_and_rejection_midway(engine: sa.Engine,
                                                             price: str) -> None:
    finance = Finance(remaining=50000.0)
    flow, people, clock = procurement(engine, finance)
    record = request(flow, people, price)
    assert record["state"] == "budget_check"
    Worker(engine, "w", clock=lambda: clock.now).drain()
    record = flow.store.get("purchase_request", record["id"])
    assert record["state"] == "approval" and record["budget_ok"] is True
    assert finance.calls == [{"budget_code": "SA-2026", "amount": 12000.0,
                              "department": "sales"}]
    (task,) = flow.approvals.pending_for(people["boss"].id)
    flow.approvals.decide(task.id, "approve", actor=people["boss"])
    fd_task, = flow.approvals.pending_for(people["fd"].id)
    head_task, = flow.approvals.pending_for(people["head"].id)
    flow.approvals.decide(fd_task.id, "approve", actor=people["fd"])
    after = flow.approvals.decide(head_task.id, "reject", actor=people["head"],
                                  comment="not this quarter")
    assert after["state"] == "rejected"


def test_purchase_short_budget_and_failed_service(engine: sa.Engine) -> None:
    finance = Finance(remaining=100.0)
    flow, people, clock = procurement(engine, finance)
    short = request(flow, people, "6000")
    Worker(engine, "w", clock=lambda: clock.now).drain()
    assert flow.store.get("purchase_request", short["id"])["state"] == "special_approval"
    finance.remaining = None  # the finance system stops answering
    failing = request(flow, people, "6000")
    worker = Worker(engine, "w", clock=lambda: clock.now)
    for _ in range(3):  # retried with backoff, then routed to `error` on the last attempt
        worker.drain()
        clock.now += dt.timedelta(hours=1)
    assert flow.store.get("purchase_request", failing["id"])["state"] == "budget_check_failed"
    assert Decimal(short["total"]) == Decimal("6000")
