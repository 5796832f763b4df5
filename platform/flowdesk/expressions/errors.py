"""Problems found in CEL expressions, at compile time and at runtime.

Compile-time problems are data (:class:`ExpressionIssue`) rather than exceptions so the
linker can report *all* of them, with positions, next to the YAML line that holds the
expression. Runtime problems are a single exception type so that callers never have to
know about the evaluator underneath.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CEL_BAD_ARGUMENTS",
    "CEL_NOT_BOOLEAN",
    "CEL_SYNTAX",
    "CEL_TYPE_MISMATCH",
    "CEL_UNKNOWN_ENUM_VALUE",
    "CEL_UNKNOWN_FIELD",
    "CEL_UNKNOWN_FUNCTION",
    "CEL_UNKNOWN_NAME",
    "ExpressionError",
    "ExpressionEvalError",
    "ExpressionIssue",
]

CEL_SYNTAX = "cel-syntax"
CEL_UNKNOWN_NAME = "cel-unknown-name"
CEL_UNKNOWN_FIELD = "cel-unknown-field"
CEL_TYPE_MISMATCH = "cel-type-mismatch"
CEL_UNKNOWN_FUNCTION = "cel-unknown-function"
CEL_BAD_ARGUMENTS = "cel-bad-arguments"
CEL_UNKNOWN_ENUM_VALUE = "cel-unknown-enum-value"
CEL_NOT_BOOLEAN = "cel-not-boolean"


@dataclass(frozen=True)
class ExpressionIssue:
    """One problem in an expression, located within the expression text.

    Attributes:
        code: Stable kebab-case identifier (``cel-unknown-field``...) that tooling and
            documentation can rely on; messages may be reworded, codes may not.
        message: What is wrong, quoting identifiers with backticks.
        hint: How to fix it, when there is a likely fix (``did you mean ...?``).
        line: 1-based line within the expression text.
        column: 1-based column within that line.
        offset: 0-based character offset within the expression text, so the linker can
            map the issue to a position in the YAML file.
    """

    code: str
    message: str
    hint: str | None
    line: int
    column: int
    offset: int

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.line}:{self.column}: {self.code}: {self.message}{hint}"


class ExpressionError(Exception):
    """An expression failed to compile; ``issues`` lists every problem found."""

    def __init__(self, issues: tuple[ExpressionIssue, ...] | list[ExpressionIssue]) -> None:
        self.issues: tuple[ExpressionIssue, ...] = tuple(issues)
        super().__init__("; ".join(str(issue) for issue in self.issues))


class ExpressionEvalError(Exception):
    """Evaluating a compiled expression failed (missing key, division by zero...).

    The message names the expression so a log line is actionable on its own.
    """

    def __init__(self, message: str, *, source: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.source = source
        self.reason = reason if reason is not None else message
