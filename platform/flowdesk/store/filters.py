"""Translate compiled CEL filters into SQLAlchemy Core boolean clauses.

List filters, row scopes and report filters are written in CEL like every other
condition, but they must run in the database: a list of 100 000 tickets cannot be
loaded to be filtered in memory. :func:`to_sql` turns a
:class:`~flowdesk.expressions.CompiledExpression` into a ``WHERE`` clause for the
supported subset, and :func:`check_translatable` tells the linker *statically* which
constructs fall outside it, with their positions, so the analyst learns it when the model
is validated rather than when a list is opened.

The contract is that the clause selects exactly the rows for which evaluating the same
expression in memory returns ``true``; the property test of this module checks it on
SQLite and PostgreSQL. The semantic choices that make it hold:

**Errors and nulls.** In memory a row is selected when the result is ``true``; an error
(``null < 3``, division by zero) or a ``null`` result excludes it. In SQL every
sub-expression that would fail in CEL yields SQL ``NULL``, and CEL's ``&&``/``||`` are
commutative and absorb errors exactly like SQL's three-valued ``AND``/``OR``
(``false && error`` is ``false``, ``true || error`` is ``true``) and ``!error`` is an
error just as ``NOT NULL`` is ``NULL``. So booleans are translated as is, no
``coalesce(..., false)`` at operator boundaries -- that would make ``!(a < b)`` select
rows where ``a`` is null, which CEL does not.

A SQL ``NULL`` is ambiguous only where CEL tells a null *value* from an error: ``==``,
``!=``, ``in`` (null-safe in CEL: ``null == null`` is ``true``, ``null != "x"`` is
``true``, ``null in ["a", null]`` is ``true``), null checks and ``size`` (see
below). Each translated operand therefore records whether its ``NULL`` may mean "the
field is null" (fields, values bound from ``values``) and/or "CEL would fail"
(arithmetic, functions, comparisons), and those operators pick
``IS [NOT] DISTINCT FROM``, ``IS NULL OR ...`` or a ``CASE`` guard accordingly. A ``?:``
operand, whose ``NULL`` could mean either, is distributed instead: ``(c ? a : b) == x``
becomes ``c ? a == x : b == x``. ``?:`` itself is
``CASE WHEN c THEN a WHEN NOT c THEN b END`` so that an erroneous condition yields
``NULL`` rather than the ``else`` branch.

Where a ``NULL`` result and ``false`` are interchangeable -- the top of the filter and
operands of ``&&``/``||`` above it, never below ``!`` or in a ``?:`` condition -- an
equality with a nullable field is emitted as a plain ``=``/``IN``, which indexes serve.

**Strings** compare by Unicode code point in CEL. Ordering comparisons get
``COLLATE "C"`` on PostgreSQL (byte order of UTF-8, i.e. code point order, whatever the
database or column collation) and ``COLLATE BINARY`` on SQLite; equality needs nothing
because PostgreSQL's deterministic collations compare equal strings bytewise.
``startsWith``/``endsWith``/``contains`` use ``substr``/``length``/``strpos`` (``instr``
on SQLite), never ``LIKE``, which is case-insensitive on SQLite and treats ``%``/``_``
as wildcards.

**Values known at query time.** Any sub-expression that does not read the record --
``user.region``, ``now - duration("24h")``, ``timestamp("2026-01-01T00:00:00Z")``,
``user.regions.exists(r, r == "EU")`` -- is evaluated in Python by the CEL evaluator
itself against ``values`` and bound as a parameter typed like the column it is compared
with (never formatted into the SQL text); if that evaluation fails, the sub-expression is
an error (``NULL``) exactly as it would be in memory. Timestamps are bound in UTC, so a
SQLite store must keep timestamps in UTC (SQLAlchemy's SQLite ``DateTime`` drops offsets).

**Known differences from in-memory evaluation**, documented rather than emulated:

* ``has(record.f)`` is ``f IS NOT NULL`` (what analysts mean by it); in memory a record
  carries all its fields, so ``has`` is ``true`` even for a null field;
* ``size(record.f)`` of a null field is ``0``, following the current evaluator (CEL
  would fail); ``size`` of an erroneous value is an error;
* ``matches`` is only translated for plain text with optional ``^``/``$`` anchors, as
  ``startsWith``/``endsWith``/``contains``/``==`` (a ``$`` in memory also matches
  before a final newline);
* ``(a && b) == null`` is an error here as in CEL, but the evaluator answers ``null``
  rather than an error for ``null && true``, so in memory it can be ``true``;
* a double division by zero is an error here but ``inf``/``nan`` in memory, and an
  integer overflow fails the query on PostgreSQL (widens to a float on SQLite) where CEL
  reports an error for that row; integer operands are widened to ``BIGINT`` first;
* a path through a reference (``record.customer.level``) is whatever the
  :class:`ColumnResolver` returns: a missing referenced record reads as a null field,
  where in memory selecting a field of ``null`` is an error.

**Where the code is.** This module is the public surface. The walk over the AST is
``_filter_walk.Translator``; typed SQL fragments and the null-aware operator builders
are in ``_filter_sql``; static facts about nodes and CEL text from nodes in
``_filter_ast``. :class:`UnsupportedFilter` is defined in ``errors`` with the other
errors of the store, and re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from flowdesk.expressions import CompiledExpression

from ._filter_walk import Translator
from .errors import CEL_NOT_TRANSLATABLE, UnsupportedFilter

__all__ = [
    "CEL_NOT_TRANSLATABLE",
    "ColumnResolver",
    "TableColumns",
    "UnsupportedFilter",
    "check_translatable",
    "to_sql",
]


class ColumnResolver(Protocol):
    """Maps a record field path to a SQL expression; the store decides how.

    ``("priority",)`` is typically ``table.c.priority``; ``("customer", "level")`` may be
    a correlated scalar subquery or a column of a joined table. Unknown paths raise
    :class:`UnsupportedFilter` (its position is filled in by :func:`to_sql`).
    """

    def column(self, path: tuple[str, ...]) -> ColumnElement[Any]: ...


@dataclass(frozen=True)
class TableColumns:
    """The simplest :class:`ColumnResolver`: fields are the columns of one table.

    Nested paths are refused, because following a reference needs a join that only the
    store knows how to build.
    """

    table: FromClause

    def column(self, path: tuple[str, ...]) -> ColumnElement[Any]:
        """Return the column named by a one-field path."""
        if len(path) == 1 and path[0] in self.table.c:
            return self.table.c[path[0]]
        dotted = ".".join(path)
        hint = "fields of referenced records need a resolver that joins their table"
        raise UnsupportedFilter(
            f"field `{dotted}` has no column in the filtered table",
            hint=hint if len(path) > 1 else None,
        )


def check_translatable(
    expr: CompiledExpression, *, record: str = "record"
) -> list[UnsupportedFilter]:
    """Return every construct of ``expr`` outside the SQL subset, in source order.

    Purely static -- no table, resolver or values are needed -- so the linker can run it
    when a model is validated. ``record`` is the scope name whose fields are columns;
    every other name is a value known at query time. An empty list means :func:`to_sql`
    will succeed unless the resolver refuses a path.
    """
    translator = Translator(expr, record, columns=None, values=None, collect=True)
    translator.translate()
    return sorted(translator.problems, key=lambda problem: problem.offset or 0)


def to_sql(
    expr: CompiledExpression,
    columns: ColumnResolver,
    values: Mapping[str, object] | None = None,
    *,
    record: str = "record",
) -> ColumnElement[bool]:
    """Translate the filter ``expr`` into a boolean SQLAlchemy clause.

    Args:
        expr: A compiled condition (result type ``bool``).
        columns: Resolves ``record`` field paths to SQL expressions.
        values: Values of the other names the expression reads (``user``, ``now``...),
            as accepted by :meth:`CompiledExpression.evaluate`.
        record: The scope name whose fields are columns.

    Raises:
        UnsupportedFilter: the first construct :func:`check_translatable` reports, or a
            path the resolver refuses, located in the expression.
        ValueError: ``values`` lacks a name the expression reads.
    """
    problems = check_translatable(expr, record=record)
    if problems:
        raise problems[0]
    translator = Translator(expr, record, columns=columns, values=values or {}, collect=False)
    return translator.translate()
