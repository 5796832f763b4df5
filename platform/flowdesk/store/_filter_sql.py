"""The SQL side of filter translation: typed fragments and the null-aware builders.

A `Fragment` is a translated sub-expression with what its SQL `NULL` may
stand for (a CEL null, a CEL error, or neither) and, for sub-expressions
evaluated at translation time, their Python value (`const`). Values are bound
as parameters typed like the column they meet (`fragment_of`, `align`).
`equals`, `not_equals`, `in_value` and `substring_test` build the operators
whose null handling differs from SQL's; `filters` documents the semantics.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, TypeEngine

from flowdesk.expressions import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    EnumType,
    ListType,
    MapType,
    ObjectType,
)

__all__ = [
    "ORDERED",
    "CodepointOrder",
    "Const",
    "Fragment",
    "align",
    "as_bigint",
    "as_double",
    "default_sql_type",
    "equals",
    "fragment_of",
    "guard",
    "in_value",
    "is_compound",
    "is_scalar",
    "is_stringish",
    "not_equals",
    "substring_test",
    "typed_null",
]


# --------------------------------------------------------------------------- SQL constructs


class CodepointOrder(FunctionElement[Any]):
    """A string operand compared by Unicode code point, whatever its collation."""

    type = sa.String()
    inherit_cache = True
    name = "codepoint_order"


@compiles(CodepointOrder)
def _codepoint_order_default(element: CodepointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(CodepointOrder, "postgresql")
def _codepoint_order_postgresql(element: CodepointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


@compiles(CodepointOrder, "sqlite")
def _codepoint_order_sqlite(element: CodepointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)}) COLLATE BINARY"


class Position(FunctionElement[Any]):
    """1-based position of the second argument in the first, 0 when absent."""

    type = sa.Integer()
    inherit_cache = True
    name = "strpos"


@compiles(Position)
def _position_default(element: Position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(Position, "sqlite")
def _position_instr(element: Position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


# --------------------------------------------------------------------------- fragments


class Const(enum.Enum):
    """Markers for :attr:`Fragment.const` when no single Python value is known."""

    VARIES = "varies"  # depends on the row
    UNKNOWN = "unknown"  # known at query time, but check_translatable has no values
    ERROR = "error"  # evaluating it at query time failed


@dataclass(frozen=True)
class Fragment:
    """A translated sub-expression and what its SQL ``NULL`` may stand for.

    ``nullable``: ``NULL`` may be a CEL null (a field, a bound null value). ``fails``:
    ``NULL`` may be a CEL error. Both false: never ``NULL``. ``const`` is the Python
    value of a sub-expression evaluated at translation time.
    """

    sql: ColumnElement[Any]
    cel_type: CelType
    nullable: bool = False
    fails: bool = False
    const: object = Const.VARIES

    @property
    def known(self) -> bool:
        """Whether ``const`` is a real value (possibly ``None``)."""
        return not isinstance(self.const, Const)

    @property
    def may_be_null(self) -> bool:
        """Whether the SQL value may be ``NULL`` for any reason."""
        return self.nullable or self.fails


def is_stringish(cel_type: CelType) -> bool:
    return cel_type == STRING or isinstance(cel_type, EnumType)


_SCALARS = frozenset({INT, UINT, DOUBLE, STRING, BOOL, BYTES, TIMESTAMP, DURATION})
ORDERED = frozenset({INT, UINT, DOUBLE, STRING, BOOL, TIMESTAMP, DURATION})
# Bound values take the SQL type of the column they meet for these CEL types (native
# enums, TypeDecorators, SQLite's datetime storage); numbers keep BIGINT/FLOAT so that a
# large literal never overflows an INTEGER bind cast.
_ADOPTS_COLUMN_TYPE = frozenset({STRING, BOOL, BYTES, TIMESTAMP, DURATION})


def is_scalar(cel_type: CelType) -> bool:
    return cel_type in _SCALARS or isinstance(cel_type, EnumType)


def is_compound(cel_type: CelType) -> bool:
    """Lists, maps and records: never a single column value.

    ``dyn`` is not compound: a record-free ``dyn`` value is bound like any other, and a
    record-dependent one (a JSON field) is reported where it is read.
    """
    return isinstance(cel_type, ListType | MapType | ObjectType)


def default_sql_type(cel_type: CelType, value: object = None) -> TypeEngine[Any]:
    if cel_type == DYN:
        cel_type = _cel_type_of_value(value)
    if cel_type in (INT, UINT):
        return sa.BigInteger()
    if is_stringish(cel_type):
        return sa.String()
    simple: dict[CelType, TypeEngine[Any]] = {
        DOUBLE: sa.Float(),
        BOOL: sa.Boolean(),
        TIMESTAMP: sa.DateTime(timezone=True),
        DURATION: sa.Interval(),
        BYTES: sa.LargeBinary(),
    }
    return simple.get(cel_type, NullType())


def _cel_type_of_value(value: object) -> CelType:
    """The CEL type of a Python value, for values whose static type is ``dyn``."""
    by_class: tuple[tuple[type, CelType], ...] = (
        (bool, BOOL),
        (int, INT),
        (float, DOUBLE),
        (str, STRING),
        (bytes, BYTES),
        (datetime.datetime, TIMESTAMP),
        (datetime.timedelta, DURATION),
    )
    for python_type, cel_type in by_class:
        if isinstance(value, python_type):
            return cel_type
    return DYN


def _bind_type(
    cel_type: CelType, like: ColumnElement[Any] | None, value: object
) -> TypeEngine[Any]:
    adopt = cel_type in _ADOPTS_COLUMN_TYPE or isinstance(cel_type, EnumType)
    if cel_type == DYN:
        adopt = _cel_type_of_value(value) in _ADOPTS_COLUMN_TYPE
    if adopt and like is not None and not isinstance(like.type, NullType):
        return like.type
    return default_sql_type(cel_type, value)


def _bindable(value: object, cel_type: CelType) -> object:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC)
    if cel_type == DOUBLE and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _bind(value: object, cel_type: CelType, like: ColumnElement[Any] | None = None) -> Any:
    if cel_type == BOOL and isinstance(value, bool):
        return sa.true() if value else sa.false()
    return sa.literal(_bindable(value, cel_type), _bind_type(cel_type, like, value))


def typed_null(cel_type: CelType) -> ColumnElement[Any]:
    # Never sa.null(): SQLAlchemy turns `x == null()` into `x IS NULL`, which is not the
    # error (NULL) meant here.
    sql_type = default_sql_type(cel_type)
    if isinstance(sql_type, NullType):
        return sa.literal_column("NULL")
    return sa.cast(sa.null(), sql_type)


def fragment_of(value: object, cel_type: CelType) -> Fragment:
    if value is Const.ERROR:
        return Fragment(typed_null(cel_type), cel_type, fails=True, const=value)
    if value is None:
        return Fragment(typed_null(cel_type), cel_type, nullable=True, const=None)
    if isinstance(value, list | tuple | dict):
        return Fragment(sa.null(), cel_type, const=value)  # only read by `in`
    return Fragment(_bind(value, cel_type), cel_type, const=value)


def align(fragment: Fragment, other: Fragment) -> Fragment:
    """Rebind a constant with the SQL type of the operand it is compared with."""
    if not fragment.known or fragment.const is None or other.known:
        return fragment
    if isinstance(fragment.const, list | tuple | dict):
        return fragment
    return replace(fragment, sql=_bind(fragment.const, fragment.cel_type, like=other.sql))


def guard(failing: list[Fragment], sql: ColumnElement[Any]) -> ColumnElement[Any]:
    """``sql``, or ``NULL`` (an error) when one of the ``failing`` operands failed."""
    if not failing:
        return sql
    return sa.case((sa.and_(*(part.sql.is_not(None) for part in failing)), sql))


def as_bigint(fragment: Fragment) -> ColumnElement[Any]:
    """Integer operands are widened so that ``INTEGER`` columns do not overflow first."""
    if isinstance(fragment.sql.type, sa.BigInteger):
        return fragment.sql
    return sa.cast(fragment.sql, sa.BigInteger)


def as_double(fragment: Fragment) -> ColumnElement[Any]:
    """Double operands are computed in floating point, as in memory, even for NUMERIC."""
    if isinstance(fragment.sql.type, sa.Float):
        return fragment.sql
    return sa.cast(fragment.sql, sa.Float)


# --------------------------------------------------------------------------- builders


def equals(left: Fragment, right: Fragment, positive: bool) -> Fragment:
    """CEL ``==`` (null-safe, errors propagate); neither side is a known null."""
    core = left.sql == right.sql
    if (left.fails and right.fails) or not (left.nullable or right.nullable):
        return Fragment(core, BOOL, fails=left.may_be_null or right.may_be_null)
    if left.nullable and right.nullable:
        return Fragment(left.sql.is_not_distinct_from(right.sql), BOOL)
    other = right if left.nullable else left
    if positive:  # NULL for a null field stands for false here
        return Fragment(core, BOOL, fails=True)
    failing = [other] if other.fails else []
    safe = guard(failing, sa.func.coalesce(core, sa.false()))
    return Fragment(safe, BOOL, fails=other.fails)


def not_equals(left: Fragment, right: Fragment) -> Fragment:
    """CEL ``!=``: exactly ``!(left == right)``, in any context."""
    core = left.sql != right.sql
    if (left.fails and right.fails) or not (left.nullable or right.nullable):
        return Fragment(core, BOOL, fails=left.may_be_null or right.may_be_null)
    if left.nullable and right.nullable:
        return Fragment(left.sql.is_distinct_from(right.sql), BOOL)
    nullable, other = (left, right) if left.nullable else (right, left)
    failing = [other] if other.fails else []
    safe = guard(failing, sa.or_(nullable.sql.is_(None), core))
    return Fragment(safe, BOOL, fails=other.fails)


def in_value(left: Fragment, container: Fragment, positive: bool) -> Fragment:
    """``left in <value known at query time>``: a list, or a map's keys."""
    if container.const is Const.UNKNOWN:
        return Fragment(typed_null(BOOL), BOOL)
    value = container.const
    if isinstance(value, Mapping):
        value = list(value)
    if not isinstance(value, list | tuple):  # null, an error, a string...: CEL fails
        return fragment_of(Const.ERROR, BOOL)
    with_null = any(item is None for item in value)
    items = [item for item in value if item is not None]
    elem_type = container.cel_type
    elem_type = (
        elem_type.elem
        if isinstance(elem_type, ListType)
        else elem_type.key
        if isinstance(elem_type, MapType)
        else left.cel_type
    )
    base: ColumnElement[bool] | None = None
    if items:
        sql_type = _bind_type(elem_type, left.sql, items[0])
        bound = sa.bindparam(
            None, [_bindable(item, elem_type) for item in items], expanding=True, type_=sql_type
        )
        base = left.sql.in_(bound)
    if left.fails:  # never a CEL null, so a null item cannot match
        sql = base if base is not None else guard([left], sa.false())
        return Fragment(sql, BOOL, fails=True)
    if not left.nullable:
        return Fragment(base if base is not None else sa.false(), BOOL)
    if with_null:
        sql = left.sql.is_(None) if base is None else sa.or_(left.sql.is_(None), base)
        return Fragment(sql, BOOL)
    if base is None:
        return Fragment(sa.false(), BOOL)
    if positive:
        return Fragment(base, BOOL, fails=True)
    return Fragment(sa.func.coalesce(base, sa.false()), BOOL)


def substring_test(function: str, haystack: Fragment, needle: Fragment) -> Fragment:
    """``startsWith``/``endsWith``/``contains`` without LIKE (case and wildcards)."""
    fails = haystack.may_be_null or needle.may_be_null
    if function == "contains":
        return Fragment(Position(haystack.sql, needle.sql) > 0, BOOL, fails=fails)
    if needle.known and isinstance(needle.const, str):
        length: Any = sa.literal(len(needle.const), sa.Integer)
    else:
        length = sa.func.length(needle.sql, type_=sa.Integer)
    if function == "startsWith":
        part = sa.func.substr(haystack.sql, sa.literal(1, sa.Integer), length)
    else:  # a start before the string never yields a part as long as the suffix
        start = sa.func.length(haystack.sql, type_=sa.Integer) - length + sa.literal(1, sa.Integer)
        part = sa.func.substr(haystack.sql, start)
    return Fragment(part == needle.sql, BOOL, fails=fails)
