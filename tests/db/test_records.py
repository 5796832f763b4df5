"""The records service on real databases: round trips of every field type,
validation, defaults, computed fields, rules, unique values, deletes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from test_records_support import actor, add_department, add_user, lab_app, shipped_app, store_for

from flowdesk.store.errors import (
    Conflict,
    InvalidQuery,
    NotFound,
    UniqueViolation,
    ValidationFailed,
)
from flowdesk.store.records import RecordStore

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def lab(engine: sa.Engine) -> tuple[RecordStore, int]:
    user_id = add_user(engine, "alice")
    return store_for(engine, lab_app()), user_id


def full_item(**extra: object) -> dict[str, object]:
    return {
        "name": "Widget",
        "code": "W1",
        "notes": "a long note",
        "count": 3,
        "price": "12.50",
        "flag": True,
        "due": "2026-03-01",
        "happened": "2026-03-01T09:30:00+08:00",
        "wait": "1d 2h",
        "color": "red",
        "tags": ["b", "a", "b"],
        "email": "ops@example.com",
        "phone": "+86 10 1234 5678",
        "site": "https://example.com/x",
        "payload": {"k": [1, 2]},
        "parts": [{"label": "bolt", "qty": 4, "cost": "0.25"}, {"label": "nut", "cost": 1}],
        **extra,
    }


def test_every_field_type_round_trips(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    created = store.create("item", full_item(), actor=actor(user_id))
    got = store.get("item", created["id"])
    assert got == created
    assert got["price"] == Decimal("12.50")
    assert got["due"] == dt.date(2026, 3, 1)
    assert got["happened"] == dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.UTC)
    assert got["wait"] == dt.timedelta(days=1, hours=2)
    assert got["tags"] == ["b", "a"]
    assert got["payload"] == {"k": [1, 2]}
    assert got["owner"] == user_id  # default: current_user
    assert got["doubled"] == 6
    assert [(p["label"], p["qty"], p["amount"]) for p in got["parts"]] == [
        ("bolt", 4, Decimal("1.00")),
        ("nut", 1, Decimal("1.00")),
    ]
    assert got["parts_total"] == Decimal("2.00")
    assert all(isinstance(p["id"], int) for p in got["parts"])
    assert got["number"].startswith(f"IT-{dt.datetime.now(SHANGHAI).year}-")
    assert got["row_version"] == 1 and got["created_by"] == user_id
    assert got["created_at"].tzinfo is dt.UTC


def test_defaults(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    created = store.create("item", {"name": "Plain"}, actor=actor(user_id))
    assert created["count"] == 1 and created["flag"] is False and created["color"] == "green"
    assert created["wait"] == dt.timedelta(hours=4)
    assert created["due_default"] == dt.datetime.now(SHANGHAI).date()
    assert abs(created["stamped"] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert created["tags"] == [] and created["parts"] == [] and created["related"] == []
    assert created["parts_total"] == Decimal("0.00")


def test_validation_reports_every_error_at_once(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    bad = {
        "name": "x",
        "count": 500,
        "price": "1.234",
        "due": "01/03/2026",
        "happened": "2026-03-01T09:30:00",
        "color": "purple",
        "tags": ["a", "z"],
        "email": "not-an-email",
        "phone": "call me",
        "site": "ftp://x",
        "owner": 999_999,
        "parts": [{"qty": 0}, {"label": "ok"}, {"label": "a"}, {"label": "too many"}],
        "doubled": 4,
        "nonsense": 1,
    }
    with pytest.raises(ValidationFailed) as caught:
        store.create("item", bad, actor=actor(user_id))
    codes = {(e.field, e.code) for e in caught.value.errors}
    assert codes >= {
        ("name", "too-short"),
        ("count", "too-large"),
        ("price", "too-precise"),
        ("due", "not-a-date"),
        ("happened", "no-timezone"),
        ("color", "not-allowed"),
        ("tags", "not-allowed"),
        ("email", "invalid-email"),
        ("phone", "invalid-phone"),
        ("site", "invalid-url"),
        ("owner", "not-found"),
        ("parts[0].qty", "too-small"),
        ("parts[0].label", "required"),
        ("parts", "too-many"),
        ("doubled", "read-only"),
        ("nonsense", "unknown-field"),
    }
    assert "name must be at least 2 characters" in str(caught.value)


def test_required_and_pattern(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    with pytest.raises(ValidationFailed) as caught:
        store.create("item", {"notes": "no name"}, actor=actor(user_id))
    assert [(e.field, e.code) for e in caught.value.errors] == [("name", "required")]
    with pytest.raises(ValidationFailed) as caught:
        store.create("item", {"name": "Bad 1"}, actor=actor(user_id))
    assert caught.value.errors[0].code == "pattern"


def test_rule_message_in_the_actors_locale(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    with pytest.raises(ValidationFailed) as caught:
        store.create("item", {"name": "Big", "count": 60}, actor=actor(user_id))
    (error,) = caught.value.errors
    assert (error.field, error.code, error.rule, error.message) == (
        "code",
        "rule",
        "big_needs_code",
        "Large counts need a code",
    )
    with pytest.raises(ValidationFailed) as caught:
        store.create("item", {"name": "Big", "count": 60}, actor=actor(user_id, locale="zh"))
    assert caught.value.errors[0].message == "数量大时需要编码"
    assert (
        store.create("item", {"name": "Big", "count": 60, "code": "B"}, actor=actor(user_id))[
            "doubled"
        ]
        == 120
    )


def test_unique_violation_is_clear(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    store.create("item", {"name": "One", "code": "SAME"}, actor=actor(user_id))
    with pytest.raises(UniqueViolation) as caught:
        store.create("item", {"name": "Two", "code": "SAME"}, actor=actor(user_id))
    assert (caught.value.field, caught.value.value) == ("code", "SAME")
    assert str(caught.value) == "another item already has code = 'SAME'; code must be unique"
    other = store.create("item", {"name": "Three", "code": "OTHER"}, actor=actor(user_id))
    with pytest.raises(UniqueViolation):
        store.update(
            "item", other["id"], {"code": "SAME"}, expected_version=1, actor=actor(user_id)
        )


def test_update_changes_only_given_fields_and_recomputes(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    created = store.create("item", full_item(), actor=actor(user_id))
    updated = store.update(
        "item", created["id"], {"count": 7, "notes": None}, expected_version=1, actor=actor(user_id)
    )
    assert updated["row_version"] == 2 and updated["doubled"] == 14 and updated["notes"] is None
    assert store.get("item", created["id"]) == updated
    same = store.update(
        "item", created["id"], {"count": 7}, expected_version=2, actor=actor(user_id)
    )
    assert same["row_version"] == 2  # nothing changed: no new version
    with pytest.raises(Conflict) as caught:
        store.update("item", created["id"], {"count": 8}, expected_version=1, actor=actor(user_id))
    assert caught.value.current_version == 2
    assert "version 1" in str(caught.value) and "version 2" in str(caught.value)


def test_lines_replace_all_keeping_ids(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    created = store.create("item", full_item(), actor=actor(user_id))
    bolt, nut = created["parts"]
    updated = store.update(
        "item",
        created["id"],
        {"parts": [{"id": nut["id"], "qty": 3}, {"label": "washer", "cost": "0.10"}]},
        expected_version=1,
        actor=actor(user_id),
    )
    got = store.get("item", created["id"])
    assert got["parts"] == updated["parts"]
    assert [(p["label"], p["qty"], p["amount"]) for p in got["parts"]] == [
        ("nut", 3, Decimal("3.00")),
        ("washer", 1, Decimal("0.10")),
    ]
    assert got["parts"][0]["id"] == nut["id"] and bolt["id"] not in {p["id"] for p in got["parts"]}
    assert got["parts_total"] == Decimal("3.10")
    with pytest.raises(ValidationFailed) as caught:
        store.update(
            "item",
            created["id"],
            {"parts": [{"id": bolt["id"]}]},
            expected_version=2,
            actor=actor(user_id),
        )
    assert caught.value.errors[0].field == "parts[0].id"


def test_references_and_multi_references(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    a = store.create("item", {"name": "Alpha"}, actor=actor(user_id))
    b = store.create("item", {"name": "Beta"}, actor=actor(user_id))
    c = store.create(
        "item",
        {"name": "Gamma", "parent_item": a["id"], "related": [b["id"], a["id"]]},
        actor=actor(user_id),
    )
    assert store.get("item", c["id"])["related"] == [b["id"], a["id"]]
    store.update("item", c["id"], {"related": [a["id"]]}, expected_version=1, actor=actor(user_id))
    assert store.get("item", c["id"])["related"] == [a["id"]]
    with pytest.raises(ValidationFailed) as caught:
        store.create(
            "item",
            {"name": "Delta", "parent_item": 424242, "related": [a["id"], 7777]},
            actor=actor(user_id),
        )
    assert {(e.field, e.code) for e in caught.value.errors} == {
        ("parent_item", "not-found"),
        ("related", "not-found"),
    }
    store.delete("item", b["id"], actor=actor(user_id))
    with pytest.raises(ValidationFailed):  # a deleted record cannot be newly referred to
        store.create("item", {"name": "Eps", "parent_item": b["id"]}, actor=actor(user_id))


def test_soft_delete_restore_and_hard_delete(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    created = store.create("item", full_item(), actor=actor(user_id))
    store.delete("item", created["id"], actor=actor(user_id), expected_version=1)
    with pytest.raises(NotFound, match="deleted"):
        store.get("item", created["id"])
    assert store.get("item", created["id"], include_deleted=True)["deleted_at"] is not None
    assert store.list("item").items == []
    with pytest.raises(NotFound):
        store.update("item", created["id"], {"count": 2}, expected_version=2, actor=actor(user_id))
    restored = store.restore("item", created["id"], actor=actor(user_id))
    assert restored["deleted_at"] is None and restored["row_version"] == 3
    assert store.get("item", created["id"])["name"] == "Widget"
    store.delete("item", created["id"], actor=actor(user_id), hard=True)
    with pytest.raises(NotFound):
        store.get("item", created["id"], include_deleted=True)
    with store.engine.connect() as connection:
        lines = store.tables["item"].lines["parts"]
        assert connection.execute(sa.select(sa.func.count()).select_from(lines)).scalar() == 0


def test_set_state_bumps_version_and_checks_the_state(engine: sa.Engine) -> None:
    store = store_for(engine, shipped_app("service_desk"))
    agent = actor(add_user(engine, "agent"), "agent", "agent")
    ticket = store.create(
        "ticket", {"title": "Mail is down", "contact_email": "a@b.cn"}, actor=agent
    )
    assert ticket["state"] == "new" and ticket["workflow_version"] == "1.0.0"
    moved = store.set_state(
        "ticket", ticket["id"], "in_progress", expected_version=1, actor=agent, comment="on it"
    )
    assert (moved["state"], moved["row_version"]) == ("in_progress", 2)
    assert store.get("ticket", ticket["id"])["state"] == "in_progress"
    with pytest.raises(Conflict):
        store.set_state("ticket", ticket["id"], "new", expected_version=1, actor=agent)
    with pytest.raises(ValidationFailed, match="not a state"):
        store.set_state("ticket", ticket["id"], "limbo", expected_version=2, actor=agent)


def test_service_desk_ticket_rules_and_computed_through_references(engine: sa.Engine) -> None:
    store = store_for(engine, shipped_app("service_desk"))
    manager = add_user(engine, "manager")
    agent = actor(add_user(engine, "agent"), "agent", "agent", locale="en")
    vip = store.create(
        "customer",
        {
            "name": "Big Co",
            "code": "C000001",
            "region": "east",
            "level": "vip",
            "account_manager": manager,
        },
        actor=agent,
    )
    plain = store.create(
        "customer", {"name": "Small Co", "code": "C000002", "region": "west"}, actor=agent
    )
    ticket = store.create("ticket", {"title": "VPN broken", "customer": vip["id"]}, actor=agent)
    assert (ticket["is_vip"], ticket["customer_region"]) == (True, "east")
    assert ticket["number"] == "TCK-000001"
    with pytest.raises(ValidationFailed) as caught:
        store.create(
            "ticket", {"title": "Urgent!", "customer": plain["id"], "priority": "p1"}, actor=agent
        )
    assert {e.rule for e in caught.value.errors} == {"p1_reserved_for_vip", "p1_needs_description"}
    assert any("Only VIP" in e.message for e in caught.value.errors)
    with pytest.raises(ValidationFailed) as caught:
        store.create(
            "customer",
            {"name": "V", "code": "C000003", "region": "east", "level": "vip"},
            actor=agent,
        )
    assert caught.value.errors[0].field == "account_manager"


def test_procurement_lines_totals_and_cross_reference_rule(engine: sa.Engine) -> None:
    store = store_for(engine, shipped_app("procurement"))
    requester = actor(add_user(engine, "req"), "req", "requester", locale="en")
    it, finance = add_department(engine, "it"), add_department(engine, "fin")
    budget = store.create(
        "budget",
        {"code": "IT-2026", "name": "IT", "department": it, "year": 2026, "amount": 100000},
        actor=requester,
    )
    assert budget["remaining"] == Decimal("100000.00")
    request = {
        "title": "Laptops",
        "department": it,
        "category": "it_equipment",
        "budget": budget["id"],
        "justification": "new hires",
        "items": [
            {"description": "Laptop", "quantity": 3, "unit_price": "7999.90"},
            {"description": "Dock", "quantity": 3, "unit_price": "19.99"},
        ],
    }
    created = store.create("purchase_request", request, actor=requester)
    assert created["requester"] == requester.id
    assert [i["line_total"] for i in created["items"]] == [Decimal("23999.70"), Decimal("59.97")]
    assert created["total"] == Decimal("24059.67")
    assert created["number"].startswith("PR-") and created["number"].endswith("-00001")
    with pytest.raises(ValidationFailed) as caught:
        store.create("purchase_request", {**request, "department": finance}, actor=requester)
    assert [e.rule for e in caught.value.errors] == ["budget_of_own_department"]
    with pytest.raises(ValidationFailed) as caught:
        store.create("purchase_request", {**request, "items": []}, actor=requester)
    assert [(e.field, e.code) for e in caught.value.errors] == [("items", "too-few")]


def test_a_unique_race_past_the_check_is_still_a_unique_violation(
    lab: tuple[RecordStore, int],
) -> None:
    store, user_id = lab
    store.create("item", {"name": "First", "code": "RACE"}, actor=actor(user_id))
    real_check = store._check_unique
    calls = []

    def blind_once(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) > 1:  # the re-check after the IntegrityError sees the other row
            real_check(*args, **kwargs)  # type: ignore[arg-type]

    store._check_unique = blind_once  # type: ignore[method-assign]
    with pytest.raises(UniqueViolation) as caught:
        store.create("item", {"name": "Second", "code": "RACE"}, actor=actor(user_id))
    assert caught.value.field == "code" and len(calls) == 2
    assert [i["name"] for i in store.list("item").items] == ["First"]


def test_field_selection_on_get_and_list(lab: tuple[RecordStore, int]) -> None:
    store, user_id = lab
    created = store.create("item", full_item(), actor=actor(user_id))
    got = store.get("item", created["id"], fields=["name", "parts"])
    assert set(got) == {"id", "row_version", "name", "parts"}
    assert got["parts"] == created["parts"]
    (listed,) = store.list("item", fields=["price", "related"]).items
    assert listed == {
        "id": created["id"],
        "row_version": 1,
        "price": Decimal("12.50"),
        "related": [],
    }
    with pytest.raises(InvalidQuery, match="unknown fields of item: nope"):
        store.get("item", created["id"], fields=["nope"])
