"""Actions: what workflows, automations and SLA escalations *do*.

One vocabulary for all three, each action a one-key object (`- set: {...}`),
so an analyst who can write a workflow can write an automation. Values in
`set`, `create` and `input` are literals, or CEL when they start with `=`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_core import PydanticCustomError

from ._base import CelExpr, Identifier, Label, OneKeyOf, Strict, Value
from .party import PartyRef

__all__ = [
    "Action",
    "AssignAction",
    "CallAction",
    "CreateAction",
    "NotifyAction",
    "StartAction",
    "Step",
    "is_expression",
]


def is_expression(value: Any) -> bool:
    """Values starting with `=` are CEL expressions, everything else is a literal."""
    return isinstance(value, str) and value.startswith("=")


class AssignAction(Strict):
    to: PartyRef | None = Field(None, description="Who gets the record.")
    team: str | None = Field(None, description="Team (a literal name or `= expression`).")
    strategy: Literal["round_robin", "least_loaded", "skill_match", "first"] = Field(
        "round_robin", description="How one person is chosen among several candidates."
    )
    skills: CelExpr | None = Field(None, description="Skills required (CEL list of strings).")
    fallback: str | None = Field(None, description="Team used when nobody matches.")


class NotifyAction(Strict):
    template: Identifier = Field(description="Name of a Notification document.")
    to: list[PartyRef] | None = Field(None, description="Overrides the template's recipients.")


class CreateAction(Strict):
    entity: Identifier
    values: dict[Identifier, Value] = Field(default_factory=dict)


class CallAction(Strict):
    integration: Identifier
    operation: Identifier
    input: dict[str, Value] = Field(default_factory=dict)
    save: dict[Identifier, CelExpr] = Field(
        default_factory=dict,
        description="Fields set from the answer: `field: response.some.path` (CEL over "
        "`response`).",
    )


class StartAction(Strict):
    workflow: Identifier
    entity: Identifier | None = Field(None, description="Entity of the sub-process record.")


class Action(OneKeyOf):
    """Exactly one action."""

    set: dict[Identifier, Value] | None = Field(None, description="Set fields of the record.")
    assign: AssignAction | None = None
    notify: NotifyAction | None = None
    create: CreateAction | None = Field(None, description="Create a related record.")
    call: CallAction | None = Field(None, description="Call an integration's operation.")
    start: StartAction | None = Field(None, description="Start a sub-workflow.")
    transition: Identifier | None = Field(None, description="Take a workflow transition.")
    comment: Label | None = Field(None, description="Add a comment to the timeline.")
    stop: Literal[True] | None = Field(None, description="Stop processing further rules.")


class Step(Action):
    """An action, or an `if` block with `then` / `else` steps (nested to any depth)."""

    one_of_extra = frozenset({"then", "else_"})

    if_: CelExpr | None = Field(None, alias="if", description="Condition (CEL).")
    then: list[Step] | None = Field(None, description="Steps run when the condition holds.")
    else_: list[Step] | None = Field(None, alias="else", description="Steps run when it does not.")

    def _check_shape(self) -> None:
        """A step with only `else:` is a dangling branch, not a step without an action."""
        if self.if_ is not None and self.then is None:
            raise PydanticCustomError("if-without-then", "an `if` needs `then` steps")
        if self.if_ is None and (self.then is not None or self.else_ is not None):
            raise PydanticCustomError(
                "then-without-if", "`then` and `else` belong to an `if` in the same step"
            )


Step.model_rebuild()
