"""The simplified abstract syntax tree of a CEL expression.

The CEL grammar of ``cel-python`` produces a deep lark parse tree (ten levels for a
single name). Every consumer inside Flowdesk -- the type checker here, and later the
CEL-to-SQL translator -- walks this much smaller tree instead, so it is kept free of
parser details: plain frozen dataclasses, plain Python literal values.

Every node has a ``pos`` of ``(line, column, offset)`` (1-based line and column, 0-based
character offset in the expression text). ``pos`` does not take part in equality, so
two trees with the same shape compare equal wherever they were written. For operators
``pos`` is the position of the operator; for calls, selections and macros it is the
position of the name after the dot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from flowdesk.expressions.types import CelType

__all__ = [
    "BINARY_OPERATORS",
    "COMPREHENSION_MACROS",
    "UNARY_OPERATORS",
    "Binary",
    "Call",
    "Comprehension",
    "Conditional",
    "Has",
    "Ident",
    "Index",
    "ListLit",
    "Literal",
    "MapLit",
    "Node",
    "Pos",
    "Select",
    "Unary",
    "children",
    "walk",
]

Pos = tuple[int, int, int]
"""(line, column, offset) of a node in the expression text."""

UNARY_OPERATORS = frozenset({"!", "-"})
BINARY_OPERATORS = frozenset(
    {"||", "&&", "==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*", "/", "%"}
)
COMPREHENSION_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


@dataclass(frozen=True)
class Node:
    """Base class of all nodes; ``pos`` is keyword-only and ignored by ``==``."""

    pos: Pos = field(default=(0, 0, 0), kw_only=True, compare=False)


@dataclass(frozen=True)
class Literal(Node):
    """A constant: ``value`` is a plain ``int``/``float``/``str``/``bytes``/``bool``/None."""

    value: object
    type: CelType


@dataclass(frozen=True)
class Ident(Node):
    """A bare name: a variable of the scope or a comprehension variable."""

    name: str


@dataclass(frozen=True)
class Select(Node):
    """``operand.field`` -- a record field or a string map key."""

    operand: Node
    field: str


@dataclass(frozen=True)
class Index(Node):
    """``operand[index]`` on a list or a map."""

    operand: Node
    index: Node


@dataclass(frozen=True)
class Call(Node):
    """``function(args)`` or, when ``target`` is set, ``target.function(args)``."""

    function: str
    target: Node | None
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Unary(Node):
    """``!operand`` or ``-operand``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    """``left op right``; ``op`` is one of :data:`BINARY_OPERATORS`."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Conditional(Node):
    """``cond ? then : else_``."""

    cond: Node
    then: Node
    else_: Node


@dataclass(frozen=True)
class ListLit(Node):
    """``[items...]``."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapLit(Node):
    """``{key: value, ...}``."""

    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Comprehension(Node):
    """``target.macro(var, body)`` for the macros in :data:`COMPREHENSION_MACROS`.

    ``var`` is bound to each element of ``target`` (each key for a map) in ``body``.
    """

    macro: str
    target: Node
    var: str
    body: Node


@dataclass(frozen=True)
class Has(Node):
    """``has(select)``: whether a field or map key is present."""

    select: Select


def children(node: Node) -> tuple[Node, ...]:
    """Return the direct sub-expressions of ``node``, left to right."""
    match node:
        case Select(operand=operand):
            return (operand,)
        case Index(operand=operand, index=index):
            return (operand, index)
        case Call(target=target, args=args):
            return args if target is None else (target, *args)
        case Unary(operand=operand):
            return (operand,)
        case Binary(left=left, right=right):
            return (left, right)
        case Conditional(cond=cond, then=then, else_=else_):
            return (cond, then, else_)
        case ListLit(items=items):
            return items
        case MapLit(entries=entries):
            return tuple(part for entry in entries for part in entry)
        case Comprehension(target=target, body=body):
            return (target, body)
        case Has(select=select):
            return (select,)
    return ()


def walk(node: Node) -> Iterator[Node]:
    """Yield ``node`` and all its descendants in pre-order, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))
