"""Workflow documents: the process a record goes through.

States are nodes of a graph and come in kinds: plain `state` (people work on
the record), `gateway` (exclusive choice by CEL), `approval` (one or more
levels of approvers), `service` (call an integration and route on its answer),
`parallel` (fork into branches that meet at a join) and `subprocess` (run
another workflow to completion). Transitions move a record between states, by
a person (roles, guard, required fields) or by a timer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from ._base import CelExpr, Document, Duration, Identifier, Label, Strict
from .action import Action
from .party import PartyRef

__all__ = [
    "ApprovalLevel",
    "ApprovalState",
    "Branch",
    "GatewayState",
    "ParallelState",
    "PlainState",
    "ServiceState",
    "StateSpec",
    "SubprocessState",
    "Transition",
    "Workflow",
]

Category = Literal["open", "waiting", "done"]


class _StateBase(Strict):
    label: Label | None = None
    description: Label | None = None
    category: Category = Field(
        "open",
        description="`open`: being worked on; `waiting`: on hold (SLA clocks pause); "
        "`done`: final.",
    )
    on_enter: list[Action] = Field(default_factory=list, description="Actions when entered.")
    on_exit: list[Action] = Field(default_factory=list, description="Actions when left.")
    renamed_from: Identifier | None = None


class PlainState(_StateBase):
    type: Literal["state"] = "state"
    sla: Literal["running", "paused"] | None = Field(
        None, description="Override whether SLA clocks run here (default: paused when waiting)."
    )


class Branch(Strict):
    when: CelExpr = Field(description="Condition for this branch (CEL).")
    to: Identifier = Field(description="State to go to.")
    label: Label | None = None


class GatewayState(_StateBase):
    """An exclusive choice: the first branch whose condition holds, else `default`."""

    type: Literal["gateway"]
    branches: list[Branch] = Field(min_length=1)
    default: Identifier | None = Field(None, description="State when no branch matches.")


class ApprovalLevel(Strict):
    """One level of approvers; levels run in order and a level can be conditional."""

    name: Identifier
    label: Label | None = None
    when: CelExpr | None = Field(None, description="Level applies only when this holds (CEL).")
    approvers: list[PartyRef] = Field(min_length=1)
    mode: Literal["any", "all", "n_of_m", "percent"] = Field(
        "any",
        description="`any`: one approval is enough; `all`: countersign; `n_of_m`: at least "
        "`n`; `percent`: at least `percent`% of approvers.",
    )
    n: int | None = Field(None, ge=1)
    percent: int | None = Field(None, ge=1, le=100)
    due: Duration | None = Field(None, description="Time allowed for this level.")
    remind: Duration | None = Field(None, description="Remind approvers after this long.")
    escalate_to: PartyRef | None = Field(None, description="Who takes over when `due` passes.")

    @model_validator(mode="after")
    def _mode_params(self) -> ApprovalLevel:
        if self.mode == "n_of_m" and self.n is None:
            raise PydanticCustomError("approval-mode-param", "mode `n_of_m` needs `n`")
        if self.mode == "percent" and self.percent is None:
            raise PydanticCustomError("approval-mode-param", "mode `percent` needs `percent`")
        return self


class ApprovalState(_StateBase):
    type: Literal["approval"]
    levels: list[ApprovalLevel] = Field(min_length=1)
    approved: Identifier = Field(description="State after every applicable level approved.")
    rejected: Identifier = Field(description="State after a rejection.")
    returned: Identifier | None = Field(None, description="State when sent back for changes.")
    allow_self_approval: bool = False
    comment_required: Literal["never", "on_reject", "always"] = "on_reject"


class ServiceRoute(Strict):
    when: CelExpr = Field(description="Condition over `response` (and `record`).")
    to: Identifier


class ServiceState(_StateBase):
    """Calls an integration's operation, then routes on the answer."""

    type: Literal["service"]
    integration: Identifier
    operation: Identifier
    input: dict[str, object] = Field(default_factory=dict)
    save: dict[Identifier, CelExpr] = Field(
        default_factory=dict, description="Fields set from `response` (CEL)."
    )
    routes: list[ServiceRoute] = Field(default_factory=list)
    success: Identifier = Field(description="State when the call succeeds and no route matches.")
    error: Identifier = Field(description="State when the call fails after retries.")
    timeout: Duration = "30s"


class ParallelState(_StateBase):
    """Forks into branches that all run; `join` is entered when they are all done."""

    type: Literal["parallel"]
    branches: list[Identifier] = Field(min_length=2, description="First state of each branch.")
    join: Identifier = Field(description="State entered when every branch has reached it.")


class SubprocessState(_StateBase):
    type: Literal["subprocess"]
    workflow: Identifier
    entity: Identifier | None = Field(
        None, description="Create a record of this entity for the sub-process (default: same)."
    )
    values: dict[Identifier, object] = Field(default_factory=dict)
    done: Identifier = Field(description="State when the sub-process finishes.")
    result: dict[Identifier, object] = Field(
        default_factory=dict,
        description="Fields of this record set from the finished sub-process record when it "
        "hands back, e.g. `outcome: = child.outcome` (CEL over `child` and `record`).",
    )


def _state_type(value: object) -> str:
    """States without `type` are plain states, the common case."""
    if isinstance(value, dict):
        return str(value.get("type", "state"))
    return str(getattr(value, "type", "state"))


StateSpec = Annotated[
    Annotated[PlainState, Tag("state")]
    | Annotated[GatewayState, Tag("gateway")]
    | Annotated[ApprovalState, Tag("approval")]
    | Annotated[ServiceState, Tag("service")]
    | Annotated[ParallelState, Tag("parallel")]
    | Annotated[SubprocessState, Tag("subprocess")],
    Discriminator(_state_type),
]


class Transition(Strict):
    label: Label | None = None
    from_: Identifier | Literal["*"] | list[Identifier] = Field(
        alias="from", description="State (or states, or `*` for any open state) it leaves."
    )
    to: Identifier
    roles: list[Identifier] | None = Field(
        None, description="Roles allowed to take it (default: anyone who may update)."
    )
    when: CelExpr | None = Field(None, description="Guard: available only when this holds.")
    requires: list[Identifier] = Field(
        default_factory=list, description="Fields that must have a value first."
    )
    comment: Literal["none", "optional", "required"] = "optional"
    after: Duration | None = Field(None, description="Taken automatically after this long.")
    at: CelExpr | None = Field(None, description="Taken automatically at this time (CEL).")
    time: Literal["calendar", "business"] = Field(
        "calendar", description="Timers count calendar time or the app's business hours."
    )
    actions: list[Action] = Field(default_factory=list)
    primary: bool = Field(False, description="Shown as the main button.")

    @property
    def sources(self) -> list[str]:
        return [self.from_] if isinstance(self.from_, str) else list(self.from_)

    @property
    def is_timer(self) -> bool:
        return self.after is not None or self.at is not None


class Workflow(Document):
    kind: Literal["Workflow"]
    entity: Identifier
    initial: Identifier = Field(description="State of a new record.")
    states: dict[Identifier, StateSpec]
    transitions: dict[Identifier, Transition] = Field(default_factory=dict)
