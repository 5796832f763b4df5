"""Shared set-up of the records service tests (no tests here).

`lab` is a small inline app with one entity using every field type; the
shipped apps are compiled once per session. `store_for` creates an app's
tables and full-text indexes on the test database and returns a RecordStore.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import sqlalchemy as sa

from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_source, compile_texts
from flowdesk.model.sources import read_app
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor, RecordStore
from flowdesk.store.search import create_search_index
from flowdesk.store.tables import build_tables

ROOT = Path(__file__).resolve().parents[2]

LAB_APP = """\
apiVersion: flowdesk/v1
kind: App
name: lab
version: 1.0.0
title: Lab
locale: en
timezone: Asia/Shanghai
"""

LAB_ITEM = """\
apiVersion: flowdesk/v1
kind: Entity
name: item
number: IT-{yyyy}-{seq:04}
search: [name, notes]
fields:
  name: {type: string, required: true, min: 2, max: 20, pattern: "^[A-Za-z ]+$"}
  code: {type: string, unique: true, max: 10}
  notes: {type: text}
  count: {type: integer, min: 0, max: 100, default: 1}
  price: {type: decimal, precision: 8, scale: 2, min: 0}
  flag: {type: boolean, default: false}
  due: {type: date}
  due_default: {type: date, default: today}
  happened: {type: datetime}
  stamped: {type: datetime, default: now}
  wait: {type: duration, default: 4h}
  color: {type: enum, values: [red, green, blue], default: green}
  tags: {type: enum, multiple: true, values: [a, b, c]}
  email: {type: email}
  phone: {type: phone}
  site: {type: url}
  owner: {type: user, default: current_user}
  parent_item: {type: reference, to: item, on_delete: set_null}
  related: {type: references, to: item, max: 3}
  payload: {type: json}
  doubled: {type: integer, computed: "record.count * 2"}
  parts:
    type: lines
    max: 3
    fields:
      label: {type: string, required: true}
      qty: {type: integer, min: 1, default: 1}
      cost: {type: decimal, scale: 2, default: 0}
      amount: {type: decimal, scale: 2, computed: "double(line.qty) * line.cost"}
  parts_total: {type: decimal, scale: 2, computed: "sum(record.parts.map(p, p.amount))"}
rules:
  - name: big_needs_code
    when: record.count > 50 && record.code == null
    error: {en: Large counts need a code, zh: 数量大时需要编码}
    field: code
"""


@cache
def lab_app() -> AppModel:
    result = compile_texts({"app.yaml": LAB_APP, "entities/item.yaml": LAB_ITEM})
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


@cache
def shipped_app(name: str) -> AppModel:
    result = compile_source(read_app(ROOT / "apps" / name))
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


def create_app_tables(engine: sa.Engine, app: AppModel) -> dict:
    tables = build_tables(app)
    next(iter(tables.values())).main.metadata.create_all(engine)
    with engine.begin() as connection:
        for entity in app.entities:
            create_search_index(connection, app, entity)
    return tables


def store_for(engine: sa.Engine, app: AppModel) -> RecordStore:
    return RecordStore(engine, app, create_app_tables(engine, app))


def add_user(engine: sa.Engine, username: str, **values: object) -> int:
    now = dt.datetime.now(dt.UTC)
    row = {
        "username": username,
        "name": username.title(),
        "active": True,
        "created_at": now,
        "updated_at": now,
        **values,
    }
    with engine.begin() as connection:
        return int(connection.execute(pt.users.insert().values(**row)).inserted_primary_key[0])


def add_department(engine: sa.Engine, code: str) -> int:
    now = dt.datetime.now(dt.UTC)
    row = {"code": code, "name": code.upper(), "active": True, "created_at": now, "updated_at": now}
    with engine.begin() as connection:
        return int(
            connection.execute(pt.departments.insert().values(**row)).inserted_primary_key[0]
        )


def actor(
    user_id: int | None, username: str = "alice", *roles: str, locale: str | None = None
) -> Actor:
    return Actor(user_id, username, roles=roles, locale=locale)
