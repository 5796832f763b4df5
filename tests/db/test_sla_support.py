"""Shared set-up of the SLA clock tests (no tests here).

`lab_app` is a small inline app in America/New_York (office hours Mon-Fri
09:00-17:00, and a 24x7 calendar) with one entity `issue`, a workflow with a
waiting state, and two SLAs: `case_sla` (response stops when answered,
resolution stops in `done` and resets on `reopen`; targets by priority) and
`case_restore` (starts only when priority is high; round the clock). The
service desk tests use the shipped app. `Harness` writes records through the
real RecordStore and calls the SLA observer in the same transaction, at a
chosen instant.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from test_records_support import actor, store_for

from flowdesk.engine.sla import SlaClocks
from flowdesk.jobs.queue import utc_now
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_texts
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor, RecordStore

NY = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")
HEAD = "apiVersion: flowdesk/v1\n"

LAB = {
    "app.yaml": HEAD + """kind: App
name: slalab
version: 1.0.0
title: SLA lab
locale: en
timezone: America/New_York
calendar: ny_office
""",
    "calendars/calendars.yaml": HEAD + """kind: Calendar
name: ny_office
timezone: America/New_York
hours: {mon-fri: ["09:00-17:00"]}
---
""" + HEAD + """kind: Calendar
name: ny_24x7
timezone: America/New_York
hours: 24x7
""",
    "entities/issue.yaml": HEAD + """kind: Entity
name: issue
fields:
  title: {type: string, required: true}
  priority: {type: enum, values: [high, low], default: low}
  answered: {type: boolean, default: false}
""",
    "workflows/issue_flow.yaml": HEAD + """kind: Workflow
name: issue_flow
entity: issue
initial: open
states:
  open: {category: open}
  waiting: {category: waiting}
  done: {category: done}
transitions:
  wait: {from: open, to: waiting}
  back: {from: waiting, to: open}
  close: {from: [open, waiting], to: done}
  reopen: {from: done, to: open}
""",
    "sla/case_sla.yaml": HEAD + """kind: SLA
name: case_sla
entity: issue
metrics:
  response: {stop_when: record.answered}
  resolution: {stop_in: [done], reset_on: [reopen]}
targets:
  - {name: urgent, when: 'record.priority == "high"', goals: {response: 1h, resolution: 4h}}
  - {name: normal, goals: {response: 4h, resolution: 16h}}
warnings: [50, 80]
escalations:
  - {at: 80, actions: [{set: {answered: false}}]}
  - {at: breach, metric: resolution, actions: [{set: {priority: high}}]}
---
""" + HEAD + """kind: SLA
name: case_restore
entity: issue
calendar: ny_24x7
metrics:
  restore: {start: 'record.priority == "high"', stop_in: [done]}
targets:
  - {name: around_the_clock, goals: {restore: 24h}}
warnings: [50]
""",
}


@cache
def lab_app() -> AppModel:
    result = compile_texts(LAB)
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


def at(year: int, month: int, day: int, hour: int, minute: int = 0, tz: Any = NY) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz)


class Harness:
    """A RecordStore and the app's SlaClocks on one database; each write and its SLA
    bookkeeping commit together, as in the workflow engine."""

    def __init__(self, engine: sa.Engine, app: AppModel) -> None:
        self.engine = engine
        self.app = app
        self.store: RecordStore = store_for(engine, app)
        self.clocks = SlaClocks(app)
        self.actor: Actor = actor(None, "agent", "agent", "supervisor")

    def create(self, entity: str, values: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        with self.engine.begin() as connection:
            record = self.store.create(entity, values, actor=self.actor, connection=connection)
            self.clocks.after_create(connection, entity, record, self.actor, now=now)
        return record

    def update(self, entity: str, record: dict[str, Any], changes: dict[str, Any],
               now: dt.datetime) -> dict[str, Any]:
        with self.engine.begin() as connection:
            after = self.store.update(entity, record["id"], changes, actor=self.actor,
                                      expected_version=record["row_version"],
                                      connection=connection)
            self.clocks.after_update(connection, entity, record, after, self.actor, now=now)
        return after

    def move(self, entity: str, record: dict[str, Any], state: str, transition: str,
             now: dt.datetime) -> dict[str, Any]:
        with self.engine.begin() as connection:
            after = self.store.set_state(entity, record["id"], state, actor=self.actor,
                                         expected_version=record["row_version"],
                                         connection=connection)
            self.clocks.after_transition(connection, entity, record, after, transition,
                                         self.actor, now=now)
        return after

    def clock(self, record: dict[str, Any], metric: str, entity: str = "issue") -> dict[str, Any]:
        table = pt.sla_clocks
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(table).where(
                table.c.app == self.app.name, table.c.entity == entity,
                table.c.record_id == record["id"], table.c.metric == metric,
            )).first()
        assert row is not None, f"no {metric} clock"
        values = dict(row._mapping)
        for name, value in values.items():
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                values[name] = value.replace(tzinfo=dt.UTC)
        return values

    def clock_count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(pt.sla_clocks)
                                      ).scalar_one()

    def jobs(self, kind: str | None = None) -> list[Any]:
        with self.engine.connect() as connection:
            statement = sa.select(pt.jobs).order_by(pt.jobs.c.run_at, pt.jobs.c.id)
            if kind:
                statement = statement.where(pt.jobs.c.kind == kind)
            return list(connection.execute(statement))

    def timeline(self, entity: str, record: dict[str, Any]) -> list[Any]:
        return self.store.timeline(entity, record["id"])


def utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


__all__ = ["LAB", "NY", "SHANGHAI", "Harness", "at", "lab_app", "utc", "utc_now"]
