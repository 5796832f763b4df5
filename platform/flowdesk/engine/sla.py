"""SLA clocks: response and resolution goals counted in business time, per record.

`SlaClocks(app)` is built once per app version (`clocks_for(app)` caches it by
content hash). The workflow engine calls it as an *observer* inside the
transaction of every record write, with `after_create`, `after_update` and
`after_transition`; each call brings the record's clocks up to date:

* **target**: the first target of each SLA whose `when` holds (else the one
  without `when`) gives each metric its goal. When the record changes (priority
  raised) the target is chosen again: the goal changes, the elapsed time stays.
* **start**: on creation, or at the first write where the metric's `start`
  holds. A metric the target gives no goal has no clock.
* **pause**: while the record is in one of `pause_in` (default: the workflow's
  states with `sla: paused`, and its `waiting` states unless `sla: running`).
* **stop**: on entering a `stop_in` state or when `stop_when` holds; the clock
  then records whether its goal was `attained`. Stopped clocks never run again,
  except through `reset_on`: those transitions restart the clock from zero.

Time is business time on the SLA's calendar (default: the app's; without one,
round the clock). The clock's row (`fd_sla_clocks`, see `_sla_clock`) holds
the elapsed time of finished runs; timer jobs (`sla.warning`, `sla.breach`,
see `_sla_timers`) fire at the instants the current run reaches each threshold
and turn the status amber or red. Escalations run through `run_actions`, a
module attribute the integrator replaces with the workflow engine's action
runner; until then escalations are written to the record's timeline.

Reads: `clock_status` (per clock, for the API and UI), `sla_fields` (a summary
to show on a record) and `retiming_impact` (what a new app version would do to
open clocks, for `flowdesk plan`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from flowdesk.jobs.handlers import register
from flowdesk.jobs.queue import Job
from flowdesk.model.appmodel import AppModel
from flowdesk.store import platform_tables as pt
from flowdesk.store.snapshots import SnapshotError, load_active, load_version

from . import _sla_timers as timers
from ._sla_clock import Clock, load_clocks, save_clock
from ._sla_plan import MetricPlan, SlaPlan, TargetPlan, record_view
from .calendar import BusinessCalendar

__all__ = [
    "ClockStatus",
    "SlaClocks",
    "clock_status",
    "clocks_for",
    "event_listeners",
    "retiming_impact",
    "run_actions",
    "sla_fields",
]

_log = logging.getLogger("flowdesk.sla")

run_actions: timers.ActionRunner = timers.record_escalation
"""Runs an escalation's actions: `run_actions(connection, app, entity, record_id, actions)`.
Replace it with the workflow engine's action runner; the default records the
escalation on the record's timeline only."""


class SlaClocks:
    """The SLA clocks of one app version: an observer of record writes.

    Args:
        app: the compiled app.
        calendars: business calendars already built for this app version, by
            name (they cache a year's working time; sharing them saves that).
    """

    def __init__(
        self, app: AppModel, *, calendars: Mapping[str, BusinessCalendar] | None = None
    ) -> None:
        self.app = app
        cache = dict(calendars or {})
        self.plans: dict[str, list[SlaPlan]] = {}
        for sla in app.slas.values():
            plan = SlaPlan.build(app, sla, cache)
            cache.setdefault(sla.calendar or "", plan.calendar)
            self.plans.setdefault(sla.entity, []).append(plan)
        _KNOWN[(app.name, app.version, app.content_hash)] = self
        self.store: Any = None  # a RecordStore of this app: loads references conditions read
        self._paths = {entity: _reference_paths(app, entity) for entity in self.plans}

    def plan(self, sla: str) -> SlaPlan | None:
        return next((p for ps in self.plans.values() for p in ps if p.name == sla), None)

    # ------------------------------------------------------------------ observer hooks

    def after_create(
        self, connection: Connection, entity: str, record: Mapping[str, Any], actor: Any,
        *, now: dt.datetime | None = None,
    ) -> None:
        """Start the clocks of a new record (at its `created_at`)."""
        self._observe(connection, entity, record, now or record.get("created_at"), None)

    def after_update(
        self, connection: Connection, entity: str, before: Mapping[str, Any],
        after: Mapping[str, Any], actor: Any, *, now: dt.datetime | None = None,
    ) -> None:
        """Re-target, start, pause, resume or stop after a change of fields."""
        self._observe(connection, entity, after, now or after.get("updated_at"), None)

    def after_transition(
        self, connection: Connection, entity: str, before: Mapping[str, Any],
        after: Mapping[str, Any], transition: str | None, actor: Any,
        *, now: dt.datetime | None = None,
    ) -> None:
        """Like `after_update`, and reset the metrics whose `reset_on` names `transition`."""
        self._observe(connection, entity, after, now or after.get("updated_at"), transition)

    # ------------------------------------------------------------------ the work

    def _observe(
        self, connection: Connection, entity: str, record: Mapping[str, Any],
        now: dt.datetime | None, transition: str | None,
    ) -> None:
        plans = self.plans.get(entity)
        if not plans or record.get("id") is None:
            return
        now = _aware(now)
        view = record_view(plans[0].entity, record)
        paths = self._paths.get(entity)
        if paths and self.store is not None:  # e.g. `record.asset.contract_level`
            loaded = self.store.expression_view(entity, record, paths, connection=connection)
            view.update({path[1]: loaded[path[1]] for path in paths if path[1] in loaded})
        stored = {(c.sla, c.metric): c for c in load_clocks(connection, self.app.name, entity,
                                                               record["id"])}
        for plan in plans:
            target = plan.target_for(view, now)
            for metric in plan.metrics.values():
                clock = stored.get((plan.name, metric.name))
                self._step(connection, plan, metric, target, clock, view, now, transition)

    def _step(
        self, connection: Connection, plan: SlaPlan, metric: MetricPlan,
        target: TargetPlan | None, clock: Clock | None, view: Mapping[str, Any],
        now: dt.datetime, transition: str | None,
    ) -> None:
        calendar = plan.calendar
        goal = target.goals.get(metric.name) if target is not None else None
        if clock is None:
            if goal is None or not metric.starts(view, now):
                return
            clock = Clock(self.app.name, plan.entity.name, int(view["id"]), plan.name,
                          metric.name, target.name, goal, self.app.version)  # type: ignore[union-attr]
            clock.start(now, calendar)
            before: dict[str, Any] | None = None
        else:
            before = clock.values()
            if transition is not None and transition in metric.reset_on:
                clock.reset(now, calendar)
            elif clock.stopped:
                return
        if goal is not None and (target.name, goal) != (clock.target, clock.goal_seconds):  # type: ignore[union-attr]
            clock.retarget(target.name, goal, now, calendar)  # type: ignore[union-attr]
        if metric.stops(view, now):
            clock.stop(now, calendar)
        elif metric.pauses(view.get("state")):
            if clock.running:
                clock.pause(now, calendar)
        elif clock.paused:
            clock.resume(now, calendar)
        if clock.values() == before:
            return
        save_clock(connection, clock, now)
        if before is None or clock.run != before["run"]:
            timers.enqueue_timers(connection, clock, plan, self.app.content_hash)


_KNOWN: dict[tuple[str, str, str], SlaClocks] = {}


def clocks_for(app: AppModel, store: Any = None) -> SlaClocks:
    """The `SlaClocks` of `app`, built on first use per app version. With `store` (a
    `RecordStore` of the app) conditions may read through references; the store is
    only asked to load them on the observed transaction's connection."""
    known = _KNOWN.get((app.name, app.version, app.content_hash))
    clocks = known if known is not None else SlaClocks(app)
    if store is not None:
        clocks.store = store
    return clocks


def _reference_paths(app: AppModel, entity: str) -> frozenset[tuple[str, ...]]:
    """The paths through references that the SLA conditions of `entity` read (empty:
    the record's own fields are enough and nothing is loaded)."""
    slas = {name for name, sla in app.slas.items() if sla.entity == entity}
    paths = {path for (kind, name, _pointer), expression in app.expressions.items()
             if kind == "SLA" and name in slas for path in expression.names}
    fields = app.entities[entity].fields
    deep = {path for path in paths if len(path) > 2 and path[0] == "record"
            and getattr(fields.get(path[1]), "type", None) in ("reference", "user")}
    return frozenset(deep)


def _aware(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError(f"an SLA instant must be timezone-aware, got {now!r}")
    return now


# --------------------------------------------------------------------------- timers


def _resolve(connection: Connection, payload: dict[str, Any]) -> tuple[AppModel, SlaPlan] | None:
    """The app version a timer was queued for: built in this process, else the
    deployed version it names, else the active one."""
    name, version = payload["app"], payload.get("version")
    clocks = _KNOWN.get((name, version, payload.get("content_hash")))
    if clocks is None:
        clocks = next((c for (n, v, _h), c in _KNOWN.items() if (n, v) == (name, version)), None)
    if clocks is None:
        try:
            app = load_version(connection, name, version) if version else None
        except SnapshotError:
            app = None
        app = app or load_active(connection, name)
        if app is None:
            return None
        clocks = clocks_for(app)
    plan = clocks.plan(payload["sla"])
    return None if plan is None else (clocks.app, plan)


event_listeners: list[Callable[[Connection, str, str, int, str], None]] = []
"""Told `(connection, app, entity, record_id, event)` when a timer fires, `event` being
`sla_warning` or `sla_breach` (automation rules on those events listen here)."""


def _announce(connection: Connection, job: Job, event: str) -> None:
    p = job.payload
    for listener in event_listeners:
        listener(connection, p["app"], p["entity"], int(p["record_id"]), event)


@register(timers.WARNING)
def on_warning(connection: Connection, job: Job) -> None:
    """A clock reached a warning or escalation percentage of its goal."""
    if timers.fire(connection, job, _resolve, run_actions):
        _announce(connection, job, "sla_warning")


@register(timers.BREACH)
def on_breach(connection: Connection, job: Job) -> None:
    """A clock reached its goal without stopping: breached."""
    if timers.fire(connection, job, _resolve, run_actions):
        _announce(connection, job, "sla_breach")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ClockStatus:
    """One clock as the API and the UI show it (durations in business time)."""

    sla: str
    metric: str
    target: str
    goal: dt.timedelta
    due_at: dt.datetime | None
    elapsed: dt.timedelta
    remaining: dt.timedelta
    status: str
    breached: bool
    paused: bool
    stopped: bool
    attained: bool | None


def clock_status(
    connection: Connection, app: AppModel, entity: str, record_id: int,
    now: dt.datetime | None = None,
) -> list[ClockStatus]:
    """The clocks of one record as of `now` (default: the current time)."""
    now = _aware(now)
    clocks = clocks_for(app)
    found = []
    for clock in load_clocks(connection, app.name, entity, record_id, lock=False):
        plan = clocks.plan(clock.sla)
        calendar = plan.calendar if plan is not None else BusinessCalendar.from_app(app)
        elapsed = dt.timedelta(seconds=clock.elapsed(calendar, now))
        goal = dt.timedelta(seconds=clock.goal_seconds)
        found.append(ClockStatus(
            clock.sla, clock.metric, clock.target, goal, clock.due_at, elapsed,
            max(goal - elapsed, dt.timedelta(0)), clock.status, clock.breached, clock.paused,
            clock.stopped, clock.attained,
        ))
    return found


_RANK = {"green": 0, "amber": 1, "red": 2}


def sla_fields(statuses: Sequence[ClockStatus]) -> dict[str, Any]:
    """What a record shows of its clocks: the worst status, the next due instant of a
    running clock, and whether any clock breached or any is paused."""
    running = [s.due_at for s in statuses if s.due_at and not s.stopped and not s.paused]
    worst = max((s.status for s in statuses), key=_RANK.__getitem__, default=None)
    return {
        "sla_status": worst,
        "sla_due_at": min(running) if running else None,
        "sla_breached": any(s.breached for s in statuses),
        "sla_paused": any(s.paused for s in statuses),
    }


# --------------------------------------------------------------------------- re-timing


def retiming_impact(
    connection: Connection, old_app: AppModel | None, new_app: AppModel,
    now: dt.datetime | None = None,
) -> dict[str, tuple[int, int]]:
    """What deploying `new_app` would do to the open clocks of the app.

    Returns `{entity: (open clocks whose goal or due instant changes, clocks that
    would flip to breached)}` for entities with at least one re-timed clock. The
    new version's target of the same name gives the goal (else its last target);
    the current run is counted on the new calendar. Stopped clocks are never
    re-timed; neither is a clock whose SLA or metric the new version drops.
    """
    now = _aware(now)
    new = clocks_for(new_app)
    table = pt.sla_clocks
    rows = connection.execute(
        select(table.c.entity, table.c.record_id).where(
            table.c.app == new_app.name, table.c.stopped_at.is_(None)
        ).distinct()
    ).all()
    impact: dict[str, tuple[int, int]] = {}
    for entity, record_id in rows:
        for clock in load_clocks(connection, new_app.name, entity, record_id, lock=False):
            changed, breaches = _retimed(clock, new.plan(clock.sla), now)
            if changed:
                count, flips = impact.get(entity, (0, 0))
                impact[entity] = (count + 1, flips + int(breaches))
    return impact


def _retimed(clock: Clock, plan: SlaPlan | None, now: dt.datetime) -> tuple[bool, bool]:
    if clock.stopped or plan is None or clock.metric not in plan.metrics:
        return False, False
    target = next((t for t in plan.targets if t.name == clock.target), plan.targets[-1])
    goal = target.goals.get(clock.metric)
    if goal is None:
        return False, False
    after = Clock(**{**clock.values(), "id": clock.id})
    after.goal_seconds = goal
    if after.running:
        after.due_at = after.instant_of(plan.calendar, goal)
    changed = (after.goal_seconds, after.due_at) != (clock.goal_seconds, clock.due_at)
    breaches = not clock.breached and after.elapsed(plan.calendar, now) >= goal
    return changed, changed and breaches
