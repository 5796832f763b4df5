"""Static type checker for the simplified CEL AST.

The checker walks :mod:`flowdesk.expressions.ast` with the scope declared by the model
and infers the type of every sub-expression. It never stops at the first problem: a
sub-expression in error is typed ``dyn`` (compatible with everything) so one mistake
produces one issue, and the analyst sees every mistake of the expression at once.

Its rules follow what the cel-python runtime really does, so that an expression that
type-checks either evaluates to a value of the inferred type or raises a runtime error
(missing key, division by zero) -- never a surprise type. Notably int and double never
mix, not even in comparisons, because cel-python rejects ``1 < 2.0`` at runtime.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flowdesk.expressions import ast
from flowdesk.expressions.errors import (
    CEL_BAD_ARGUMENTS,
    CEL_NOT_BOOLEAN,
    CEL_TYPE_MISMATCH,
    CEL_UNKNOWN_ENUM_VALUE,
    CEL_UNKNOWN_FIELD,
    CEL_UNKNOWN_FUNCTION,
    CEL_UNKNOWN_NAME,
    ExpressionIssue,
)
from flowdesk.expressions.functions import ARITHMETIC, FUNCTIONS, MACROS, render, resolve
from flowdesk.expressions.parser import make_issue
from flowdesk.expressions.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    EnumType,
    ListType,
    MapType,
    ObjectType,
    common_type,
    is_assignable,
)

__all__ = ["CheckResult", "check"]

Path = tuple[str, ...]

_ORDERED = frozenset({INT, UINT, DOUBLE, STRING, BYTES, BOOL, TIMESTAMP, DURATION})
_MAP_KEYS = frozenset({INT, UINT, BOOL, STRING, DYN})
_CONVERSION_HINTS = {
    frozenset({INT, DOUBLE}): "convert with double(...)",
    frozenset({UINT, DOUBLE}): "convert with double(...)",
    frozenset({INT, UINT}): "convert with int(...)",
    frozenset({INT, STRING}): "convert with int(...) or string(...)",
    frozenset({DOUBLE, STRING}): "convert with double(...) or string(...)",
}
_FUNCTION_ALIASES = {
    # Names analysts bring from spreadsheets and SQL, mapped to the CEL way.
    "len": "use `size(...)`",
    "length": "use `size(...)`",
    "count": "use `size(...)`",
    "now": "use the `now` variable",
    "today": "use the `now` variable",
}
_PREDICATE_MACROS = frozenset({"all", "exists", "exists_one", "filter"})


@dataclass(frozen=True)
class CheckResult:
    """What the checker learnt about an expression.

    Attributes:
        result_type: Type of the whole expression.
        issues: Every problem found, in source order.
        names: Member paths of the scope the expression reads, e.g.
            ``("record", "priority")``. A path follows record fields
            (:class:`ObjectType`) only; it stops at a map, list or ``dyn`` value.
        runtime_names: Call offsets whose function must be evaluated by a specialised
            implementation (see :class:`flowdesk.expressions.functions.Signature`).
        node_types: The inferred type of every node, by ``id(node)`` (valid while the
            tree is alive): the evaluator router decides per construct which engine may
            run it (:mod:`flowdesk.expressions.routing`).
    """

    result_type: CelType
    issues: tuple[ExpressionIssue, ...]
    names: frozenset[Path]
    runtime_names: Mapping[int, str]
    node_types: Mapping[int, CelType]


def check(
    node: ast.Node,
    scope: Mapping[str, CelType],
    *,
    expect: CelType | None = None,
    start: ast.Pos = (1, 1, 0),
) -> CheckResult:
    """Type-check ``node`` against ``scope``.

    Args:
        node: Root of the AST.
        scope: Types of the names the expression may use.
        expect: Required result type (``BOOL`` for conditions); ``dyn`` always passes.
        start: Position of the first character of the expression, where a wrong result
            type is reported.
    """
    checker = _Checker(scope)
    result = checker.expr(node)
    if expect is not None and not is_assignable(result, expect):
        checker.report(CEL_NOT_BOOLEAN, f"expression must be {expect}, but it is {result}", start)
    issues = tuple(sorted(checker.issues, key=lambda issue: issue.offset))
    return CheckResult(
        result,
        issues,
        frozenset(checker.names),
        dict(checker.runtime_names),
        checker.node_types,
    )


def _nearest(word: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if matches:
        return f"did you mean `{matches[0]}`?"
    return None


def _stringish(cel_type: CelType) -> bool:
    return cel_type == STRING or isinstance(cel_type, EnumType)


def _equatable(left: CelType, right: CelType) -> bool:
    """Whether ``==`` between the two types can succeed at runtime."""
    if DYN in (left, right) or NULL in (left, right):
        return True
    if _stringish(left) and _stringish(right):
        return not (isinstance(left, EnumType) and isinstance(right, EnumType)) or left == right
    if isinstance(left, ListType) and isinstance(right, ListType):
        return _equatable(left.elem, right.elem)
    if isinstance(left, MapType) and isinstance(right, MapType):
        return _equatable(left.key, right.key) and _equatable(left.value, right.value)
    return left == right


def _orderable(left: CelType, right: CelType) -> bool:
    """Whether ``<`` between the two types can succeed at runtime."""
    if NULL in (left, right):
        return False
    if left == DYN or right == DYN:
        other = right if left == DYN else left
        return other == DYN or other in _ORDERED or isinstance(other, EnumType)
    if _stringish(left) and _stringish(right):
        return _equatable(left, right)
    return left == right and left in _ORDERED


def _conversion_hint(left: CelType, right: CelType) -> str | None:
    normalise = {
        left if not isinstance(left, EnumType) else STRING,
        right if not isinstance(right, EnumType) else STRING,
    }
    return _CONVERSION_HINTS.get(frozenset(normalise))


class _Checker:
    def __init__(self, scope: Mapping[str, CelType]) -> None:
        self.scope = scope
        self.locals: dict[str, CelType] = {}
        self.issues: list[ExpressionIssue] = []
        self.names: set[Path] = set()
        self.runtime_names: dict[int, str] = {}
        self.node_types: dict[int, CelType] = {}

    def report(self, code: str, message: str, pos: ast.Pos, hint: str | None = None) -> None:
        self.issues.append(make_issue(code, message, pos, hint))

    # -- dispatch

    def expr(self, node: ast.Node) -> CelType:
        """Type ``node`` and record the member path it reads, if any."""
        cel_type, path = self._typed_path(node)
        if path is not None:
            self.names.add(path)
        return cel_type

    def _typed_path(self, node: ast.Node) -> tuple[CelType, Path | None]:
        if isinstance(node, ast.Ident):
            typed = self._ident(node)
        elif isinstance(node, ast.Select):
            typed = self._select(node)
        else:
            handler = getattr(self, f"_{type(node).__name__.lower()}")
            typed = handler(node), None
        self.node_types[id(node)] = typed[0]
        return typed

    # -- names and members

    def _ident(self, node: ast.Ident) -> tuple[CelType, Path | None]:
        if node.name in self.locals:
            return self.locals[node.name], None
        if node.name in self.scope:
            return self.scope[node.name], (node.name,)
        hint = _nearest(node.name, [*self.locals, *self.scope])
        self.report(CEL_UNKNOWN_NAME, f"unknown name `{node.name}`", node.pos, hint)
        return DYN, None

    def _select(self, node: ast.Select) -> tuple[CelType, Path | None]:
        operand_type, path = self._typed_path(node.operand)
        field_type = self._field(operand_type, node)
        extends = (
            isinstance(operand_type, ObjectType) and operand_type.field_type(node.field) is not None
        )
        if path is not None and extends:
            return field_type, (*path, node.field)
        if path is not None:
            self.names.add(path)
        return field_type, None

    def _field(self, operand: CelType, node: ast.Select) -> CelType:
        if operand == DYN:
            return DYN
        if isinstance(operand, ObjectType):
            found = operand.field_type(node.field)
            if found is None:
                hint = _nearest(node.field, operand.fields)
                message = f"unknown field `{node.field}` of {operand}"
                self.report(CEL_UNKNOWN_FIELD, message, node.pos, hint)
                return DYN
            return found
        if isinstance(operand, MapType) and (_stringish(operand.key) or operand.key == DYN):
            return operand.value
        hint = f"did you mean `{node.field}()`?" if node.field in FUNCTIONS else None
        self.report(CEL_UNKNOWN_FIELD, f"unknown field `{node.field}` of {operand}", node.pos, hint)
        return DYN

    def _index(self, node: ast.Index) -> CelType:
        operand = self.expr(node.operand)
        index = self.expr(node.index)
        if operand == DYN:
            return DYN
        if isinstance(operand, ListType):
            if index not in (INT, UINT, DYN):
                self.report(CEL_TYPE_MISMATCH, f"list index must be int, got {index}", node.pos)
            return operand.elem
        if isinstance(operand, MapType):
            if not _equatable(index, operand.key) or index == NULL:
                message = f"map key must be {operand.key}, got {index}"
                self.report(CEL_TYPE_MISMATCH, message, node.pos)
            return operand.value
        hint = None
        if isinstance(operand, ObjectType):
            hint = "use field selection such as `record.field`"
        self.report(CEL_TYPE_MISMATCH, f"cannot index {operand}", node.pos, hint)
        return DYN

    # -- literals

    def _literal(self, node: ast.Literal) -> CelType:
        return node.type

    def _listlit(self, node: ast.ListLit) -> CelType:
        elem: CelType | None = None
        for item in node.items:
            item_type = self.expr(item)
            joined = item_type if elem is None else common_type(elem, item_type)
            if joined is None:
                message = f"list elements must have one type, got {elem} and {item_type}"
                self.report(CEL_TYPE_MISMATCH, message, item.pos)
                joined = DYN
            elem = joined
        return ListType(elem if elem is not None else DYN)

    def _maplit(self, node: ast.MapLit) -> CelType:
        key: CelType | None = None
        value: CelType | None = None
        for key_node, value_node in node.entries:
            key_type = self.expr(key_node)
            if key_type not in _MAP_KEYS and not isinstance(key_type, EnumType):
                message = f"map keys must be int, uint, bool or string, got {key_type}"
                self.report(CEL_TYPE_MISMATCH, message, key_node.pos)
            key = self._join(key, key_type, key_node, "map keys")
            value = self._join(value, self.expr(value_node), value_node, "map values")
        return MapType(key or DYN, value or DYN)

    def _join(self, seen: CelType | None, new: CelType, node: ast.Node, what: str) -> CelType:
        if seen is None:
            return new
        joined = common_type(seen, new)
        if joined is None:
            message = f"{what} must have one type, got {seen} and {new}"
            self.report(CEL_TYPE_MISMATCH, message, node.pos)
            return DYN
        return joined

    # -- operators

    def _unary(self, node: ast.Unary) -> CelType:
        operand = self.expr(node.operand)
        allowed = (BOOL,) if node.op == "!" else (INT, DOUBLE)
        if operand == DYN:
            return DYN
        if operand not in allowed:
            self.report(CEL_TYPE_MISMATCH, f"cannot apply `{node.op}` to {operand}", node.pos)
            return DYN
        return operand

    def _binary(self, node: ast.Binary) -> CelType:
        left = self.expr(node.left)
        right = self.expr(node.right)
        if node.op in ("&&", "||"):
            return self._logical(node, left, right)
        if node.op in ("==", "!="):
            return self._equality(node, left, right)
        if node.op in ("<", "<=", ">", ">="):
            return self._ordering(node, left, right)
        if node.op == "in":
            return self._membership(node, left, right)
        return self._arithmetic(node, left, right)

    def _mismatch(self, node: ast.Binary, left: CelType, right: CelType) -> None:
        message = f"cannot apply `{node.op}` to {left} and {right}"
        self.report(CEL_TYPE_MISMATCH, message, node.pos, _conversion_hint(left, right))

    def _logical(self, node: ast.Binary, left: CelType, right: CelType) -> CelType:
        if not (is_assignable(left, BOOL) and is_assignable(right, BOOL)):
            self._mismatch(node, left, right)
        return BOOL

    def _equality(self, node: ast.Binary, left: CelType, right: CelType) -> CelType:
        if not _equatable(left, right):
            message = f"cannot compare {left} with {right}"
            self.report(CEL_TYPE_MISMATCH, message, node.pos, _conversion_hint(left, right))
        else:
            self._enum_literals(left, right, node.right)
            self._enum_literals(right, left, node.left)
        return BOOL

    def _ordering(self, node: ast.Binary, left: CelType, right: CelType) -> CelType:
        if not _orderable(left, right):
            hint = _conversion_hint(left, right)
            if NULL in (left, right):
                hint = "only `==` and `!=` work with null"
            self.report(CEL_TYPE_MISMATCH, f"cannot compare {left} with {right}", node.pos, hint)
        else:
            self._enum_literals(left, right, node.right)
            self._enum_literals(right, left, node.left)
        return BOOL

    def _membership(self, node: ast.Binary, left: CelType, right: CelType) -> CelType:
        if right == DYN:
            return BOOL
        if isinstance(right, ListType):
            container_key = right.elem
        elif isinstance(right, MapType):
            container_key = right.key
        else:
            message = f"cannot apply `in` to {left} and {right}"
            hint = "the right side must be a list or map"
            self.report(CEL_TYPE_MISMATCH, message, node.pos, hint)
            return BOOL
        if not _equatable(left, container_key) or left == NULL:
            message = f"cannot look for {left} in {right}"
            self.report(CEL_TYPE_MISMATCH, message, node.pos, _conversion_hint(left, container_key))
            return BOOL
        self._enum_literals(container_key, left, node.left)
        if isinstance(left, EnumType) and isinstance(node.right, ast.ListLit):
            for item in node.right.items:
                self._enum_literals(left, STRING, item)
        return BOOL

    def _enum_literals(self, enum: CelType, other: CelType, other_node: ast.Node) -> None:
        """Report ``other_node`` when it is a string literal that ``enum`` does not allow."""
        if not isinstance(enum, EnumType) or not isinstance(other_node, ast.Literal):
            return
        value = other_node.value
        if other != STRING or not isinstance(value, str) or value in enum.values:
            return
        listed = ", ".join(enum.values)
        message = f"`{value}` is not a value of {enum} ({listed})"
        hint = _nearest(value, enum.values)
        if hint is None:
            folded = [choice for choice in enum.values if choice.casefold() == value.casefold()]
            hint = f"did you mean `{folded[0]}`?" if folded else None
        self.report(CEL_UNKNOWN_ENUM_VALUE, message, other_node.pos, hint)

    def _arithmetic(self, node: ast.Binary, left: CelType, right: CelType) -> CelType:
        if node.op == "+" and (isinstance(left, ListType) or isinstance(right, ListType)):
            return self._concatenation(node, left, right)
        resolution = resolve(ARITHMETIC[node.op], (left, right))
        if resolution is None:
            self._mismatch(node, left, right)
            return DYN
        # An unknown operand keeps the result unknown, so an erroneous operand (typed
        # dyn after its issue was reported) does not cascade into further issues.
        return DYN if DYN in (left, right) else resolution.result

    def _concatenation(self, node: ast.Binary, left: CelType, right: CelType) -> CelType:
        if DYN in (left, right):
            return left if right == DYN else right
        joined = common_type(left, right)
        both_lists = isinstance(left, ListType) and isinstance(right, ListType)
        if not both_lists or not isinstance(joined, ListType):
            self._mismatch(node, left, right)
            return DYN
        return joined

    def _conditional(self, node: ast.Conditional) -> CelType:
        cond = self.expr(node.cond)
        if not is_assignable(cond, BOOL):
            message = f"the condition of `?:` must be bool, got {cond}"
            self.report(CEL_TYPE_MISMATCH, message, node.cond.pos)
        then = self.expr(node.then)
        else_ = self.expr(node.else_)
        joined = common_type(then, else_)
        if joined is None:
            message = f"the branches of `?:` have different types: {then} and {else_}"
            self.report(CEL_TYPE_MISMATCH, message, node.pos, _conversion_hint(then, else_))
            return DYN
        return joined

    # -- calls and macros

    def _has(self, node: ast.Has) -> CelType:
        self.expr(node.select)
        return BOOL

    def _comprehension(self, node: ast.Comprehension) -> CelType:
        target = self.expr(node.target)
        if isinstance(target, ListType):
            var_type = target.elem
        elif isinstance(target, MapType):
            var_type = target.key
        else:
            if target != DYN:
                message = f"`{node.macro}` needs a list or map, got {target}"
                self.report(CEL_TYPE_MISMATCH, message, node.pos)
            var_type = DYN
        body = self._with_local(node.var, var_type, node.body)
        if node.macro in _PREDICATE_MACROS and not is_assignable(body, BOOL):
            message = f"the condition of `{node.macro}` must be bool, got {body}"
            self.report(CEL_TYPE_MISMATCH, message, node.body.pos)
        if node.macro == "map":
            return ListType(body)
        if node.macro == "filter":
            return ListType(var_type)
        return BOOL

    def _with_local(self, name: str, cel_type: CelType, body: ast.Node) -> CelType:
        saved = self.locals
        self.locals = {**saved, name: cel_type}
        try:
            return self.expr(body)
        finally:
            self.locals = saved

    def _call(self, node: ast.Call) -> CelType:
        if node.function in MACROS:
            # Arguments of a malformed macro are not checked: they are probably
            # variable names that would only add confusing "unknown name" issues.
            if node.target is not None:
                self.expr(node.target)
            self._malformed_macro(node)
            return BOOL if node.function not in ("map", "filter") else ListType(DYN)
        target = self.expr(node.target) if node.target is not None else None
        args = [self.expr(arg) for arg in node.args]
        spec = FUNCTIONS.get(node.function)
        if spec is None:
            hint = _FUNCTION_ALIASES.get(node.function) or _nearest(
                node.function, [*FUNCTIONS, *MACROS]
            )
            message = f"unknown function `{node.function}`"
            self.report(CEL_UNKNOWN_FUNCTION, message, node.pos, hint)
            return DYN
        is_method = target is not None
        signatures = spec.methods if is_method else spec.globals
        if not signatures:
            self._wrong_call_style(node, is_method)
            return DYN
        types = [target, *args] if target is not None else args
        resolution = resolve(signatures, types)
        if resolution is None:
            expected = ", ".join(
                f"`{render(spec.name, s.params, method=is_method)}`" for s in signatures
            )
            message = f"no matching overload for `{render(spec.name, types, method=is_method)}`"
            self.report(CEL_BAD_ARGUMENTS, message, node.pos, f"expected {expected}")
            return DYN
        if resolution.runtime_name is not None:
            self.runtime_names[node.pos[2]] = resolution.runtime_name
        return resolution.result

    def _wrong_call_style(self, node: ast.Call, is_method: bool) -> None:
        if is_method:
            message = f"`{node.function}` is not a method"
            hint = f"write `{node.function}(value)`"
        else:
            message = f"`{node.function}` is a method"
            hint = f"write `value.{node.function}(...)`"
        self.report(CEL_BAD_ARGUMENTS, message, node.pos, hint)

    def _malformed_macro(self, node: ast.Call) -> None:
        if node.function == "has":
            message = "`has` needs one field selection"
            hint = "write `has(record.field)`"
        elif node.target is None:
            message = f"`{node.function}` must be called on a list"
            hint = f"write `list.{node.function}(x, ...)`"
        else:
            message = f"`{node.function}` needs a variable name and an expression"
            hint = f"write `list.{node.function}(x, x > 0)`"
        self.report(CEL_BAD_ARGUMENTS, message, node.pos, hint)
