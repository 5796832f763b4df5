"""Linker checks for scenarios: every entity, field, transition, state, SLA metric,
integration operation, role, user and `$record` a scenario names must exist, so a
typo is a located error before anything runs.

Names are checked in step order: `$t` is known only after the step that saves it
(`save_as: t`) or when `given.records` defines it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import did_you_mean, join_pointer
from ..entity import Entity
from ..scenario import (
    Create,
    Decide,
    Expect,
    ExpectError,
    Find,
    Move,
    Scenario,
    ScenarioStep,
    Update,
)
from ..workflow import Workflow
from .actions import check_operation, check_role
from .context import LinkContext, ParsedDocument
from .entity import require_field

__all__ = ["check"]


@dataclass
class _Names:
    """What a scenario has named so far: users, departments and records (-> entity)."""

    users: set[str]
    departments: set[str]
    files: set[str] = field(default_factory=set)
    records: dict[str, str] = field(default_factory=dict)

    def all(self) -> list[str]:
        return [*self.records, *self.users, *self.departments, *self.files]


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("Scenario").values():
        scenario: Scenario = doc.model
        names = _given(ctx, doc, scenario)
        for index, step in enumerate(scenario.steps):
            _step(ctx, doc, f"/steps/{index}", step, names)


# --------------------------------------------------------------------------- given


def _given(ctx: LinkContext, doc: ParsedDocument, scenario: Scenario) -> _Names:
    given = scenario.given
    departments = set(given.departments)
    departments.update(u.department for u in given.users.values() if u.department)
    names = _Names(set(given.users), departments, files=set(given.files))
    for name, user in given.users.items():
        here = f"/given/users/{name}"
        for index, role in enumerate(user.roles):
            check_role(ctx, doc, f"{here}/roles/{index}", role)
        if user.manager:
            _user(ctx, doc, f"{here}/manager", user.manager, names)
    for code, department in given.departments.items():
        if department.head:
            _user(ctx, doc, f"/given/departments/{code}/head", department.head, names)
    for alias, record in given.records.items():
        here = f"/given/records/{alias}"
        entity = ctx.resolve(doc, f"{here}/entity", "Entity", record.entity)
        if record.as_:
            _user(ctx, doc, f"{here}/as", record.as_, names)
        _values(ctx, doc, f"{here}/values", record.values, entity, names)
        names.records[alias] = record.entity
    for key in given.integrations:
        integration, operation = key.split(".", 1)
        check_operation(ctx, doc, join_pointer("given", "integrations", key), integration,
                        operation)
    return names


# --------------------------------------------------------------------------- steps


def _step(ctx: LinkContext, doc: ParsedDocument, pointer: str, step: ScenarioStep | ExpectError,
          names: _Names) -> None:
    verb, value = step.chosen
    here = f"{pointer}/{verb}"
    if isinstance(value, Create):
        entity = ctx.resolve(doc, f"{here}/entity", "Entity", value.entity)
        _user(ctx, doc, f"{here}/as", value.as_, names)
        _values(ctx, doc, f"{here}/values", value.values, entity, names)
        if value.save_as and isinstance(step, ScenarioStep):
            names.records[value.save_as] = value.entity
    elif isinstance(value, Update | Move):
        entity = _record(ctx, doc, f"{here}/record", value.record, names)
        _user(ctx, doc, f"{here}/as", value.as_, names)
        _values(ctx, doc, f"{here}/values", value.values, entity, names)
        if isinstance(value, Move) and entity is not None:
            _transition(ctx, doc, f"{here}/name", entity, value.name)
    elif isinstance(value, Decide):
        _record(ctx, doc, f"{here}/record", value.record, names)
        _user(ctx, doc, f"{here}/as", value.as_, names)
        if value.to:
            _user(ctx, doc, f"{here}/to", value.to, names)
    elif isinstance(value, Find):
        entity = ctx.resolve(doc, f"{here}/entity", "Entity", value.entity)
        _values(ctx, doc, f"{here}/where", value.where, entity, names, system=True)
        names.records[value.save_as] = value.entity
    elif isinstance(value, Expect):
        _expect(ctx, doc, here, value, names)
    elif isinstance(value, ExpectError):
        _step(ctx, doc, here, value, names)


def _expect(ctx: LinkContext, doc: ParsedDocument, here: str, expect: Expect,
            names: _Names) -> None:
    entity = _record(ctx, doc, f"{here}/record", expect.record, names) if expect.record else None
    needs_record = [k for k in ("state", "fields", "sla", "transitions", "approvers")
                    if getattr(expect, k) is not None]
    if needs_record and expect.record is None:
        ctx.error(doc, f"{here}/{needs_record[0]}", "missing-key",
                  f"`{needs_record[0]}` is about a record: say which one with `record: $name`",
                  key=True)
    if expect.as_:
        _user(ctx, doc, f"{here}/as", expect.as_, names)
    elif expect.transitions is not None:
        ctx.error(doc, f"{here}/transitions", "missing-key",
                  "`transitions` lists what a user may do: say who with `as: <user>`", key=True)
    for index, user in enumerate(expect.approvers or ()):
        _user(ctx, doc, f"{here}/approvers/{index}", user, names)
    for name in expect.count or {}:
        ctx.resolve(doc, join_pointer(*here.split("/")[1:], "count", name), "Entity", name)
    if entity is None:
        return
    workflow = _workflow(ctx, entity)
    if expect.state and workflow is not None and expect.state not in workflow.states:
        ctx.error(doc, f"{here}/state", "unknown-state",
                  f"unknown state `{expect.state}` in workflow `{workflow.name}`",
                  did_you_mean(expect.state, workflow.states))
    for index, name in enumerate(expect.transitions or ()):
        _transition(ctx, doc, f"{here}/transitions/{index}", entity, name)
    _values(ctx, doc, f"{here}/fields", expect.fields or {}, entity, names, system=True)
    metrics = _metrics(ctx, entity)
    for metric in expect.sla or {}:
        if metric not in metrics:
            ctx.error(doc, join_pointer(*here.split("/")[1:], "sla", metric), "unknown-metric",
                      f"no SLA of entity `{entity.name}` has a metric `{metric}`",
                      did_you_mean(metric, metrics) or _listing("metrics", metrics), key=True)


# --------------------------------------------------------------------------- names


def _user(ctx: LinkContext, doc: ParsedDocument, pointer: str, name: str,
          names: _Names) -> None:
    if name in names.users:
        return
    ctx.error(doc, pointer, "unknown-user", f"unknown user `{name}`",
              did_you_mean(name, names.users) or "declare the user under `given: {users: ...}`")


def _record(ctx: LinkContext, doc: ParsedDocument, pointer: str, ref: str,
            names: _Names) -> Entity | None:
    """The entity of the record `$name`, or None after reporting `unknown-record`."""
    alias = ref[1:]
    if alias in names.records:
        return ctx.model("Entity", names.records[alias])
    ctx.error(doc, pointer, "unknown-record", f"unknown record `{ref}`",
              did_you_mean(ref, [f"${a}" for a in names.records]) or
              f"name it first: `save_as: {alias}` in an earlier create step, or under "
              "`given: {records: ...}`")
    return None


def _values(ctx: LinkContext, doc: ParsedDocument, pointer: str, values: Mapping[str, Any],
            entity: Entity | None, names: _Names, *, system: bool = False) -> None:
    for name, value in values.items():
        here = f"{pointer}/{name}"
        require_field(ctx, doc, here, entity, name, allow_system=system)
        for where, ref in _references(here, value):
            if ref[1:] not in names.all():
                ctx.error(doc, where, "unknown-record", f"unknown record, user, department "
                          f"or file `{ref}`", did_you_mean(ref, [f"${n}" for n in names.all()])
                          or "name it under `given` or with `save_as` in an earlier step")


def _references(pointer: str, value: Any) -> Iterable[tuple[str, str]]:
    """(pointer, `$name`) of every `$name` written in a value, also inside lists and lines."""
    if isinstance(value, str) and value.startswith("$") and value[1:].isidentifier():
        yield pointer, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(f"{pointer}/{index}", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references(f"{pointer}/{key}", item)


def _workflow(ctx: LinkContext, entity: Entity) -> Workflow | None:
    return next((d.model for d in ctx.of_kind("Workflow").values()
                 if d.model.entity == entity.name), None)


def _transition(ctx: LinkContext, doc: ParsedDocument, pointer: str, entity: Entity,
                name: str) -> None:
    workflow = _workflow(ctx, entity)
    if workflow is None:
        ctx.error(doc, pointer, "no-workflow", f"entity `{entity.name}` has no workflow")
    elif name not in workflow.transitions:
        ctx.error(doc, pointer, "unknown-transition",
                  f"unknown transition `{name}` in workflow `{workflow.name}`",
                  did_you_mean(name, workflow.transitions)
                  or _listing("transitions", workflow.transitions))


def _metrics(ctx: LinkContext, entity: Entity) -> list[str]:
    return [m for d in ctx.of_kind("SLA").values() if d.model.entity == entity.name
            for m in d.model.metrics]


def _listing(what: str, names: Iterable[str]) -> str:
    return f"{what}: " + ", ".join(f"`{n}`" for n in names)
