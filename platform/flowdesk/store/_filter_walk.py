"""The walker that translates a filter's AST into SQL, or lists what it cannot translate.

One `Translator` serves both `filters.check_translatable` (collecting every
unsupported construct, with its position) and `filters.to_sql` (building the
clause), so the two can never disagree. Each node type has a handler named
after it (`_select`, `_binary`, `_call` ...); operators whose null handling
differs between CEL and SQL are built by `_filter_sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from flowdesk.expressions import (
    BOOL,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    CompiledExpression,
    EnumType,
    ExpressionEvalError,
    ListType,
    MapType,
    ObjectType,
)
from flowdesk.expressions import ast as cel

from ._filter_ast import (
    NodeFacts,
    compile_cached,
    is_null_literal,
    scope_of,
    snippet,
    start_pos,
    trivial_regex,
    unparse,
)
from ._filter_sql import (
    ORDERED,
    CodepointOrder,
    Const,
    Fragment,
    align,
    as_bigint,
    as_double,
    default_sql_type,
    equals,
    fragment_of,
    guard,
    in_value,
    is_compound,
    is_scalar,
    is_stringish,
    not_equals,
    substring_test,
    typed_null,
)
from .errors import UnsupportedFilter

if TYPE_CHECKING:
    from .filters import ColumnResolver

__all__ = ["Translator"]

_CONVERSIONS = frozenset({"int", "uint", "string", "bool", "bytes", "timestamp", "duration"})
_GETTERS = frozenset(
    {
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)
_AGGREGATES = frozenset({"sum", "max", "min"})
_STRING_TESTS = frozenset({"startsWith", "endsWith", "contains"})
_DATE_HINT = (
    'compare the field with a value computed without it, e.g. `{field} > now - duration("24h")`'
)


class Translator(NodeFacts):
    """Walks the AST of one filter, building SQL or collecting unsupported constructs.

    One walker serves both :func:`check_translatable` (``collect=True``: no resolver,
    no values, every problem recorded and replaced by a placeholder so siblings are
    still visited) and :func:`to_sql`, so the two can never disagree. What it
    asks of a node (type, names read, record path) comes from `NodeFacts`.
    """

    def __init__(
        self,
        expr: CompiledExpression,
        record: str,
        *,
        columns: ColumnResolver | None,
        values: Mapping[str, object] | None,
        collect: bool,
    ) -> None:
        super().__init__(scope_of(expr), record)
        self.expr = expr
        self.scope_key = tuple(sorted(self.scope.items()))
        self.columns = columns
        self.values = values
        self.collect = collect
        self.problems: list[UnsupportedFilter] = []

    # -- entry point

    def translate(self) -> ColumnElement[bool]:
        result_type = self.expr.result_type
        if result_type not in (BOOL, DYN):
            line, column, offset = start_pos(self.expr.source)
            self._report(
                UnsupportedFilter(
                    f"a filter must be a condition (bool), but this expression is {result_type}",
                    line=line,
                    column=column,
                    offset=offset,
                )
            )
            return sa.false()
        fragment = self.expr_(self.expr.ast, positive=True)
        if fragment.known:
            return sa.true() if fragment.const is True else sa.false()
        if fragment.const is not Const.VARIES:
            return sa.false()
        return fragment.sql

    # -- problems

    def _report(self, problem: UnsupportedFilter) -> None:
        if not self.collect:
            raise problem
        self.problems.append(problem)

    def unsupported(self, node: cel.Node, reason: str, hint: str | None = None) -> Fragment:
        """Report ``node`` and return a placeholder so the walk can go on."""
        line, column, offset = node.pos
        message = f"`{snippet(node)}` cannot be used in a filter: {reason}"
        self._report(UnsupportedFilter(message, line=line, column=column, offset=offset, hint=hint))
        return Fragment(typed_null(self.type_of(node)), self.type_of(node))

    # -- dispatch

    def expr_(self, node: cel.Node, positive: bool = False) -> Fragment:
        """Translate ``node``; ``positive``: a ``NULL`` result may stand for ``false``."""
        if not self.reads_record(node):
            return self.constant(node)
        handler: Callable[[Any, bool], Fragment] = getattr(self, f"_{type(node).__name__.lower()}")
        return handler(node, positive)

    def constant(self, node: cel.Node) -> Fragment:
        """A record-free sub-expression, evaluated now by the CEL evaluator."""
        cel_type = self.type_of(node)
        if isinstance(node, cel.Literal):
            return fragment_of(node.value, cel_type)
        if self.values is None:
            return Fragment(typed_null(cel_type), cel_type, const=Const.UNKNOWN)
        missing = sorted(self.free_names(node) - set(self.values))
        if missing:
            names = ", ".join(f"`{name}`" for name in missing)
            raise ValueError(f"to_sql needs a value for {names} to translate `{snippet(node)}`")
        compiled = compile_cached(unparse(node, evaluable=True), self.scope_key)
        try:
            value = compiled.evaluate(self.values)
        except ExpressionEvalError:
            value = Const.ERROR
        return fragment_of(value, cel_type)

    def column(self, path: tuple[str, ...], node: cel.Node) -> Fragment:
        cel_type = self.type_of(node)
        if self.columns is None:
            placeholder = sa.column("__".join(path), default_sql_type(cel_type))
            return Fragment(placeholder, cel_type, nullable=True)
        try:
            sql = self.columns.column(path)
        except UnsupportedFilter as problem:
            raise problem.located(node.pos) from None
        nullable = getattr(sql, "nullable", True) is not False
        return Fragment(sql, cel_type, nullable=nullable)

    def distribute(
        self, conditional: cel.Conditional, rebuild: Callable[[cel.Node], cel.Node], positive: bool
    ) -> Fragment:
        """``op(c ? a : b)`` as ``c ? op(a) : op(b)``, for operators that tell null from error.

        The type is the operation's: a rebuilt branch such as ``size(null)`` does not
        type-check on its own.
        """
        spread = replace(
            conditional, then=rebuild(conditional.then), else_=rebuild(conditional.else_)
        )
        return self._conditional(spread, positive, self.type_of(rebuild(conditional)))

    def conditional_operand(self, *operands: cel.Node) -> cel.Conditional | None:
        for operand in operands:
            if isinstance(operand, cel.Conditional) and self.reads_record(operand):
                return operand
        return None

    # -- names and members

    def _ident(self, node: cel.Ident, positive: bool) -> Fragment:
        return self.unsupported(
            node,
            "a whole record cannot be compared",
            f"compare one of its fields, e.g. `{node.name}.id`",
        )

    def _select(self, node: cel.Select, positive: bool) -> Fragment:
        path = self.record_path(node)
        if path is None:
            if self.is_record_select(node):
                return self.unsupported(
                    node, "fields inside JSON and map values are not translated to SQL"
                )
            return self.unsupported(node, "fields of computed values are not translated to SQL")
        cel_type = self.type_of(node)
        if isinstance(cel_type, ObjectType):
            return self.unsupported(
                node,
                f"it is a {cel_type} record, not a value",
                f"compare one of its fields, or test it with `{snippet(node)} == null`",
            )
        if isinstance(cel_type, ListType):
            return self.unsupported(
                node,
                "line collections and list fields are not translated to SQL",
                f"only `{snippet(node)} == null` is",
            )
        if not is_scalar(cel_type):
            return self.unsupported(node, "JSON and map fields are not translated to SQL")
        return self.column(path, node)

    def _index(self, node: cel.Index, positive: bool) -> Fragment:
        return self.unsupported(node, "indexing is not translated to SQL")

    def _listlit(self, node: cel.ListLit, positive: bool) -> Fragment:
        return self.unsupported(
            node,
            "a list built from record fields is only translated on the right of `in`",
        )

    def _maplit(self, node: cel.MapLit, positive: bool) -> Fragment:
        return self.unsupported(node, "maps built from record fields are not translated to SQL")

    def _comprehension(self, node: cel.Comprehension, positive: bool) -> Fragment:
        if self.record_path(node.target) is not None:
            reason = "macros over line collections and list fields are not translated to SQL"
            return self.unsupported(node, reason)
        if self.reads_record(node.target):
            reason = f"`{node.macro}` over values computed from the record is not translated to SQL"
            return self.unsupported(node, reason)
        return self.unsupported(
            node,
            f"`{node.macro}` with a condition that reads the record is not translated to SQL",
            "to test membership, write `record.field in list`",
        )

    def _has(self, node: cel.Has, positive: bool) -> Fragment:
        path = self.record_path(node.select)
        if path is None:
            return self.unsupported(
                node, "`has` is only translated for fields of the record (IS NOT NULL)"
            )
        return self.null_test(self.column(path, node.select), negate=True)

    # -- operators

    def _unary(self, node: cel.Unary, positive: bool) -> Fragment:
        cel_type = self.type_of(node)
        if node.op == "!":
            operand = self.expr_(node.operand)
            return Fragment(sa.not_(operand.sql), BOOL, fails=operand.may_be_null)
        if cel_type not in (INT, DOUBLE):
            return self.unsupported(node, f"negating a {cel_type} is not translated to SQL")
        operand = self.expr_(node.operand)
        sql = -as_bigint(operand) if cel_type == INT else -operand.sql
        return Fragment(sql, cel_type, fails=operand.may_be_null)

    def _binary(self, node: cel.Binary, positive: bool) -> Fragment:
        if node.op in ("&&", "||"):
            return self.logical(node, positive)
        if node.op in ("==", "!="):
            return self.equality(node, positive)
        if node.op in ("<", "<=", ">", ">="):
            return self.ordering(node)
        if node.op == "in":
            return self.membership(node, positive)
        return self.arithmetic(node)

    def logical(self, node: cel.Binary, positive: bool) -> Fragment:
        # Chains are flattened: readable SQL, and no deep recursion in the SQL compiler.
        operands: list[cel.Node] = []
        pending: list[cel.Node] = [node]
        while pending:
            current = pending.pop()
            if isinstance(current, cel.Binary) and current.op == node.op:
                pending.extend((current.right, current.left))
            else:
                operands.append(current)
        parts = [self.expr_(operand, positive) for operand in operands]
        combine = sa.and_ if node.op == "&&" else sa.or_
        sql = combine(*(part.sql for part in parts))
        return Fragment(sql, BOOL, fails=any(part.may_be_null for part in parts))

    def equality(self, node: cel.Binary, positive: bool) -> Fragment:
        conditional = self.conditional_operand(node.left, node.right)
        if conditional is not None:
            side = "left" if conditional is node.left else "right"
            return self.distribute(
                conditional, lambda branch: replace(node, **{side: branch}), positive
            )
        negate = node.op == "!="
        if is_null_literal(node.left) or is_null_literal(node.right):
            other = node.right if is_null_literal(node.left) else node.left
            return self.null_check(other, negate)
        for operand in (node.left, node.right):
            if is_compound(self.type_of(operand)):
                return self.unsupported(
                    node, "comparing lists, maps or records is not translated to SQL"
                )
        left, right = self.expr_(node.left), self.expr_(node.right)
        if Const.ERROR in (left.const, right.const):
            return fragment_of(Const.ERROR, BOOL)
        for known, other in ((left, right), (right, left)):
            if known.known and known.const is None:
                return self.null_test(other, negate)
        left, right = align(left, right), align(right, left)
        return not_equals(left, right) if negate else equals(left, right, positive)

    def null_check(self, node: cel.Node, negate: bool) -> Fragment:
        """``node == null`` (or ``!=``); a record path of any type is a column test."""
        path = self.record_path(node)
        if path is not None:
            return self.null_test(self.column(path, node), negate)
        return self.null_test(self.expr_(node), negate)

    def null_test(self, fragment: Fragment, negate: bool) -> Fragment:
        if fragment.const is Const.ERROR:
            return fragment_of(Const.ERROR, BOOL)
        if fragment.known:
            return fragment_of((fragment.const is None) != negate, BOOL)
        if fragment.nullable and not fragment.fails:
            sql = fragment.sql.is_not(None) if negate else fragment.sql.is_(None)
            return Fragment(sql, BOOL)
        outcome = sa.true() if negate else sa.false()
        if fragment.fails:  # a failure is an error, any value is not null
            return Fragment(guard([fragment], outcome), BOOL, fails=True)
        return Fragment(outcome, BOOL)

    def ordering(self, node: cel.Binary) -> Fragment:
        left_type, right_type = self.type_of(node.left), self.type_of(node.right)
        for cel_type in (left_type, right_type):
            if cel_type not in ORDERED | {DYN} and not isinstance(cel_type, EnumType):
                return self.unsupported(
                    node, f"ordering {cel_type} values is not translated to SQL"
                )
        left, right = self.expr_(node.left), self.expr_(node.right)
        if Const.ERROR in (left.const, right.const):
            return fragment_of(Const.ERROR, BOOL)
        left, right = align(left, right), align(right, left)
        left_sql, right_sql = left.sql, right.sql
        if is_stringish(left_type) or is_stringish(right_type):
            left_sql, right_sql = CodepointOrder(left_sql), CodepointOrder(right_sql)
        compare = {
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }[node.op]
        return Fragment(
            compare(left_sql, right_sql), BOOL, fails=left.may_be_null or right.may_be_null
        )

    def membership(self, node: cel.Binary, positive: bool) -> Fragment:
        if (conditional := self.conditional_operand(node.left)) is not None:
            return self.distribute(conditional, lambda branch: replace(node, left=branch), positive)
        container = node.right
        if isinstance(container, cel.ListLit) and self.reads_record(container):
            return self.membership_in_items(node, container, positive)
        if self.reads_record(container):
            if self.record_path(container) is not None:
                return self.unsupported(
                    node,
                    "membership in a list field is not translated to SQL",
                    "list fields are stored as JSON; filter them in memory",
                )
            return self.unsupported(
                node,
                "the right side of `in` must be a list literal or a value known before the "
                "query, such as `user.regions`",
            )
        if is_compound(self.type_of(node.left)):
            return self.unsupported(node, "looking for lists, maps or records is not translated")
        left = self.expr_(node.left)
        return in_value(left, self.constant(container), positive)

    def membership_in_items(
        self, node: cel.Binary, container: cel.ListLit, positive: bool
    ) -> Fragment:
        if self.conditional_operand(*container.items) is not None:
            return self.unsupported(
                node, "`?:` inside the list of `in` is not translated", "use `||` between tests"
            )
        if any(is_compound(self.type_of(item)) for item in (node.left, *container.items)):
            return self.unsupported(node, "looking for lists, maps or records is not translated")
        left = self.expr_(node.left)
        items = [self.expr_(item) for item in container.items]
        tests = [
            self.null_test(left, negate=False)
            if item.known and item.const is None
            else equals(left, align(item, left), positive)
            for item in items
        ]
        # CEL fails the whole list when one item fails, even if another one matches.
        failing = [item for item in items if item.fails]
        return Fragment(guard(failing, sa.or_(*(test.sql for test in tests))), BOOL, fails=True)

    def arithmetic(self, node: cel.Binary) -> Fragment:
        cel_type = self.type_of(node)
        if cel_type in (INT, DOUBLE):
            return self.numeric(node, cel_type)
        if is_stringish(cel_type) and node.op == "+":
            left, right = self.expr_(node.left), self.expr_(node.right)
            fails = left.may_be_null or right.may_be_null
            return Fragment(left.sql.concat(right.sql), STRING, fails=fails)
        if cel_type in (TIMESTAMP, DURATION):
            field = next(
                (snippet(side) for side in (node.left, node.right) if self.reads_record(side)),
                "record.field",
            )
            return self.unsupported(
                node,
                "date arithmetic on record fields is not translated to SQL",
                _DATE_HINT.format(field=field),
            )
        if cel_type == UINT:
            return self.unsupported(node, "unsigned arithmetic is not translated to SQL")
        return self.unsupported(node, f"`{node.op}` on {cel_type} values is not translated to SQL")

    def numeric(self, node: cel.Binary, cel_type: CelType) -> Fragment:
        left, right = self.expr_(node.left), self.expr_(node.right)
        fails = left.may_be_null or right.may_be_null
        widen = as_bigint if cel_type == INT else as_double
        left_sql, right_sql = widen(left), widen(right)
        if node.op in ("/", "%"):
            nonzero = right.known and isinstance(right.const, int | float) and right.const != 0
            if not nonzero:  # CEL fails on a zero divisor; PostgreSQL would abort the query
                zero = sa.literal(0, right_sql.type)
                right_sql = sa.func.nullif(right_sql, zero, type_=right_sql.type)
                fails = True
        operations: dict[str, Callable[[Any, Any], Any]] = {
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
            # `//` is SQL's integer division (truncating toward zero, like CEL) for
            # integer operands; `/` is true division for doubles.
            "/": (lambda a, b: a // b) if cel_type == INT else (lambda a, b: a / b),
            "%": lambda a, b: a % b,
        }
        return Fragment(operations[node.op](left_sql, right_sql), cel_type, fails=fails)

    def _conditional(
        self, node: cel.Conditional, positive: bool, cel_type: CelType | None = None
    ) -> Fragment:
        cel_type = cel_type or self.type_of(node)
        if is_compound(cel_type):
            return self.unsupported(node, f"`?:` choosing {cel_type} values is not translated")
        cond = self.expr_(node.cond)
        if cond.known or cond.const is Const.ERROR:
            if cond.const is True:
                return self.expr_(node.then, positive)
            if cond.const is False:
                return self.expr_(node.else_, positive)
            return fragment_of(Const.ERROR, cel_type)
        then, else_ = self.expr_(node.then, positive), self.expr_(node.else_, positive)
        sql = sa.case((cond.sql, then.sql), (sa.not_(cond.sql), else_.sql))
        return Fragment(
            sql,
            cel_type,
            nullable=then.nullable or else_.nullable,
            fails=cond.may_be_null or then.fails or else_.fails,
        )

    # -- calls

    def _call(self, node: cel.Call, positive: bool) -> Fragment:
        function = node.function
        if function in _STRING_TESTS and node.target is not None:
            return self.string_test(node, node.target, node.args[0])
        if function == "matches":
            return self.matches(node)
        if function == "size":
            return self.size(node, positive)
        if function == "double" and node.target is None:
            return self.double(node)
        if function in _CONVERSIONS or function == "double":
            return self.unsupported(
                node, f"`{function}()` of record fields is not translated to SQL"
            )
        if function in _GETTERS:
            return self.unsupported(
                node, "date parts depend on the time zone and are not translated to SQL"
            )
        if function in _AGGREGATES:
            return self.unsupported(
                node, "aggregates over line collections are not translated to SQL"
            )
        return self.unsupported(node, f"function `{function}` is not translated to SQL")

    def string_test(self, node: cel.Call, target: cel.Node, arg: cel.Node) -> Fragment:
        haystack, needle = self.expr_(target), self.expr_(arg)
        needle = align(needle, haystack)
        return substring_test(node.function, haystack, needle)

    def matches(self, node: cel.Call) -> Fragment:
        target, pattern = (node.target, node.args[0]) if node.target is not None else node.args
        if not (isinstance(pattern, cel.Literal) and isinstance(pattern.value, str)):
            return self.unsupported(
                node,
                "regular expressions are not translated to SQL; only a literal plain-text "
                "pattern is",
                "use `startsWith`, `endsWith` or `contains`",
            )
        plain = trivial_regex(pattern.value)
        if plain is None:
            return self.unsupported(
                node,
                "regular expressions are not translated to SQL (SQLite has none, PostgreSQL's "
                "differ from CEL's); only plain text with optional `^` and `$` is",
                "use `startsWith`, `endsWith` or `contains`, or filter in memory",
            )
        text, at_start, at_end = plain
        haystack = self.expr_(target)
        needle = align(fragment_of(text, STRING), haystack)
        if at_start and at_end:  # not null-safe: matches() of null fails
            return Fragment(haystack.sql == needle.sql, BOOL, fails=haystack.may_be_null)
        function = "startsWith" if at_start else "endsWith" if at_end else "contains"
        return substring_test(function, haystack, needle)

    def size(self, node: cel.Call, positive: bool) -> Fragment:
        argument = node.target if node.target is not None else node.args[0]
        if isinstance(argument, cel.Conditional) and self.reads_record(argument):

            def rebuild(branch: cel.Node) -> cel.Node:
                if node.target is not None:
                    return replace(node, target=branch)
                return replace(node, args=(branch,))

            return self.distribute(argument, rebuild, positive)
        cel_type = self.type_of(argument)
        if not is_stringish(cel_type):
            reason = (
                "sizes of line collections and list fields are not translated to SQL"
                if isinstance(cel_type, ListType | MapType)
                else f"`size` of {cel_type} values is not translated to SQL"
            )
            return self.unsupported(node, reason)
        operand = self.expr_(argument)
        sql: ColumnElement[Any] = sa.cast(sa.func.length(operand.sql), sa.BigInteger)
        if operand.nullable:  # the evaluator answers size(null) == 0
            sql = sa.func.coalesce(sql, sa.literal(0, sa.BigInteger), type_=sa.BigInteger)
        return Fragment(sql, INT, fails=operand.fails)

    def double(self, node: cel.Call) -> Fragment:
        (argument,) = node.args
        cel_type = self.type_of(argument)
        if cel_type == DOUBLE:
            return self.expr_(argument)
        if cel_type != INT:
            return self.unsupported(node, f"`double()` of {cel_type} is not translated to SQL")
        operand = self.expr_(argument)
        return Fragment(sa.cast(operand.sql, sa.Float), DOUBLE, fails=operand.may_be_null)
