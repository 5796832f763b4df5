"""Reading the CEL AST of a filter: static facts about nodes, and text back from them.

`NodeFacts` answers what the translator asks of a node -- its static type,
the scope names it reads, the record field path it selects -- and caches the
answers. `unparse` writes a node back as CEL text: record-free
sub-expressions are evaluated by compiling that text (the AST keeps no source
spans), and messages quote constructs with `snippet`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from flowdesk.expressions import (
    NULL,
    UINT,
    CelType,
    CompiledExpression,
    ObjectType,
    compile_expression,
)
from flowdesk.expressions import ast as cel
from flowdesk.expressions.checker import check

__all__ = [
    "NodeFacts",
    "compile_cached",
    "is_null_literal",
    "scope_of",
    "snippet",
    "start_pos",
    "trivial_regex",
    "unparse",
]

_SNIPPET_LIMIT = 60


class NodeFacts:
    """Static facts about the nodes of one filter, computed once per node."""

    def __init__(self, scope: Mapping[str, CelType], record: str) -> None:
        self.scope = scope
        self.record = record
        self._types: dict[cel.Node, CelType] = {}
        self._free: dict[cel.Node, frozenset[str]] = {}

    def type_of(self, node: cel.Node) -> CelType:
        """Static type of a sub-expression, as the checker infers it."""
        if node not in self._types:
            self._types[node] = check(node, self.scope).result_type
        return self._types[node]

    def free_names(self, node: cel.Node) -> frozenset[str]:
        """Scope names ``node`` reads (comprehension variables excluded)."""
        cached = self._free.get(node)
        if cached is not None:
            return cached
        if isinstance(node, cel.Ident):
            names = frozenset({node.name})
        elif isinstance(node, cel.Comprehension):
            names = self.free_names(node.target) | (self.free_names(node.body) - {node.var})
        else:
            names = frozenset().union(*(self.free_names(child) for child in cel.children(node)))
        self._free[node] = names
        return names

    def reads_record(self, node: cel.Node) -> bool:
        return self.record in self.free_names(node)

    def record_path(self, node: cel.Node) -> tuple[str, ...] | None:
        """``("customer", "level")`` for ``record.customer.level``, else ``None``.

        Every step but the last must select a field of a record type: a step into a map
        or ``dyn`` value (a JSON field) is not a column.
        """
        fields: list[str] = []
        current = node
        while isinstance(current, cel.Select):
            fields.append(current.field)
            current = current.operand
            if not isinstance(self.type_of(current), ObjectType):
                return None
        if fields and isinstance(current, cel.Ident) and current.name == self.record:
            return tuple(reversed(fields))
        return None

    def is_record_select(self, node: cel.Node) -> bool:
        while isinstance(node, cel.Select):
            node = node.operand
        return isinstance(node, cel.Ident) and node.name == self.record


# --------------------------------------------------------------------------- unparsing

_CONDITIONAL, _OR, _AND, _RELATION, _ADDITION, _MULTIPLICATION, _UNARY, _MEMBER = range(1, 9)
_BINARY_PRECEDENCE = {
    "||": _OR,
    "&&": _AND,
    **dict.fromkeys(("==", "!=", "<", "<=", ">", ">=", "in"), _RELATION),
    "+": _ADDITION,
    "-": _ADDITION,
    "*": _MULTIPLICATION,
    "/": _MULTIPLICATION,
    "%": _MULTIPLICATION,
}
_INF = float("inf")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string_literal(value: str) -> str:
    # Control characters as \xNN: cel-python's lexer mishandles \u escapes.
    parts = (
        _ESCAPES.get(char, f"\\x{ord(char):02x}" if ord(char) < 32 or ord(char) == 127 else char)
        for char in value
    )
    return '"' + "".join(parts) + '"'


def _literal_text(node: cel.Literal) -> tuple[str, int]:
    value = node.value
    if value is None:
        return "null", _MEMBER
    if isinstance(value, bool):
        return ("true" if value else "false"), _MEMBER
    if isinstance(value, str):
        return _string_literal(value), _MEMBER
    if isinstance(value, bytes):
        return 'b"' + "".join(f"\\x{byte:02x}" for byte in value) + '"', _MEMBER
    if isinstance(value, float):  # 1e999 is how an infinite literal was written
        text = "1e999" if value == _INF else "-1e999" if value == -_INF else repr(value)
    else:
        text = f"{value}u" if node.type == UINT else str(value)
    return text, (_UNARY if text.startswith("-") else _MEMBER)


def unparse(node: cel.Node, *, elide_macros: bool = False, evaluable: bool = False) -> str:
    """CEL text for ``node``, parenthesised only where precedence requires it.

    Used to evaluate record-free sub-expressions with the real evaluator (the AST keeps
    no source spans) and to quote constructs in messages. ``evaluable`` writes ``null``
    as ``dyn(null)``: a sub-expression built by distributing an operator over ``?:``
    (``size(null)`` from ``size(c ? record.note : null)``) must compile on its own.
    """

    def render(child: cel.Node, minimum: int) -> str:
        text, precedence = raw(child)
        return f"({text})" if precedence < minimum else text

    def raw(current: cel.Node) -> tuple[str, int]:
        match current:
            case cel.Literal(value=None) if evaluable:
                return "dyn(null)", _MEMBER
            case cel.Literal():
                return _literal_text(current)
            case cel.Ident(name=name):
                return name, _MEMBER
            case cel.Select(operand=operand, field=field):
                return f"{render(operand, _MEMBER)}.{field}", _MEMBER
            case cel.Index(operand=operand, index=index):
                return f"{render(operand, _MEMBER)}[{render(index, 0)}]", _MEMBER
            case cel.Call(function=function, target=target, args=args):
                arguments = ", ".join(render(arg, 0) for arg in args)
                prefix = "" if target is None else f"{render(target, _MEMBER)}."
                return f"{prefix}{function}({arguments})", _MEMBER
            case cel.Comprehension(macro=macro, target=target, var=var, body=body):
                inner = "..." if elide_macros else f"{var}, {render(body, 0)}"
                return f"{render(target, _MEMBER)}.{macro}({inner})", _MEMBER
            case cel.Has(select=select):
                return f"has({render(select, 0)})", _MEMBER
            case cel.ListLit(items=items):
                return "[" + ", ".join(render(item, 0) for item in items) + "]", _MEMBER
            case cel.MapLit(entries=entries):
                pairs = (f"{render(key, 0)}: {render(value, 0)}" for key, value in entries)
                return "{" + ", ".join(pairs) + "}", _MEMBER
            case cel.Unary(op=op, operand=operand):
                text = render(operand, _UNARY)
                return f"{op}{' ' if text.startswith('-') else ''}{text}", _UNARY
            case cel.Binary(op=op, left=left, right=right):
                precedence = _BINARY_PRECEDENCE[op]
                text = f"{render(left, precedence)} {op} {render(right, precedence + 1)}"
                return text, precedence
            case cel.Conditional(cond=cond, then=then, else_=else_):
                text = f"{render(cond, _OR)} ? {render(then, _OR)} : {render(else_, _CONDITIONAL)}"
                return text, _CONDITIONAL
        raise TypeError(f"unknown node {type(current).__name__}")

    return render(node, 0)


def snippet(node: cel.Node) -> str:
    text = unparse(node, elide_macros=True)
    return text if len(text) <= _SNIPPET_LIMIT else text[: _SNIPPET_LIMIT - 3] + "..."


@functools.lru_cache(maxsize=512)
def compile_cached(source: str, scope: tuple[tuple[str, CelType], ...]) -> CompiledExpression:
    return compile_expression(source, dict(scope))


def scope_of(expr: CompiledExpression) -> Mapping[str, CelType]:
    # CompiledExpression keeps its scope private; the translator needs it to type
    # sub-expressions and to evaluate record-free ones exactly as the whole would be.
    return expr._scope


def start_pos(source: str) -> cel.Pos:
    offset = len(source) - len(source.lstrip())
    line = source.count("\n", 0, offset) + 1
    return (line, offset - (source.rfind("\n", 0, offset) + 1) + 1, offset)


def is_null_literal(node: cel.Node) -> bool:
    return isinstance(node, cel.Literal) and node.value is None and node.type == NULL


def trivial_regex(pattern: str) -> tuple[str, bool, bool] | None:
    """Split ``^text$`` into (text, anchored at start, anchored at end) if it is plain."""
    start = pattern.startswith("^")
    body = pattern[1:] if start else pattern
    text: list[str] = []
    index = 0
    end = False
    while index < len(body):
        char = body[index]
        if char == "\\":
            escaped = body[index + 1 : index + 2]
            if not escaped or escaped.isalnum():
                return None
            text.append(escaped)
            index += 2
            continue
        if char == "$" and index == len(body) - 1:
            end = True
        elif char in ".^$*+?()[]{}|":
            return None
        else:
            text.append(char)
        index += 1
    return "".join(text), start, end
