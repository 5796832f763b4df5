"""Linker checks for SLAs: states and transitions of the workflow, metrics
named by targets, conditions, calendars and escalation actions."""

from __future__ import annotations

from flowdesk.expressions import BOOL

from ..diagnostics import did_you_mean
from ..sla import SLA
from ..workflow import Workflow
from .actions import check_actions
from .context import LinkContext, ParsedDocument
from .types import record_scope

__all__ = ["check"]


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("SLA").values():
        sla: SLA = doc.model
        entity = ctx.resolve(doc, "/entity", "Entity", sla.entity)
        workflow = _workflow(ctx, doc, sla)
        if sla.calendar:
            ctx.resolve(doc, "/calendar", "Calendar", sla.calendar)
        scope = record_scope(ctx, sla.entity)
        for name, metric in sla.metrics.items():
            here = f"/metrics/{name}"
            for key in ("stop_in", "pause_in"):
                for index, state in enumerate(getattr(metric, key) or []):
                    _require_state(ctx, doc, f"{here}/{key}/{index}", workflow, state)
            for index, transition in enumerate(metric.reset_on):
                _require_transition(ctx, doc, f"{here}/reset_on/{index}", workflow, transition)
            for key in ("start", "stop_when"):
                if getattr(metric, key):
                    ctx.compile(doc, f"{here}/{key}", getattr(metric, key), scope, expect=BOOL)
            if not metric.stop_in and not metric.stop_when:
                ctx.error(
                    doc,
                    here,
                    "metric-never-stops",
                    f"metric `{name}` has neither `stop_in` nor `stop_when`",
                    key=True,
                )
        _check_targets(ctx, doc, sla, scope)
        _check_warnings(ctx, doc, sla)
        for index, escalation in enumerate(sla.escalations):
            here = f"/escalations/{index}"
            if escalation.metric and escalation.metric not in sla.metrics:
                _unknown_metric(ctx, doc, here + "/metric", sla, escalation.metric)
            check_actions(ctx, doc, here + "/actions", escalation.actions, entity, scope)


def _workflow(ctx: LinkContext, doc: ParsedDocument, sla: SLA) -> Workflow | None:
    if sla.workflow:
        return ctx.resolve(doc, "/workflow", "Workflow", sla.workflow)
    return next(
        (d.model for d in ctx.of_kind("Workflow").values() if d.model.entity == sla.entity), None
    )


def _require_state(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, workflow: Workflow | None, state: str
) -> None:
    if workflow is None:
        if not ctx.open_world and sla_entity_known(ctx, doc):
            ctx.error(
                doc, pointer, "no-workflow", "states are named but the entity has no workflow"
            )
        return
    if state not in workflow.states:
        ctx.error(
            doc,
            pointer,
            "unknown-state",
            f"unknown state `{state}` in workflow `{workflow.name}`",
            did_you_mean(state, workflow.states),
        )


def sla_entity_known(ctx: LinkContext, doc: ParsedDocument) -> bool:
    return doc.model.entity in ctx.of_kind("Entity")


def _require_transition(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, workflow: Workflow | None, name: str
) -> None:
    if workflow is not None and name not in workflow.transitions:
        ctx.error(
            doc,
            pointer,
            "unknown-transition",
            f"unknown transition `{name}` in workflow `{workflow.name}`",
            did_you_mean(name, workflow.transitions),
        )


def _unknown_metric(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, sla: SLA, name: str
) -> None:
    ctx.error(
        doc,
        pointer,
        "unknown-metric",
        f"unknown metric `{name}`",
        did_you_mean(name, sla.metrics) or "metrics: " + ", ".join(sla.metrics),
    )


def _check_targets(ctx: LinkContext, doc: ParsedDocument, sla: SLA, scope: dict) -> None:  # type: ignore[type-arg]
    names: set[str] = set()
    for index, target in enumerate(sla.targets):
        here = f"/targets/{index}"
        if target.name in names:
            ctx.error(doc, here + "/name", "duplicate-name", f"target `{target.name}` is repeated")
        names.add(target.name)
        if target.when:
            ctx.compile(doc, here + "/when", target.when, scope, expect=BOOL)
        for metric in target.goals:
            if metric not in sla.metrics:
                ctx.error(
                    doc,
                    f"{here}/goals/{metric}",
                    "unknown-metric",
                    f"unknown metric `{metric}`",
                    did_you_mean(metric, sla.metrics) or "metrics: " + ", ".join(sla.metrics),
                    key=True,
                )
    if sla.targets[-1].when is not None:
        ctx.warn(
            doc,
            f"/targets/{len(sla.targets) - 1}",
            "sla-no-default",
            "records matching no target get no SLA",
            "end the list with a target without `when`",
        )


def _check_warnings(ctx: LinkContext, doc: ParsedDocument, sla: SLA) -> None:
    if any(not 0 < w < 100 for w in sla.warnings) or sla.warnings != sorted(set(sla.warnings)):
        ctx.error(
            doc,
            "/warnings",
            "invalid-warnings",
            "warnings are increasing percentages between 1 and 99, e.g. `[50, 80]`",
        )
