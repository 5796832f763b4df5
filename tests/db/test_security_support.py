"""Shared set-up of the security database tests (no tests here).

Rows are inserted with plain SQLAlchemy, not through the records service, so these
tests depend only on the tables (`build_tables`) and the organisation tables; scope
clauses are built with the records service's own resolver (`RecordStore.resolver`, the
one list filters use) and applied with a plain `select` over the entity's table
(`tests/db/test_security_guard.py` applies them through the store).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_source, compile_texts
from flowdesk.model.sources import read_app
from flowdesk.store import platform_tables as pt
from flowdesk.store.tables import build_tables

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_counter = itertools.count(1)


LAB = {
    "app.yaml": "apiVersion: flowdesk/v1\nkind: App\nname: lab\nversion: 1.0.0\ntitle: Lab\n",
    "entities/task.yaml": """\
apiVersion: flowdesk/v1
kind: Entity
name: task
fields:
  title: {type: string, required: true}
  region: {type: string}
  due: {type: datetime}
""",
    "workflows/task_flow.yaml": """\
apiVersion: flowdesk/v1
kind: Workflow
name: task_flow
entity: task
initial: open
states: {open: {}, review: {}, done: {category: done}}
transitions:
  submit: {from: open, to: review}
  approve: {from: review, to: done}
""",
    "policies/access.yaml": """\
apiVersion: flowdesk/v1
kind: Policy
name: lab_access
roles:
  worker: {}
  lead: {inherits: [worker]}
grants:
  - roles: [worker]
    entity: task
    actions: [read, update, transition]
    transitions: [submit]
    scope: {own: true, when: 'record.region == user.region'}
  - roles: [lead]
    entity: task
    actions: [read, transition]
    transitions: [approve]
    scope: {department: tree}
  - roles: [lead]
    entity: task
    actions: [read]
    scope: {when: 'record.due != null && record.due < now'}
""",
}


@cache
def lab_app() -> AppModel:
    result = compile_texts(LAB)
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


@cache
def shipped_app(name: str) -> AppModel:
    result = compile_source(read_app(ROOT / "apps" / name))
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


def create_tables(engine: sa.Engine, app: AppModel) -> dict[str, Any]:
    tables = build_tables(app)
    next(iter(tables.values())).main.metadata.create_all(engine)
    return tables


def _filler(column: sa.Column) -> Any:
    kind = column.type
    if isinstance(kind, sa.JSON):
        return []
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return Decimal(0)
    if isinstance(kind, sa.Integer):
        return 0
    if isinstance(kind, sa.DateTime):
        return NOW
    if isinstance(kind, sa.Date):
        return NOW.date()
    return f"{column.name}-{next(_counter)}"


def insert(connection: sa.Connection, table: sa.Table, **values: Any) -> int:
    """Insert one row, filling required columns that were not given (never references)."""
    system = {"created_at": NOW, "updated_at": NOW, "row_version": 1}
    row = {**{k: v for k, v in system.items() if k in table.c}, **values}
    for column in table.c:
        if column.name in row or column.nullable or column.primary_key:
            continue
        if column.default is not None or column.server_default is not None:
            continue
        assert not column.foreign_keys, f"give {table.name}.{column.name}"
        row[column.name] = _filler(column)
    return int(connection.execute(table.insert().values(**row)).inserted_primary_key[0])


def add_department(connection: sa.Connection, code: str, parent: int | None = None) -> int:
    values = {"code": code, "name": code.title(), "parent_id": parent, "active": True}
    return insert(connection, pt.departments, **values)


def add_user(
    connection: sa.Connection,
    username: str,
    roles: Mapping[str, list[str]] | None = None,
    **values: Any,
) -> int:
    """A user of the organisation tables with roles per app: `{"service_desk": ["agent"]}`."""
    row = {"username": username, "name": username.title(), "active": True, **values}
    user = insert(connection, pt.users, **row)
    for app, names in (roles or {}).items():
        for role in names:
            connection.execute(pt.user_roles.insert().values(user_id=user, app=app, role=role))
    return user


def visible(
    connection: sa.Connection, table: sa.Table, clause: sa.ColumnElement[bool] | None
) -> set[str]:
    """The `title`/`code`/`name` labels of the rows a scope clause lets through."""
    label = next(table.c[name] for name in ("title", "code", "name") if name in table.c)
    query = sa.select(label)
    if clause is not None:
        query = query.where(clause)
    return set(connection.execute(query).scalars())
