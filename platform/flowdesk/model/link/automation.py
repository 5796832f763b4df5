"""Linker checks for automations: triggers, conditions and nested steps."""

from __future__ import annotations

from flowdesk.expressions import BOOL

from ..automation import Automation
from ..diagnostics import did_you_mean
from .actions import check_actions
from .context import LinkContext, ParsedDocument
from .entity import require_field
from .types import record_scope

__all__ = ["check"]

_STATE_EVENTS = ("state_entered", "state_left")


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("Automation").values():
        rule: Automation = doc.model
        entity = ctx.resolve(doc, "/entity", "Entity", rule.entity) if rule.entity else None
        if rule.entity is None and rule.trigger.cron is None:
            ctx.error(
                doc,
                "/trigger",
                "missing-entity",
                "an automation triggered by records needs `entity`",
                "add `entity:`",
            )
        _check_trigger(ctx, doc, rule, entity)
        scope = record_scope(ctx, rule.entity)
        if rule.when:
            ctx.compile(doc, "/when", rule.when, scope, expect=BOOL)
        check_actions(ctx, doc, "/do", rule.do, entity, scope)


def _check_trigger(ctx: LinkContext, doc: ParsedDocument, rule: Automation, entity: object) -> None:
    trigger = rule.trigger
    if trigger.cron is not None and not _valid_cron(trigger.cron):
        ctx.error(
            doc,
            "/trigger/cron",
            "invalid-cron",
            f"`{trigger.cron}` is not a cron schedule",
            "five fields: minute hour day month weekday, e.g. `0 8 1 * *`",
        )
    for index, name in enumerate(trigger.fields or []):
        require_field(ctx, doc, f"/trigger/fields/{index}", entity, name)  # type: ignore[arg-type]
    if trigger.fields and trigger.event != "updated":
        ctx.error(doc, "/trigger/fields", "trigger-fields", "`fields` only narrows `updated`")
    if trigger.state is not None:
        _check_state(ctx, doc, rule, trigger.state)
    if trigger.relative is not None:
        spec = require_field(
            ctx,
            doc,
            "/trigger/relative/field",
            entity,  # type: ignore[arg-type]
            trigger.relative.field,
        )
        if spec is not None and spec.type not in ("date", "datetime"):  # type: ignore[attr-defined]
            ctx.error(
                doc,
                "/trigger/relative/field",
                "not-a-date",
                f"field `{trigger.relative.field}` is not a date",
            )
        if (trigger.relative.before is None) == (trigger.relative.after is None):
            ctx.error(
                doc,
                "/trigger/relative",
                "relative-needs-one",
                "write exactly one of `before` or `after`",
            )


def _check_state(ctx: LinkContext, doc: ParsedDocument, rule: Automation, state: str) -> None:
    if rule.trigger.event not in _STATE_EVENTS:
        ctx.error(
            doc,
            "/trigger/state",
            "trigger-state",
            "`state` only narrows `state_entered` and `state_left`",
        )
        return
    states = [
        s
        for d in ctx.of_kind("Workflow").values()
        if d.model.entity == rule.entity
        for s in d.model.states
    ]
    if state not in states and not ctx.open_world:
        ctx.error(
            doc,
            "/trigger/state",
            "unknown-state",
            f"unknown state `{state}`",
            did_you_mean(state, states),
        )


def _valid_cron(expression: str) -> bool:
    from croniter import croniter

    return len(expression.split()) == 5 and bool(croniter.is_valid(expression))
