"""Linker checks for dashboards: reports, measures and dimensions named by
widgets, and fields of shared filters."""

from __future__ import annotations

from ..dashboard import Dashboard, Widget
from ..diagnostics import did_you_mean
from ..report import Report
from .context import LinkContext, ParsedDocument
from .report import dimension_names
from .types import SYSTEM_FIELDS

__all__ = ["check"]


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("Dashboard").values():
        dashboard: Dashboard = doc.model
        entities = set()
        for index, widget in enumerate(dashboard.widgets):
            report = ctx.resolve(doc, f"/widgets/{index}/report", "Report", widget.report)
            if report is not None:
                entities.add(report.entity)
                _check_widget(ctx, doc, f"/widgets/{index}", widget, report)
        for index, filter_ in enumerate(dashboard.filters):
            models = [ctx.model("Entity", e) for e in entities]
            if any(m is None for m in models):
                continue  # a broken entity was reported already
            fields = {f for m in models for f in m.fields}
            if entities and filter_.field not in fields and filter_.field not in SYSTEM_FIELDS:
                ctx.error(
                    doc,
                    f"/filters/{index}/field",
                    "filter-unused",
                    f"no widget's report has a field `{filter_.field}`",
                    did_you_mean(filter_.field, fields),
                )


def _check_widget(
    ctx: LinkContext, doc: ParsedDocument, here: str, widget: Widget, report: Report
) -> None:
    measures = [m.name for m in report.measures]
    for key, names in (("measure", [widget.measure]), ("measures", widget.measures or [])):
        for index, name in enumerate(names):
            if name is not None and name not in measures:
                pointer = f"{here}/{key}" + (f"/{index}" if key == "measures" else "")
                ctx.error(
                    doc,
                    pointer,
                    "unknown-measure",
                    f"report `{report.name}` has no measure `{name}`",
                    did_you_mean(name, measures) or "measures: " + ", ".join(measures),
                )
    dimensions = dimension_names(report)
    for key in ("x", "y"):
        name = getattr(widget, key)
        if name is not None and name not in dimensions:
            ctx.error(
                doc,
                f"{here}/{key}",
                "unknown-dimension",
                f"report `{report.name}` has no dimension `{name}`",
                did_you_mean(name, dimensions)
                or "dimensions: " + (", ".join(dimensions) or "none"),
            )
