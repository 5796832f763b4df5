"""Linker checks for policies: roles and their inheritance, grants' entities,
fields, transitions and data-scope conditions."""

from __future__ import annotations

from flowdesk.expressions import BOOL

from ..diagnostics import did_you_mean
from ..policy import Grant, Policy, Scope
from .actions import check_role
from .context import LinkContext, ParsedDocument
from .entity import require_field
from .types import record_scope

__all__ = ["check"]


def check(ctx: LinkContext) -> None:
    inherits: dict[str, list[str]] = {}
    for doc in ctx.of_kind("Policy").values():
        policy: Policy = doc.model
        for name, role in policy.roles.items():
            inherits[name] = role.inherits
            for index, parent in enumerate(role.inherits):
                check_role(ctx, doc, f"/roles/{name}/inherits/{index}", parent)
        for index, grant in enumerate(policy.grants):
            _check_grant(ctx, doc, f"/grants/{index}", grant)
    for doc in ctx.of_kind("Policy").values():
        for name in doc.model.roles:
            cycle = _cycle(name, inherits)
            if cycle:
                ctx.error(
                    doc,
                    f"/roles/{name}/inherits",
                    "role-cycle",
                    "roles inherit from each other in a circle: " + " -> ".join(cycle),
                )


def _cycle(start: str, inherits: dict[str, list[str]]) -> list[str] | None:
    stack = [(start, [start])]
    while stack:
        role, path = stack.pop()
        for parent in inherits.get(role, []):
            if parent == start:
                return [*path, parent]
            if parent not in path:
                stack.append((parent, [*path, parent]))
    return None


def _check_grant(ctx: LinkContext, doc: ParsedDocument, here: str, grant: Grant) -> None:
    for index, role in enumerate(grant.roles):
        check_role(ctx, doc, f"{here}/roles/{index}", role)
    if grant.entity == "*":
        if grant.fields or grant.transitions or isinstance(grant.scope, Scope):
            ctx.error(
                doc,
                here + "/entity",
                "wildcard-with-details",
                "field rules, transitions and conditions need one named entity",
            )
        return
    entity = ctx.resolve(doc, here + "/entity", "Entity", grant.entity)
    if grant.fields is not None:
        for key in ("hidden", "readonly", "masked"):
            for index, name in enumerate(getattr(grant.fields, key)):
                spec = require_field(ctx, doc, f"{here}/fields/{key}/{index}", entity, name)
                if key == "masked" and spec is not None and not getattr(spec, "mask", None):
                    ctx.error(
                        doc,
                        f"{here}/fields/{key}/{index}",
                        "mask-missing",
                        f"field `{name}` has no `mask` pattern to show",
                        'add e.g. `mask: "{first:3}***"` to the field',
                    )
    if isinstance(grant.scope, Scope) and grant.scope.when:
        ctx.compile(
            doc,
            here + "/scope/when",
            grant.scope.when,
            record_scope(ctx, grant.entity),
            expect=BOOL,
        )
    if grant.transitions:
        _check_transitions(ctx, doc, here, grant)


def _check_transitions(ctx: LinkContext, doc: ParsedDocument, here: str, grant: Grant) -> None:
    names = [
        t
        for d in ctx.of_kind("Workflow").values()
        if d.model.entity == grant.entity
        for t in d.model.transitions
    ]
    for index, name in enumerate(grant.transitions or []):
        if name not in names and not ctx.open_world:
            ctx.error(
                doc,
                f"{here}/transitions/{index}",
                "unknown-transition",
                f"entity `{grant.entity}` has no transition `{name}`",
                did_you_mean(name, names),
            )
