"""Reading source files of a data import, row by row, in constant memory.

CSV (UTF-8, with or without a BOM), XLSX (openpyxl's read-only streaming mode,
first sheet unless named) and JSON Lines. Every reader yields
`(row_number, {column: value})`: the row number people see in the file (in
CSV and XLSX the header is row 1, so the first data row is row 2; in JSON Lines
it is the line number). Blank rows are skipped but keep the numbering.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "SourceError", "file_hash", "read_rows", "source_columns"]

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl"}

Row = tuple[int, dict[str, Any]]


class SourceError(Exception):
    """The file cannot be read as a whole (not a row's problem)."""


def file_kind(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SourceError(
            f"{path.name}: unknown file type `{path.suffix}`; use .csv, .xlsx or .jsonl"
        )
    return kind


def file_hash(path: Path) -> str:
    """sha256 of the file's bytes: a resumed run must read the same file."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}") from None
    return digest.hexdigest()


def read_rows(path: Path) -> Iterator[Row]:
    """The data rows of `path`, numbered as people see them."""
    kind = file_kind(path)
    reader = {"csv": _csv_rows, "xlsx": _xlsx_rows, "jsonl": _jsonl_rows}[kind]
    try:
        yield from reader(path)
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise SourceError(f"{path.name} is not UTF-8 text; save it as UTF-8 CSV") from None


def source_columns(path: Path) -> list[str] | None:
    """The header of a CSV or XLSX file (None for JSON Lines: keys vary by line)."""
    kind = file_kind(path)
    if kind == "jsonl":
        return None
    if kind == "csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [c.strip() for c in next(csv.reader(handle), [])]
    workbook = _workbook(path)
    try:
        first = next(workbook.active.iter_rows(max_row=1, values_only=True), ())
        return [str(c).strip() if c is not None else "" for c in first]
    finally:
        workbook.close()


def _csv_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [c.strip() for c in next(reader, [])]
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            yield number, dict(zip(header, cells, strict=False))


def _workbook(path: Path) -> Any:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError) as error:
        raise SourceError(f"{path.name} is not an Excel workbook: {error}") from None
    except Exception as error:  # zipfile.BadZipFile and friends
        raise SourceError(f"{path.name} is not an Excel workbook: {error}") from None


def _xlsx_rows(path: Path) -> Iterator[Row]:
    workbook = _workbook(path)
    try:
        rows = workbook.active.iter_rows(values_only=True)
        header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
        for number, cells in enumerate(rows, start=2):
            if all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells):
                continue
            yield number, dict(zip(header, cells, strict=False))
    finally:
        workbook.close()


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                yield number, {"\0error": f"not valid JSON: {error.msg} at column {error.colno}"}
                continue
            if not isinstance(value, dict):
                yield number, {"\0error": "a line must be a JSON object of column -> value"}
                continue
            yield number, value
