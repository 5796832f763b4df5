"""Report documents: a dataset, its dimensions and measures, computed in SQL.

Built-in KPIs (`kpi: csat`) are named measures with a fixed meaning, so every
dashboard computes AHT or FCR the same way.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ._base import CelExpr, Document, Identifier, Label, Strict

__all__ = ["AGGREGATES", "KPIS", "Dimension", "DimensionRef", "Measure", "Report"]

AGGREGATES = (
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "median",
    "percentile",
    "rate",
    "duration",
    "dwell",
)
KPIS = (
    "completion_rate",
    "aht",
    "fcr",
    "csat",
    "nps",
    "sla_attainment",
    "backlog",
    "exception_ratio",
    "cycle_time",
    "first_response_time",
)
_NEEDS_FIELD = ("count_distinct", "sum", "avg", "min", "max", "median", "percentile")


class Dimension(Strict):
    field: Identifier = Field(description="A field; a reference shows the referred record's title.")
    label: Label | None = None
    bucket: (
        Literal["hour", "day", "week", "month", "quarter", "year", "weekday", "hour_of_day"] | None
    ) = Field(None, description="Group dates and times by this period (in the app's timezone).")
    level: int | None = Field(None, ge=1, le=10, description="For departments: tree level.")


DimensionRef = Annotated[
    Identifier | Dimension, Field(description="A field name, or `{field, bucket, level}`.")
]


class Measure(Strict):
    name: Identifier
    label: Label | None = None
    agg: Literal[AGGREGATES] | None = None  # type: ignore[valid-type]
    kpi: Literal[KPIS] | None = Field(None, description="A built-in KPI instead of `agg`.")  # type: ignore[valid-type]
    field: Identifier | None = None
    p: int | None = Field(None, ge=1, le=99, description="For `percentile`: which one (e.g. 90).")
    when: CelExpr | None = Field(
        None, description="For `rate`: the share of records where this holds; otherwise a filter."
    )
    from_: Identifier | None = Field(None, alias="from", description="For `duration`: start field.")
    to: Identifier | None = Field(None, description="For `duration`: end field.")
    time: Literal["calendar", "business"] = "calendar"
    unit: str | None = Field(None, description="e.g. `h`, `%`, `CNY`.")
    format: Literal["number", "percent", "duration", "currency"] = "number"

    @model_validator(mode="after")
    def _parameters(self) -> Measure:
        if (self.agg is None) == (self.kpi is None):
            raise PydanticCustomError(
                "measure-kind", "a measure needs exactly one of `agg` or `kpi`"
            )
        problem = _missing_parameter(self)
        if problem:
            raise PydanticCustomError("measure-parameter", problem)
        return self


def _missing_parameter(measure: Measure) -> str | None:
    if measure.agg in _NEEDS_FIELD and measure.field is None:
        return f"aggregate `{measure.agg}` needs `field`"
    if measure.agg == "percentile" and measure.p is None:
        return "aggregate `percentile` needs `p` (e.g. 90)"
    if measure.agg == "rate" and measure.when is None:
        return "aggregate `rate` needs `when`"
    if measure.agg == "duration" and (measure.from_ is None or measure.to is None):
        return "aggregate `duration` needs `from` and `to`"
    return None


class Top(Strict):
    n: int = Field(ge=1)
    others: bool = Field(True, description="Sum the rest into an `others` row.")


class Report(Document):
    kind: Literal["Report"]
    entity: Identifier
    filter: CelExpr | None = Field(None, description="Which records (CEL).")
    dimensions: list[DimensionRef] = Field(default_factory=list)
    measures: list[Measure] = Field(min_length=1)
    sort: list[str] = Field(
        default_factory=list, description="Measure or dimension names; `-name` sorts descending."
    )
    limit: int | None = Field(None, ge=1, le=100_000)
    top: Top | None = None
