"""Syntax errors and the simplified AST produced by the parser."""

from __future__ import annotations

import pytest

from flowdesk.expressions import (
    BOOL,
    BYTES,
    DOUBLE,
    DYN,
    INT,
    NULL,
    STRING,
    UINT,
    ExpressionError,
    ExpressionIssue,
    ListType,
    compile_expression,
)
from flowdesk.expressions.ast import (
    Binary,
    Call,
    Comprehension,
    Conditional,
    Has,
    Ident,
    Index,
    ListLit,
    Literal,
    MapLit,
    Select,
    Unary,
    children,
    walk,
)
from flowdesk.expressions.parser import MAX_DEPTH, parse

SCOPE = {"a": INT, "b": INT, "c": BOOL, "s": STRING, "xs": ListType(INT), "r": DYN}


def syntax_issue(source: str) -> ExpressionIssue:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, SCOPE)
    (issue,) = caught.value.issues
    assert issue.code == "cel-syntax"
    return issue


def ast_of(source: str):
    parsed = parse(source)
    assert not isinstance(parsed, ExpressionIssue), parsed
    assert parsed.issues == ()
    return parsed.ast


SYNTAX_ERRORS = [
    # source, message, hint, line, column
    ("a +", "unexpected end of expression", "expected a value or a name", 1, 4),
    ("", "unexpected end of expression", "expected a value or a name", 1, 1),
    ("   ", "unexpected end of expression", "expected a value or a name", 1, 1),
    ("(a", "unexpected end of expression", "expected `)`", 1, 3),
    ("c ? a", "unexpected end of expression", "expected `:`", 1, 6),
    ("[1, 2", "unexpected end of expression", "expected `]`", 1, 6),
    ("f([1, 2)", "unexpected token `)`", "expected `]`", 1, 8),
    ("f('(', [1 // (\n", "unexpected end of expression", "expected `]`", 1, 15),
    ("a b", "unexpected token `b`", "expected an operator such as `==`, `&&` or `+`", 1, 3),
    ("a )", "unexpected token `)`", None, 1, 3),
    ("{1:}", "unexpected token `}`", "expected a value or a name", 1, 4),
    ("a == = b", "unexpected character `=`", None, 1, 6),
    ("a # b", "unexpected character `#`", None, 1, 3),
    ('s == "abc', "unterminated string literal", None, 1, 6),
    ("s == 'abc", "unterminated string literal", None, 1, 6),
    ("a +\n  b +\n   )", "unexpected token `)`", "expected a value or a name", 3, 4),
]


@pytest.mark.parametrize(
    ("source", "message", "hint", "line", "column"),
    SYNTAX_ERRORS,
    ids=[s[0] for s in SYNTAX_ERRORS],
)
def test_syntax_errors_have_clean_messages_and_positions(
    source: str, message: str, hint: str | None, line: int, column: int
) -> None:
    issue = syntax_issue(source)
    assert (issue.message, issue.hint, issue.line, issue.column) == (message, hint, line, column)
    lines = source.splitlines() or [""]
    assert issue.offset == sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


def test_out_of_range_literals_are_reported_at_compile_time() -> None:
    issue = syntax_issue("a == 99999999999999999999")
    assert issue.message == "integer literal `99999999999999999999` is out of range"
    assert (issue.line, issue.column) == (1, 6)
    assert syntax_issue("18446744073709551616u == 1u").message.endswith("is out of range")


def test_unsupported_constructions_are_syntax_issues() -> None:
    assert syntax_issue("Foo{a: 1}").message == "message construction `Name{...}` is not supported"
    issue = syntax_issue("a == .size(s)")
    assert issue.message == "a leading `.` before a function call is not supported"
    assert issue.column == 6


def test_syntax_and_type_issues_are_reported_together() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("Foo{a: 1} || zz", SCOPE)
    assert [issue.code for issue in caught.value.issues] == ["cel-syntax", "cel-unknown-name"]


def test_deeply_nested_expressions_are_rejected_before_evaluation() -> None:
    depth = MAX_DEPTH  # far more parentheses than the tree-depth budget allows
    issue = syntax_issue("(" * depth + "a" + ")" * depth + " > 1")
    assert issue.message == "expression is too deeply nested or too long"
    assert issue.hint == "split it into several smaller conditions"
    long_chain = " + ".join(["a"] * 400)
    assert syntax_issue(long_chain).message == "expression is too deeply nested or too long"


def test_reasonable_nesting_compiles_and_evaluates() -> None:
    source = "(" * 10 + "a" + ")" * 10 + " + " + " + ".join(["b"] * 50)
    assert compile_expression(source, SCOPE).evaluate({"a": 1, "b": 1}) == 51


DEEP_SHAPES = {
    "parentheses": lambda n: "(" * n + "a" + ")" * n,
    "additions": lambda n: " + ".join(["a"] * n),
    "disjunctions": lambda n: " || ".join(["c"] * n),
    "negations": lambda n: "-" * n + "a",
    "lists": lambda n: "[" * n + "]" * n,
    "selections": lambda n: "r" + ".f" * n,
    "conditionals": lambda n: "c ? 1 : " * n + "1",
}


@pytest.mark.parametrize("shape", sorted(DEEP_SHAPES))
def test_the_deepest_accepted_expressions_still_evaluate(shape: str) -> None:
    build = DEEP_SHAPES[shape]
    accepted, rejected = 1, 400  # binary search for the deepest accepted size
    while rejected - accepted > 1:
        middle = (accepted + rejected) // 2
        if isinstance(parse(build(middle)), ExpressionIssue):
            rejected = middle
        else:
            accepted = middle
    deepest = accepted
    assert deepest >= 25  # the budget is generous for hand-written conditions
    assert isinstance(parse(build(deepest + 1)), ExpressionIssue)
    record: object = None
    for _ in range(deepest):
        record = {"f": record}
    compiled = compile_expression(build(deepest), SCOPE)
    compiled.evaluate({"a": 1, "c": False, "r": record})  # no ExpressionEvalError


LITERALS = [
    ("42", 42, INT),
    ("-7", -7, INT),
    ("0x1F", 31, INT),
    ("3u", 3, UINT),
    ("0x10u", 16, UINT),
    ("2.5", 2.5, DOUBLE),
    ("1e3", 1000.0, DOUBLE),
    ('"a\\tb"', "a\tb", STRING),
    ("'it\\'s'", "it's", STRING),
    ("r'\\n'", "\\n", STRING),
    ('"\\u00e9"', "é", STRING),
    ('b"\\xff"', b"\xff", BYTES),
    ("true", True, BOOL),
    ("false", False, BOOL),
    ("null", None, NULL),
]


@pytest.mark.parametrize(
    ("source", "value", "cel_type"), LITERALS, ids=[lit[0] for lit in LITERALS]
)
def test_literals_are_plain_python_values(source: str, value: object, cel_type: object) -> None:
    node = ast_of(source)
    assert node == Literal(value, cel_type)
    assert type(node.value) is type(value)


def test_precedence_and_shape() -> None:
    assert ast_of("a + b * 2 > 3 && !c || s in ['x']") == Binary(
        "||",
        Binary(
            "&&",
            Binary(
                ">",
                Binary("+", Ident("a"), Binary("*", Ident("b"), Literal(2, INT))),
                Literal(3, INT),
            ),
            Unary("!", Ident("c")),
        ),
        Binary("in", Ident("s"), ListLit((Literal("x", STRING),))),
    )


def test_left_associative_operators() -> None:
    assert ast_of("a - b - 1") == Binary("-", Binary("-", Ident("a"), Ident("b")), Literal(1, INT))


def test_members_calls_and_macros() -> None:
    assert ast_of("r.f[0].g(1, s)") == Call(
        "g", Index(Select(Ident("r"), "f"), Literal(0, INT)), (Literal(1, INT), Ident("s"))
    )
    assert ast_of("size(xs)") == Call("size", None, (Ident("xs"),))
    assert ast_of("xs.exists_one(x, x > 1)") == Comprehension(
        "exists_one", Ident("xs"), "x", Binary(">", Ident("x"), Literal(1, INT))
    )
    assert ast_of("has(r.f)") == Has(Select(Ident("r"), "f"))
    assert ast_of("c ? 1 : 2") == Conditional(Ident("c"), Literal(1, INT), Literal(2, INT))
    assert ast_of("{'k': [1]}") == MapLit(((Literal("k", STRING), ListLit((Literal(1, INT),))),))
    assert ast_of("(((a)))") == Ident("a")
    assert ast_of(".a") == Ident("a")
    assert ast_of("- a") == Unary("-", Ident("a"))


def test_malformed_macros_stay_calls_for_the_checker() -> None:
    assert ast_of("xs.all(1, true)") == Call(
        "all", Ident("xs"), (Literal(1, INT), Literal(True, BOOL))
    )
    assert ast_of("has(a)") == Call("has", None, (Ident("a"),))


def test_positions_point_at_operators_and_names() -> None:
    node = ast_of("a\n  + r.field.call(true)")
    assert isinstance(node, Binary)
    assert node.pos == (2, 3, 4)
    call = node.right
    assert isinstance(call, Call)
    assert call.pos == (2, 13, 14)
    assert call.target.pos == (2, 7, 8)  # `field`
    assert call.args[0].pos == (2, 18, 19)  # `true`, whose token celpy leaves unplaced
    assert ast_of("xs[ 0 ]").pos == (1, 3, 2)
    assert ast_of("c ? 1 : 2").pos == (1, 3, 2)


def test_positions_do_not_affect_equality() -> None:
    assert ast_of("a+1") == ast_of("a  +  1")
    assert hash(ast_of("a+1")) == hash(ast_of("a  +  1"))


def test_walk_visits_every_node_in_source_order() -> None:
    node = ast_of("f(a, [b, {'k': c}]) ? xs.map(x, -x) : has(r.z)")
    names = [n.name for n in walk(node) if isinstance(n, Ident)]
    assert names == ["a", "b", "c", "xs", "x", "r"]
    assert all(child in list(walk(node)) for child in children(node))
    assert len(list(walk(Literal(1, INT)))) == 1
