"""Linker checks shared by workflows, automations and SLA escalations:
actions, `if` blocks and parties (who receives or approves)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flowdesk.expressions import BOOL, DYN, CelType

from ..action import Action, Step, is_expression
from ..diagnostics import did_you_mean
from ..entity import Entity, EnumField
from ..party import Party
from .context import LinkContext, ParsedDocument
from .entity import require_field
from .types import field_type

__all__ = ["MAX_NESTING", "WARN_NESTING", "check_actions", "check_party", "check_value"]

WARN_NESTING = 5
MAX_NESTING = 10
_USER_TYPES = ("user", "reference", "references")
# Fields set from a record, an id or a list: the runtime resolves which one it got.
_LOOSE_TYPES = ("user", "reference", "references", "lines", "attachment", "json")


def check_actions(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    actions: Sequence[Action],
    entity: Entity | None,
    scope: Mapping[str, CelType],
    depth: int = 1,
) -> None:
    for index, action in enumerate(actions):
        here = f"{pointer}/{index}"
        if isinstance(action, Step) and action.if_ is not None:
            _check_if(ctx, doc, here, action, entity, scope, depth)
            continue
        key, value = action.chosen
        _ACTION_CHECKS[key](ctx, doc, f"{here}/{key}", value, entity, scope)


def _check_if(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    step: Step,
    entity: Entity | None,
    scope: Mapping[str, CelType],
    depth: int,
) -> None:
    if depth == WARN_NESTING + 1:
        ctx.warn(
            doc,
            pointer + "/if",
            "deep-nesting",
            f"`if` blocks nested {depth} levels deep are hard to read",
            "split the rule into several automations",
        )
    if depth > MAX_NESTING:
        ctx.error(
            doc,
            pointer + "/if",
            "too-deep",
            f"`if` blocks are nested more than {MAX_NESTING} levels",
        )
        return
    ctx.compile(doc, pointer + "/if", step.if_ or "", scope, expect=BOOL)
    check_actions(ctx, doc, pointer + "/then", step.then or [], entity, scope, depth + 1)
    check_actions(ctx, doc, pointer + "/else", step.else_ or [], entity, scope, depth + 1)


def check_value(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    entity: Entity | None,
    field: str,
    value: Any,
    scope: Mapping[str, CelType],
) -> None:
    """A value assigned to `field`: a literal of the right kind, or `= CEL` of its type."""
    spec = (
        require_field(ctx, doc, pointer.rsplit("/", 1)[0] + "/" + field, entity, field)
        if entity is not None
        else None
    )
    if is_expression(value):
        expected: CelType | None = None
        if spec is not None and spec.type not in _LOOSE_TYPES:  # type: ignore[attr-defined]
            entities = {n: d.model for n, d in ctx.of_kind("Entity").items()}
            expected = field_type(spec, entities, 0, {}, field)
        ctx.compile(doc, pointer, value, scope, expect=expected)
        return
    if isinstance(spec, EnumField) and value is not None:
        values = value if isinstance(value, list) else [value]
        for item in values:
            if str(item) not in spec.value_names:
                ctx.error(
                    doc,
                    pointer,
                    "invalid-value",
                    f"`{item}` is not a value of `{field}`",
                    did_you_mean(str(item), spec.value_names)
                    or "values: " + ", ".join(spec.value_names),
                )


def _set(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    values: dict[str, Any],
    entity: Entity | None,
    scope: Mapping[str, CelType],
) -> None:
    for field, value in values.items():
        check_value(ctx, doc, f"{pointer}/{field}", entity, field, value, scope)


def _assign(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    value: Any,
    entity: Entity | None,
    scope: Mapping[str, CelType],
) -> None:
    if value.to is not None:
        check_party(ctx, doc, pointer + "/to", value.to, entity, scope)
    if value.team and is_expression(value.team):
        ctx.compile(doc, pointer + "/team", value.team, scope, expect=None)
    if value.skills:
        ctx.compile(doc, pointer + "/skills", value.skills, scope, expect=None)


def _notify(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    value: Any,
    entity: Entity | None,
    scope: Mapping[str, CelType],
) -> None:
    ctx.resolve(doc, pointer + "/template", "Notification", value.template)
    for index, party in enumerate(value.to or []):
        check_party(ctx, doc, f"{pointer}/to/{index}", party, entity, scope)


def _create(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    value: Any,
    entity: Entity | None,
    scope: Mapping[str, CelType],
) -> None:
    target = ctx.resolve(doc, pointer + "/entity", "Entity", value.entity)
    for field, item in value.values.items():
        check_value(ctx, doc, f"{pointer}/values/{field}", target, field, item, scope)


def _call(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    value: Any,
    entity: Entity | None,
    scope: Mapping[str, CelType],
) -> None:
    check_operation(ctx, doc, pointer, value.integration, value.operation)
    for name, item in value.input.items():
        if is_expression(item):
            ctx.compile(doc, f"{pointer}/input/{name}", item, scope, expect=None)
    response_scope = {**scope, "response": DYN}
    for field, expr in value.save.items():
        require_field(ctx, doc, f"{pointer}/save/{field}", entity, field)
        ctx.compile(doc, f"{pointer}/save/{field}", expr, response_scope, expect=None)


def check_operation(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, integration: str, operation: str
) -> None:
    target = ctx.resolve(doc, pointer + "/integration", "Integration", integration)
    if target is not None and operation not in target.operations:
        ctx.error(
            doc,
            pointer + "/operation",
            "unknown-operation",
            f"integration `{integration}` has no operation `{operation}`",
            did_you_mean(operation, target.operations)
            or "operations: " + ", ".join(target.operations),
        )


def _start(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    value: Any,
    entity: Entity | None,
    scope: Mapping[str, CelType],
) -> None:
    ctx.resolve(doc, pointer + "/workflow", "Workflow", value.workflow)
    if value.entity:
        ctx.resolve(doc, pointer + "/entity", "Entity", value.entity)


def _transition(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    value: str,
    entity: Entity | None,
    scope: Mapping[str, CelType],
) -> None:
    if entity is None:
        return
    workflows = [d.model for d in ctx.of_kind("Workflow").values() if d.model.entity == entity.name]
    if not workflows and not ctx.open_world:
        ctx.error(doc, pointer, "no-workflow", f"entity `{entity.name}` has no workflow")
        return
    names = [t for w in workflows for t in w.transitions]
    if workflows and value not in names:
        ctx.error(
            doc,
            pointer,
            "unknown-transition",
            f"unknown transition `{value}`",
            did_you_mean(value, names) or "transitions: " + ", ".join(names),
        )


def _nothing(*_: Any) -> None:
    """Comments and `stop` need no checks."""


_ACTION_CHECKS = {
    "set": _set,
    "assign": _assign,
    "notify": _notify,
    "create": _create,
    "call": _call,
    "start": _start,
    "transition": _transition,
    "comment": _nothing,
    "stop": _nothing,
}


def check_party(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    party: str | Party,
    entity: Entity | None,
    scope: Mapping[str, CelType],
) -> None:
    """A recipient or approver: its role must exist, its field must hold people."""
    if isinstance(party, str):
        return
    key, value = party.chosen
    here = f"{pointer}/{key}"
    if key == "role":
        check_role(ctx, doc, here, value)
    elif key in ("field", "department_head", "team") and entity is not None:
        spec = require_field(ctx, doc, here, entity, value)
        if key != "team" and spec is not None and spec.type not in _USER_TYPES:  # type: ignore[attr-defined]
            ctx.error(
                doc,
                here,
                "not-a-person-field",
                f"field `{value}` is a `{spec.type}`, not a user",  # type: ignore[attr-defined]
                "use a `user` field or a reference to `user`",
            )
    elif key == "expr":
        ctx.compile(doc, here, value, scope, expect=None)


def check_role(ctx: LinkContext, doc: ParsedDocument, pointer: str, role: str) -> None:
    if ctx.any_broken("Policy"):
        return  # roles of a broken policy are unknown; its own errors say why
    if role not in ctx.roles and not ctx.open_world:
        ctx.error(
            doc,
            pointer,
            "unknown-role",
            f"unknown role `{role}`",
            did_you_mean(role, ctx.roles) or "declare it under `roles:` in a Policy document",
        )
