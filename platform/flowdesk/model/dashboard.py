"""Dashboard documents: KPI cards, charts and tables over reports, with shared
filters, red / amber / green thresholds and drill-down to records."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ._base import Document, Identifier, Label, Strict

__all__ = ["WIDGET_TYPES", "Dashboard", "Filter", "Thresholds", "Widget"]

WIDGET_TYPES = (
    "kpi",
    "bar",
    "stacked_bar",
    "line",
    "area",
    "pie",
    "donut",
    "scatter",
    "heatmap",
    "table",
    "forecast",
)


class Filter(Strict):
    name: Identifier
    label: Label | None = None
    type: Literal["date_range", "select", "multi_select", "text"] = "select"
    field: Identifier = Field(description="Field filtered in every widget whose entity has it.")
    default: str | None = Field(None, examples=["last_30_days", "this_month"])


class Thresholds(Strict):
    """Colour bands: green beyond `amber`, amber beyond `red`, red otherwise."""

    amber: float
    red: float
    better: Literal["higher", "lower"] = "higher"

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        wrong = self.amber < self.red if self.better == "higher" else self.amber > self.red
        if wrong:
            raise PydanticCustomError(
                "thresholds-order",
                "with better: {better}, `amber` must be {side} than `red`",
                {"better": self.better, "side": "higher" if self.better == "higher" else "lower"},
            )
        return self


class Compare(Strict):
    start: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    end: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    label: Label | None = None


class Widget(Strict):
    type: Literal[WIDGET_TYPES]  # type: ignore[valid-type]
    title: Label | None = None
    report: Identifier
    measure: Identifier | None = Field(None, description="For `kpi` and single-series charts.")
    measures: list[Identifier] | None = Field(
        None, description="Series of a chart or table columns."
    )
    x: Identifier | None = Field(None, description="Dimension on the horizontal axis.")
    y: Identifier | None = Field(None, description="Second dimension (heatmap rows, scatter).")
    target: float | None = None
    thresholds: Thresholds | None = None
    compare: Literal["previous_period", "previous_year"] | Compare | None = None
    width: int = Field(4, ge=1, le=12, description="Width in twelfths of the page.")
    drill: bool = Field(True, description="Clicking a number lists the records behind it.")
    capacity: float | None = Field(
        None, description="For `forecast`: items the team can handle per period."
    )

    @model_validator(mode="after")
    def _kpi_measure(self) -> Widget:
        if self.type == "kpi" and self.measure is None:
            raise PydanticCustomError("widget-measure", "a `kpi` widget needs `measure`")
        return self


class Dashboard(Document):
    kind: Literal["Dashboard"]
    filters: list[Filter] = Field(default_factory=list)
    widgets: list[Widget] = Field(min_length=1)
    refresh: int | None = Field(None, ge=10, description="Auto-refresh every N seconds.")
