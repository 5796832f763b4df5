"""Parsing: CEL text -> lark parse tree (cel-python's grammar) -> simplified AST.

The lark tree is kept because the cel-python evaluator runs on it; the simplified AST
(:mod:`flowdesk.expressions.ast`) is what Flowdesk code reads. Syntax errors from lark
are turned into :class:`~flowdesk.expressions.errors.ExpressionIssue` values with short
messages instead of lark's token dumps, which mean nothing to a business analyst.

The parser is built from cel-python's own ``cel.lark`` with cel-python's options, rather
than through ``celpy.Environment().compile``, for one reason: cel-python's lexer callback
re-creates ``true``/``false`` tokens without positions, which leaves every enclosing
node without a position too. Ours keeps them; the trees are otherwise identical, so
cel-python evaluates them unchanged.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

import celpy
import lark
from celpy import celtypes
from celpy.evaluation import celbytes, celstr
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

from flowdesk.expressions import ast
from flowdesk.expressions.ast import Node, Pos
from flowdesk.expressions.errors import CEL_SYNTAX, ExpressionIssue
from flowdesk.expressions.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DYN,
    INT,
    NULL,
    STRING,
    UINT,
    CelType,
)

__all__ = ["MAX_DEPTH", "ParsedExpression", "SourceMap", "make_issue", "parse"]

MAX_DEPTH = 300
"""Deepest lark tree accepted.

cel-python evaluates recursively (about five Python frames per tree level), so very deep
trees would overflow the stack at runtime. 300 levels allow ~25 nested parentheses or
~140 chained operators, far beyond any readable condition.
"""


def _keyword_literals(token: lark.Token) -> lark.Token:
    """Same as cel-python's ``CELParser.ambiguous_literals``, but keeping positions."""
    if token.value in ("true", "false"):
        return lark.Token.new_borrow_pos("BOOL_LIT", token.value, token)
    return token


_PARSER = lark.Lark(
    (Path(celpy.__file__).parent / "cel.lark").read_text(),
    parser="lalr",
    start="expr",
    g_regex_flags=re.M,
    lexer_callbacks={"IDENT": _keyword_literals},
    propagate_positions=True,
    maybe_placeholders=False,
    priority="invert",
)

_PASS_THROUGH = frozenset(
    {
        "expr",
        "conditionalor",
        "conditionaland",
        "relation",
        "addition",
        "multiplication",
        "unary",
        "member",
        "primary",
    }
)
_OPERATOR_RULES = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}
_EXPRESSION_STARTS = frozenset({"IDENT", "INT_LIT", "STRING_LIT", "LPAR"})
_OPERATOR_TERMINALS = frozenset({"PLUS", "LESSTHAN", "STAR"})
_CLOSERS = frozenset({"RPAR", "RSQB", "RBRACE", "COLON"})
_BRACKET_CLOSERS = frozenset({"RPAR", "RSQB", "RBRACE"})
_BRACKETS = {"(": ")", "[": "]", "{": "}"}


class SourceMap:
    """Converts character offsets in the expression text to (line, column, offset)."""

    def __init__(self, source: str) -> None:
        self._line_starts = [0] + [i + 1 for i, char in enumerate(source) if char == "\n"]

    def pos(self, offset: int) -> ast.Pos:
        """Return the 1-based line and column of ``offset``, plus the offset itself."""
        line = bisect.bisect_right(self._line_starts, offset)
        return (line, offset - self._line_starts[line - 1] + 1, offset)

    def offset(self, line: int, column: int) -> int:
        """Inverse of :meth:`pos`, clamped to the text."""
        line = min(max(line, 1), len(self._line_starts))
        return max(self._line_starts[line - 1] + column - 1, 0)


def make_issue(code: str, message: str, pos: ast.Pos, hint: str | None = None) -> ExpressionIssue:
    """Build an issue located at ``pos``."""
    return ExpressionIssue(code, message, hint, pos[0], pos[1], pos[2])


@dataclass(frozen=True)
class ParsedExpression:
    """Result of :func:`parse`: the lark tree for the evaluator, the AST for everyone else.

    ``issues`` holds problems found while building the AST (unsupported syntax,
    out-of-range literals); the AST then contains ``dyn`` placeholders so type
    checking can continue and report further issues in the same pass.
    """

    tree: lark.Tree
    ast: Node
    start: Pos
    issues: tuple[ExpressionIssue, ...]


def parse(source: str) -> ParsedExpression | ExpressionIssue:
    """Parse ``source``; return the parsed expression or the single syntax issue."""
    positions = SourceMap(source)
    try:
        tree = _PARSER.parse(source)
    except LarkError as error:
        return _syntax_issue(error, source, positions)
    except RecursionError:
        return make_issue(CEL_SYNTAX, "expression is too deeply nested", positions.pos(0))
    if _depth(tree) > MAX_DEPTH:
        return make_issue(
            CEL_SYNTAX,
            "expression is too deeply nested or too long",
            positions.pos(_start(tree)),
            "split it into several smaller conditions",
        )
    lowering = _Lowering(source, positions)
    node = lowering.lower(tree)
    return ParsedExpression(tree, node, positions.pos(_start(tree)), tuple(lowering.issues))


# --------------------------------------------------------------------------- syntax errors


def _terminal_spellings() -> dict[str, str]:
    return {
        terminal.name: terminal.pattern.value
        for terminal in _PARSER.terminals
        if isinstance(terminal.pattern, lark.lexer.PatternStr)
    }


_SPELLINGS = _terminal_spellings()


def _syntax_issue(cause: LarkError, source: str, positions: SourceMap) -> ExpressionIssue:
    if isinstance(cause, UnexpectedToken):
        expected = set(cause.expected)
        if cause.token.type == "$END":
            pos = positions.pos(len(source.rstrip()))
            hint = _hint(expected, source, len(source))
            return make_issue(CEL_SYNTAX, "unexpected end of expression", pos, hint)
        offset = cause.token.start_pos or 0
        token = _shorten(str(cause.token.value))
        hint = _hint(expected, source, offset)
        return make_issue(CEL_SYNTAX, f"unexpected token `{token}`", positions.pos(offset), hint)
    if isinstance(cause, UnexpectedCharacters):
        offset = cause.pos_in_stream
        char = source[offset] if 0 <= offset < len(source) else ""
        if char in {'"', "'"}:
            return make_issue(CEL_SYNTAX, "unterminated string literal", positions.pos(offset))
        return make_issue(CEL_SYNTAX, f"unexpected character `{char}`", positions.pos(offset))
    line = getattr(cause, "line", None)
    column = getattr(cause, "column", None)
    offset = (
        positions.offset(line, column) if isinstance(line, int) and isinstance(column, int) else 0
    )
    return make_issue(CEL_SYNTAX, "invalid expression syntax", positions.pos(offset))


def _hint(expected: set[str], source: str, offset: int) -> str | None:
    # lark's LALR tables over-approximate what may come next (`[1, 2` "expects" `)` too),
    # so an unclosed bracket in the text is a better guide than the expected set.
    if expected >= _EXPRESSION_STARTS:
        return "expected a value or a name"
    opener = _unclosed_bracket(source, offset)
    if opener is not None and expected & _BRACKET_CLOSERS:
        return f"expected `{_BRACKETS[opener]}`"
    if expected & _OPERATOR_TERMINALS:
        return "expected an operator such as `==`, `&&` or `+`"
    closers = expected & _CLOSERS
    spelled = sorted(_SPELLINGS[name] for name in (closers or expected) if name in _SPELLINGS)
    if spelled and len(spelled) <= 3:
        return "expected " + " or ".join(f"`{spelling}`" for spelling in spelled)
    return None


def _unclosed_bracket(source: str, end: int) -> str | None:
    """Innermost bracket opened before ``end`` and not closed (strings, comments skipped)."""
    stack: list[str] = []
    index = 0
    while index < end:
        char = source[index]
        if char in "\"'":
            index += 1
            while index < end and source[index] != char:
                index += 2 if source[index] == "\\" else 1
        elif source.startswith("//", index):
            newline = source.find("\n", index)
            index = end if newline < 0 else newline
        elif char in _BRACKETS:
            stack.append(char)
        elif char in _BRACKETS.values() and stack:
            stack.pop()
        index += 1
    return stack[-1] if stack else None


def _shorten(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- tree helpers


def _depth(tree: lark.Tree) -> int:
    deepest = 0
    stack: list[tuple[lark.Tree, int]] = [(tree, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        subtrees = [child for child in current.children if isinstance(child, lark.Tree)]
        stack.extend((child, depth + 1) for child in subtrees)
    return deepest


def _start(tree: lark.Tree) -> int:
    if not tree.meta.empty:
        return int(tree.meta.start_pos)
    for token in tree.scan_values(lambda value: isinstance(value, lark.Token)):
        return int(token.start_pos or 0)
    return 0


def _end(tree: lark.Tree) -> int:
    return int(tree.meta.end_pos) if not tree.meta.empty else _start(tree)


# --------------------------------------------------------------------------- lowering


class _Lowering:
    """Converts the lark tree into the simplified AST, collecting unsupported syntax."""

    def __init__(self, source: str, positions: SourceMap) -> None:
        self._source = source
        self._positions = positions
        self.issues: list[ExpressionIssue] = []

    def lower(self, tree: lark.Tree) -> ast.Node:
        # Single-child wrapper rules are skipped in a loop, not by recursion, so the
        # Python stack grows with the expression's real nesting only.
        while tree.data in _PASS_THROUGH and len(tree.children) == 1:
            tree = tree.children[0]
        handler = getattr(self, f"_lower_{tree.data}")
        return handler(tree)

    # -- helpers

    def _at(self, offset: int) -> ast.Pos:
        return self._positions.pos(offset)

    def _token_pos(self, token: lark.Token) -> ast.Pos:
        return self._at(int(token.start_pos or 0))

    def _next_symbol(self, offset: int) -> int:
        """Offset of the first character at or after ``offset`` that is not blank or comment."""
        source = self._source
        while offset < len(source):
            if source[offset].isspace():
                offset += 1
            elif source.startswith("//", offset):
                newline = source.find("\n", offset)
                offset = len(source) if newline < 0 else newline
            else:
                break
        return offset

    def _unsupported(self, tree: lark.Tree, message: str) -> ast.Node:
        pos = self._at(_start(tree))
        self.issues.append(make_issue(CEL_SYNTAX, message, pos))
        return ast.Literal(None, DYN, pos=pos)

    def _args(self, tree: lark.Tree) -> tuple[ast.Node, ...]:
        """Lower an optional trailing ``exprlist`` child."""
        if tree.children and isinstance(tree.children[-1], lark.Tree):
            return tuple(self.lower(child) for child in tree.children[-1].children)
        return ()

    # -- operators

    def _lower_expr(self, tree: lark.Tree) -> ast.Node:
        cond, then, else_ = tree.children
        pos = self._at(self._next_symbol(_end(cond)))
        return ast.Conditional(self.lower(cond), self.lower(then), self.lower(else_), pos=pos)

    def _logical(self, tree: lark.Tree, op: str) -> ast.Node:
        left, right = tree.children
        pos = self._at(self._next_symbol(_end(left)))
        return ast.Binary(op, self.lower(left), self.lower(right), pos=pos)

    def _lower_conditionalor(self, tree: lark.Tree) -> ast.Node:
        return self._logical(tree, "||")

    def _lower_conditionaland(self, tree: lark.Tree) -> ast.Node:
        return self._logical(tree, "&&")

    def _binary(self, tree: lark.Tree) -> ast.Node:
        operator_tree, right = tree.children
        (left,) = operator_tree.children
        pos = self._at(self._next_symbol(_end(left)))
        op = _OPERATOR_RULES[operator_tree.data]
        return ast.Binary(op, self.lower(left), self.lower(right), pos=pos)

    _lower_relation = _lower_addition = _lower_multiplication = _binary

    def _lower_unary(self, tree: lark.Tree) -> ast.Node:
        operator_tree, operand = tree.children
        op = "!" if operator_tree.data == "unary_not" else "-"
        return ast.Unary(op, self.lower(operand), pos=self._at(_start(operator_tree)))

    # -- members

    def _lower_member_dot(self, tree: lark.Tree) -> ast.Node:
        operand, name = tree.children
        return ast.Select(self.lower(operand), str(name), pos=self._token_pos(name))

    def _lower_member_dot_arg(self, tree: lark.Tree) -> ast.Node:
        target = self.lower(tree.children[0])
        name = tree.children[1]
        args = self._args(tree) if len(tree.children) == 3 else ()
        pos = self._token_pos(name)
        if name in ast.COMPREHENSION_MACROS and len(args) == 2 and isinstance(args[0], ast.Ident):
            return ast.Comprehension(str(name), target, args[0].name, args[1], pos=pos)
        return ast.Call(str(name), target, args, pos=pos)

    def _lower_member_index(self, tree: lark.Tree) -> ast.Node:
        operand, index = tree.children
        pos = self._at(self._next_symbol(_end(operand)))
        return ast.Index(self.lower(operand), self.lower(index), pos=pos)

    def _lower_member_object(self, tree: lark.Tree) -> ast.Node:
        return self._unsupported(tree, "message construction `Name{...}` is not supported")

    # -- primaries

    def _lower_ident(self, tree: lark.Tree) -> ast.Node:
        (name,) = tree.children
        return ast.Ident(str(name), pos=self._token_pos(name))

    _lower_dot_ident = _lower_ident

    def _lower_dot_ident_arg(self, tree: lark.Tree) -> ast.Node:
        return self._unsupported(tree, "a leading `.` before a function call is not supported")

    def _lower_ident_arg(self, tree: lark.Tree) -> ast.Node:
        name = tree.children[0]
        args = self._args(tree)
        pos = self._token_pos(name)
        if name == "has" and len(args) == 1 and isinstance(args[0], ast.Select):
            return ast.Has(args[0], pos=pos)
        return ast.Call(str(name), None, args, pos=pos)

    def _lower_paren_expr(self, tree: lark.Tree) -> ast.Node:
        return self.lower(tree.children[0])

    def _lower_list_lit(self, tree: lark.Tree) -> ast.Node:
        return ast.ListLit(self._args(tree), pos=self._at(_start(tree)))

    def _lower_map_lit(self, tree: lark.Tree) -> ast.Node:
        parts = self._args(tree)
        entries = tuple(zip(parts[0::2], parts[1::2], strict=True))
        return ast.MapLit(entries, pos=self._at(_start(tree)))

    def _lower_literal(self, tree: lark.Tree) -> ast.Node:
        (token,) = tree.children
        pos = self._token_pos(token)
        try:
            value, cel_type = _literal_value(token)
        except (ValueError, TypeError, OverflowError, UnicodeError):
            text = _shorten(str(token))
            self.issues.append(make_issue(CEL_SYNTAX, f"invalid literal `{text}`", pos))
            return ast.Literal(None, DYN, pos=pos)
        if value is _OUT_OF_RANGE:
            text = _shorten(str(token))
            message = f"integer literal `{text}` is out of range"
            self.issues.append(make_issue(CEL_SYNTAX, message, pos))
            return ast.Literal(None, DYN, pos=pos)
        return ast.Literal(value, cel_type, pos=pos)


_OUT_OF_RANGE = object()


def _literal_value(token: lark.Token) -> tuple[object, CelType]:
    """Decode a literal exactly as the cel-python evaluator will, as a plain value."""
    kind, text = token.type, str(token)
    if kind in {"INT_LIT", "UINT_LIT"}:
        cel_type = INT if kind == "INT_LIT" else UINT
        try:
            number = celtypes.IntType(text) if kind == "INT_LIT" else celtypes.UintType(text[:-1])
        except ValueError as error:
            if "overflow" in str(error):
                return _OUT_OF_RANGE, cel_type
            raise
        return int(number), cel_type
    if kind == "FLOAT_LIT":
        return float(celtypes.DoubleType(text)), DOUBLE
    if kind in {"STRING_LIT", "MLSTRING_LIT"}:
        return str(celstr(token)), STRING
    if kind == "BYTES_LIT":
        return bytes(celbytes(token)), BYTES
    if kind == "BOOL_LIT":
        return text == "true", BOOL
    if kind == "NULL_LIT":
        return None, NULL
    raise ValueError(f"unknown literal kind {kind}")
