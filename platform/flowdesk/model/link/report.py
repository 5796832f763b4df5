"""Linker checks for reports: dataset fields, dimensions, measures, sorting."""

from __future__ import annotations

from flowdesk.expressions import BOOL

from ..diagnostics import did_you_mean
from ..entity import Entity
from ..report import Dimension, Report
from .context import LinkContext, ParsedDocument
from .entity import require_field
from .types import record_scope

__all__ = ["check", "dimension_names"]

_TIME_TYPES = ("date", "datetime")
_TIME_SYSTEM = ("created_at", "updated_at", "deleted_at")
_NUMERIC = ("integer", "decimal", "duration")


def dimension_names(report: Report) -> list[str]:
    return [d if isinstance(d, str) else d.field for d in report.dimensions]


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("Report").values():
        report: Report = doc.model
        entity = ctx.resolve(doc, "/entity", "Entity", report.entity)
        scope = record_scope(ctx, report.entity)
        if report.filter:
            ctx.compile(doc, "/filter", report.filter, scope, expect=BOOL)
        for index, dimension in enumerate(report.dimensions):
            _check_dimension(ctx, doc, f"/dimensions/{index}", dimension, entity)
        names: set[str] = set(dimension_names(report))
        for index, measure in enumerate(report.measures):
            here = f"/measures/{index}"
            if measure.name in names:
                ctx.error(
                    doc,
                    here + "/name",
                    "duplicate-name",
                    f"`{measure.name}` names another measure or dimension",
                )
            names.add(measure.name)
            _check_measure(ctx, doc, here, measure, entity, scope)
        for index, key in enumerate(report.sort):
            name = key.removeprefix("-")
            if name not in names:
                ctx.error(
                    doc,
                    f"/sort/{index}",
                    "unknown-sort",
                    f"cannot sort by `{name}`: it is not a measure or dimension",
                    did_you_mean(name, names),
                )


def _check_dimension(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    dimension: str | Dimension,
    entity: Entity | None,
) -> None:
    name = dimension if isinstance(dimension, str) else dimension.field
    field_pointer = pointer if isinstance(dimension, str) else pointer + "/field"
    spec = require_field(ctx, doc, field_pointer, entity, name, allow_system=True)
    if entity is None:
        return
    if isinstance(dimension, Dimension) and dimension.bucket:
        is_time = name in _TIME_SYSTEM or (spec is not None and spec.type in _TIME_TYPES)  # type: ignore[attr-defined]
        if not is_time and (spec is not None or name not in _TIME_SYSTEM):
            ctx.error(
                doc,
                pointer + "/bucket",
                "bucket-not-time",
                f"`{name}` is not a date or time, so it cannot be grouped by {dimension.bucket}",
            )
    if (
        isinstance(dimension, Dimension)
        and dimension.level
        and spec is not None
        and getattr(spec, "to", None) != "department"
    ):
        ctx.error(
            doc,
            pointer + "/level",
            "level-not-department",
            "`level` groups by the org tree; it needs a reference to `department`",
        )


def _check_measure(
    ctx: LinkContext,
    doc: ParsedDocument,
    here: str,
    measure: object,
    entity: Entity | None,
    scope: dict,
) -> None:  # type: ignore[type-arg]
    field = getattr(measure, "field", None)
    if field:
        spec = require_field(ctx, doc, here + "/field", entity, field, allow_system=True)
        agg = getattr(measure, "agg", None)
        if (
            spec is not None
            and agg in ("sum", "avg", "median", "percentile")
            and spec.type not in _NUMERIC
        ):  # type: ignore[attr-defined]
            ctx.error(
                doc,
                here + "/field",
                "not-numeric",
                f"cannot take the {agg} of `{field}`, a `{spec.type}` field",
            )  # type: ignore[attr-defined]
    when = getattr(measure, "when", None)
    if when:
        ctx.compile(doc, here + "/when", when, scope, expect=BOOL)
    for key, alias in (("from_", "from"), ("to", "to")):
        name = getattr(measure, key, None)
        if name:
            spec = require_field(ctx, doc, f"{here}/{alias}", entity, name, allow_system=True)
            if spec is not None and spec.type not in _TIME_TYPES:  # type: ignore[attr-defined]
                ctx.error(doc, f"{here}/{alias}", "not-a-date", f"`{name}` is not a date or time")
    if (
        getattr(measure, "agg", None) == "dwell"
        and entity is not None
        and not any(d.model.entity == entity.name for d in ctx.of_kind("Workflow").values())
    ):
        ctx.error(
            doc, here + "/agg", "no-workflow", f"dwell time needs a workflow for `{entity.name}`"
        )
