"""Automation documents: IF-THEN-ELSE rules run on events or on a schedule.

Loop protection is part of the language (`limits`), not an afterthought:
rules that trigger each other stop at a depth and a per-record run count.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import CelExpr, Document, Duration, Identifier, OneKeyOf, Strict
from .action import Step

__all__ = ["EVENTS", "Automation", "Limits", "Trigger"]

EVENTS = (
    "created",
    "updated",
    "deleted",
    "state_entered",
    "state_left",
    "approval_decided",
    "sla_warning",
    "sla_breach",
    "comment_added",
    "email_received",
)


class Relative(Strict):
    """A time relative to a date field of each record, e.g. 3 days before `contract_end`."""

    field: Identifier
    before: Duration | None = None
    after: Duration | None = None


class Trigger(OneKeyOf):
    """Exactly one of `event`, `cron` or `relative`; `fields`, `state` narrow an event."""

    one_of_extra = frozenset({"fields", "state"})

    event: Literal[EVENTS] | None = Field(None, description="Run when this happens to a record.")  # type: ignore[valid-type]
    cron: str | None = Field(
        None,
        description="Run on a schedule (cron syntax, in the app's timezone).",
        examples=["0 8 1 * *"],
    )
    relative: Relative | None = None
    fields: list[Identifier] | None = Field(
        None, description="For `updated`: only when one of these fields changed."
    )
    state: Identifier | None = Field(None, description="For state events: only this state.")


class Limits(Strict):
    max_depth: int = Field(
        3, ge=1, le=10, description="Rules triggered by rules stop at this depth."
    )
    max_runs: int = Field(10, ge=1, description="Runs per record within `window`.")
    window: Duration = "1h"
    cooldown: Duration | None = Field(None, description="Minimum time between runs per record.")


class Automation(Document):
    kind: Literal["Automation"]
    entity: Identifier | None = Field(None, description="Entity whose records trigger the rule.")
    enabled: bool = True
    trigger: Trigger
    when: CelExpr | None = Field(None, description="Run only when this holds (CEL).")
    do: list[Step] = Field(min_length=1, description="Steps: actions and `if` blocks.")
    limits: Limits = Field(default_factory=Limits)
    order: int = Field(100, description="Rules on the same event run in increasing order.")
