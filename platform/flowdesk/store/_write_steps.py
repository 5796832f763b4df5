"""Steps of a write that need only the entity's plan and the open transaction.

Reading the record a change is based on (`current_record`, which checks the
version the caller edited), merging given lines over the lines they replace,
the checks of deprecated enum values and unique values, and the optimistic
`UPDATE ... WHERE id = ? AND row_version = ?` (`update_row`). `RecordStore`
calls them in the order its README describes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from ._entity_plan import EntityPlan
from .errors import Conflict, FieldError, NotFound, UniqueViolation
from .values import DefaultContext

__all__ = [
    "check_unique",
    "current_record",
    "deprecated_values",
    "error_paths",
    "merge_lines",
    "update_row",
]


def current_record(
    conn: Connection,
    plan: EntityPlan,
    record_id: int,
    expected_version: int | None,
    *,
    deleted: bool = False,
    where: ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """The record as stored, checked against the version the caller edited.

    A deleted record is `NotFound` unless `deleted` (restore, hard delete); so is a
    record outside `where` (the caller's data scope), before its version is
    compared, so a refused caller learns nothing about it.
    """
    statement = plan.select_one if where is None else plan.restricted(plan.select_one, where, 1)
    row = conn.execute(statement, {"id": record_id}).first()
    if row is None:
        raise NotFound(plan.name, record_id)
    record = plan.to_record(row)
    if record["deleted_at"] is not None and not deleted:
        raise NotFound(plan.name, record_id, deleted=True)
    if expected_version is not None and record["row_version"] != expected_version:
        raise Conflict(plan.name, record_id, expected_version, record["row_version"])
    plan.read_children(conn, [record], None)
    return record


def update_row(
    conn: Connection,
    plan: EntityPlan,
    record_id: int,
    version: int,
    actor_id: int | None,
    now: dt.datetime,
    values: Mapping[str, Any],
    where: ColumnElement[bool] | None = None,
) -> None:
    """Write `values` if the row is still at `version`, else `Conflict` (or `NotFound`).

    With `where`, the row must also still match it (a referred record or the org
    chart may have changed since `current_record` read it): else `NotFound`.
    """
    params = {
        **values,
        "row_version": version + 1,
        "updated_at": now,
        "updated_by": actor_id,
        "_id": record_id,
        "_version": version,
    }
    statement = plan.update if where is None else plan.restricted(plan.update, where, 2)
    if conn.execute(statement, params).rowcount != 1:
        row = conn.execute(plan.version_of, {"id": record_id}).first()
        if row is None or row.row_version == version:
            raise NotFound(plan.name, record_id)
        raise Conflict(plan.name, record_id, version, row.row_version)


def merge_lines(
    plan: EntityPlan,
    name: str,
    given: list[dict[str, Any]],
    old: list[dict[str, Any]],
    context: DefaultContext,
    errors: list[FieldError],
) -> list[dict[str, Any]]:
    """Given lines over the lines they replace (by id) or over a new line's defaults."""
    shape = plan.codecs[name].lines
    assert shape is not None
    before = {line["id"]: line for line in old}
    merged = []
    for index, line in enumerate(given):
        line_id = line.get("id")
        if line_id is not None and line_id not in before:
            message = f"{name} has no line with id {line_id}"
            errors.append(FieldError(f"{name}[{index}].id", "not-found", message))
            line_id = None
        base = dict(before[line_id]) if line_id is not None else shape.defaults(context)
        merged.append(
            {
                "id": line_id,
                **{k: v for k, v in base.items() if k != "id"},
                **{k: v for k, v in line.items() if k != "id"},
            }
        )
    return merged


def deprecated_values(
    plan: EntityPlan, record: Mapping[str, Any], old: Mapping[str, Any] | None
) -> list[FieldError]:
    """Deprecated enum values are kept on old records but cannot be newly chosen."""
    errors = []
    for name, codec in plan.codecs.items():
        if not codec.deprecated_values:
            continue
        value, before = record.get(name), (old or {}).get(name)
        chosen = set(value or ()) if codec.multiple else {value}
        kept = set(before or ()) if codec.multiple else {before}
        for item in sorted((chosen - kept) & codec.deprecated_values):
            errors.append(
                FieldError(name, "deprecated-value", f"{name}: {item!r} is no longer offered")
            )
    return errors


def check_unique(
    conn: Connection,
    plan: EntityPlan,
    record: Mapping[str, Any],
    changed: Sequence[str],
    record_id: int | None,
) -> None:
    """Raise `UniqueViolation` when another record holds a changed unique value."""
    sets = [
        names
        for names in plan.uniques
        if any(n in changed for n in names) and all(record.get(n) is not None for n in names)
    ]
    if not sets:
        return
    table = plan.table
    wanted = plan.db_values(record, sorted({n for names in sets for n in names}))
    condition = or_(*(and_(*(table.c[n] == wanted[n] for n in names)) for names in sets))
    if record_id is not None:
        condition = and_(condition, table.c.id != record_id)
    statement = select(*(table.c[n] for n in wanted)).where(condition).limit(1)
    row = conn.execute(statement).first()
    if row is None:
        return
    found = dict(zip(wanted, row, strict=True))
    for names in sets:
        if all(found[n] == wanted[n] for n in names):
            value = record[names[0]] if len(names) == 1 else tuple(record[n] for n in names)
            raise UniqueViolation(plan.name, ", ".join(names), value)


def error_paths(errors: Sequence[FieldError]) -> frozenset[str]:
    """The field paths that already have an error (not also reported as missing)."""
    return frozenset(error.field for error in errors if error.field)
