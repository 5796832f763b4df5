"""Scheduled automation rules: the `automation_run` job for `cron` and `relative`
triggers (the private half of `automations`).

A `cron` occurrence (queued by `flowdesk.jobs.schedule`) runs its rule over the
entity's records that match `when`: `when` is translated to SQL where it can be
(`RecordStore.list(filter=...)`, else every live record is read) and evaluated
again per record, so the SQL filter only narrows. A page of `PAGE` records is
run per job, each record in a savepoint of its own (a failing record is rolled
back and logged, the others stand); a further page is a new job with the list
cursor, queued in the same transaction, so no transaction grows with the table.

A `relative` rule (`3 days before contract_end`) is scanned every `SCAN_MINUTES`
minutes: `schedule_relative_scans` (called by the worker's scheduler with the
cron rules, every minute) queues one `automation_run` per rule and slot, keyed
by the slot, so any number of schedulers queue it once. A scan runs the rule on
records whose moment (the date field plus or minus the offset) lies within the
last `LOOKBACK` and which it has not run on for that value of the field (a
moved date runs again). So a rule fires between 0 and `SCAN_MINUTES` minutes
(plus the worker's poll) after its moment; a record whose moment passed more than
`LOOKBACK` before any scan (a worker down for days, a rule deployed later) is not
caught up. Date fields are compared by day (the moment is that day, 00:00 UTC).

A rule without an entity (a monthly report) has no records: its `notify` steps
are queued once per occurrence; other steps need records and are refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, and_

import flowdesk.jobs.schedule as jobs_schedule
from flowdesk.jobs.handlers import register
from flowdesk.jobs.queue import Job, enqueue
from flowdesk.model._base import parse_duration
from flowdesk.model.appmodel import AppModel
from flowdesk.model.automation import Automation
from flowdesk.store import platform_tables as pt
from flowdesk.store.errors import InvalidQuery
from flowdesk.store.records import SYSTEM_ACTOR

from ._automation_log import RunEntry, aware
from ._runtime import engine_for

if TYPE_CHECKING:
    from .workflow import WorkflowEngine

__all__ = ["LOOKBACK", "PAGE", "SCAN_MINUTES", "run_automation", "schedule_relative_scans"]

PAGE = 200
SCAN_MINUTES = 5
LOOKBACK = dt.timedelta(days=1)
_log = logging.getLogger("flowdesk.automation")


@register("automation_run", replace=True)
def run_automation(connection: Connection, job: Job) -> None:
    """One occurrence (cron) or scan (relative) of a rule, one page of records."""
    payload = dict(job.payload)
    try:
        engine = engine_for(connection, payload["app"])
    except LookupError:
        _not_deployed(connection, job, payload)
        return
    from .automations import automations_of

    automations = automations_of(engine)
    rule = automations.app.automations.get(payload["rule"])
    if rule is None or not rule.enabled:
        _log.info("app %s: automation %s is gone or disabled; not run", payload["app"],
                  payload["rule"])
        return
    if rule.entity is None:
        _run_without_records(engine, connection, rule, payload)
        return
    _run_page(engine, connection, rule, payload)


def _run_page(engine: WorkflowEngine, connection: Connection, rule: Automation,
              payload: dict[str, Any]) -> None:
    from .automations import automations_of

    automations = automations_of(engine)
    relative = rule.trigger.relative is not None
    now = engine.clock()
    where = _relative_window(engine, rule, now) if relative else None
    page = _list(engine, connection, rule, where, payload.get("cursor"))
    records = page.items
    keys: dict[int, str] = {}
    if relative:
        field = rule.trigger.relative.field  # type: ignore[union-attr]
        keys = {r["id"]: _key(r[field]) for r in records}
        done = automations.log.already(connection, rule.name, rule.entity or "", keys)
        records = [r for r in records if r["id"] not in done]
    trigger = "relative" if relative else "cron"
    for record in records:
        key = keys.get(record["id"]) if relative else payload.get("at")
        automations.run_rule(engine, connection, rule, record, SYSTEM_ACTOR, trigger=trigger,
                             trigger_key=key)
    if page.next_cursor is not None:
        following = {**payload, "cursor": page.next_cursor, "page": payload.get("page", 0) + 1}
        enqueue(connection, "automation_run", following, run_at=now,
                idempotency_key=f"automation_run:{payload['app']}:{rule.name}:"
                                f"{payload.get('at')}:p{following['page']}"[:200])


def _list(engine: WorkflowEngine, connection: Connection, rule: Automation,
          where: ColumnElement[bool] | None, cursor: str | None) -> Any:
    """A page of the rule's candidate records: `when` in SQL when it translates."""
    entity = rule.entity or ""
    try:
        return engine.store.list(entity, filter=rule.when, sort=["id"], limit=PAGE,
                                 cursor=cursor, where=where, connection=connection)
    except InvalidQuery:
        if rule.when is None:
            raise
        return engine.store.list(entity, sort=["id"], limit=PAGE, cursor=cursor, where=where,
                                 connection=connection)


def _relative_window(engine: WorkflowEngine, rule: Automation, now: dt.datetime
                     ) -> ColumnElement[bool]:
    """Records whose moment (field -/+ offset) lies in (now - LOOKBACK, now]."""
    relative = rule.trigger.relative
    assert relative is not None
    column = engine.store.table(rule.entity or "").c[relative.field]
    offset = parse_duration(relative.after) if relative.after else -parse_duration(
        relative.before or "0s")
    latest, earliest = now - offset, now - offset - LOOKBACK
    spec = engine.app.entities[rule.entity or ""].fields[relative.field]
    if getattr(spec, "type", None) == "date":
        return and_(column <= latest.date(), column > earliest.date())
    return and_(column <= latest, column > earliest)


def _key(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = aware(value).astimezone(dt.UTC)  # type: ignore[union-attr]
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _run_without_records(engine: WorkflowEngine, connection: Connection, rule: Automation,
                         payload: dict[str, Any]) -> None:
    """An entity-less rule: queue its `notify` steps once for the occurrence."""
    from .automations import automations_of

    began, now = time.perf_counter(), engine.clock()
    entry = RunEntry(rule.name, None, None, "cron", 1, payload.get("at"))
    for index, step in enumerate(rule.do):
        key, spec = step.chosen if getattr(step, "if_", None) is None else ("if", None)
        if key != "notify":
            entry.outcome = "failed"
            entry.error = f"/do/{index}: `{key}` needs records; give the rule an `entity`"
            continue
        to = [p if isinstance(p, str) else p.model_dump(exclude_none=True)
              for p in (spec.to or [])]
        job = {"app": engine.app.name, "entity": None, "record_id": None,
               "template": spec.template, "recipients": None, "to": to, "emails": []}
        raw = f"{engine.app.name}:{rule.name}:{payload.get('at')}:{index}"
        enqueue(connection, "notify.send", job, run_at=now,
                idempotency_key=f"notify.send:{hashlib.sha1(raw.encode()).hexdigest()}")
        entry.actions.append(f"/do/{index}/notify")
    automations_of(engine).log.write(connection, entry, now,
                                     (time.perf_counter() - began) * 1000, audit=False)


def _not_deployed(connection: Connection, job: Job, payload: dict[str, Any]) -> None:
    """No engine and no deployed version: say so where the scheduler's runs are seen."""
    _log.warning("app %s is not deployed: automation %s not run", payload["app"],
                 payload["rule"])
    connection.execute(pt.audit.insert().values(
        app=payload["app"], entity=jobs_schedule.AUDIT_ENTITY, record_id=job.id,
        action="automation_run", actor="flowdesk.jobs", at=aware(job.run_at),
        changes={"rule": payload["rule"], "trigger": payload.get("trigger"),
                 "at": payload.get("at")},
        comment="automation due, but the app is not deployed: not run",
    ))


def schedule_relative_scans(connection: Connection, app: AppModel,
                            now: dt.datetime | None = None) -> list[jobs_schedule.Scheduled]:
    """Queue this slot's scan of every enabled relative rule of `app` (idempotent)."""
    now = now or dt.datetime.now(dt.UTC)
    slot = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    slot -= dt.timedelta(minutes=slot.minute % SCAN_MINUTES)
    found = []
    for name, rule in sorted(app.automations.items()):
        if not rule.enabled or rule.trigger.relative is None or rule.entity is None:
            continue
        at = slot.isoformat()
        job_id = enqueue(connection, "automation_run",
                         {"app": app.name, "rule": name, "trigger": "relative", "at": at},
                         run_at=slot, idempotency_key=f"automation_run:{app.name}:{name}:{at}")
        found.append(jobs_schedule.Scheduled(app.name, name, slot, job_id))
    return found


if schedule_relative_scans not in jobs_schedule.app_schedulers:
    jobs_schedule.app_schedulers.append(schedule_relative_scans)
