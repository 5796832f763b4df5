"""Workflows and approvals through the API: available transitions, taking them with
their refusals as problems, the service desk lifecycle, and the approvals inbox."""

from __future__ import annotations

import datetime as dt

import httpx
import sqlalchemy as sa

from conftest import Server
from flowdesk.store import platform_tables as pt


def _new_ticket(client: httpx.Client) -> dict:
    customers = client.get("/api/v1/service_desk/customer", params={"limit": 1}).json()
    created = client.post("/api/v1/service_desk/ticket", json={
        "title": "Printer jams on floor 3", "description": "Paper jam every page",
        "customer": customers["items"][0]["id"], "category": "hardware", "channel": "web"})
    assert created.status_code == 201, created.text
    return created.json()


def _take(client: httpx.Client, ticket: dict, name: str, **body: object) -> httpx.Response:
    return client.post(f"/api/v1/service_desk/ticket/{ticket['id']}/transitions/{name}",
                       json=body, headers={"If-Match": f'"{ticket["row_version"]}"'})


def test_a_ticket_runs_its_lifecycle_over_http(server: Server) -> None:
    with server.client("agent") as agent:
        ticket = _new_ticket(agent)
        assert ticket["state"] == "new"
        url = f"/api/v1/service_desk/ticket/{ticket['id']}"
        offered = {t["name"] for t in agent.get(url + "/transitions").json()}
        assert "accept" in offered and "confirm" not in offered

        refused = _take(agent, ticket, "resolve")
        assert refused.status_code == 409 and refused.json()["type"].endswith("/not-available")

        accepted = _take(agent, ticket, "accept")
        assert accepted.status_code == 200, accepted.text
        ticket = accepted.json()
        assert ticket["state"] == "in_progress"  # through the triage gateway

        missing = _take(agent, ticket, "resolve")
        assert missing.status_code == 422, missing.text
        assert missing.json()["type"].endswith("/field-required")

        resolved = _take(agent, ticket, "resolve", values={"resolution": "Replaced the roller"},
                         comment="fixed on site")
        assert resolved.status_code == 200, resolved.text
        ticket = resolved.json()
        assert ticket["state"] == "pending_customer"

        stale = agent.post(f"{url}/transitions/confirm", json={}, headers={"If-Match": '"1"'})
        assert stale.status_code == 412
        confirmed = _take(agent, ticket, "confirm")
        assert confirmed.status_code == 200 and confirmed.json()["state"] == "closed"

        timeline = agent.get(url + "/timeline").json()
        moves = [e["changes"]["transition"]["new"] for e in timeline
                 if e["action"] == "transition" and "transition" in (e["changes"] or {})]
        assert moves[:1] == ["accept"] and "resolve" in moves and "confirm" in moves


def test_a_role_the_workflow_does_not_list_cannot_transition(server: Server) -> None:
    with server.client("agent") as agent:
        ticket = _new_ticket(agent)
    with server.client("customer") as customer:
        response = _take(customer, ticket, "accept")
    assert response.status_code in (403, 404), response.text  # not granted, or not theirs


def test_the_approvals_inbox_holds_only_the_callers_tasks(server: Server) -> None:
    """The inbox answers for every user with that user's pending tasks only, and a task
    that is not the caller's is a 404 (deciding through the engine is covered by
    tests/db/test_workflow_engine.py and test_workflow_apps.py)."""
    now = dt.datetime.now(dt.UTC)
    with server.engine.begin() as connection:  # one pending task each for two users
        for username in ("supervisor", "admin"):
            connection.execute(pt.approval_tasks.insert().values(
                app="procurement", entity="purchase_request", record_id=1, state="approval",
                round=1, level="manager", level_index=0, user_id=server.users[username],
                status="pending", created_at=now))
        owners = dict(connection.execute(sa.select(pt.approval_tasks.c.id,
                                                   pt.approval_tasks.c.user_id)).all())
    seen = 0
    for username in ("admin", "supervisor", "agent"):
        with server.client(username) as client:
            inbox = client.get("/api/v1/procurement/approvals")
            assert inbox.status_code == 200, inbox.text
            for task in inbox.json():
                assert task["status"] == "pending"
                assert owners[task["id"]] == server.users[username]
                seen += 1
    assert seen >= 2  # the two tasks above, each in its owner's inbox only
    with server.client("agent") as agent:
        unknown = agent.post("/api/v1/procurement/approvals/999999",
                             json={"decision": "approve"})
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/task-not-found")
