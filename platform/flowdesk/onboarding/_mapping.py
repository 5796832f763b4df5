"""The column mapping document of a data import, and its loader with located errors.

A mapping says, for one source file, which column fills which field and how a
cell's text becomes a value: a value map for enums (`高: p2`), a date format,
a time zone for naive date-times, a reference looked up by a natural key of the
referred entity (`lookup: code`), and default values for fields no column fills.
It is a small YAML (or JSON) file validated by pydantic (`extra="forbid"`);
every problem is reported with its line, column and JSON pointer, all at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

__all__ = ["Column", "DataMapping", "MappingError", "MappingProblem", "load_mapping"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    """How one source column fills one field."""

    field: str = Field(description="The field (or `number`, `created_at`, `state` ...).")
    values: dict[str, Any] | None = Field(
        None, description="Source text -> stored value, e.g. {高: p2, 中: p3, 低: p4}."
    )
    format: str | None = Field(
        None, description="strptime format of dates and date-times, e.g. `%Y/%m/%d %H:%M`."
    )
    timezone: str | None = Field(
        None, description="Zone of date-times written without an offset (default: the app's)."
    )
    lookup: str | None = Field(
        None,
        description="For references: the referred entity's field the cell holds "
        "(default: its natural key).",
    )
    default: Any = Field(None, description="Value used when the cell is blank.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone `{value}`, e.g. Asia/Shanghai") from None
        return value


class DataMapping(_Strict):
    """A whole mapping document."""

    entity: str | None = Field(None, description="The entity imported (checked if given).")
    key: list[str] | None = Field(
        None,
        description="Fields identifying a record, for duplicates (default: the entity's "
        "natural key, else `number` when mapped).",
    )
    columns: dict[str, str | Column] = Field(min_length=1, description="Source column -> field.")
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="Values of fields no column fills."
    )

    _positions: dict[str, tuple[int, int]] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr("<mapping>")

    @property
    def source(self) -> str:
        """The file the mapping was read from, for messages."""
        return self._source

    def position(self, pointer: str) -> tuple[int | None, int | None]:
        """(line, column) of `pointer` in the file, or its nearest written ancestor."""
        if not self._positions:
            return None, None
        return _nearest(pointer, self._positions)

    def column_specs(self) -> dict[str, Column]:
        """Every column as a `Column` (a bare field name is the simple form)."""
        return {
            name: Column(field=spec) if isinstance(spec, str) else spec
            for name, spec in self.columns.items()
        }


@dataclass(frozen=True)
class MappingProblem:
    """One problem of a mapping document, located."""

    file: str
    line: int | None
    column: int | None
    pointer: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.pointer or '/'}: {self.message}"


class MappingError(Exception):
    """The mapping cannot be used; `problems` holds every reason."""

    def __init__(self, problems: list[MappingProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load_mapping(path: Path) -> DataMapping:
    """Read and validate a mapping file (YAML or JSON).

    Raises:
        MappingError: unreadable, not YAML, or not a valid mapping (every problem).
    """
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problem = MappingProblem(name, None, None, "", f"cannot read: {error}")
        raise MappingError([problem]) from None
    return parse_mapping(text, name)


def parse_mapping(text: str, name: str = "<mapping>") -> DataMapping:
    """`load_mapping` for text already read."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = MappingProblem(name, line, column, "", f"not valid YAML: {error}")
        raise MappingError([problem]) from None
    if not isinstance(data, dict):
        raise MappingError([MappingProblem(name, 1, 1, "", "a mapping document is a YAML map")])
    positions = dict(_positions(node, ""))
    try:
        mapping = DataMapping.model_validate(data)
    except ValidationError as error:
        raise MappingError(_problems(error, name, positions)) from None
    mapping._positions = positions
    mapping._source = name
    return mapping


def _problems(
    error: ValidationError, name: str, positions: Mapping[str, tuple[int, int]]
) -> list[MappingProblem]:
    problems = []
    for item in error.errors():
        loc = item["loc"]
        if "str" in loc[-1:] and loc[0] == "columns":
            continue  # a column is a name or a map: the map branch's error says more
        message = item["msg"]
        if "Column" in loc and item["type"] == "model_type":
            message = "write a field name, or a map such as {field: priority, values: {...}}"
        parts = [str(p) for p in loc if p not in ("str", "Column")]
        pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)
        line, column = _nearest(pointer, positions)
        problems.append(MappingProblem(name, line, column, pointer, message))
    return problems


def _nearest(pointer: str, positions: Mapping[str, tuple[int, int]]) -> tuple[int, int]:
    """The position of `pointer`, else of its closest ancestor that was written."""
    while pointer and pointer not in positions:
        pointer = pointer.rsplit("/", 1)[0]
    return positions.get(pointer, (1, 1))


def _positions(node: yaml.Node | None, pointer: str) -> Iterator[tuple[str, tuple[int, int]]]:
    if node is None:
        return
    yield pointer, (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            escaped = str(key.value).replace("~", "~0").replace("/", "~1")
            yield f"{pointer}/{escaped}", (key.start_mark.line + 1, key.start_mark.column + 1)
            for inner in _positions(value, f"{pointer}/{escaped}"):
                if inner[0] != f"{pointer}/{escaped}":
                    yield inner
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _positions(item, f"{pointer}/{index}")
