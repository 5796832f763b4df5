"""Diagnostics are data: every problem found in an app, with its location.

All three validation passes (JSON Schema, pydantic, linker) and the loader
report through `Diagnostic`, so the CLI, the API and tests render and filter
them the same way. Codes are stable kebab-case strings; tests and CI
annotations rely on them, so never change a code's meaning.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "Diagnostic",
    "DiagnosticSink",
    "Severity",
    "did_you_mean",
    "escape_pointer",
    "join_pointer",
]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One located problem. `pointer` is an RFC 6901 JSON pointer into the document."""

    file: str
    line: int
    column: int
    code: str
    message: str
    pointer: str = ""
    hint: str | None = None
    severity: Severity = field(default=Severity.ERROR, compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def as_dict(self) -> dict[str, object]:
        """The machine-readable form used by `--format json`."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "hint": self.hint,
        }


class DiagnosticSink:
    """Collects diagnostics, dropping exact repeats (several passes may see one fault)."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []
        self._seen: set[Diagnostic] = set()

    def add(self, diagnostic: Diagnostic) -> None:
        if diagnostic not in self._seen:
            self._seen.add(diagnostic)
            self._items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for diagnostic in diagnostics:
            self.add(diagnostic)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self._items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self._items)

    def __len__(self) -> int:
        return len(self._items)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean `x`?" hint for a misspelt name, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{matches[0]}`?" if matches else None


def escape_pointer(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(*tokens: str | int) -> str:
    """Build an RFC 6901 pointer from path tokens: ("fields", "a/b") -> "/fields/a~1b"."""
    return "".join("/" + escape_pointer(t) for t in tokens)
