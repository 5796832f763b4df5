"""Policy documents: roles, what each role may do, which fields it sees and
which records (data scope).

Casbin is the policy engine of record for "may role R do action A on entity
E"; field rules and data scopes are enforced by the platform inside queries.
Standard roles exist in every app without being declared.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import CelExpr, Document, Identifier, Label, Strict

__all__ = ["ACTIONS", "STANDARD_ROLES", "FieldRules", "Grant", "Policy", "RoleSpec", "Scope"]

STANDARD_ROLES = (
    "admin",
    "designer",
    "approver",
    "monitor",
    "agent",
    "supervisor",
    "customer",
)
ACTIONS = (
    "read",
    "create",
    "update",
    "delete",
    "transition",
    "approve",
    "export",
    "import",
    "comment",
    "assign",
    "unmask",
)


class RoleSpec(Strict):
    label: Label | None = None
    description: Label | None = None
    inherits: list[Identifier] = Field(
        default_factory=list, description="Roles whose permissions this role also has."
    )


class Scope(Strict):
    """Which records a grant covers; several keys combine with AND."""

    own: bool | None = Field(None, description="Records the user created or is assigned to.")
    department: Literal["own", "tree"] | None = Field(
        None, description="Records of the user's department (`tree`: and its sub-departments)."
    )
    when: CelExpr | None = Field(
        None,
        description="Records matching this condition over `record` and `user` (CEL).",
        examples=["record.region == user.region"],
    )


class FieldRules(Strict):
    hidden: list[Identifier] = Field(default_factory=list, description="Never shown.")
    readonly: list[Identifier] = Field(default_factory=list, description="Shown, not editable.")
    masked: list[Identifier] = Field(
        default_factory=list, description="Shown with the field's mask (e.g. `110***`)."
    )


class Grant(Strict):
    roles: list[Identifier] = Field(min_length=1)
    entity: Identifier | Literal["*"] = Field(description="An entity, or `*` for every entity.")
    actions: list[Literal[ACTIONS] | Literal["all"]] = Field(  # type: ignore[valid-type]
        min_length=1, description="What the roles may do; `all` for everything."
    )
    scope: Literal["all", "own", "department", "department_tree"] | Scope = Field(
        "all",
        description="Which records: `all`, `own`, `department`, `department_tree`, "
        "or `{when: CEL}`.",
    )
    fields: FieldRules | None = None
    transitions: list[Identifier] | None = Field(
        None, description="Limit `transition` to these workflow transitions."
    )


class Policy(Document):
    kind: Literal["Policy"]
    roles: dict[Identifier, RoleSpec] = Field(
        default_factory=dict, description="Custom roles of the app (standard roles exist already)."
    )
    grants: list[Grant] = Field(default_factory=list)
