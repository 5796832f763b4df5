"""SLA timers: the `sla.warning` and `sla.breach` jobs of a running clock, and what
happens when one comes due.

A running clock has one job per threshold not yet fired (each warning
percentage and each escalation percentage) and one for the breach, at the
business-time instant the clock reaches it. Their idempotency key names the
clock's run (`sla:<app>:<entity>:<id>:<sla>:<metric>:r<run>:<at>`), so the same
run enqueues them once however often the record is saved, and a new run
(resume, re-target, reset) enqueues a fresh set. The old jobs stay queued and
are recognised as stale when they come due: their run is not the clock's.

Firing a timer happens in the job's transaction: the clock is updated (amber at
a warning, red and `breached` at the breach), an audit row goes on the
record's timeline, and the escalations whose `at` matches run through the
pluggable action runner. A timer fires at most once per clock (a fired
percentage is remembered in `warned`), so a repeated job does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from flowdesk.jobs.queue import Job, enqueue
from flowdesk.model.action import Action
from flowdesk.model.appmodel import AppModel
from flowdesk.store.audit import AuditLog

from ._sla_clock import Clock, load_clock, save_clock
from ._sla_plan import SlaPlan

__all__ = ["ACTOR", "BREACH", "WARNING", "ActionRunner", "enqueue_timers", "fire", "thresholds"]

WARNING, BREACH = "sla.warning", "sla.breach"
ACTOR = "flowdesk.sla"  # fd_audit.actor of what the SLA timers do
ActionRunner = Callable[[Connection, AppModel, str, int, Sequence[Action]], None]
_log = logging.getLogger("flowdesk.sla")


def thresholds(plan: SlaPlan) -> tuple[int, ...]:
    """Percentages that need a timer: the warnings and the escalations' `at` numbers."""
    found = set(plan.warnings)
    found.update(e.at for e in plan.document.escalations if isinstance(e.at, int))
    return tuple(sorted(found))


def _key(clock: Clock, at: str) -> str:
    return (
        f"sla:{clock.app}:{clock.entity}:{clock.record_id}:{clock.sla}:{clock.metric}"
        f":r{clock.run}:{at}"
    )


def enqueue_timers(connection: Connection, clock: Clock, plan: SlaPlan, content_hash: str) -> None:
    """Queue the next timer of the clock's current run: its earliest warning or
    escalation threshold not fired yet, else its breach. Each timer, when it fires,
    queues the one after it (`fire`), so a clock holds one job row at a time instead of
    one per threshold (a ticket's creation wrote six; bench/README.md)."""
    if not clock.running:
        return
    pending = [(percent, f"w{percent}") for percent in thresholds(plan)
               if percent not in clock.warned]
    if not clock.breached:
        pending.append((100, "breach"))
    if not pending:
        return
    percent, name = min(pending, key=lambda item: (item[0], item[1] != "breach"))
    payload = {
        "app": clock.app,
        "version": clock.definition_version,
        "content_hash": content_hash,
        "entity": clock.entity,
        "record_id": clock.record_id,
        "sla": clock.sla,
        "metric": clock.metric,
        "run": clock.run,
    }
    if name == "breach":
        enqueue(connection, BREACH, {**payload, "at": "breach"}, run_at=clock.due_at,
                idempotency_key=_key(clock, "breach"))
        return
    at = clock.instant_of(plan.calendar, clock.goal_seconds * percent / 100)
    enqueue(connection, WARNING, {**payload, "at": percent}, run_at=at,
            idempotency_key=_key(clock, name))


def fire(
    connection: Connection,
    job: Job,
    resolve: Callable[[Connection, dict[str, Any]], tuple[AppModel, SlaPlan] | None],
    run_actions: ActionRunner,
) -> bool:
    """Run one timer job; False when it is stale (the clock moved on) or already fired."""
    p = dict(job.payload)
    key = (p["app"], p["entity"], int(p["record_id"]), p["sla"], p["metric"])
    clock = load_clock(connection, key)
    if clock is None or clock.run != int(p["run"]) or not clock.running:
        _log.info("sla timer %s for %s: stale (the clock moved on)", job.id, key)
        return False
    at = p["at"]
    if (at == "breach" and clock.breached) or (at != "breach" and int(at) in clock.warned):
        return False
    found = resolve(connection, p)
    if found is None:
        _log.warning("sla timer %s: app %s %s or SLA %s is gone; ignored", job.id, p["app"],
                     p.get("version"), p["sla"])
        return False
    app, plan = found
    when = job.run_at
    before = clock.status
    if at == "breach":
        clock.breached, clock.breached_at, clock.status = True, when, "red"
    else:
        clock.warned = sorted({*clock.warned, int(at)})
        if int(at) in plan.warnings and clock.status == "green":
            clock.status = "amber"
    save_clock(connection, clock, when)
    _audit(connection, clock, at, before, when)
    escalations = [
        e for e in plan.document.escalations
        if e.at == (at if at == "breach" else int(at)) and e.metric in (None, clock.metric)
    ]  # fmt: skip
    for escalation in escalations:
        run_actions(connection, app, clock.entity, clock.record_id, escalation.actions)
    enqueue_timers(connection, clock, plan, p.get("content_hash") or app.content_hash)
    return True


def _audit(connection: Connection, clock: Clock, at: Any, before: str, when: dt.datetime) -> None:
    action = "sla_breach" if at == "breach" else "sla_warning"
    changes: dict[str, Any] = {
        "sla": {"old": None, "new": clock.sla},
        "metric": {"old": None, "new": clock.metric},
        "target": {"old": None, "new": clock.target},
    }
    if before != clock.status:
        changes["sla_status"] = {"old": before, "new": clock.status}
    what = "breached" if at == "breach" else f"reached {at}% of"
    comment = f"SLA {clock.sla}: {clock.metric} {what} its goal ({clock.target})"
    log = AuditLog(clock.app)
    log.write(connection, [log.row(clock.entity, clock.record_id, action, actor_id=None,
                                   actor=ACTOR, at=when, changes=changes, comment=comment)])


def record_escalation(
    connection: Connection, app: AppModel, entity: str, record_id: int, actions: Sequence[Action]
) -> None:
    """The default action runner: say on the record's timeline which actions are due.
    The workflow engine's runner replaces it (`flowdesk.engine.sla.run_actions`)."""
    names = [_action_name(action) for action in actions]
    log = AuditLog(app.name)
    row = log.row(entity, record_id, "sla_escalation", actor_id=None, actor=ACTOR,
                  at=dt.datetime.now(dt.UTC), changes={"actions": {"old": None, "new": names}},
                  comment="SLA escalation due: " + ", ".join(names))
    log.write(connection, [row])


def _action_name(action: Action) -> str:
    dumped = action.model_dump(exclude_none=True) if hasattr(action, "model_dump") else action
    if isinstance(dumped, dict) and dumped:
        return next(iter(dumped))
    return type(action).__name__
