"""Which evaluator runs a compiled expression, decided once, when it is compiled.

Two engines evaluate Flowdesk's CEL:

* **cel-python** (``celpy``) with Flowdesk's corrections (:mod:`.evaluation`): the
  reference. Every behaviour the unit and property tests pin down is its behaviour.
* the Rust-backed **common-expression-language** package (module ``cel``, :mod:`.native`):
  20-40x faster per condition (``bench/cel_bench.py``), but it differs from the
  reference in places.

An expression runs on the Rust engine only if every construct in it is one where the two
engines were found to agree; otherwise it runs on cel-python, and :class:`Route` says
why. The Rust engine never sees the analyst's text: it gets a rendering of the checked
syntax tree (:func:`route`), so both engines run the same tree whatever their parsers
think of precedence or escapes, and Flowdesk's own functions are renamed to Python
callbacks. Constructs kept on cel-python, each with the difference that sends it there
(found by probing both engines; ``tests/unit/expressions/test_expressions_differential``
keeps them honest):

* operations on values typed ``dyn`` (JSON fields, ``dyn(...)``) -- reading and
  returning them (``response.items[0].id``) is fine -- and ``==``/``!=``/``in`` on
  lists, maps and records that contain ``dyn`` values or records: the Rust engine
  compares numbers across types (``1 == 1.0`` is true, ``dyn(1) < 2.0`` works) where
  cel-python fails or says false;
* ``uint`` and ``bytes`` values: plain Python ints cannot say they are unsigned, and
  bytes conversions differ;
* ``-x`` on a non-literal int: the Rust engine wraps ``-(-2^63)`` instead of failing;
* ``size`` of a string: the Rust engine counts UTF-8 bytes (``size("é") == 2``); it is
  renamed to a Python callback that counts code points, as cel-python does (so are
  ``sum``, ``max`` and ``min``, which the Rust engine lacks);
* ``string(...)`` of doubles, booleans, timestamps and durations (``string(5.0)`` is
  ``"5"``, negative durations print garbage), ``bool(...)``, ``int(timestamp)``,
  ``int``/``double``/``timestamp``/``duration`` of non-literal strings (different
  parsers), and ``timestamp``/``duration`` literals outside a strict form -- UTC
  RFC 3339 with a real time of day, durations in whole units of modest size (the Rust
  engine reads a leap second as :59, drops fraction digits, saturates huge durations);
* ``matches``: Rust's ``regex`` and Python's ``re`` are different dialects;
* timestamp getters (``getHours()``...): the Rust engine reads the offset's local time,
  CEL and cel-python read UTC. Duration getters run on Rust but call back into Python:
  cel-python computes them in floating point (``duration('1001ms').getMilliseconds()``
  is 1000 there, 1001 on Rust), and its results are the reference;
* duration ``+``/``-`` duration: the Rust engine exceeds CEL's 10,000-year range silently;
* ``/`` on doubles, unless the divisor is a non-zero literal (``minutes / 60.0``):
  cel-python makes every ``x / 0.0`` +inf (even ``0.0 / 0.0`` and ``-1.0 / 0.0``), the
  Rust engine follows IEEE 754 (NaN, -inf);
* ``map``/``filter`` over a map: the Rust engine visits keys in another order;
* map literals whose keys are not distinct literals: the Rust engine keeps the last
  duplicate where cel-python fails;
* string literals with control characters or lone surrogates (escaping), and trees
  deeper than :data:`MAX_DEPTH` (the Rust parser stops at about 95 levels of nesting).

Runtime differences that make the Rust engine *fail* where cel-python returns a value
(``null && true`` is null for cel-python, an error for Rust; ``all``/``exists`` absorb
errors in cel-python only; ``list[-1]`` is the last element for cel-python) need no
routing: :meth:`CompiledExpression.evaluate` lets cel-python evaluate again whenever the
Rust engine raises, so errors, their messages and these values are always cel-python's.
Values the engines would read differently (ints beyond int64, timestamps not at UTC...)
are refused per call, with the same effect (:mod:`flowdesk.expressions.native`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flowdesk.expressions import ast
from flowdesk.expressions.types import (
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
)

__all__ = ["MAX_DEPTH", "PYTHON", "RUST", "Route", "route"]

RUST = "rust"
PYTHON = "python"
MAX_DEPTH = 40
"""Deeper trees stay on cel-python: the Rust parser rejects about 95 levels of nesting."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# Binding strength of each construct's rendering, loosest first.
_CONDITIONAL, _OR, _AND, _RELATION, _SUM, _PRODUCT, _UNARY, _MEMBER = range(8)
_BINARY_PRECEDENCE = {
    "||": _OR,
    "&&": _AND,
    **dict.fromkeys(("==", "!=", "<", "<=", ">", ">=", "in"), _RELATION),
    "+": _SUM,
    "-": _SUM,
    "*": _PRODUCT,
    "/": _PRODUCT,
    "%": _PRODUCT,
}

_CALLBACK_NAMES = {"size": "__flowdesk_size", "max": "__flowdesk_max", "min": "__flowdesk_min"}
_SAME_ON_BOTH = frozenset({"contains", "startsWith", "endsWith"})
_CONVERSION_ARGS: Mapping[str, tuple[CelType, ...]] = {
    "int": (INT, DOUBLE),
    "double": (INT, DOUBLE),
    "string": (STRING, INT),
    "timestamp": (TIMESTAMP,),
    "duration": (DURATION,),
}
_DURATION_GETTERS = frozenset({"getHours", "getMinutes", "getSeconds", "getMilliseconds"})
# UTC only (offsets other than zero stay on cel-python, see the native module), a real
# time of day (the Rust engine reads a leap second 60 as 59), whole microseconds.
_TIMESTAMP_LITERAL = re.compile(
    r"(?!0000)\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?Z",
    re.ASCII,
)
# Whole units, at most four parts of at most five digits: the Rust engine drops digits
# of fractions (1.000001s is 1s) and saturates at 2^63 nanoseconds.
_DURATION_LITERAL = re.compile(r"-?(\d{1,5}(h|m|s|ms|us)){1,4}", re.ASCII)


@dataclass(frozen=True)
class Route:
    """The engine chosen for one expression.

    Attributes:
        engine: :data:`RUST` or :data:`PYTHON`.
        reason: Why the expression stays on cel-python (``None`` on the Rust engine).
        text: The CEL text the Rust engine compiles (``None`` on cel-python).
        callbacks: Names of the Python callbacks ``text`` calls.
    """

    engine: str
    reason: str | None = None
    text: str | None = None
    callbacks: frozenset[str] = frozenset()


_PATH_NODES = (ast.Ident, ast.Select, ast.Index)


class _Unfit(Exception):
    """A construct the Rust engine does not evaluate like cel-python."""


def route(
    tree: ast.Node, node_types: Mapping[int, CelType], runtime_names: Mapping[int, str]
) -> Route:
    """Decide the engine of a type-checked ``tree`` and render it for the Rust engine.

    ``node_types`` and ``runtime_names`` are the checker's (by ``id(node)`` and by call
    offset); the decision depends on them and on the tree only, never on values.
    """
    if _depth(tree) > MAX_DEPTH:
        return Route(PYTHON, f"nested more than {MAX_DEPTH} levels deep")
    renderer = _Renderer(node_types, runtime_names)
    try:
        text, _ = renderer.render(tree, dyn_ok=True)
    except _Unfit as unfit:
        return Route(PYTHON, str(unfit))
    return Route(RUST, None, text, frozenset(renderer.callbacks))


def _depth(tree: ast.Node) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.children(node))
    return deepest


def _has(cel_type: CelType, wanted: CelType) -> bool:
    """Whether ``wanted`` occurs in ``cel_type`` or its list elements and map entries."""
    if cel_type == wanted:
        return True
    if isinstance(cel_type, ListType):
        return _has(cel_type.elem, wanted)
    if isinstance(cel_type, MapType):
        return _has(cel_type.key, wanted) or _has(cel_type.value, wanted)
    return False


def _holds_records(cel_type: CelType) -> bool:
    if isinstance(cel_type, ObjectType):
        return True
    if isinstance(cel_type, ListType):
        return _holds_records(cel_type.elem)
    if isinstance(cel_type, MapType):
        return _holds_records(cel_type.value)
    return False


def _stringish(cel_type: CelType) -> bool:
    return cel_type == STRING or isinstance(cel_type, EnumType)


def _quote(text: str) -> str:
    for char in text:
        if char < " " or char == "\x7f" or "\ud800" <= char <= "\udfff":
            raise _Unfit("a string literal with control characters or surrogates")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Renderer:
    """Renders a checked tree as CEL text, refusing constructs the engines disagree on."""

    def __init__(self, node_types: Mapping[int, CelType], runtime_names: Mapping[int, str]):
        self.node_types = node_types
        self.runtime_names = runtime_names
        self.callbacks: set[str] = set()

    def type_of(self, node: ast.Node) -> CelType:
        return self.node_types.get(id(node), DYN)

    def render(self, node: ast.Node, dyn_ok: bool = False) -> tuple[str, int]:
        """Return ``(text, binding strength)`` of ``node``.

        A ``dyn`` value may only be read (a name, a field, an element) to be selected
        from further or returned as it is (``dyn_ok``): both engines pass it through
        unchanged, and only operations on it differ.
        """
        cel_type = self.type_of(node)
        if cel_type == DYN and not (dyn_ok and isinstance(node, _PATH_NODES)):
            raise _Unfit("an operation on a `dyn` value (numbers would compare across types)")
        if _has(cel_type, UINT) or _has(cel_type, BYTES):
            raise _Unfit(f"a {cel_type} value (uint and bytes are not represented alike)")
        handler = getattr(self, f"_{type(node).__name__.lower()}")
        return handler(node)

    def operand(self, node: ast.Node, strength: int, dyn_ok: bool = False) -> str:
        """Render ``node`` where at least ``strength`` is needed, in parentheses if not."""
        text, own = self.render(node, dyn_ok)
        return text if own >= strength else f"({text})"

    # -- leaves

    def _literal(self, node: ast.Literal) -> tuple[str, int]:
        value = node.value
        if value is None:
            return "null", _MEMBER
        if isinstance(value, bool):
            return ("true" if value else "false"), _MEMBER
        if isinstance(value, int):
            if not _INT64_MIN < value <= _INT64_MAX:
                raise _Unfit("an int literal at the end of the int64 range")
            return str(value), (_UNARY if value < 0 else _MEMBER)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _Unfit("a non-finite double literal")
            text = repr(value)
            return text, (_UNARY if text.startswith("-") else _MEMBER)
        if isinstance(value, str):
            return _quote(value), _MEMBER
        raise _Unfit(f"a {type(value).__name__} literal")

    def _ident(self, node: ast.Ident) -> tuple[str, int]:
        return node.name, _MEMBER

    def _select(self, node: ast.Select) -> tuple[str, int]:
        return f"{self.operand(node.operand, _MEMBER, dyn_ok=True)}.{node.field}", _MEMBER

    def _index(self, node: ast.Index) -> tuple[str, int]:
        operand = self.operand(node.operand, _MEMBER, dyn_ok=True)
        return f"{operand}[{self.operand(node.index, _CONDITIONAL)}]", _MEMBER

    def _has(self, node: ast.Has) -> tuple[str, int]:
        return f"has({self.operand(node.select, _MEMBER)})", _MEMBER

    def _listlit(self, node: ast.ListLit) -> tuple[str, int]:
        items = ", ".join(self.operand(item, _CONDITIONAL) for item in node.items)
        return f"[{items}]", _MEMBER

    def _maplit(self, node: ast.MapLit) -> tuple[str, int]:
        keys = [key.value if isinstance(key, ast.Literal) else key for key, _ in node.entries]
        distinct = {(type(key), key) for key in keys if not isinstance(key, ast.Node)}
        if len(keys) > 1 and len(distinct) != len(keys):
            raise _Unfit("a map literal whose keys may repeat (Rust keeps the last one)")
        entries = ", ".join(
            f"{self.operand(key, _CONDITIONAL)}: {self.operand(value, _CONDITIONAL)}"
            for key, value in node.entries
        )
        return f"{{{entries}}}", _MEMBER

    # -- operators

    def _unary(self, node: ast.Unary) -> tuple[str, int]:
        if node.op == "-" and self.type_of(node) == INT:
            operand = node.operand
            if not (isinstance(operand, ast.Literal) and isinstance(operand.value, int)):
                raise _Unfit("`-` on an int that is not a literal (Rust wraps -(-2^63))")
        return f"{node.op}{self.operand(node.operand, _MEMBER)}", _UNARY

    def _binary(self, node: ast.Binary) -> tuple[str, int]:
        strength = _BINARY_PRECEDENCE[node.op]
        left_type, right_type = self.type_of(node.left), self.type_of(node.right)
        if node.op in ("==", "!=", "in"):
            self._comparable(node, left_type, right_type)
        if node.op in ("+", "-") and left_type == DURATION and right_type == DURATION:
            raise _Unfit("duration arithmetic (Rust exceeds CEL's 10,000-year range)")
        if node.op == "/" and right_type == DOUBLE and not _nonzero_double(node.right):
            raise _Unfit(
                "`/` on doubles by anything but a non-zero literal (cel-python makes"
                " x / 0.0 +inf for every x, Rust follows IEEE: -inf, NaN)"
            )
        # `x == null` is decided by nullness alone on both engines, whatever x holds.
        null_test = node.op in ("==", "!=") and (_is_null(node.left) or _is_null(node.right))
        left = self.operand(node.left, strength, dyn_ok=null_test)
        right = self.operand(node.right, strength + 1, dyn_ok=null_test)
        return f"{left} {node.op} {right}", strength

    def _comparable(self, node: ast.Binary, left: CelType, right: CelType) -> None:
        for side, cel_type in ((node.left, left), (node.right, right)):
            if _is_null(side) or _is_empty_literal(side):
                continue
            other = right if side is node.left else left
            if other == NULL and node.op != "in":
                continue
            if _has(cel_type, DYN) or _holds_records(cel_type):
                raise _Unfit(
                    f"`{node.op}` on {cel_type} (Rust compares numbers inside across types)"
                )

    def _conditional(self, node: ast.Conditional) -> tuple[str, int]:
        cond = self.operand(node.cond, _OR)
        then = self.operand(node.then, _OR)
        return f"{cond} ? {then} : {self.operand(node.else_, _CONDITIONAL)}", _CONDITIONAL

    # -- calls and macros

    def _comprehension(self, node: ast.Comprehension) -> tuple[str, int]:
        if isinstance(self.type_of(node.target), MapType) and node.macro in ("map", "filter"):
            raise _Unfit(f"`{node.macro}` over a map (Rust visits the keys in another order)")
        target = self.operand(node.target, _MEMBER)
        body = self.operand(node.body, _CONDITIONAL)
        return f"{target}.{node.macro}({node.var}, {body})", _MEMBER

    def _call(self, node: ast.Call) -> tuple[str, int]:
        name = self._function_name(node)
        args = ", ".join(self.operand(arg, _CONDITIONAL) for arg in node.args)
        if node.target is None:
            return f"{name}({args})", _MEMBER
        return f"{self.operand(node.target, _MEMBER)}.{name}({args})", _MEMBER

    def _function_name(self, node: ast.Call) -> str:
        """The function the Rust engine calls for ``node``, or :class:`_Unfit`."""
        function = node.function
        operands = [node.target, *node.args] if node.target is not None else list(node.args)
        types = [self.type_of(operand) for operand in operands]
        runtime_name = self.runtime_names.get(node.pos[2])
        if runtime_name is not None:  # sum of list<int> / list<double>
            self.callbacks.add(runtime_name)
            return runtime_name
        if function in ("max", "min") or (function == "size" and _stringish(types[0])):
            self.callbacks.add(_CALLBACK_NAMES[function])
            return _CALLBACK_NAMES[function]
        if function == "size" or function in _SAME_ON_BOTH:
            return function
        if function in _DURATION_GETTERS and types == [DURATION]:
            name = f"__flowdesk_duration_{function}"
            self.callbacks.add(name)
            return name
        if function in _CONVERSION_ARGS and len(types) == 1:
            arg = STRING if isinstance(types[0], EnumType) else types[0]
            if arg in _CONVERSION_ARGS[function] or self._fixed_literal(node):
                return function
            raise _Unfit(f"`{function}` of {types[0]} (the engines convert differently)")
        raise _Unfit(f"`{function}` (the engines differ; see flowdesk.expressions.routing)")

    @staticmethod
    def _fixed_literal(node: ast.Call) -> bool:
        """A timestamp or duration literal both engines read the same way."""
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Literal):
            return False
        text = node.args[0].value
        if not isinstance(text, str):
            return False
        if node.function == "timestamp":
            return _TIMESTAMP_LITERAL.fullmatch(text) is not None
        return node.function == "duration" and _DURATION_LITERAL.fullmatch(text) is not None


def _nonzero_double(node: ast.Node) -> bool:
    return isinstance(node, ast.Literal) and isinstance(node.value, float) and node.value != 0


def _is_null(node: ast.Node) -> bool:
    return isinstance(node, ast.Literal) and node.value is None and node.type == NULL


def _is_empty_literal(node: ast.Node) -> bool:
    return (isinstance(node, ast.ListLit) and not node.items) or (
        isinstance(node, ast.MapLit) and not node.entries
    )
