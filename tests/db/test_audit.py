"""The audit timeline: every change writes a row in the same transaction, with
who, when, what changed from which value to which; reading it is one call."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from test_records_support import actor, add_user, lab_app, store_for

from flowdesk.store import audit as audit_module
from flowdesk.store import platform_tables as pt
from flowdesk.store.errors import ValidationFailed


def test_every_change_is_audited_in_order(engine: sa.Engine) -> None:
    store = store_for(engine, lab_app())
    alice = actor(add_user(engine, "alice"), "alice")
    bob = actor(add_user(engine, "bob"), "bob")
    record = store.create(
        "item",
        {
            "name": "Audited",
            "price": "9.99",
            "tags": ["a"],
            "parts": [{"label": "x", "cost": "1.50"}],
        },
        actor=alice,
        comment="first",
    )
    store.update(
        "item",
        record["id"],
        {"price": "10.00", "tags": ["a", "b"], "notes": None},
        expected_version=1,
        actor=bob,
        comment="price rise",
    )
    store.delete("item", record["id"], actor=bob, expected_version=2)
    store.restore("item", record["id"], actor=alice)
    store.delete("item", record["id"], actor=alice, hard=True, comment="gdpr")

    timeline = store.timeline("item", record["id"])
    assert [e.action for e in timeline] == ["create", "update", "delete", "restore", "purge"]
    assert [e.actor for e in timeline] == ["alice", "bob", "bob", "alice", "alice"]
    assert [e.actor_id for e in timeline][:2] == [alice.id, bob.id]
    assert [e.comment for e in timeline] == ["first", "price rise", None, None, "gdpr"]
    assert timeline == sorted(timeline, key=lambda e: e.id)
    assert all(a.at <= b.at for a, b in itertools.pairwise(timeline))
    created, updated, deleted, restored, purged = timeline
    assert created.changes["price"] == {"old": None, "new": "9.99"}
    assert created.changes["parts_total"] == {"old": None, "new": "1.50"}
    assert created.changes["parts"]["new"][0]["label"] == "x"
    assert "notes" not in created.changes  # fields left empty are not listed
    assert updated.changes == {
        "price": {"old": "9.99", "new": "10.00"},
        "tags": {"old": ["a"], "new": ["a", "b"]},
    }
    assert deleted.changes["deleted_at"]["old"] is None
    assert deleted.changes["deleted_at"]["new"] is not None
    assert restored.changes["deleted_at"]["new"] is None
    assert purged.changes["name"] == {"old": "Audited", "new": None}


def test_state_changes_are_audited_as_transitions(engine: sa.Engine) -> None:
    from test_records_support import shipped_app

    store = store_for(engine, shipped_app("service_desk"))
    agent = actor(add_user(engine, "agent"), "agent")
    ticket = store.create("ticket", {"title": "No sound", "contact_email": "a@b.cn"}, actor=agent)
    store.set_state(
        "ticket",
        ticket["id"],
        "in_progress",
        expected_version=1,
        actor=agent,
        comment="picked up",
        workflow_version="1.0.0",
    )
    last = store.timeline("ticket", ticket["id"])[-1]
    assert (last.action, last.comment) == ("transition", "picked up")
    assert last.changes == {"state": {"old": "new", "new": "in_progress"}}


def test_a_refused_change_leaves_no_audit_row(engine: sa.Engine) -> None:
    store = store_for(engine, lab_app())
    who = actor(None, "system")
    record = store.create("item", {"name": "Kept"}, actor=who)
    with pytest.raises(ValidationFailed):
        store.update("item", record["id"], {"count": -1}, expected_version=1, actor=who)
    assert [e.action for e in store.timeline("item", record["id"])] == ["create"]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(pt.audit)).scalar()
    assert rows == 1


def test_the_audit_log_offers_no_way_to_change_rows() -> None:
    public = set(audit_module.__all__) | {
        n for n in dir(audit_module.AuditLog) if not n.startswith("_")
    }
    assert not {n for n in public if any(w in n for w in ("update", "delete", "edit", "purge"))}
