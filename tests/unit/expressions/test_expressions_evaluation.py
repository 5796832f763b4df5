"""Evaluation of compiled expressions: plain Python in, plain Python out."""

from __future__ import annotations

import datetime
import decimal

import pytest
from celpy.evaluation import CELEvalError

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
    CompiledExpression,
    EnumType,
    ExpressionEvalError,
    ListType,
    MapType,
    ObjectType,
    compile_expression,
)
from flowdesk.expressions import ast as cel_ast
from flowdesk.expressions.functions import FUNCTIONS

UTC = datetime.UTC
PRIORITY = EnumType("priority", ("p1", "p2", "p3", "p4"))
CUSTOMER = ObjectType("customer", {"name": STRING, "vip": BOOL})
TICKET = ObjectType(
    "ticket",
    {
        "priority": PRIORITY,
        "tags": ListType(STRING),
        "customer": CUSTOMER,
        "count": INT,
        "amount": DOUBLE,
        "payload": DYN,
    },
)
SCOPE = {
    "i": INT,
    "j": INT,
    "d": DOUBLE,
    "s": STRING,
    "b": BOOL,
    "u": UINT,
    "by": BYTES,
    "ts": TIMESTAMP,
    "now": TIMESTAMP,
    "dur": DURATION,
    "li": ListType(INT),
    "ld": ListType(DOUBLE),
    "ls": ListType(STRING),
    "m": MapType(STRING, INT),
    "p": PRIORITY,
    "rec": TICKET,
    "n": INT,
}
TS = datetime.datetime(2024, 3, 10, 14, 30, 15, 250000, tzinfo=UTC)  # a Sunday
NOW = TS + datetime.timedelta(days=1)
ACTIVATION = {
    "i": 5,
    "j": 2,
    "d": 2.5,
    "s": "hello",
    "b": True,
    "u": 3,
    "by": b"ab",
    "ts": TS,
    "now": NOW,
    "dur": datetime.timedelta(minutes=90),
    "li": [1, 2, 3],
    "ld": [1.5, 2.5],
    "ls": ["a", "b"],
    "m": {"a": 1, "b": 2},
    "p": "p1",
    "rec": {
        "priority": "p2",
        "tags": ["x", "y"],
        "customer": {"name": "ACME", "vip": False},
        "count": 4,
        "amount": 10,  # an int for a double field, as JSON would send it
        "payload": {"k": [1, 2]},
    },
    "n": None,
}


def run(source: str, activation: dict[str, object] | None = None) -> object:
    return compile_expression(source, SCOPE).evaluate(activation or ACTIVATION)


CASES = [
    # arithmetic
    ("i + j", 7),
    ("i - j", 3),
    ("i * j", 10),
    ("i / j", 2),
    ("-7 / 2", -3),
    ("i % j", 1),
    ("-i", -5),
    ("d + 1.5", 4.0),
    ("d - 0.5", 2.0),
    ("d * 2.0", 5.0),
    ("d / 2.0", 1.25),
    ("-d", -2.5),
    ("u + 1u", 4),
    ("u * 2u", 6),
    ("u / 2u", 1),
    ("u % 2u", 1),
    ("0x1F + 1", 32),
    ("rec.amount * 1.5", 15.0),
    ('s + "!"', "hello!"),
    ('ls + ["z"]', ["a", "b", "z"]),
    ("li + [4]", [1, 2, 3, 4]),
    ('by + b"!"', b"ab!"),
    # timestamps and durations
    ("now - ts", datetime.timedelta(days=1)),
    ("ts + dur", TS + datetime.timedelta(minutes=90)),
    ("dur + ts", TS + datetime.timedelta(minutes=90)),
    ("ts - dur", TS - datetime.timedelta(minutes=90)),
    ("dur + dur", datetime.timedelta(hours=3)),
    ("dur - duration('30m')", datetime.timedelta(hours=1)),
    # comparisons
    ("i > j", True),
    ("i <= j", False),
    ("d >= 2.5", True),
    ('s < "world"', True),
    ("ts < now", True),
    ("dur > duration('1m')", True),
    ("u > 2u", True),
    ('by < b"b"', True),
    ("b == true", True),
    ("true != false", True),
    ("li == [1, 2, 3]", True),
    ('m == {"a": 1, "b": 2}', True),
    ('p == "p1"', True),
    ('p < "p2"', True),
    ("rec.priority == p", False),
    ('rec.customer.name == "ACME"', True),
    # null
    ("n == null", True),
    ("n != null", False),
    ("i == null", False),
    ("null == d", False),
    ("li != null", True),
    ("ts == null", False),
    ("null == null", True),
    ("n in [0, 1]", False),
    ("!(n in [0])", True),
    ("i in [null, 5]", True),
    ("2 in [null, 5]", False),
    ("n in [null]", True),
    ('"a" in {"a": null}', True),
    # logic
    ("b && i > 1", True),
    ("!b || false", False),
    ('i > j ? "big" : "small"', "big"),
    ("i < j ? 1 : 2", 2),
    # membership
    ("2 in li", True),
    ('"x" in ls', False),
    ('"a" in m', True),
    ('p in ["p1", "p2"]', True),
    ('"x" in rec.tags', True),
    # selection and indexing
    ("li[0]", 1),
    ('m["b"]', 2),
    ("m.a", 1),
    ("rec.tags[1]", "y"),
    ("rec.priority", "p2"),
    ("rec.customer.vip", False),
    ("rec.payload.k[1]", 2),
    ("has(rec.priority)", True),
    ("has(m.zz)", False),
    # macros
    ("li.all(x, x > 0)", True),
    ("li.all(x, x > 1)", False),
    ("li.exists(x, x == 2)", True),
    ("li.exists_one(x, x > 1)", False),
    ("li.exists_one(x, x > 2)", True),
    ("li.map(x, x * 10)", [10, 20, 30]),
    ("li.filter(x, x % 2 == 1)", [1, 3]),
    ("m.all(k, k.size() == 1)", True),
    ("m.filter(k, m[k] > 1)", ["b"]),
    ("rec.tags.map(t, t + t)", ["xx", "yy"]),
    ("li.map(x, li.filter(y, y < x).size())", [0, 1, 2]),
    # size
    ("size(s)", 5),
    ("s.size()", 5),
    ("size(li)", 3),
    ("ls.size()", 2),
    ("size(m)", 2),
    ("size(by)", 2),
    # strings
    ('s.contains("ell")', True),
    ('s.startsWith("he")', True),
    ('s.endsWith("lo")', True),
    ('s.endsWith("he")', False),
    ('(s + "x").contains("ox")', True),
    ('ls.map(x, x + "!")[0].contains("!")', True),
    ('(ls + ["z"]).exists(x, x == "z")', True),
    ('size(by + b"c")', 3),
    ("(dur - duration('30m')).getMinutes()", 60),
    ("string(dur - duration('30m'))", "3600s"),
    ("string(d * 2.0)", "5.0"),
    ('s.matches("^h.*o$")', True),
    ('matches(s, "l+")', True),
    # conversions
    ("int(d)", 2),
    ('int("42")', 42),
    ("int(u)", 3),
    ("int(ts)", int(TS.timestamp())),
    ("int(i)", 5),
    ("uint(i)", 5),
    ("uint(2.7)", 2),
    ('uint("7")', 7),
    ("uint(u)", 3),
    ("double(i)", 5.0),
    ('double("1.5")', 1.5),
    ("double(u)", 3.0),
    ("double(d)", 2.5),
    ("string(i)", "5"),
    ("string(d)", "2.5"),
    ("string(b)", "true"),
    ("string(false)", "false"),
    ("string(by)", "ab"),
    ("string(ts)", "2024-03-10T14:30:15.25Z"),
    ('string(timestamp("2024-01-01T10:00:00+02:00"))', "2024-01-01T10:00:00+02:00"),
    ('string(duration("-1.25s"))', "-1.25s"),
    ("string(dur)", "5400s"),
    ("string(u)", "3"),
    ("string(s)", "hello"),
    ("string(p)", "p1"),
    ('bool("true")', True),
    ('bool("false")', False),
    ("bool(b)", True),
    ('bytes("é")', "é".encode()),
    ("bytes(by)", b"ab"),
    ('timestamp("2024-01-01T00:00:00Z")', datetime.datetime(2024, 1, 1, tzinfo=UTC)),
    ("timestamp(ts)", TS),
    ('duration("90m")', datetime.timedelta(minutes=90)),
    ('duration("1.5s")', datetime.timedelta(seconds=1.5)),
    ("duration(dur)", datetime.timedelta(minutes=90)),
    ("dyn(i) + 1", 6),
    # timestamp getters (CEL: month, day of month and day of year are 0-based)
    ("ts.getFullYear()", 2024),
    ("ts.getMonth()", 2),
    ("ts.getDate()", 10),
    ("ts.getDayOfMonth()", 9),
    ("ts.getDayOfWeek()", 0),
    ("ts.getDayOfYear()", 69),
    ("ts.getHours()", 14),
    ('ts.getHours("Europe/Paris")', 15),
    ('ts.getDate("Pacific/Kiritimati")', 11),
    ("ts.getMinutes()", 30),
    ("ts.getSeconds()", 15),
    ("ts.getMilliseconds()", 250),
    ("dur.getHours()", 1),
    ("dur.getMinutes()", 90),
    ("dur.getSeconds()", 5400),
    ("duration('1500ms').getMilliseconds()", 1500),
    # Flowdesk aggregates
    ("sum(li)", 6),
    ("sum(ld)", 4.0),
    ("sum(li.filter(x, x > 5))", 0),
    ("max(li)", 3),
    ("min(li)", 1),
    ("max(ld)", 2.5),
    ("min(ls)", "a"),
    ("max([ts, now])", NOW),
    ("min([dur, duration('1m')])", datetime.timedelta(minutes=1)),
    ("max([1u, 5u])", 5),
]


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[case[0] for case in CASES])
def test_evaluates_to_plain_python(source: str, expected: object) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


def test_every_registered_function_is_exercised_by_an_evaluation_case() -> None:
    called = {
        node.function
        for source, _ in CASES
        for node in cel_ast.walk(compile_expression(source, SCOPE).ast)
        if isinstance(node, cel_ast.Call)
    }
    assert set(FUNCTIONS) - called == set()


def test_sum_of_an_empty_double_list_is_a_double() -> None:
    assert run("sum(ld.filter(x, x > 100.0))") == 0.0
    assert isinstance(run("sum(ld.filter(x, x > 100.0))"), float)
    assert run("sum(ld.filter(x, x > 100.0)) + 0.5") == 0.5
    # The same expression text in two call sites gets the right zero each time.
    expr = "sum(li.filter(x, x > 9)) == 0 && sum(ld.filter(x, x > 9.0)) == 0.0"
    assert run(expr) is True


def test_timestamps_keep_their_offset_and_are_tz_aware() -> None:
    paris = datetime.timezone(datetime.timedelta(hours=1))
    local = datetime.datetime(2024, 3, 10, 15, 30, tzinfo=paris)
    result = run("ts + duration('0s')", {**ACTIVATION, "ts": local})
    assert result == local
    assert result.utcoffset() == datetime.timedelta(hours=1)
    assert type(result) is datetime.datetime


def test_dates_become_midnight_utc() -> None:
    result = run("ts", {**ACTIVATION, "ts": datetime.date(2024, 5, 1)})
    assert result == datetime.datetime(2024, 5, 1, tzinfo=UTC)
    assert run("ts.getHours()", {**ACTIVATION, "ts": datetime.date(2024, 5, 1)}) == 0


def test_decimal_values_are_doubles() -> None:
    assert run("d * 2.0", {**ACTIVATION, "d": decimal.Decimal("1.25")}) == 2.5


def test_int_values_for_double_fields_are_widened_in_lists_and_maps() -> None:
    scope = {"amounts": ListType(DOUBLE), "rates": MapType(STRING, DOUBLE)}
    compiled = compile_expression('sum(amounts) * rates["x"]', scope)
    assert compiled.evaluate({"amounts": [1, 2], "rates": {"x": 2}}) == 6.0


def test_nested_results_are_plain_types() -> None:
    result = run('{"tags": rec.tags, "when": dyn([ts])}')
    assert result == {"tags": ["x", "y"], "when": [TS]}
    assert type(result) is dict
    assert type(result["tags"]) is list
    assert all(type(tag) is str for tag in result["tags"])
    assert type(result["when"][0]) is datetime.datetime


def test_only_the_names_read_need_a_value() -> None:
    compiled = compile_expression("i + 1", SCOPE)
    assert compiled.evaluate({"i": 1}) == 2


def test_evaluation_does_not_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_expression("li.map(x, x + i)", SCOPE)

    def no_parsing(*args: object) -> None:
        raise AssertionError("evaluate must not parse")

    from flowdesk.expressions import parser

    monkeypatch.setattr(parser._PARSER, "parse", no_parsing)
    assert compiled.evaluate({"li": [1, 2], "i": 10}) == [11, 12]
    assert compiled.evaluate({"li": [], "i": 10}) == []


def test_compiled_expressions_are_reusable_and_comparable() -> None:
    first = compile_expression("i > 1", SCOPE)
    second = compile_expression("i > 1", SCOPE)
    assert first == second
    assert hash(first) == hash(second)
    assert [first.evaluate({"i": value}) for value in (0, 2, 1)] == [False, True, False]
    assert isinstance(first, CompiledExpression)


ERRORS = [
    ("i / j", {"i": 1, "j": 0}, "division by zero"),
    ("i % j", {"i": 1, "j": 0}, "division by zero"),
    ('m["zz"]', {"m": {"a": 1}}, "no such key `zz`"),
    ("m.zz", {"m": {"a": 1}}, "no field or key `zz`"),
    ("rec.customer.name", {"rec": {"customer": {}}}, "no field or key `name`"),
    ("li[5]", {"li": [1]}, "list index out of range"),
    ("i + 1", {}, "no value for `i`"),
    ("i + 1", {"i": 2**63 - 1}, "integer overflow"),
    ("i", {"i": 2**64}, "value of `i` is out of range"),
    ("ts", {"ts": datetime.datetime(2024, 1, 1)}, "naive datetime"),
    ("s", {"s": object()}, "unsupported value of type object"),
    ("n + 1", {"n": None}, "operation not supported for these values"),
    ("n > 1", {"n": None}, "operation not supported"),
    ("rec.customer.name", {"rec": {"customer": None}}, "cannot select a field of null"),
    ("li.all(x, x > 0)", {"li": None}, "`all` needs a list or map, got null"),
    ("li.map(x, x)", {"li": None}, "`map` needs a list or map, got null"),
    ("li.filter(x, x > 0)", {"li": [1, None]}, "operation not supported"),
    ("li.exists_one(x, 10 / x > 1)", {"li": [1, 0]}, "division by zero"),
    ("li.all(x, 10 / x > 1)", {"li": [1, 0]}, "division by zero"),
    ("rec.customer.vip", {"rec": {"customer": {"vip": None}}}, None),
    ("max(li)", {"li": []}, "max() of an empty list"),
    ("min(li)", {"li": [1, None]}, "min() of a list containing null"),
    ("sum(li)", {"li": None}, "sum() needs a list"),
    ('int("abc")', {}, "invalid value"),
    ("int(d / 0.0)", {"d": 1.0}, "invalid value: cannot convert float infinity to integer"),
    ("uint(d)", {"d": float("nan")}, "invalid value"),
    ("int(n)", {"n": None}, "int() of null"),
    ("string(s)", {"s": None}, "string() of null"),
    ('s.matches("[")', {"s": "x"}, "invalid regular expression"),
    ('timestamp("yesterday")', {}, "invalid value"),
    ('duration("soon")', {}, "invalid value"),
    ('{"a": 1, "a": 2}', {}, "Duplicate key"),
    ('{"a": i / 0}', {"i": 1}, "division by zero"),
    ("li.map(x, 10 / x)", {"li": [1, 0]}, "division by zero"),
]


@pytest.mark.parametrize(("source", "activation", "reason"), ERRORS, ids=[e[0] for e in ERRORS])
def test_runtime_errors_are_expression_eval_errors(
    source: str, activation: dict[str, object], reason: str | None
) -> None:
    compiled = compile_expression(source, SCOPE)
    if reason is None:  # a control row: null is a value, not an error
        assert compiled.evaluate(activation) is None
        return
    with pytest.raises(ExpressionEvalError) as caught:
        compiled.evaluate(activation)
    assert reason in str(caught.value)
    assert f"`{source}`" in str(caught.value)
    assert caught.value.source == source
    assert not isinstance(caught.value, CELEvalError)


def test_short_circuit_skips_errors_like_cel() -> None:
    assert run("j == 0 || i / j > 1", {**ACTIVATION, "j": 0}) is True
    assert run("j != 0 && i / j > 1", {**ACTIVATION, "j": 0}) is False
    assert run("j == 0 ? 0 : i / j", {**ACTIVATION, "j": 0}) == 0


def test_null_logic_yields_null_rather_than_a_wrong_boolean() -> None:
    # cel-python's `&&` with a null operand and `true` returns the null: a nullable
    # field propagates, it is never silently turned into false.
    compiled = compile_expression("flag && true", {"flag": BOOL})
    assert compiled.evaluate({"flag": None}) is None
    assert compiled.evaluate({"flag": True}) is True
    assert compile_expression("flag || true", {"flag": BOOL}).evaluate({"flag": None}) is True


def test_long_error_messages_shorten_the_source() -> None:
    source = " || ".join(["i / j > 1"] * 30)
    with pytest.raises(ExpressionEvalError) as caught:
        compile_expression(source, SCOPE).evaluate({"i": 1, "j": 0})
    assert len(str(caught.value)) < 250
    assert "..." in str(caught.value)


def test_all_and_exists_follow_cel_error_absorption() -> None:
    # A decisive element wins over failing ones, whatever their order.
    scope = {"xs": ListType(INT)}
    all_positive = compile_expression("xs.all(x, 10 / x > 0)", scope)
    any_big = compile_expression("xs.exists(x, 10 / x > 4)", scope)
    assert all_positive.evaluate({"xs": [0, -1]}) is False
    assert any_big.evaluate({"xs": [0, 2]}) is True
    assert all_positive.evaluate({"xs": []}) is True
    assert any_big.evaluate({"xs": []}) is False
    with pytest.raises(ExpressionEvalError, match="division by zero"):
        any_big.evaluate({"xs": [0, 5]})


def test_macro_errors_stay_linear_on_large_lists() -> None:
    compiled = compile_expression("xs.all(x, 1 / x > 0)", {"xs": ListType(INT)})
    with pytest.raises(ExpressionEvalError) as caught:
        compiled.evaluate({"xs": [0] * 500})
    assert str(caught.value) == "cannot evaluate `xs.all(x, 1 / x > 0)`: division by zero"


def test_chained_failing_terms_report_the_first_error() -> None:
    source = " || ".join(["i / j > 1"] * 40)
    with pytest.raises(ExpressionEvalError, match="division by zero"):
        compile_expression(source, SCOPE).evaluate({"i": 1, "j": 0})
