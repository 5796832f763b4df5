"""From a source row to the values of a record, as the mapping says (no database).

`RowConverter` is built once per import: it checks the mapping against the
entity (every problem, with the mapping's JSON pointers) and decides per column
how a cell becomes a value. `convert` then turns one row into field values,
system values (`number`, `created_at`, `state` ...) and the natural-key texts of
references still to be looked up, plus the row's format problems.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import SYSTEM_ENTITIES

from ._mapping import Column, DataMapping, MappingProblem

__all__ = ["Converted", "Lookup", "RowConverter", "RowProblem"]

SYSTEM_TARGETS = ("number", "created_at", "updated_at", "state")
"""System columns a mapping may fill: an imported record keeps its history."""

_UNMAPPABLE = ("lines", "references", "attachment")
_PLATFORM_KEYS = {
    "user": ("username", "email", "employee_id"),
    "department": ("code",),
    "position": ("code",),
}
_INSTANTS = ("datetime", "created_at", "updated_at")
_TEXTS = ("string", "text", "email", "phone", "url", "enum")


@dataclass(frozen=True)
class RowProblem:
    """One problem of one source row: what the report lists."""

    row: int
    column: str | None
    field: str | None
    code: str
    message: str
    value: Any = None


@dataclass(frozen=True)
class Lookup:
    """A reference filled from a natural key of the referred records."""

    field: str
    target: str
    key: str


@dataclass
class Converted:
    """One row as field values, ready for the records service's checks."""

    row: int
    values: dict[str, Any] = field(default_factory=dict)
    system: dict[str, Any] = field(default_factory=dict)
    lookups: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)  # field -> source column
    problems: list[RowProblem] = field(default_factory=list)


class RowConverter:
    """Applies one mapping to rows of one entity; built once per import."""

    def __init__(self, app: AppModel, entity: str, mapping: DataMapping) -> None:
        self.app = app
        self.entity_name = entity
        self.entity = app.entities[entity]
        self.mapping = mapping
        self.columns = mapping.column_specs()
        self.zone = ZoneInfo(getattr(app.manifest, "timezone", None) or "UTC")
        self.kinds = {name: spec.type for name, spec in self.entity.fields.items()}
        self.kinds.update({"number": "string", "state": "string"})
        self.kinds.update({"created_at": "created_at", "updated_at": "updated_at"})
        self.lookups: dict[str, Lookup] = {}
        self.mapped = frozenset(spec.field for spec in self.columns.values()) | frozenset(
            mapping.defaults
        )
        self.problems = self._check()
        self.key = self._key()

    # ------------------------------------------------------------------ checked once

    def _check(self) -> list[MappingProblem]:
        problems: list[MappingProblem] = []
        if self.mapping.entity not in (None, self.entity_name):
            problems.append(self._problem("/entity", f"the mapping is for `{self.mapping.entity}`"
                                          f", not `{self.entity_name}`"))
        targets: dict[str, str] = {}
        for column, spec in self.columns.items():
            pointer = f"/columns/{_escape(column)}"
            problems.extend(self._check_column(column, spec, pointer))
            if spec.field in targets:
                problems.append(self._problem(pointer, f"`{spec.field}` is already filled by "
                                              f"column `{targets[spec.field]}`"))
            targets[spec.field] = column
        for name in self.mapping.defaults:
            if self._unknown(name):
                problems.append(self._problem(f"/defaults/{_escape(name)}", self._unknown(name)))
        return problems

    def _unknown(self, name: str) -> str | None:
        if name in SYSTEM_TARGETS:
            return None
        spec = self.entity.fields.get(name)
        if spec is None:
            known = ", ".join([*self.entity.fields, *SYSTEM_TARGETS])
            return f"`{name}` is not a field of {self.entity_name} (fields: {known})"
        if spec.computed:
            return f"`{name}` is computed and cannot be imported"
        if spec.type in _UNMAPPABLE:
            return f"`{name}` is a {spec.type} field; imports fill single values only"
        return None

    def _check_column(self, column: str, spec: Column, pointer: str) -> list[MappingProblem]:
        unknown = self._unknown(spec.field)
        if unknown:
            return [self._problem(pointer, unknown)]
        kind = self.kinds[spec.field]
        problems = []
        if spec.format and kind not in ("date", *_INSTANTS):
            problems.append(self._problem(f"{pointer}/format", f"`format` is for dates and "
                                          f"date-times; `{spec.field}` is a {kind}"))
        if spec.lookup is not None or kind in ("reference", "user"):
            problems.extend(self._check_lookup(spec, pointer))
        return problems

    def _check_lookup(self, spec: Column, pointer: str) -> list[MappingProblem]:
        field_spec = self.entity.fields.get(spec.field)
        if field_spec is None or field_spec.type not in ("reference", "user"):
            return [self._problem(f"{pointer}/lookup", f"`lookup` is for references; "
                                  f"`{spec.field}` is not one")]
        target = "user" if field_spec.type == "user" else field_spec.to
        if spec.lookup is None:
            natural = self.app.entities[target].natural_key if target in self.app.entities else []
            if len(natural) == 1:
                self.lookups[spec.field] = Lookup(spec.field, target, natural[0])
            return []  # no natural key: the cell holds the record id
        allowed: tuple[str, ...]
        if target in SYSTEM_ENTITIES:
            allowed = _PLATFORM_KEYS[target]
        else:
            allowed = tuple(self.app.entities[target].fields)
        if spec.lookup not in allowed:
            return [self._problem(f"{pointer}/lookup", f"{target} has no field `{spec.lookup}`"
                                  f" to look up by (use one of: {', '.join(allowed)})")]
        self.lookups[spec.field] = Lookup(spec.field, target, spec.lookup)
        return []

    def _key(self) -> tuple[str, ...]:
        """The fields that identify a record: duplicates in the file and in the database."""
        mapped = self.mapped
        if self.mapping.key is not None:
            for name in self.mapping.key:
                if name not in mapped:
                    self.problems.append(self._problem("/key", f"key field `{name}` is not "
                                                       "filled by any column"))
            return tuple(self.mapping.key)
        if self.entity.natural_key and set(self.entity.natural_key) <= mapped:
            return tuple(self.entity.natural_key)
        return ("number",) if "number" in mapped else ()

    def _problem(self, pointer: str, message: str) -> MappingProblem:
        line, column = self.mapping.position(pointer)
        return MappingProblem(self.mapping.source, line, column, pointer, message)

    # ------------------------------------------------------------------ per row

    def convert(self, row: int, cells: Mapping[str, Any]) -> Converted:
        """One source row as values; its problems are in `problems`."""
        out = Converted(row)
        if "\0error" in cells:
            out.problems.append(RowProblem(row, None, None, "bad-line", cells["\0error"]))
            return out
        for name, value in self.mapping.defaults.items():
            self._put(out, name, value)
        for column, spec in self.columns.items():
            value = _blank_to_none(cells.get(column))
            if value is None:
                if spec.default is None:
                    continue
                value = spec.default
            elif spec.values is not None and str(value) in spec.values:
                value = spec.values[str(value)]
            out.columns[spec.field] = column
            try:
                value = self._cell(spec, value)
            except ValueError as error:
                problem = RowProblem(row, column, spec.field, "bad-format", str(error), value)
                out.problems.append(problem)
                continue
            self._put(out, spec.field, value)
        return out

    def _put(self, out: Converted, name: str, value: Any) -> None:
        if name in SYSTEM_TARGETS:
            out.system[name] = value
        elif name in self.lookups and value is not None:
            out.lookups[name] = _key_text(value)
        else:
            out.values[name] = value

    def _cell(self, spec: Column, value: Any) -> Any:
        kind = self.kinds[spec.field]
        if kind in _INSTANTS:
            return self._instant(spec, value)
        if kind == "date":
            return _day(spec, value)
        if kind in _TEXTS and isinstance(value, int | float) and not isinstance(value, bool):
            return _key_text(value)  # a spreadsheet's number in a text field: as shown
        return value

    def _instant(self, spec: Column, value: Any) -> dt.datetime:
        zone = ZoneInfo(spec.timezone) if spec.timezone else self.zone
        if isinstance(value, str):
            text = value.strip()
            try:
                if spec.format:
                    value = _parser(spec.format)(text)
                else:
                    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                how = f"the format {spec.format}" if spec.format else "ISO 8601"
                raise ValueError(f"`{text}` is not a date-time in {how}") from None
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time())
        if not isinstance(value, dt.datetime):
            raise ValueError(f"`{value}` is not a date-time")
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(dt.UTC)


def _day(spec: Column, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str) and spec.format:
        try:
            return _parser(spec.format)(value.strip()).date()
        except ValueError:
            text = value.strip()
            raise ValueError(f"`{text}` is not a date in the format {spec.format}") from None
    return value


_DIRECTIVES = {"Y": r"(\d{4})", "m": r"(\d{1,2})", "d": r"(\d{1,2})", "H": r"(\d{1,2})",
               "M": r"(\d{1,2})", "S": r"(\d{1,2})"}  # fmt: skip


@functools.cache
def _parser(format: str) -> Callable[[str], dt.datetime]:
    """A parser for `format`: a regular expression for the usual numeric directives
    (`%Y %m %d %H %M %S`, five times faster than strptime), else strptime itself."""
    pattern, order, rest = [], [], format
    while rest:
        if rest.startswith("%") and rest[1:2] in _DIRECTIVES and rest[1] not in order:
            pattern.append(_DIRECTIVES[rest[1]])
            order.append(rest[1])
            rest = rest[2:]
        elif rest.startswith("%"):
            return lambda text: dt.datetime.strptime(text, format)
        else:
            pattern.append(re.escape(rest[0]))
            rest = rest[1:]
    regex = re.compile("".join(pattern))

    def parse(text: str) -> dt.datetime:
        found = regex.fullmatch(text)
        if found is None:
            raise ValueError(text)
        parts = dict(zip(order, map(int, found.groups()), strict=True))
        return dt.datetime(parts.get("Y", 1900), parts.get("m", 1), parts.get("d", 1),
                           parts.get("H", 0), parts.get("M", 0), parts.get("S", 0))

    return parse


def _blank_to_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _key_text(value: Any) -> str:
    """Codes read from spreadsheets may come as numbers: 1024.0 is the code `1024`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")
