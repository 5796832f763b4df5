"""Reading an organisation file (XLSX, CSV or JSON) into located rows.

Every format becomes the same thing: per sheet (`departments`, `positions`, `people`)
a list of `SourceRow`s holding the cell texts under canonical column names, each with
the row number a person sees in the file, so every later problem can say where it is.
Nothing here interprets values; `_org_check` does.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "COLUMNS",
    "REQUIRED",
    "SHEETS",
    "OrgProblem",
    "OrgSource",
    "SourceRow",
    "read_org_files",
]

SHEETS = ("departments", "positions", "people")
"""The sheets an organisation file may hold, in the order they are checked and written."""

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "departments": ("code", "name", "parent_code", "head_employee_id", "region"),
    "positions": ("code", "name"),
    "people": (
        "employee_id", "name", "email", "username", "department_code", "position_code",
        "manager_employee_id", "roles", "skills", "region", "calendar", "phone", "locale",
        "timezone",
    ),
}  # fmt: skip
"""Canonical column names per sheet; headers are matched after `_normalise`."""

REQUIRED: Mapping[str, tuple[str, ...]] = {
    "departments": ("code", "name"),
    "positions": ("code", "name"),
    "people": ("employee_id", "name"),
}

_ALIASES = {
    "parent": "parent_code",
    "parent_department": "parent_code",
    "head": "head_employee_id",
    "department_head": "head_employee_id",
    "department": "department_code",
    "position": "position_code",
    "manager": "manager_employee_id",
    "manager_id": "manager_employee_id",
    "employee": "employee_id",
    "employee_no": "employee_id",
    "full_name": "name",
}
_IGNORED_SHEETS = {"instructions", "lists", "readme"}


@dataclass(frozen=True)
class OrgProblem:
    """One thing wrong with the file, where a person finds it: sheet, row, column.

    `row` is the row number in the file (the header is row 1 in XLSX and CSV; JSON rows
    count from 1 in their array); `row` 0 and `column` "" mean the whole sheet or file.
    """

    sheet: str
    row: int
    column: str
    message: str
    code: str = "invalid"

    def location(self) -> str:
        """`people row 7, column email`, as the text report prints it."""
        where = self.sheet
        if self.row:
            where += f" row {self.row}"
        if self.column:
            where += f", column {self.column}"
        return where

    def as_dict(self) -> dict[str, Any]:
        """The JSON report's shape."""
        return {"sheet": self.sheet, "row": self.row, "column": self.column,
                "code": self.code, "message": self.message}  # fmt: skip


@dataclass
class SourceRow:
    """The cells of one data row: canonical column -> stripped text (None when empty)."""

    sheet: str
    row: int
    values: dict[str, str | None]
    columns: Mapping[str, str] = field(default_factory=dict)  # canonical -> as written

    def get(self, column: str) -> str | None:
        return self.values.get(column)

    def where(self, column: str) -> str:
        """The column as the file names it (the header text), for messages."""
        return self.columns.get(column, column)


@dataclass
class OrgSource:
    """Everything read from the given files: rows per sheet, the columns each sheet
    has (only those are synchronised), and problems found while reading."""

    rows: dict[str, list[SourceRow]] = field(default_factory=dict)
    headers: dict[str, set[str]] = field(default_factory=dict)
    problems: list[OrgProblem] = field(default_factory=list)

    def has(self, sheet: str) -> bool:
        return sheet in self.rows


def read_org_files(paths: Iterable[Path]) -> OrgSource:
    """Read one XLSX or JSON file, or one or more CSV files (one sheet each).

    Unreadable files and unknown sheets or columns are reported as problems, never
    raised, so the caller prints them with the rest.
    """
    source = OrgSource()
    for path in paths:
        suffix = path.suffix.lower()
        if not path.is_file():
            source.problems.append(OrgProblem(path.name, 0, "", f"no such file: {path}",
                                              "unreadable"))  # fmt: skip
            continue
        try:
            if suffix in (".xlsx", ".xlsm"):
                _read_xlsx(path, source)
            elif suffix == ".csv":
                _read_csv(path, source)
            elif suffix == ".json":
                _read_json(path, source)
            else:
                source.problems.append(OrgProblem(
                    path.name, 0, "", "not an organisation file: use .xlsx, .csv or .json",
                    "unreadable"))  # fmt: skip
        except (OSError, ValueError, KeyError, csv.Error, UnicodeDecodeError) as error:
            source.problems.append(OrgProblem(path.name, 0, "", f"cannot read {path.name}: "
                                              f"{error}", "unreadable"))  # fmt: skip
    return source


def _normalise(header: str) -> str:
    name = re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")
    return _ALIASES.get(name, name)


def _text(value: object) -> str | None:
    """A cell as text: numbers typed into Excel (`1001`, `1001.0`) read as `1001`."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _add_sheet(
    source: OrgSource, sheet: str, header: list[object], rows: Iterator[tuple[int, list[object]]],
    label: str, header_row: int = 1,
) -> None:  # fmt: skip
    """Map the header to canonical columns and collect the non-blank rows."""
    if sheet in source.rows:
        source.problems.append(OrgProblem(label, 0, "", f"a second `{sheet}` sheet; give each "
                                          "sheet once", "duplicate-sheet"))  # fmt: skip
        return
    positions: dict[int, str] = {}
    written: dict[str, str] = {}
    for index, cell in enumerate(header):
        text = _text(cell)
        if text is None:
            continue
        name = _normalise(text)
        if name not in COLUMNS[sheet]:
            source.problems.append(OrgProblem(
                label, header_row, text, f"unknown column `{text}`; the {sheet} columns are "
                + ", ".join(COLUMNS[sheet]), "unknown-column"))  # fmt: skip
        elif name in written:
            source.problems.append(OrgProblem(label, header_row, text,
                                              f"column `{text}` appears twice",
                                              "duplicate-column"))  # fmt: skip
        else:
            positions[index] = name
            written[name] = text
    for column in REQUIRED[sheet]:
        if column not in written:
            source.problems.append(OrgProblem(label, header_row, column,
                                              f"the {sheet} sheet needs a `{column}` column",
                                              "missing-column"))  # fmt: skip
    source.headers[sheet] = set(written)
    collected: list[SourceRow] = []
    for number, cells in rows:
        values = {name: _text(cells[i]) if i < len(cells) else None
                  for i, name in positions.items()}  # fmt: skip
        if any(v is not None for v in values.values()):
            collected.append(SourceRow(label, number, values, written))
    source.rows[sheet] = collected


def _sheet_of(name: str) -> str | None:
    key = _normalise(name)
    for sheet in SHEETS:
        if key == sheet or key.endswith("_" + sheet):
            return sheet
    return {"department": "departments", "position": "positions", "person": "people",
            "employees": "people", "users": "people"}.get(key)  # fmt: skip


def _read_xlsx(path: Path, source: OrgSource) -> None:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        for worksheet in workbook.worksheets:
            if _normalise(worksheet.title) in _IGNORED_SHEETS:
                continue
            sheet = _sheet_of(worksheet.title)
            if sheet is None:
                source.problems.append(OrgProblem(
                    worksheet.title, 0, "", "unknown sheet; the data sheets are Departments, "
                    "Positions and People", "unknown-sheet"))  # fmt: skip
                continue
            rows = worksheet.iter_rows(values_only=True)
            header = list(next(rows, ()) or ())
            numbered = ((number, list(cells)) for number, cells in enumerate(rows, start=2))
            _add_sheet(source, sheet, header, numbered, worksheet.title)
    finally:
        workbook.close()


def _read_csv(path: Path, source: OrgSource) -> None:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header: list[object] = list(next(reader, []))
        sheet = _sheet_of(path.stem) or _sheet_by_header(header)
        if sheet is None:
            source.problems.append(OrgProblem(
                path.name, 1, "", "cannot tell which sheet this CSV file holds: name it "
                "departments.csv, positions.csv or people.csv", "unknown-sheet"))  # fmt: skip
            return
        numbered = ((number, list(cells)) for number, cells in enumerate(reader, start=2))
        _add_sheet(source, sheet, header, numbered, path.name)


def _sheet_by_header(header: list[object]) -> str | None:
    names = {_normalise(str(cell)) for cell in header if cell}
    if "employee_id" in names:
        return "people"
    if names & {"parent_code", "head_employee_id"}:
        return "departments"
    return None


def _read_json(path: Path, source: OrgSource) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        source.problems.append(OrgProblem(path.name, 0, "", f"not valid JSON: {error.msg} at "
                                          f"line {error.lineno}, column {error.colno}",
                                          "unreadable"))  # fmt: skip
        return
    if not isinstance(data, dict):
        source.problems.append(OrgProblem(path.name, 0, "", 'expected an object: {"departments":'
                                          ' [...], "positions": [...], "people": [...]}',
                                          "unreadable"))  # fmt: skip
        return
    for key, items in data.items():
        sheet = _sheet_of(key)
        if sheet is None or not isinstance(items, list):
            source.problems.append(OrgProblem(key, 0, "", "unknown key or not a list; expected "
                                              "departments, positions, people",
                                              "unknown-sheet"))  # fmt: skip
            continue
        _add_json_sheet(source, sheet, key, items)


def _add_json_sheet(source: OrgSource, sheet: str, key: str, items: list[Any]) -> None:
    header: list[object] = []
    for item in items:
        for name in item if isinstance(item, dict) else ():
            if name not in header:
                header.append(name)
    rows = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            source.problems.append(OrgProblem(key, number, "", "expected an object", "invalid"))
            continue
        rows.append((number, [_json_cell(item.get(name)) for name in header]))
    _add_sheet(source, sheet, header, iter(rows), key, header_row=0)  # JSON has no header row


def _json_cell(value: object) -> object:
    """Lists (roles, skills) become the `;`-separated text a spreadsheet cell holds."""
    if isinstance(value, list):
        return ";".join(str(v) for v in value if v is not None)
    return value
