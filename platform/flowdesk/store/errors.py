"""Errors of the records service: what went wrong, on which record and field.

Every error the records service raises on purpose is a `RecordError`, so the
API can map the whole family to problem details (404, 409, 422) without
catching database exceptions. Messages name the entity, the record and the
field, because they are shown to people who never see a stack trace.

`UnsupportedFilter` is not a `RecordError`: it is one construct the CEL-to-SQL
translator (`filters`, which re-exports it) cannot translate, with its
position, reported by the linker and carried by `UnsupportedFilterError`. It
is defined here, below the translator, so every layer can import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowdesk.expressions import ast as cel

__all__ = [
    "Conflict",
    "FieldError",
    "InvalidCursor",
    "InvalidFilter",
    "InvalidQuery",
    "NotFound",
    "RecordError",
    "UniqueViolation",
    "UnsupportedFilter",
    "UnsupportedFilterError",
    "ValidationFailed",
]

CEL_NOT_TRANSLATABLE = "cel-not-translatable"
"""Stable code of :class:`UnsupportedFilter`, alongside the ``cel-*`` codes of the checker."""


class UnsupportedFilter(Exception):
    """A construct of a filter that cannot be translated to SQL.

    Attributes:
        message: What cannot be translated and why, quoting the construct.
        line: 1-based line of the offending node in the expression text (``None`` when
            raised by a :class:`ColumnResolver`, before :func:`to_sql` locates it).
        column: 1-based column of that node.
        offset: 0-based character offset of that node, so the linker can map it to the
            YAML file as it does for :class:`~flowdesk.expressions.ExpressionIssue`.
        hint: How to rewrite the filter, when there is a likely rewrite.
    """

    code = CEL_NOT_TRANSLATABLE

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        offset: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.offset = offset
        self.hint = hint

    def located(self, pos: cel.Pos) -> UnsupportedFilter:
        """Return this problem placed at ``pos``, unless it already has a position."""
        if self.line is not None:
            return self
        line, column, offset = pos
        return UnsupportedFilter(
            self.message, line=line, column=column, offset=offset, hint=self.hint
        )

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}: " if self.line is not None else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.code}: {self.message}{hint}"


class RecordError(Exception):
    """Base of every error the records service raises on purpose."""


class NotFound(RecordError):
    """No (live) record with this id."""

    def __init__(self, entity: str, record_id: object, *, deleted: bool = False) -> None:
        self.entity = entity
        self.record_id = record_id
        self.deleted = deleted
        state = " (it is deleted; restore it first)" if deleted else ""
        super().__init__(f"{entity} {record_id} not found{state}")


class Conflict(RecordError):
    """The record changed since the caller read it (optimistic locking)."""

    def __init__(
        self, entity: str, record_id: object, expected_version: int, current_version: int | None
    ) -> None:
        self.entity = entity
        self.record_id = record_id
        self.expected_version = expected_version
        self.current_version = current_version
        super().__init__(
            f"{entity} {record_id} was changed by someone else: you edited version "
            f"{expected_version}, it is now at version {current_version}; reload and retry"
        )


@dataclass(frozen=True)
class FieldError:
    """One problem with one field (or with the whole record when `field` is None).

    `field` is a path for nested values: `items[2].quantity`. `code` is stable
    kebab-case (`required`, `too-long`, `not-found`, `rule` ...) for clients
    that react to it; `message` is for people. `rule` names the validation
    rule that produced the error, if one did.
    """

    field: str | None
    code: str
    message: str
    rule: str | None = None

    def __str__(self) -> str:
        return self.message


class ValidationFailed(RecordError):
    """The values given do not make a valid record; `errors` lists all problems found."""

    def __init__(self, entity: str, errors: Iterable[FieldError]) -> None:
        self.entity = entity
        self.errors = list(errors)
        listed = "; ".join(str(error) for error in self.errors)
        super().__init__(f"invalid {entity}: {listed}")

    def by_field(self) -> dict[str | None, list[FieldError]]:
        grouped: dict[str | None, list[FieldError]] = {}
        for error in self.errors:
            grouped.setdefault(error.field, []).append(error)
        return grouped


class UniqueViolation(RecordError):
    """Another record already holds this value of a unique field (or field set)."""

    def __init__(self, entity: str, field: str, value: Any) -> None:
        self.entity = entity
        self.field = field
        self.value = value
        super().__init__(
            f"another {entity} already has {field} = {value!r}; {field} must be unique"
        )


class InvalidQuery(RecordError):
    """A list request that cannot run: unknown sort or field names, a bad limit."""

    def __init__(self, entity: str, message: str) -> None:
        self.entity = entity
        super().__init__(message)


class InvalidFilter(InvalidQuery):
    """A list filter that is not valid CEL for the entity (syntax, unknown field, type)."""

    def __init__(self, entity: str, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(
            entity, f"invalid filter on {entity} `{source}`: " + "; ".join(self.problems)
        )


class UnsupportedFilterError(InvalidFilter):
    """A valid CEL filter using constructs that cannot run in the database."""

    def __init__(self, entity: str, source: str, unsupported: Iterable[UnsupportedFilter]) -> None:
        self.unsupported = list(unsupported)
        super().__init__(entity, source, [_describe(item) for item in self.unsupported])


class InvalidCursor(InvalidQuery):
    """A pagination cursor that was not produced by this list (or was altered)."""

    def __init__(self, entity: str, why: str) -> None:
        super().__init__(
            entity, f"invalid cursor for {entity}: {why}; start again from the first page"
        )


def _describe(item: object) -> str:
    message = getattr(item, "message", None)
    return str(message) if message else str(item)
