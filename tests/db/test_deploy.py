"""Versioned deploys on SQLite and PostgreSQL: data survives new versions, destructive
changes need consent, a failed deploy changes nothing, versions only go up, and a
rollback is a deploy of an older snapshot under the same rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flowdesk.store import plan as plan_module
from flowdesk.store.deploy import (
    DeployError,
    deploy,
    load_active,
    load_version,
    rollback,
    versions,
)

NOW = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
ITEMS = "helpdesk__ticket__items"

MANIFEST = """\
apiVersion: flowdesk/v1
kind: App
name: helpdesk
version: {version}
title: Helpdesk
"""

WORKFLOW = """\
apiVersion: flowdesk/v1
kind: Workflow
name: ticket_flow
entity: ticket
initial: new
states:
  new: {}
  triage: {}
  done: {category: done}
transitions:
  sort: {from: new, to: triage}
  close: {from: triage, to: done}
"""

FIELDS_V1 = """\
  title: {type: string, required: true, max: 200}
  priority: {type: enum, values: [low, high], default: low}
  notes: {type: text}
  code: {type: string, max: 20}
  legacy: {type: string, max: 50}
  items:
    type: lines
    fields: {sku: {type: string, max: 20}, qty: {type: integer}}
"""

FIELDS_V2 = """\
  title: {type: string, required: true, max: 200}
  priority: {type: enum, values: [low, high, urgent], default: low}
  summary: {type: text, renamed_from: notes}
  code: {type: string, max: 20}
  legacy: {type: string, max: 50}
  channel: {type: enum, values: [web, phone], required: true, default: web}
  due: {type: date}
  customer: {type: reference, to: customer, on_delete: set_null}
  items:
    type: lines
    fields: {sku: {type: string, max: 20}, qty: {type: integer}}
"""

CUSTOMER = """\
apiVersion: flowdesk/v1
kind: Entity
name: customer
label: Customer
fields:
  name: {type: string, required: true}
"""


def texts(version: str, fields: str, *, indexes: str = "", workflow: str = WORKFLOW) -> dict:
    entity = (
        "apiVersion: flowdesk/v1\nkind: Entity\nname: ticket\nlabel: Ticket\n"
        "plural: Tickets\nnumber: TCK-{seq:05}\nfields:\n" + fields + indexes
    )
    found = {
        "app.yaml": MANIFEST.format(version=version),
        "entities/ticket.yaml": entity,
        "workflows/ticket_flow.yaml": workflow,
    }
    if "to: customer" in fields:
        found["entities/customer.yaml"] = CUSTOMER
    return found


V1 = texts("1.0.0", FIELDS_V1)
V2 = texts("2.0.0", FIELDS_V2, indexes="indexes:\n  - fields: [channel]\n")
V3 = texts(
    "3.0.0",
    FIELDS_V2.replace("  legacy: {type: string, max: 50}\n", ""),
    indexes="indexes:\n  - fields: [channel]\n",
)


def insert(engine: sa.Engine, *rows: dict[str, Any], table: str = "helpdesk__ticket") -> None:
    """Records as the records service writes them: system columns filled in."""
    with engine.begin() as connection:
        target = sa.Table(table, sa.MetaData(), autoload_with=connection)
        base = {
            "created_at": NOW,
            "updated_at": NOW,
            "row_version": 1,
            "state": "new",
            "workflow_version": "1.0.0",
        }
        for row in rows:
            connection.execute(target.insert(), {**base, **row} if "__items" not in table else row)


def rows(engine: sa.Engine, columns: str, table: str = "helpdesk__ticket") -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.exec_driver_sql(f"SELECT {columns} FROM {table} ORDER BY id")
        ]


def schema(engine: sa.Engine) -> dict[str, Any]:
    """Tables, columns (type, nullability), indexes and unique constraints, comparable."""
    inspector = sa.inspect(engine)
    found = {}
    for name in sorted(inspector.get_table_names()):
        found[name] = (
            sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)),
            sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            ),
            sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name)
            ),
        )
    return found


def data(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of the app's tables and of the version and audit tables."""
    with engine.connect() as connection:
        names = [
            n
            for n in sa.inspect(connection).get_table_names()
            if n.startswith("helpdesk__") and "___fts" not in n
        ]
        names += ["fd_app_versions", "fd_audit"]
        return {
            n: [
                tuple(map(str, r))
                for r in connection.exec_driver_sql(f"SELECT * FROM {n} ORDER BY 1")
            ]
            for n in names
        }


@pytest.fixture
def deployed(engine: sa.Engine) -> sa.Engine:
    """v1 deployed, with three tickets."""
    deploy(engine, V1, actor="ana")
    insert(
        engine,
        {
            "title": "Printer on fire",
            "priority": "high",
            "notes": "smoke",
            "code": "A1",
            "legacy": "L-1",
            "number": "TCK-00001",
        },
        {
            "title": "Mouse",
            "priority": "low",
            "notes": None,
            "code": "A2",
            "state": "triage",
            "number": "TCK-00002",
        },
        {
            "title": "Screen",
            "priority": "high",
            "notes": "flicker",
            "code": None,
            "state": "done",
            "number": "TCK-00003",
        },
    )
    insert(engine, {"parent_id": 1, "position": 0, "sku": "TONER", "qty": 2}, table=ITEMS)
    return engine


def test_first_deploy_creates_the_tables_and_records_the_version(engine: sa.Engine) -> None:
    result = deploy(engine, V1, actor="ana")
    assert result.status == "deployed" and result.previous is None
    assert {op.kind for op in result.plan.ops} >= {"create_table"}
    assert "helpdesk__ticket" in sa.inspect(engine).get_table_names()
    [info] = versions(engine, "helpdesk")
    assert (info.version, info.active, info.deployed_by) == ("1.0.0", True, "ana")
    assert load_active(engine, "helpdesk").content_hash == info.content_hash
    if engine.dialect.name == "sqlite":
        assert result.backup is not None and result.backup.exists()
        assert result.backup.name.startswith("flowdesk.db.bak-1.0.0-")


def test_v2_adds_renames_and_backfills_without_losing_data(deployed: sa.Engine) -> None:
    result = deploy(deployed, V2, actor="ben")
    kinds = [op.kind for op in result.plan.ops]
    assert kinds.count("rename_column") == 1 and "enum_values_added" in kinds
    assert not result.plan.destructive
    assert rows(deployed, "title, priority, summary, code, legacy, channel, due, state") == [
        ("Printer on fire", "high", "smoke", "A1", "L-1", "web", None, "new"),
        ("Mouse", "low", None, "A2", None, "web", None, "triage"),
        ("Screen", "high", "flicker", None, None, "web", None, "done"),
    ]
    columns = {c["name"]: c for c in sa.inspect(deployed).get_columns("helpdesk__ticket")}
    assert "notes" not in columns and columns["channel"]["nullable"] is False
    indexes = {i["name"] for i in sa.inspect(deployed).get_indexes("helpdesk__ticket")}
    assert "ix_helpdesk__ticket_channel" in indexes
    # The ticket table was copied on SQLite (rename, required): its lines survive.
    assert rows(deployed, "parent_id, sku, qty", table=ITEMS) == [(1, "TONER", 2)]
    # A new entity and a reference to it, with a working foreign key.
    assert kinds[0] == "create_table" and result.plan.ops[0].table == "helpdesk__customer"
    with deployed.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO helpdesk__customer (id, name, created_at, updated_at, row_version) "
            "VALUES (7, 'ACME', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
        )
        connection.exec_driver_sql("UPDATE helpdesk__ticket SET customer = 7 WHERE id = 1")
    with pytest.raises(sa.exc.IntegrityError), deployed.begin() as connection:
        connection.exec_driver_sql("UPDATE helpdesk__ticket SET customer = 99 WHERE id = 2")
    insert(
        deployed,
        {"title": "New", "priority": "urgent", "channel": "phone", "workflow_version": "2.0.0"},
    )
    assert [v.version for v in versions(deployed, "helpdesk") if v.active] == ["2.0.0"]


def test_destructive_change_needs_consent(deployed: sa.Engine) -> None:
    deploy(deployed, V2, actor="ben")
    before_schema, before_data = schema(deployed), data(deployed)
    with pytest.raises(DeployError, match="without --allow-destructive: drop column"):
        deploy(deployed, V3, actor="ben")
    assert schema(deployed) == before_schema and data(deployed) == before_data
    result = deploy(deployed, V3, actor="ben", allow_destructive=True)
    assert [op.describe() for op in result.plan.destructive] == [
        "drop column `helpdesk__ticket.legacy` (1 row has a value)"
    ]
    assert "legacy" not in {c["name"] for c in sa.inspect(deployed).get_columns("helpdesk__ticket")}
    assert rows(deployed, "title, summary")[0] == ("Printer on fire", "smoke")


def test_a_deploy_failing_half_way_changes_nothing(
    deployed: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two tickets share a code. The planner counts duplicates and refuses up
    # front; to reach the database's own refusal, pretend a writer added the
    # duplicate after the count (the race the transaction must survive).
    insert(deployed, {"title": "Again", "code": "A1", "number": "TCK-00004"})
    unique_v2 = texts(
        "2.0.0", FIELDS_V2, indexes="indexes:\n  - fields: [code]\n    unique: true\n"
    )
    with pytest.raises(DeployError, match="share their"):
        deploy(deployed, unique_v2, actor="ben")
    monkeypatch.setattr(plan_module._Planner, "_duplicates", lambda *_args: 0)
    before_schema, before_data = schema(deployed), data(deployed)
    with pytest.raises(DeployError) as caught:
        deploy(deployed, unique_v2, actor="ben")
    message = str(caught.value)
    assert "uq_ticket_code" in message
    assert "unique" in message.lower() and "rolled back" in message
    # Columns were added and renamed before the failing step; none of it stays,
    # on PostgreSQL (transactional DDL) and on SQLite (transactional batch copies).
    assert schema(deployed) == before_schema
    assert data(deployed) == before_data
    assert [v.version for v in versions(deployed, "helpdesk")] == ["1.0.0"]
    if deployed.dialect.name == "sqlite":
        assert "a backup from before the deploy is at" in message
        backup = Path(message.rsplit("is at ", 1)[1].rstrip(")"))
        copy = sa.create_engine(f"sqlite:///{backup}")
        assert rows(copy, "title, notes")[0] == ("Printer on fire", "smoke")
        copy.dispose()


def test_version_rules(deployed: sa.Engine) -> None:
    assert deploy(deployed, V1, actor="ana").status == "unchanged"
    changed = {**V1, "app.yaml": V1["app.yaml"] + "locale: zh\n"}
    with pytest.raises(DeployError, match="already deployed with different content"):
        deploy(deployed, changed, actor="ana")
    for lower in ("0.9.0", "1.0.0-rc.1"):
        with pytest.raises(DeployError, match="does not increase"):
            deploy(deployed, texts(lower, FIELDS_V1), actor="ana")
    with pytest.raises(DeployError, match="does not validate") as caught:
        deploy(deployed, texts("1.1.0", FIELDS_V1 + "  bad: {type: nope}\n"), actor="ana")
    assert caught.value.diagnostics
    assert deploy(deployed, texts("1.1.0-beta.1", FIELDS_V1), actor="ana").status == "deployed"
    assert deploy(deployed, texts("1.1.0", FIELDS_V1), actor="ana").previous == "1.1.0-beta.1"
    dry = deploy(deployed, V2, actor="ana", dry_run=True)
    assert dry.status == "planned" and dry.plan.ops
    assert [v.version for v in versions(deployed, "helpdesk")] == ["1.0.0", "1.1.0-beta.1", "1.1.0"]


def test_rollback_goes_through_plan_and_safety(deployed: sa.Engine) -> None:
    deploy(deployed, V2, actor="ben")
    insert(
        deployed,
        {"title": "Urgent", "priority": "urgent", "channel": "phone", "workflow_version": "2.0.0"},
    )
    with pytest.raises(DeployError, match="destructive"):
        rollback(deployed, "helpdesk", "1.0.0", actor="cy")
    result = rollback(deployed, "helpdesk", "1.0.0", actor="cy", allow_destructive=True)
    assert result.status == "rolled_back" and result.previous == "2.0.0"
    kinds = {op.kind for op in result.plan.ops}
    assert {"rename_column", "drop_column", "enum_values_removed"} <= kinds
    # The rename declared by 2.0.0 is undone: the data goes back to `notes`.
    assert rows(deployed, "title, notes")[0] == ("Printer on fire", "smoke")
    listed = {v.version: v.active for v in versions(deployed, "helpdesk")}
    assert listed == {"1.0.0": True, "2.0.0": False}
    assert load_version(deployed, "helpdesk", "2.0.0").version == "2.0.0"
    with deployed.connect() as connection:
        events = connection.exec_driver_sql(
            "SELECT action, actor FROM fd_audit WHERE entity = '@version' ORDER BY id"
        ).all()
    assert [tuple(e) for e in events] == [("deploy", "ana"), ("deploy", "ben"), ("rollback", "cy")]
    assert rollback(deployed, "helpdesk", "1.0.0", actor="cy").status == "unchanged"
    with pytest.raises(DeployError, match="deployed but not active"):
        deploy(deployed, V2, actor="ben")
    with pytest.raises(DeployError, match="never deployed"):
        rollback(deployed, "helpdesk", "9.9.9", actor="cy")
    again = rollback(deployed, "helpdesk", "2.0.0", actor="cy")  # forward again: safe
    assert again.status == "rolled_back" and not again.plan.destructive
