"""Property tests: the type checker and the runtime agree, and nothing else escapes.

* Random *well-typed* expressions (built type-directed over a scope of ints, doubles,
  strings, bools, enums, lists, records, timestamps and durations) must compile, and
  evaluating them on random values of the declared types (including nulls) must return
  a value of the static result type or raise ExpressionEvalError -- nothing else.
* Random text and random token soup must only ever raise ExpressionError when compiled,
  and whatever happens to compile must obey the same runtime contract.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowdesk.expressions import (
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
    ExpressionError,
    ExpressionEvalError,
    ListType,
    MapType,
    ObjectType,
    compile_expression,
    is_assignable,
)

pytestmark = pytest.mark.slow

PRIORITY = EnumType("priority", ("p1", "p2", "p3"))
LI, LD, LS = ListType(INT), ListType(DOUBLE), ListType(STRING)
MSI = MapType(STRING, INT)
RECORD = ObjectType(
    "rec",
    {"n": INT, "x": DOUBLE, "name": STRING, "flag": BOOL, "prio": PRIORITY, "tags": LS},
)
SCOPE: dict[str, CelType] = {
    "i": INT,
    "j": INT,
    "d": DOUBLE,
    "e": DOUBLE,
    "s": STRING,
    "t": STRING,
    "b": BOOL,
    "c": BOOL,
    "p": PRIORITY,
    "li": LI,
    "ld": LD,
    "ls": LS,
    "rec": RECORD,
    "ts": TIMESTAMP,
    "now": TIMESTAMP,
    "dur": DURATION,
    "u": UINT,
    "by": BYTES,
    "m": MSI,
}
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("FLOWDESK_CEL_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --------------------------------------------------------------------------- values


def value_strategy(cel_type: CelType, nullable: bool) -> st.SearchStrategy[Any]:
    """Plain Python values of ``cel_type``, as the runtime would receive them."""
    if isinstance(cel_type, MapType):
        base: st.SearchStrategy[Any] = st.dictionaries(
            value_strategy(cel_type.key, nullable=False),
            value_strategy(cel_type.value, nullable),
            max_size=3,
        )
    elif isinstance(cel_type, ObjectType):
        base = st.fixed_dictionaries(
            {name: value_strategy(field, nullable) for name, field in cel_type.fields.items()}
        )
    elif isinstance(cel_type, ListType):
        base = st.lists(value_strategy(cel_type.elem, nullable), max_size=4)
    elif isinstance(cel_type, EnumType):
        base = st.sampled_from(cel_type.values)
    else:
        base = _SCALARS[cel_type]
    return st.one_of(st.none(), base, base, base) if nullable else base


_SCALARS: dict[CelType, st.SearchStrategy[Any]] = {
    INT: st.one_of(st.integers(-20, 20), st.integers(-(2**63), 2**63 - 1)),
    DOUBLE: st.one_of(st.floats(-1e3, 1e3), st.floats()),
    STRING: st.text(alphabet="ab.*^$[(é", max_size=4),
    BOOL: st.booleans(),
    UINT: st.one_of(st.integers(0, 20), st.integers(0, 2**64 - 1)),
    BYTES: st.binary(max_size=3),
    TIMESTAMP: st.datetimes(
        min_value=datetime.datetime(1900, 1, 1),
        max_value=datetime.datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [datetime.UTC, datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))]
        ),
    ),
    DURATION: st.timedeltas(
        min_value=datetime.timedelta(days=-5000), max_value=datetime.timedelta(days=5000)
    ),
}


@st.composite
def activations(draw: st.DrawFn, nullable: bool | None = None) -> dict[str, Any]:
    if nullable is None:
        nullable = draw(st.booleans())
    return {name: draw(value_strategy(cel_type, nullable)) for name, cel_type in SCOPE.items()}


def conforms(value: object, cel_type: CelType) -> bool:
    """Whether a plain Python ``value`` is a value of ``cel_type`` (null always is)."""
    if value is None or cel_type == DYN:
        return True
    if isinstance(cel_type, EnumType):
        return isinstance(value, str) and value in cel_type.values
    if isinstance(cel_type, ListType):
        return type(value) is list and all(conforms(item, cel_type.elem) for item in value)
    if isinstance(cel_type, MapType):
        return type(value) is dict and all(
            conforms(k, cel_type.key) and conforms(v, cel_type.value) for k, v in value.items()
        )
    if isinstance(cel_type, ObjectType):
        return type(value) is dict and all(
            conforms(value.get(name), field) for name, field in cel_type.fields.items()
        )
    if cel_type == TIMESTAMP:
        return type(value) is datetime.datetime and value.tzinfo is not None
    if cel_type == UINT:
        return type(value) is int and value >= 0
    expected = {
        INT: int,
        DOUBLE: float,
        STRING: str,
        BOOL: bool,
        BYTES: bytes,
        DURATION: datetime.timedelta,
        NULL: type(None),
    }
    return type(value) is expected[cel_type]


# Runtime failures that a well-typed expression may legitimately hit when neither its
# values nor its text contain null. "operation not supported" (cel-python's "no such
# overload") is not one of them: it would mean the checker accepted an ill-typed
# operation.
_VALUE_ERRORS = (
    "division by zero",
    "integer overflow",
    "invalid value",
    "list index out of range",
    "of an empty list",
    "invalid regular expression",
    "no such key",
    "no field or key",
)


def assert_runtime_contract(source: str, activation: dict[str, Any]) -> object:
    """Compile-success is assumed; evaluation returns a conforming value or raises."""
    compiled = compile_expression(source, SCOPE)
    try:
        result = compiled.evaluate(activation)
    except ExpressionEvalError as error:
        if not _has_null(activation) and "null" not in source:
            assert any(reason in error.reason for reason in _VALUE_ERRORS), (source, error)
        return None
    assert conforms(result, compiled.result_type), (source, result, compiled.result_type)
    return result


def _has_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_null(item) for item in value)
    return False


# --------------------------------------------------------------------------- well-typed

Maker = Callable[[st.DrawFn, int, dict[str, CelType]], str]
_ORDERED = (INT, UINT, DOUBLE, STRING, BYTES, BOOL, TIMESTAMP, DURATION, PRIORITY)
_LITERALS: dict[CelType, st.SearchStrategy[str]] = {
    INT: st.integers(-3, 30).map(lambda n: f"({n})" if n < 0 else str(n)),
    DOUBLE: st.sampled_from(["0.0", "1.5", "(-2.25)", "1e3"]),
    STRING: st.sampled_from(['""', '"a"', "'b.'", '"é"', '"p1"']),
    BOOL: st.sampled_from(["true", "false"]),
    PRIORITY: st.sampled_from(['"p1"', '"p3"']),
    TIMESTAMP: st.just('timestamp("2024-02-29T12:00:00Z")'),
    DURATION: st.sampled_from(['duration("90m")', 'duration("-1.5s")']),
    LI: st.sampled_from(["[]", "[1, 2]"]),
    LD: st.sampled_from(["[]", "[0.5]"]),
    LS: st.sampled_from(["[]", '["a", "b"]']),
    UINT: st.sampled_from(["0u", "7u", "0x10u"]),
    BYTES: st.sampled_from(['b""', "b'a\\xff'"]),
    MSI: st.sampled_from(["{}", '{"a": 1, "b": 2}']),
}
_FIELDS = {
    INT: "rec.n",
    DOUBLE: "rec.x",
    STRING: "rec.name",
    BOOL: "rec.flag",
    PRIORITY: "rec.prio",
}


def expression(draw: st.DrawFn, cel_type: CelType, depth: int, local: dict[str, CelType]) -> str:
    leaves = [name for name, declared in {**SCOPE, **local}.items() if declared == cel_type]
    if cel_type in _FIELDS:
        leaves.append(_FIELDS[cel_type])
    if cel_type == LS:
        leaves.append("rec.tags")
    options: list[Maker] = [lambda draw, _d, _l: draw(st.sampled_from(leaves))] if leaves else []
    options.append(lambda draw, _d, _l: draw(_LITERALS[cel_type]))
    if depth > 0:
        options.extend(_COMPOUND[cel_type])
    maker = draw(st.sampled_from(options))
    return maker(draw, depth - 1, local)


def sub(cel_type: CelType) -> Callable[[st.DrawFn, int, dict[str, CelType]], str]:
    return lambda draw, depth, local: expression(draw, cel_type, depth, local)


def template(text: str, *types: CelType) -> Maker:
    """A maker filling ``{0}``, ``{1}``... with sub-expressions of ``types``."""

    def make(draw: st.DrawFn, depth: int, local: dict[str, CelType]) -> str:
        return text.format(*(expression(draw, t, depth, local) for t in types))

    return make


def choice(text: str, options: tuple[str, ...], *types: CelType) -> Maker:
    """Like :func:`template`, with ``{op}`` drawn from ``options``."""

    def make(draw: st.DrawFn, depth: int, local: dict[str, CelType]) -> str:
        op = draw(st.sampled_from(options))
        return text.format(*(expression(draw, t, depth, local) for t in types), op=op)

    return make


def macro(text: str, target: CelType, elem: CelType, body: CelType) -> Maker:
    """``text`` gets the target, a fresh variable and a body using that variable."""

    def make(draw: st.DrawFn, depth: int, local: dict[str, CelType]) -> str:
        var = f"v{depth}"
        target_text = expression(draw, target, depth, local)
        body_text = expression(draw, body, depth, {**local, var: elem})
        return text.format(target_text, var, body_text)

    return make


def comparison(draw: st.DrawFn, depth: int, local: dict[str, CelType]) -> str:
    operand = draw(st.sampled_from(_ORDERED))
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
    left = expression(draw, operand, depth, local)
    right = expression(draw, operand, depth, local)
    return f"({left} {op} {right})"


def null_check(draw: st.DrawFn, depth: int, local: dict[str, CelType]) -> str:
    operand = draw(st.sampled_from([*_ORDERED, LI, LS, MSI]))
    op = draw(st.sampled_from(["==", "!="]))
    return f"({expression(draw, operand, depth, local)} {op} null)"


_ARITH = ("+", "-", "*", "/")
_COMPOUND: dict[CelType, list[Maker]] = {
    INT: [
        choice("({0} {op} {1})", (*_ARITH, "%"), INT, INT),
        template("(-{0})", INT),
        template("size({0})", STRING),
        template("{0}.size()", LI),
        template("size({0})", LS),
        template("sum({0})", LI),
        template("max({0})", LI),
        template("min({0})", LI),
        template("int({0})", DOUBLE),
        template("int({0})", STRING),
        template("int({0})", TIMESTAMP),
        template("({0} ? {1} : {2})", BOOL, INT, INT),
        template("{0}[{1}]", LI, INT),
        choice("{0}.{op}()", ("getFullYear", "getMonth", "getDayOfWeek", "getHours"), TIMESTAMP),
        template('{0}.getDate("Europe/Paris")', TIMESTAMP),
        choice("{0}.{op}()", ("getMinutes", "getSeconds"), DURATION),
        template("int({0})", UINT),
        template("{0}[{1}]", MSI, STRING),
        template("{0}.a", MSI),
        template("size({0})", MSI),
        template("size({0})", BYTES),
    ],
    UINT: [
        choice("({0} {op} {1})", (*_ARITH, "%"), UINT, UINT),
        template("uint({0})", INT),
        template("uint({0})", DOUBLE),
        template("max([{0}, {1}])", UINT, UINT),
    ],
    BYTES: [
        template("({0} + {1})", BYTES, BYTES),
        template("bytes({0})", STRING),
    ],
    MSI: [
        template('{{"k": {0}}}', INT),
        template("({0} ? {1} : {2})", BOOL, MSI, MSI),
    ],
    DOUBLE: [
        choice("({0} {op} {1})", _ARITH, DOUBLE, DOUBLE),
        template("(-{0})", DOUBLE),
        template("double({0})", INT),
        template("double({0})", STRING),
        template("sum({0})", LD),
        template("max({0})", LD),
        template("({0} ? {1} : {2})", BOOL, DOUBLE, DOUBLE),
        template("{0}[{1}]", LD, INT),
    ],
    STRING: [
        template("({0} + {1})", STRING, STRING),
        template("({0} + {1})", STRING, PRIORITY),
        template("string({0})", INT),
        template("string({0})", DOUBLE),
        template("string({0})", BOOL),
        template("string({0})", TIMESTAMP),
        template("string({0})", DURATION),
        template("string({0})", UINT),
        template("string({0})", BYTES),
        template("({0} ? {1} : {2})", BOOL, STRING, STRING),
        template("{0}[{1}]", LS, INT),
        template("min({0})", LS),
    ],
    BOOL: [
        choice("({0} {op} {1})", ("&&", "||"), BOOL, BOOL),
        template("(!{0})", BOOL),
        comparison,
        null_check,
        template("({0} in {1})", INT, LI),
        template("({0} in {1})", STRING, LS),
        template("({0} in {1})", STRING, MSI),
        template("has({0}.a)", MSI),
        macro("{0}.all({1}, {2})", MSI, STRING, BOOL),
        template("bool({0})", STRING),
        template('({0} in ["p1", "p2"])', PRIORITY),
        choice("{0}.{op}({1})", ("startsWith", "endsWith", "contains", "matches"), STRING, STRING),
        macro("{0}.all({1}, {2})", LI, INT, BOOL),
        macro("{0}.exists({1}, {2})", LS, STRING, BOOL),
        macro("{0}.exists_one({1}, {2})", LD, DOUBLE, BOOL),
        template("has(rec.n)"),
        template("({0} ? {1} : {2})", BOOL, BOOL, BOOL),
    ],
    PRIORITY: [template("({0} ? {1} : {2})", BOOL, PRIORITY, PRIORITY)],
    LI: [
        template("[{0}, {1}]", INT, INT),
        template("({0} + {1})", LI, LI),
        macro("{0}.map({1}, {2})", LI, INT, INT),
        macro("{0}.filter({1}, {2})", LI, INT, BOOL),
        macro("{0}.map({1}, size({2}))", LS, STRING, STRING),
    ],
    LD: [
        template("[{0}]", DOUBLE),
        macro("{0}.map({1}, {2})", LI, INT, DOUBLE),
        macro("{0}.filter({1}, {2})", LD, DOUBLE, BOOL),
    ],
    LS: [
        template("[{0}, {1}]", STRING, PRIORITY),
        template("({0} + {1})", LS, LS),
        macro("{0}.map({1}, {2})", LS, STRING, STRING),
        macro("{0}.filter({1}, {2})", LS, STRING, BOOL),
        macro("{0}.filter({1}, {2})", MSI, STRING, BOOL),
    ],
    TIMESTAMP: [
        template("({0} + {1})", TIMESTAMP, DURATION),
        template("({0} - {1})", TIMESTAMP, DURATION),
        template("({0} ? {1} : {2})", BOOL, TIMESTAMP, TIMESTAMP),
    ],
    DURATION: [
        template("({0} - {1})", TIMESTAMP, TIMESTAMP),
        template("({0} + {1})", DURATION, DURATION),
        template("({0} - {1})", DURATION, DURATION),
    ],
}


@st.composite
def well_typed(draw: st.DrawFn) -> tuple[str, CelType]:
    cel_type = draw(st.sampled_from(sorted(_COMPOUND, key=str)))
    depth = draw(st.integers(0, 3))
    return expression(draw, cel_type, depth, {}), cel_type


@PROPERTY_SETTINGS
@given(well_typed(), activations())
def test_well_typed_expressions_compile_and_evaluate_to_their_static_type(
    generated: tuple[str, CelType], activation: dict[str, Any]
) -> None:
    source, cel_type = generated
    try:
        compiled = compile_expression(source, SCOPE)
    except ExpressionError as error:  # pragma: no cover - a checker bug, shown clearly
        pytest.fail(f"well-typed `{source}` was rejected: {error}")
    assert is_assignable(compiled.result_type, cel_type), (source, compiled.result_type)
    assert_runtime_contract(source, activation)


def test_well_typed_generator_exercises_successful_evaluations() -> None:
    # Guards against a generator or runtime change that makes every evaluation fail,
    # which would make the property above vacuous.
    outcomes = {"ok": 0, "error": 0}

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(well_typed(), activations())
    def run(generated: tuple[str, CelType], activation: dict[str, Any]) -> None:
        try:
            compile_expression(generated[0], SCOPE).evaluate(activation)
            outcomes["ok"] += 1
        except ExpressionEvalError:
            outcomes["error"] += 1

    run()
    assert outcomes["ok"] > outcomes["error"] / 4, outcomes


_MUTATIONS = [
    "i", "d", "s", "b", "p", "li", "ld", "ls", "ts", "dur", "rec", "1", "2.5",
    '"p9"', '"a"', "true", "null", "+", "*", "<", "==", "&&", "in", "n", "tags",
]  # fmt: skip
_TOKEN = re.compile(r'"[^"]*"|\w+|&&|\|\||==|!=|<=|>=|\S')


@PROPERTY_SETTINGS
@given(well_typed(), st.data(), activations(nullable=False))
def test_mutated_expressions_never_fail_with_a_type_error_at_runtime(
    generated: tuple[str, CelType], data: st.DataObject, activation: dict[str, Any]
) -> None:
    # Near-miss expressions (one token swapped) probe the checker's boundaries: whatever
    # it accepts must run without cel-python hitting an unsupported operation.
    tokens = _TOKEN.findall(generated[0])
    index = data.draw(st.integers(0, len(tokens) - 1))
    tokens[index] = data.draw(st.sampled_from(_MUTATIONS))
    source = " ".join(tokens)
    try:
        compile_expression(source, SCOPE)
    except ExpressionError:
        return
    assert_runtime_contract(source, activation)


# --------------------------------------------------------------------------- random input

_ALPHABET = "abcdeijlnpstxy_019 .,()[]{}+-*/%<>=!&|?:'\"\\\n#"
_TOKENS = [
    "i", "j", "d", "s", "b", "p", "li", "ls", "rec", "ts", "dur", "x", "n", "tags", "prio",
    "(", ")", "[", "]", "{", "}", ",", ".", ":", "?", "+", "-", "*", "/", "%", "==", "!=",
    "<", ">=", "&&", "||", "!", "in", "1", "0", "2.5", "1u", '"a"', "'p1'", "b'x'", "null",
    "true", "size", "all", "exists", "map", "filter", "has", "sum", "max", "int", "string",
    "startsWith", "matches", "getHours", "duration", "timestamp", '"1h"', "v", "dyn",
]  # fmt: skip


@PROPERTY_SETTINGS
@given(st.text(alphabet=_ALPHABET, max_size=40), activations())
def test_random_text_only_raises_expression_error(source: str, activation: dict[str, Any]) -> None:
    try:
        compile_expression(source, SCOPE)
    except ExpressionError as error:
        assert error.issues
        for issue in error.issues:
            assert 0 <= issue.offset <= len(source)
            line_start = source.rfind("\n", 0, issue.offset) + 1
            assert issue.line == source.count("\n", 0, issue.offset) + 1
            assert issue.column == issue.offset - line_start + 1
        return
    assert_runtime_contract(source, activation)


@PROPERTY_SETTINGS
@given(
    st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=14),
    st.sampled_from([" ", ""]),
    activations(),
)
def test_random_token_sequences_obey_the_same_contract(
    tokens: list[str], separator: str, activation: dict[str, Any]
) -> None:
    source = separator.join(tokens)
    try:
        compile_expression(source, SCOPE)
    except ExpressionError as error:
        assert error.issues
        codes = {issue.code for issue in error.issues}
        assert codes <= {
            "cel-syntax",
            "cel-unknown-name",
            "cel-unknown-field",
            "cel-type-mismatch",
            "cel-unknown-function",
            "cel-bad-arguments",
            "cel-unknown-enum-value",
            "cel-not-boolean",
        }
        return
    assert_runtime_contract(source, activation)
