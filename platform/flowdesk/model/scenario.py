"""Scenario documents: an analyst's test of an app, written as given / steps.

A scenario lives in the app's `tests/` folder (never deployed with the app).
`given` sets the scene (the time, users, departments, records, stubbed
integration answers); `steps` act as users (create, update, transition,
approve ...), let time pass (`wait`, which also runs the background jobs that
fall due) and check what should be true (`expect`, `expect_error`). Records
and users are named with `$name` wherever a value is written, so a scenario
reads without database ids:

```yaml
steps:
  - create: {entity: ticket, as: alice, save_as: t, values: {customer: $vip, priority: p1}}
  - expect: {record: $t, state: new, sla: {response: {due: "2026-03-09T09:15:00+08:00"}}}
```

`flowdesk test APP_DIR` runs them (`flowdesk.engine.scenarios`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from ._base import Document, Duration, Identifier, OneKeyOf, Strict, Value

__all__ = [
    "ALIAS_PATTERN",
    "Create",
    "Decide",
    "Expect",
    "ExpectError",
    "Find",
    "Given",
    "Move",
    "Scenario",
    "ScenarioStep",
    "SlaExpectation",
    "Update",
]

ALIAS_PATTERN = r"^\$[a-z][a-z0-9_]*$"
INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$"

RecordRef = Annotated[
    str,
    StringConstraints(pattern=ALIAS_PATTERN),
    Field(description="A record named in `given.records` or by an earlier `save_as`: `$name`.",
          examples=["$t"]),
]
Instant = Annotated[
    str,
    StringConstraints(pattern=INSTANT_PATTERN),
    Field(description="A date and time with its UTC offset, ISO 8601.",
          examples=["2026-03-06T17:30:00+08:00"]),
]
Values = Annotated[
    dict[Identifier, Value],
    Field(description="Field values; `$name` stands for a record, user or department of the "
          "scenario (its id)."),
]


class GivenUser(Strict):
    """A user that exists before the scenario starts; its key is the user name."""

    roles: list[Identifier] = Field(default_factory=list, description="Roles in this app.")
    department: Identifier | None = Field(None, description="Department code.")
    manager: Identifier | None = Field(None, description="Another user of the scenario.")
    name: str | None = Field(None, description="Display name (default: the user name).")
    email: str | None = None
    skills: list[str] = Field(default_factory=list)


class GivenDepartment(Strict):
    """A department; its key is the department code (departments users name exist anyway)."""

    name: str | None = None
    head: Identifier | None = Field(None, description="A user of the scenario.")
    parent: Identifier | None = Field(None, description="Code of the parent department.")


class GivenRecord(Strict):
    entity: Identifier
    values: Values = Field(default_factory=dict)
    as_: Identifier | None = Field(None, alias="as", description="Created by this user.")


class StubAnswer(OneKeyOf):
    """What a stubbed integration operation answers: a response, an error, or a timeout."""

    response: dict[str, Any] | None = Field(None, description="The operation's response values.")
    error: str | None = Field(None, description="The call fails with this message.")
    timeout: Literal[True] | None = Field(None, description="The call times out.")


class GivenFile(Strict):
    """An uploaded file (a signature, a photo) that attachment fields can name: `$key`."""

    name: str = Field(description="File name, e.g. `signature.png`.")
    type: str = Field("application/octet-stream", description="Media type, e.g. `image/png`.")


class Given(Strict):
    now: Instant | None = Field(
        None, description="The scenario's start time (default: 2026-03-02T09:00:00+00:00, a "
        "Monday). Time moves only by `wait`."
    )
    users: dict[Identifier, GivenUser] = Field(default_factory=dict)
    departments: dict[Identifier, GivenDepartment] = Field(default_factory=dict)
    files: dict[Identifier, GivenFile] = Field(default_factory=dict)
    records: dict[Identifier, GivenRecord] = Field(
        default_factory=dict, description="Records created first, in order; `$key` names them."
    )
    integrations: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")],
        StubAnswer,
    ] = Field(
        default_factory=dict,
        description="Answers of integration operations, keyed `integration.operation` "
        "(scenarios run offline).",
    )


class Create(Strict):
    """Create a record as a user (it enters its workflow)."""

    entity: Identifier
    as_: Identifier = Field(alias="as", description="The user acting.")
    values: Values = Field(default_factory=dict)
    comment: str | None = None
    save_as: Identifier | None = Field(None, description="Name the new record: `$save_as`.")


class Update(Strict):
    """Change fields of a record as a user."""

    record: RecordRef
    as_: Identifier = Field(alias="as", description="The user acting.")
    values: Values
    comment: str | None = None


class Move(Strict):
    """Take a transition as a user, with field values and a comment if it needs them."""

    record: RecordRef
    name: Identifier = Field(description="The transition.")
    as_: Identifier = Field(alias="as", description="The user acting.")
    values: Values = Field(default_factory=dict)
    comment: str | None = None


class Find(Strict):
    """Name a record the app created by itself (an action's `create`): the newest record
    of `entity` whose fields have the values in `where`."""

    entity: Identifier
    where: Values
    save_as: Identifier


class Decide(Strict):
    """An approval decision by the user holding a pending task on the record."""

    record: RecordRef
    as_: Identifier = Field(alias="as")
    comment: str | None = None
    to: Identifier | None = Field(None, description="For `delegate`: the new approver.")


class SlaExpectation(Strict):
    status: Literal["green", "amber", "red"] | None = None
    due: Instant | None = Field(None, description="The due instant (any offset).")
    breached: bool | None = None
    paused: bool | None = None
    stopped: bool | None = None
    attained: bool | None = None
    target: Identifier | None = Field(None, description="The SLA target that applies.")


class Expect(Strict):
    """What must be true now. Every key is optional; each one written is checked."""

    record: RecordRef | None = None
    state: Identifier | None = None
    fields: Values | None = Field(None, description="Field values (system fields too).")
    sla: dict[Identifier, SlaExpectation] | None = Field(
        None, description="Clocks by metric name."
    )
    transitions: list[Identifier] | None = Field(
        None, description="Exactly the transitions `as` may take now."
    )
    as_: Identifier | None = Field(None, alias="as")
    approvers: list[Identifier] | None = Field(
        None, description="Exactly the users with a pending approval task on the record."
    )
    count: dict[Identifier, int] | None = Field(
        None, description="Number of (not deleted) records per entity."
    )


class ExpectError(OneKeyOf):
    """A step that must be refused, with the refusal's code (e.g. `role-not-allowed`)."""

    one_of_extra = frozenset({"code", "message"})

    create: Create | None = None
    update: Update | None = None
    transition: Move | None = None
    approve: Decide | None = None
    reject: Decide | None = None
    return_: Decide | None = Field(None, alias="return")
    delegate: Decide | None = None
    code: str = Field(description="The expected error code.")
    message: str | None = Field(None, description="Text the error message must contain.")


class ScenarioStep(OneKeyOf):
    """One step: exactly one key."""

    create: Create | None = None
    update: Update | None = None
    transition: Move | None = None
    approve: Decide | None = None
    reject: Decide | None = None
    return_: Decide | None = Field(None, alias="return")
    delegate: Decide | None = None
    wait: Duration | None = Field(
        None, description="Move the clock forward and run the jobs that fall due."
    )
    find: Find | None = None
    expect: Expect | None = None
    expect_error: ExpectError | None = None


class Scenario(Document):
    kind: Literal["Scenario"]
    given: Given = Field(default_factory=Given)
    steps: list[ScenarioStep] = Field(min_length=1)
