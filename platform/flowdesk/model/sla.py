"""SLA documents: targets for response and resolution, chosen by conditions,
counted in a calendar's business hours, with warnings and escalations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import CelExpr, Document, Duration, Identifier, Label, Strict
from .action import Action

__all__ = ["SLA", "Escalation", "Metric", "Target"]


class Metric(Strict):
    """A clock: starts when the record is created (or `start` holds), stops in `stop_in`."""

    label: Label | None = None
    start: CelExpr | None = Field(
        None, description="Clock starts when this holds (default: creation)."
    )
    stop_in: list[Identifier] = Field(
        default_factory=list, description="States where the clock stops (met)."
    )
    stop_when: CelExpr | None = Field(None, description="Or stops when this holds (CEL).")
    pause_in: list[Identifier] | None = Field(
        None, description="States where the clock pauses (default: the workflow's waiting states)."
    )
    reset_on: list[Identifier] = Field(
        default_factory=list, description="Transitions that restart the clock (e.g. `reopen`)."
    )


class Target(Strict):
    """Targets for records matching `when`; the first matching target applies."""

    name: Identifier
    label: Label | None = None
    when: CelExpr | None = Field(None, description="Which records (CEL); omit for the default.")
    goals: dict[Identifier, Duration] = Field(
        description="Time allowed per metric, e.g. `{response: 30m, resolution: 4h}`."
    )


class Escalation(Strict):
    at: int | Literal["breach"] = Field(
        description="Percent of the goal elapsed (e.g. 80), or `breach`."
    )
    metric: Identifier | None = Field(None, description="Only for this metric (default: any).")
    actions: list[Action] = Field(min_length=1)


class SLA(Document):
    kind: Literal["SLA"]
    entity: Identifier
    workflow: Identifier | None = Field(None, description="Workflow whose states are named here.")
    calendar: Identifier | None = Field(None, description="Business calendar (default: the app's).")
    metrics: dict[Identifier, Metric]
    targets: list[Target] = Field(min_length=1)
    warnings: list[int] = Field(
        default_factory=lambda: [80], description="Percentages at which the status turns amber."
    )
    escalations: list[Escalation] = Field(default_factory=list)
