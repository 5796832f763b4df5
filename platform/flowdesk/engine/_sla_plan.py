"""What `SlaClocks` decides once per app version: each SLA's metrics, targets,
conditions, pause and stop states, and calendar.

`SlaPlan.target_for(record)` picks the target (first `when` that holds, else
the target without `when`); `MetricPlan` answers "has it started / should it
stop / should it pause" for a record. Conditions are the linker's compiled CEL
(`AppModel.expression("SLA", name, pointer)`), given the record as expressions
see it (`record_view`). A condition that fails at run time counts as false,
like a filter that does not select the row ("null in, null out" in the store).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowdesk.expressions import CompiledExpression, ExpressionEvalError
from flowdesk.model._base import parse_duration
from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import Entity
from flowdesk.model.sla import SLA
from flowdesk.model.workflow import Workflow

from .calendar import BusinessCalendar

__all__ = ["Condition", "MetricPlan", "SlaPlan", "TargetPlan", "paused_states", "record_view"]

_REFERENCE_TYPES = ("reference", "references", "user", "attachment")
_ALWAYS = BusinessCalendar("always", "UTC", (((0, 1440),),) * 7)


def record_view(entity: Entity, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as expressions see it: references as `{"id": ...}` objects.

    Paths through references (`record.asset.contract_level`) are loaded on top of
    this by `SlaClocks` when it has the app's store (`clocks_for(app, store)`).
    """
    view = dict(record)
    for name, spec in entity.fields.items():
        kind = getattr(spec, "type", None)
        value = record.get(name)
        if kind in _REFERENCE_TYPES and value is not None:
            multiple = kind == "references" or getattr(spec, "multiple", False)
            view[name] = [{"id": v} for v in value] if multiple else {"id": value}
    for name in ("assignee", "created_by", "updated_by"):
        if record.get(name) is not None:
            view[name] = {"id": record[name]}
    return view


@dataclass(frozen=True)
class Condition:
    """A compiled SLA condition: true, false, or false when it cannot be evaluated."""

    expression: CompiledExpression

    def holds(self, view: Mapping[str, Any], now: dt.datetime) -> bool:
        try:
            return self.expression.evaluate({"record": view, "user": {}, "now": now}) is True
        except ExpressionEvalError:
            return False


@dataclass(frozen=True)
class TargetPlan:
    name: str
    when: Condition | None
    goals: Mapping[str, int]  # metric -> seconds


@dataclass(frozen=True)
class MetricPlan:
    """One metric of one SLA: when its clock starts, pauses and stops."""

    name: str
    start: Condition | None
    stop_in: frozenset[str]
    stop_when: Condition | None
    pause_in: frozenset[str]
    reset_on: frozenset[str]

    def starts(self, view: Mapping[str, Any], now: dt.datetime) -> bool:
        return self.start is None or self.start.holds(view, now)

    def stops(self, view: Mapping[str, Any], now: dt.datetime) -> bool:
        if view.get("state") in self.stop_in:
            return True
        return self.stop_when is not None and self.stop_when.holds(view, now)

    def pauses(self, state: str | None) -> bool:
        return state in self.pause_in


@dataclass(frozen=True)
class SlaPlan:
    """One SLA document, decided once: targets in order, metrics, calendar, escalations."""

    name: str
    entity: Entity
    document: SLA
    targets: tuple[TargetPlan, ...]
    metrics: Mapping[str, MetricPlan]
    calendar: BusinessCalendar
    warnings: tuple[int, ...]

    def target_for(self, view: Mapping[str, Any], now: dt.datetime) -> TargetPlan | None:
        """The first target whose `when` holds; one without `when` always matches."""
        for target in self.targets:
            if target.when is None or target.when.holds(view, now):
                return target
        return None

    @classmethod
    def build(
        cls, app: AppModel, sla: SLA, calendars: Mapping[str, BusinessCalendar]
    ) -> SlaPlan:
        def condition(pointer: str, text: str | None) -> Condition | None:
            return None if text is None else Condition(app.expression("SLA", sla.name, pointer))

        workflow = app.workflows.get(sla.workflow) if sla.workflow else app.workflow_for(sla.entity)
        metrics = {
            name: MetricPlan(
                name,
                condition(f"/metrics/{name}/start", metric.start),
                frozenset(metric.stop_in),
                condition(f"/metrics/{name}/stop_when", metric.stop_when),
                frozenset(metric.pause_in)
                if metric.pause_in is not None
                else paused_states(workflow),
                frozenset(metric.reset_on),
            )
            for name, metric in sla.metrics.items()
        }
        targets = tuple(
            TargetPlan(
                target.name,
                condition(f"/targets/{index}/when", target.when),
                {m: int(_seconds(goal)) for m, goal in target.goals.items()},
            )
            for index, target in enumerate(sla.targets)
        )
        return cls(
            sla.name,
            app.entities[sla.entity],
            sla,
            targets,
            metrics,
            calendar_for(app, sla.calendar, calendars),
            tuple(sla.warnings),
        )


def paused_states(workflow: Workflow | None) -> frozenset[str]:
    """States where clocks pause when a metric names none: `sla: paused`, or the
    `waiting` states that do not say `sla: running`."""
    if workflow is None:
        return frozenset()
    paused = set()
    for name, state in workflow.states.items():
        override = getattr(state, "sla", None)
        if override == "paused" or (override is None and state.category == "waiting"):
            paused.add(name)
    return frozenset(paused)


def calendar_for(
    app: AppModel, name: str | None, cache: Mapping[str, BusinessCalendar]
) -> BusinessCalendar:
    """The SLA's calendar, else the app's, else round the clock (UTC)."""
    name = name or getattr(app.manifest, "calendar", None)
    if not name:
        return _ALWAYS
    if name in cache:
        return cache[name]
    return BusinessCalendar.from_app(app, name)


def _seconds(goal: Any) -> float:
    """A goal as the model holds it (`timedelta`, or a duration text) in seconds of
    working time: `1d` is 24 working hours, not one working day."""
    if isinstance(goal, dt.timedelta):
        return goal.total_seconds()
    return parse_duration(goal).total_seconds()
