"""CEL types of records, users and the other names in scope of expressions.

Types are built from entity documents so the checker can say "unknown field
`priorty` of ticket" or "`p9` is not a value of priority" before anything
runs. References nest the referred entity's type (`record.customer.level`)
down to a fixed depth; deeper paths are dynamic.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from flowdesk.expressions import (
    BOOL,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    CelType,
    EnumType,
    ListType,
    ObjectType,
)

from ..entity import Entity, EnumField, LinesField
from .context import LinkContext

__all__ = [
    "SYSTEM_FIELDS",
    "build_record_types",
    "department_type",
    "field_type",
    "record_scope",
    "user_type",
]

_MAX_DEPTH = 3
SYSTEM_FIELDS = (
    "id",
    "number",
    "state",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "row_version",
    "workflow_version",
    "deleted_at",
    "assignee",
)
_SIMPLE: Mapping[str, CelType] = {
    "string": STRING,
    "text": STRING,
    "email": STRING,
    "phone": STRING,
    "url": STRING,
    "integer": INT,
    "decimal": DOUBLE,
    "boolean": BOOL,
    "date": TIMESTAMP,
    "datetime": TIMESTAMP,
    "duration": DURATION,
    "json": DYN,
}


@cache
def department_type() -> ObjectType:
    return ObjectType(
        "department",
        {
            "id": INT,
            "code": STRING,
            "name": STRING,
            "parent": DYN,
            "head": DYN,
            "region": STRING,
        },
    )


@cache
def user_type() -> ObjectType:
    return ObjectType(
        "user",
        {
            "id": INT,
            "username": STRING,
            "name": STRING,
            "email": STRING,
            "phone": STRING,
            "department": department_type(),
            "position": STRING,
            "manager": DYN,
            "roles": ListType(STRING),
            "skills": ListType(STRING),
            "region": STRING,
            "locale": STRING,
            "timezone": STRING,
            "active": BOOL,
        },
    )


_ATTACHMENT = ObjectType(
    "attachment",
    {
        "id": INT,
        "name": STRING,
        "media_type": STRING,
        "size": INT,
        "url": STRING,
    },
)


Memo = dict[tuple[str, int], ObjectType]


def field_type(
    spec: object,
    entities: Mapping[str, Entity],
    depth: int,
    states: Mapping[str, tuple[str, ...]],
    owner: str,
    memo: Memo | None = None,
) -> CelType:
    """The CEL type of one field as seen from an expression."""
    kind = getattr(spec, "type", None)
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if isinstance(spec, EnumField):
        single = EnumType(owner, spec.value_names)
        return ListType(single) if spec.multiple else single
    if kind == "user":
        return user_type() if depth < _MAX_DEPTH else DYN
    if kind in ("reference", "references"):
        target = spec.to
        referred = _referred_type(target, entities, depth + 1, states, memo)
        return ListType(referred) if kind == "references" else referred
    if kind == "attachment":
        return ListType(_ATTACHMENT) if getattr(spec, "multiple", False) else _ATTACHMENT
    if isinstance(spec, LinesField):
        line = ObjectType(
            owner,
            {
                name: field_type(sub, entities, depth + 1, states, name, memo)
                for name, sub in spec.fields.items()
            }
            | {"id": INT},
        )
        return ListType(line)
    return DYN


def _referred_type(
    target: str,
    entities: Mapping[str, Entity],
    depth: int,
    states: Mapping[str, tuple[str, ...]],
    memo: Memo | None,
) -> CelType:
    if target == "user":
        return user_type() if depth <= _MAX_DEPTH else DYN
    if target == "department":
        return department_type()
    if target not in entities or depth > _MAX_DEPTH:
        return DYN
    return entity_type(entities[target], entities, depth, states, memo)


def entity_type(
    entity: Entity,
    entities: Mapping[str, Entity],
    depth: int,
    states: Mapping[str, tuple[str, ...]],
    memo: Memo | None = None,
) -> ObjectType:
    """A record of `entity`: its fields plus the system fields every record has.

    `memo` shares the type of each (entity, depth) within one link run; without
    it, apps with many references rebuild the same nested types thousands of times.
    """
    if memo is not None and (entity.name, depth) in memo:
        return memo[(entity.name, depth)]
    fields: dict[str, CelType] = {
        "id": INT,
        "number": STRING,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "created_by": user_type() if depth < _MAX_DEPTH else DYN,
        "updated_by": DYN,
        "row_version": INT,
        "workflow_version": STRING,
        "assignee": user_type() if depth < _MAX_DEPTH else DYN,
        "state": EnumType("state", states[entity.name]) if states.get(entity.name) else STRING,
    }
    for name, spec in entity.fields.items():
        fields[name] = field_type(spec, entities, depth, states, name, memo)
    result = ObjectType(entity.name, fields)
    if memo is not None:
        memo[(entity.name, depth)] = result
    return result


def build_record_types(ctx: LinkContext) -> dict[str, CelType]:
    """Record type per entity, computed once per link run."""
    entities = {name: d.model for name, d in ctx.of_kind("Entity").items()}
    states: dict[str, tuple[str, ...]] = {}
    for parsed in ctx.of_kind("Workflow").values():
        workflow = parsed.model
        states.setdefault(workflow.entity, ())
        states[workflow.entity] = tuple(dict.fromkeys((*states[workflow.entity], *workflow.states)))
    memo: Memo = {}
    return {name: entity_type(e, entities, 0, states, memo) for name, e in entities.items()}


def record_scope(ctx: LinkContext, entity: str | None) -> dict[str, CelType]:
    """Names in scope for an expression about records of `entity`."""
    record = ctx.record_types.get(entity, DYN) if entity else DYN
    return {"record": record, "user": user_type(), "now": TIMESTAMP}
