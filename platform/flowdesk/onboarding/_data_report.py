"""The problem report of a data import: CSV or JSON, written as problems are found.

Rows are written as they come (constant memory); the JSON report ends with the
summary. Columns: row, column, field, code, message, value, phase (`validate`
for the validation pass, `import` for a row refused only when written because
the database changed in between).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from ._data_rows import RowProblem

__all__ = ["REPORT_FIELDS", "ReportFile"]

REPORT_FIELDS = ("row", "column", "field", "code", "message", "value", "phase")


class ReportFile:
    """A report file; `.json` writes JSON, anything else CSV."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.json = path.suffix.lower() == ".json"
        self._handle: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._first = True
        if self.json:
            self._handle.write('{"problems": [')
        else:
            self._csv = csv.writer(self._handle)
            self._csv.writerow(REPORT_FIELDS)

    def write(self, problem: RowProblem, phase: str) -> None:
        values = [problem.row, problem.column, problem.field, problem.code, problem.message,
                  _plain(problem.value), phase]
        if not self.json:
            self._csv.writerow(["" if v is None else v for v in values])
            return
        self._handle.write(("\n  " if self._first else ",\n  ") + json.dumps(
            dict(zip(REPORT_FIELDS, values, strict=True)), ensure_ascii=False))
        self._first = False

    def close(self, summary: dict[str, Any]) -> None:
        if self.json:
            text = json.dumps(summary, ensure_ascii=False, indent=2, default=str)
            self._handle.write(f'\n],\n"summary": {text}\n}}\n')
        self._handle.close()


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date | Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
