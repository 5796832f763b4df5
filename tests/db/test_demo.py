"""Demo data for `flowdesk serve --demo` on SQLite and PostgreSQL: the organisation, the
records of the three shipped apps through the records service, and idempotence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flowdesk.model.appmodel import AppModel
from flowdesk.model.policy import STANDARD_ROLES
from flowdesk.model.sources import read_app
from flowdesk.onboarding.demo import DEMO_USERS, DemoDataError, seed_org, seed_records
from flowdesk.security import authorizer_for, load_principal, scope_clause
from flowdesk.store import platform_tables as pt
from flowdesk.store.deploy import deploy, load_active
from flowdesk.store.engine import make_engine
from flowdesk.store.migrate import upgrade
from flowdesk.store.records import RecordStore

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("service_desk", "field_service", "procurement")


def deploy_shipped(engine: sa.Engine) -> dict[str, AppModel]:
    apps = {}
    for name in SHIPPED:
        root = ROOT / "apps" / name
        texts = {
            str(Path(path).resolve().relative_to(root)): text
            for path, text in read_app(root).texts.items()
        }
        deploy(engine, texts, actor="test")
        app = load_active(engine, name)
        assert app is not None
        apps[name] = app
    return apps


@pytest.fixture
def seeded(engine: sa.Engine) -> Iterator[tuple[sa.Engine, dict[str, AppModel], dict, dict]]:
    apps = deploy_shipped(engine)
    with engine.begin() as connection:
        users = seed_org(connection)
    created = seed_records(engine, apps, users)
    yield engine, apps, users, created


def all_records(store: RecordStore, entity: str) -> list[dict[str, Any]]:
    records, cursor = [], None
    while True:
        page = store.list(entity, limit=200, cursor=cursor, sort=["id"])
        records += page.items
        if page.next_cursor is None:
            return records
        cursor = page.next_cursor


def row_count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def exists(engine: sa.Engine, table: sa.Table, ids: set[int]) -> set[int]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(table.c.id).where(table.c.id.in_(ids))).scalars())


# ------------------------------------------------------------------------------ records


def test_every_entity_of_the_shipped_apps_gets_records(seeded: Any) -> None:
    engine, apps, _users, created = seeded
    for name, app in apps.items():
        store = RecordStore(engine, app)
        for entity in app.entities:
            count = store.count(entity)
            assert count > 0, f"{name}.{entity} has no demo records"
            assert created[entity] == count, entity
    assert created["ticket"] >= 40
    assert created["purchase_request"] >= 15


def test_every_reference_of_the_demo_records_resolves(seeded: Any) -> None:
    engine, apps, _users, _created = seeded
    platform = {"user": pt.users, "department": pt.departments}
    checked = 0
    for app in apps.values():
        store = RecordStore(engine, app)
        wanted: dict[str, set[int]] = {}
        for entity, model in app.entities.items():
            for record in all_records(store, entity):
                for owner, specs in _reference_holders(record, model.fields):
                    for name, spec in specs.items():
                        target = "user" if spec.type == "user" else getattr(spec, "to", None)
                        value = owner.get(name)
                        if spec.type in ("user", "reference") and value is not None:
                            wanted.setdefault(target, set()).add(value)
                for name in ("created_by", "assignee"):
                    if record.get(name) is not None:
                        wanted.setdefault("user", set()).add(record[name])
        for target, ids in wanted.items():
            if target in platform:
                assert exists(engine, platform[target], ids) == ids, target
            else:
                for record_id in ids:  # get raises NotFound for a missing or deleted record
                    store.get(target, record_id)
            checked += len(ids)
    assert checked > 50


def _reference_holders(record: dict[str, Any], fields: Any) -> Iterator[tuple[dict, dict]]:
    """The record with its fields, then each line of its line fields with theirs."""
    yield record, dict(fields)
    for name, spec in fields.items():
        if spec.type == "lines":
            for line in record.get(name) or []:
                yield line, dict(spec.fields)


def test_records_are_consistent_with_their_workflow_states(seeded: Any) -> None:
    engine, apps, users, _created = seeded
    desk = RecordStore(engine, apps["service_desk"])
    tickets = all_records(desk, "ticket")
    states = {t["state"] for t in tickets}
    assert {"new", "in_progress", "pending_customer", "closed"} <= states
    assert states <= set(apps["service_desk"].workflows["ticket_lifecycle"].states)
    for ticket in tickets:
        assert ticket["number"].startswith("TCK-")
        if ticket["state"] in ("pending_customer", "closed"):
            assert ticket["resolution"] and ticket["resolved_at"] is not None
        if ticket["priority"] == "p1":
            assert ticket["is_vip"]  # computed through the customer reference
    closed = {t["id"] for t in tickets if t["state"] == "closed"}
    assert {s["ticket"] for s in all_records(desk, "satisfaction_survey")} == closed

    field = RecordStore(engine, apps["field_service"])
    for order in all_records(field, "work_order"):
        if order["state"] in ("on_site", "on_hold"):
            visit = field.get("visit", order["last_visit"])
            assert visit["work_order"] == order["id"] and order["visit_count"] == 1

    buying = RecordStore(engine, apps["procurement"])
    requests = all_records(buying, "purchase_request")
    totals = sorted(float(r["total"]) for r in requests)
    assert totals[0] < 5000 <= totals[len(totals) // 2] and totals[-1] >= 10000
    for request in requests:
        assert request["total"] == sum(line["line_total"] for line in request["items"])
        assert request["requester"] in users.values()
        if request["state"] in ("ordered", "received", "closed"):
            assert request["po_number"] and request["supplier"] is not None
    budgets = all_records(buying, "budget")
    assert any(b["spent"] > 0 for b in budgets) and any(b["committed"] > 0 for b in budgets)


# ------------------------------------------------------------------------------ idempotence


def test_seeding_twice_changes_nothing(seeded: Any) -> None:
    engine, apps, users, _created = seeded
    org_tables = (pt.departments, pt.users, pt.user_roles)
    before = [row_count(engine, t) for t in (*org_tables, pt.audit, pt.sequences)]
    with engine.begin() as connection:
        assert seed_org(connection) == users
    assert seed_records(engine, apps, users) == {}
    after = [row_count(engine, t) for t in (*org_tables, pt.audit, pt.sequences)]
    assert after == before


def test_an_app_with_records_is_left_alone_and_the_others_are_seeded(engine: sa.Engine) -> None:
    apps = deploy_shipped(engine)
    with engine.begin() as connection:
        users = seed_org(connection)
    only_desk = seed_records(engine, {"service_desk": apps["service_desk"]}, users)
    assert "ticket" in only_desk and "work_order" not in only_desk
    rest = seed_records(engine, apps, users)
    assert "ticket" not in rest and rest["work_order"] > 0 and rest["purchase_request"] > 0


def test_the_same_seed_gives_the_same_data(engine: sa.Engine, tmp_path: Path) -> None:
    other = make_engine(f"sqlite:///{tmp_path}/other.db")
    upgrade(other)
    try:
        shown = []
        for db in (engine, other):
            apps = deploy_shipped(db)
            with db.begin() as connection:
                users = seed_org(connection)
            seed_records(db, apps, users, rng_seed=11)
            store = RecordStore(db, apps["service_desk"])
            shown.append(
                [
                    (t["number"], t["title"], t["priority"], t["state"])
                    for t in all_records(store, "ticket")
                ]
            )
        assert shown[0] == shown[1]
    finally:
        other.dispose()


def test_scale_multiplies_the_transactional_records(engine: sa.Engine) -> None:
    apps = deploy_shipped(engine)
    with engine.begin() as connection:
        users = seed_org(connection)
    created = seed_records(engine, {"procurement": apps["procurement"]}, users, scale=2)
    assert created["purchase_request"] == 32 and created["budget"] == 5


def test_bad_arguments_are_clear_errors(engine: sa.Engine) -> None:
    apps = deploy_shipped(engine)
    with pytest.raises(DemoDataError, match="scale must be a whole number"):
        seed_records(engine, apps, {}, scale=0)
    with pytest.raises(DemoDataError, match=r"run seed_org first.*agent"):
        seed_records(engine, apps, {"admin": 1})
    assert row_count(engine, RecordStore(engine, apps["service_desk"]).table("ticket")) == 0


# ------------------------------------------------------------------------------ organisation


def test_the_org_chart_links_heads_and_managers(seeded: Any) -> None:
    engine, _apps, users, _created = seeded
    with engine.connect() as connection:
        departments = {row.code: row for row in connection.execute(sa.select(pt.departments)).all()}
        people = {row.username: row for row in connection.execute(sa.select(pt.users)).all()}
    assert departments["HQ"].parent_id is None and departments["HQ"].name == "Head office"
    for code in ("IT", "FIELD", "FIN"):
        assert departments[code].parent_id == departments["HQ"].id
        assert departments[code].head_id is not None
    assert departments["IT"].head_id == users["supervisor"]
    assert departments["HQ"].head_id == users["admin"]
    assert people["agent"].manager_id == users["supervisor"]
    assert people["supervisor"].manager_id == users["admin"]
    assert people["agent"].department_id == departments["IT"].id
    assert people["customer"].department_id is None
    assert all(p.password_hash is None for p in people.values())  # the caller sets them


def test_demo_roles_exist_in_each_app_and_grant_sensible_access(seeded: Any) -> None:
    engine, apps, users, _created = seeded
    with engine.connect() as connection:
        held = set(connection.execute(sa.select(pt.user_roles)).all())
    assert (users["admin"], "*", "admin") in held
    assert {(a, r) for u, a, r in held if u == users["customer"]} == {("service_desk", "customer")}
    for user in DEMO_USERS:
        for app_name, roles in user.roles.items():
            if app_name == "*":
                continue
            defined = set(STANDARD_ROLES)
            for policy in apps[app_name].policies.values():
                defined |= set(policy.roles)
            assert set(roles) <= defined, (user.username, app_name)

    expectations = [
        ("service_desk", "agent", "ticket", "create", True),
        ("service_desk", "customer", "ticket", "create", True),
        ("service_desk", "customer", "customer", "update", False),
        ("service_desk", "supervisor", "ticket", "delete", True),
        ("field_service", "agent", "work_order", "update", True),
        ("field_service", "supervisor", "work_order", "create", True),
        ("field_service", "customer", "work_order", "read", False),
        ("procurement", "agent", "purchase_request", "create", True),
        ("procurement", "supervisor", "purchase_request", "approve", True),
        ("procurement", "admin", "budget", "update", True),
    ]
    with engine.connect() as connection:
        for app_name, username, entity, action, allowed in expectations:
            app = apps[app_name]
            principal = load_principal(connection, users[username], app)
            got = authorizer_for(app).allowed(principal, entity, action)
            assert got is allowed, (app_name, username, entity, action)


def test_scoped_users_see_their_own_demo_records(seeded: Any) -> None:
    """The customer's portal and the technician's job list are not empty."""
    engine, apps, users, _created = seeded
    cases = [
        ("service_desk", "customer", "ticket"),
        ("service_desk", "customer", "satisfaction_survey"),
        ("field_service", "agent", "work_order"),
        ("field_service", "agent", "visit"),
        ("procurement", "agent", "purchase_request"),
        ("procurement", "agent", "budget"),
    ]
    for app_name, username, entity in cases:
        app = apps[app_name]
        store = RecordStore(engine, app)
        with engine.connect() as connection:
            principal = load_principal(connection, users[username], app)
        where = scope_clause(principal, entity, store.table(entity), store.resolver(entity), app)
        visible = store.count(entity, where=where)
        assert visible > 0, (app_name, username, entity)
        if username == "customer":
            assert visible < store.count(entity)
