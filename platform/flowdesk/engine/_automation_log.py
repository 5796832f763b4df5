"""The run log of automation rules (`fd_automation_runs`): what each run evaluated and
did, and the counters loop protection reads (runs per record within a window, the
last run for a cooldown).

One row per run *and* per refusal (`depth`, `max-runs`, `cooldown`), so an analyst
can see why a rule did not run. A rule whose `when` does not hold leaves no row:
that is the common case and would bury the runs. Runs are also put on the record's
timeline as `automation` audit rows (`timeline_row`); cooldown refusals are not,
being routine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from flowdesk.store import platform_tables as pt
from flowdesk.store.audit import AuditLog

__all__ = ["ACTOR", "RAN", "RunEntry", "RunLog", "aware"]

ACTOR = "flowdesk.automation"  # fd_audit.actor of automation rows
RAN = ("done", "stopped", "failed")
"""Outcomes that count as a run for `max_runs` and `cooldown` (refusals do not)."""
_ON_TIMELINE = frozenset({"done", "stopped", "failed", "depth", "max-runs"})


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns instants without an offset; they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


@dataclass
class RunEntry:
    """One run of one rule on one record (or on no record: an entity-less cron rule)."""

    rule: str
    entity: str | None
    record_id: int | None
    trigger: str
    depth: int
    trigger_key: str | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    outcome: str = "done"
    error: str | None = None


class RunLog:
    """Reads and writes one app's automation runs."""

    def __init__(self, app: str) -> None:
        self.app = app
        self._audit = AuditLog(app)

    def write(self, conn: Connection, entry: RunEntry, at: dt.datetime, duration_ms: float,
              *, audit: bool) -> None:
        """The run's row, and its timeline row when `audit` (the entity keeps audit rows)."""
        conn.execute(pt.automation_runs.insert().values(
            app=self.app, rule=entry.rule, entity=entry.entity, record_id=entry.record_id,
            trigger=entry.trigger, trigger_key=entry.trigger_key, at=at, depth=entry.depth,
            outcome=entry.outcome, conditions=entry.conditions, actions=entry.actions,
            duration_ms=round(duration_ms, 3), error=entry.error,
        ))
        if audit and entry.record_id is not None and entry.outcome in _ON_TIMELINE:
            self._audit.write(conn, [self.timeline_row(entry, at)])

    def timeline_row(self, entry: RunEntry, at: dt.datetime) -> dict[str, Any]:
        changes = {"rule": {"old": None, "new": entry.rule},
                   "outcome": {"old": None, "new": entry.outcome}}
        return self._audit.row(entry.entity, entry.record_id, "automation", actor_id=None,
                               actor=ACTOR, at=at, changes=changes,
                               comment=entry.error or _summary(entry))

    def recent(self, conn: Connection, rule: str, entity: str, record_id: int,
               since: dt.datetime) -> tuple[int, dt.datetime | None]:
        """(runs since `since`, the last run ever) of a rule on a record: one query."""
        runs = pt.automation_runs
        row = conn.execute(select(
            func.count().filter(runs.c.at >= since), func.max(runs.c.at),
        ).where(runs.c.app == self.app, runs.c.rule == rule, runs.c.entity == entity,
                runs.c.record_id == record_id, runs.c.outcome.in_(RAN))).one()
        return int(row[0] or 0), aware(row[1])

    def already(self, conn: Connection, rule: str, entity: str, keys: dict[int, str]
                ) -> set[int]:
        """Records among `keys` (id -> trigger key) the rule already ran on for that key
        (a relative trigger runs once per value of its date field)."""
        if not keys:
            return set()
        runs = pt.automation_runs
        rows = conn.execute(select(runs.c.record_id, runs.c.trigger_key).where(
            runs.c.app == self.app, runs.c.rule == rule, runs.c.entity == entity,
            runs.c.record_id.in_(list(keys)), runs.c.outcome.in_(RAN)))
        return {r.record_id for r in rows if keys.get(r.record_id) == r.trigger_key}


def runs_of(conn: Connection, app: str, *, rule: str | None = None, entity: str | None = None,
            record_id: int | None = None) -> Sequence[Any]:
    """Run log rows, oldest first, narrowed by rule / entity / record."""
    runs = pt.automation_runs
    statement = select(runs).where(runs.c.app == app).order_by(runs.c.id)
    if rule is not None:
        statement = statement.where(runs.c.rule == rule)
    if entity is not None:
        statement = statement.where(runs.c.entity == entity)
    if record_id is not None:
        statement = statement.where(runs.c.record_id == record_id)
    return conn.execute(statement).all()


def _summary(entry: RunEntry) -> str:
    done = ", ".join(a.rsplit("/", 1)[-1] for a in entry.actions) or "nothing"
    return f"automation {entry.rule} ({entry.trigger}): {entry.outcome}; did {done}"
