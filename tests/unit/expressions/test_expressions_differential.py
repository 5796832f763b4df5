"""Differential tests: the Rust engine and cel-python agree wherever Rust is allowed to run.

ARCHITECTURE: "if two engines are used, a differential test must show they agree on every
shipped expression and on generated ones". For every compiled expression:

* ``evaluate()`` (the public API) must return exactly what cel-python alone returns, or
  raise the same ``ExpressionEvalError``;
* when the expression is routed to the Rust engine, the Rust engine alone (no fallback)
  must either return the very same value (same types, same time-zone offsets, NaN for
  NaN) or fail. A Rust failure is allowed only because ``evaluate()`` then asks
  cel-python for the verdict -- which the first point checks.

Expressions: every expression of the shipped apps and template packs, on activations
generated from their declared types (hypothesis, derandomized), the fixed cases of
``test_expressions_evaluation``, and the property-test generator's well-typed and
mutated expressions. The router's decisions for constructs the engines disagree on are
asserted one by one.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import logging
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_expressions_evaluation import ACTIVATION as FIXED_ACTIVATION
from test_expressions_evaluation import CASES, ERRORS
from test_expressions_evaluation import SCOPE as FIXED_SCOPE
from test_expressions_properties import _MUTATIONS, _SCALARS, _TOKEN, activations, well_typed
from test_expressions_properties import SCOPE as GENERATED_SCOPE

from flowdesk.expressions import (
    DOUBLE,
    DYN,
    STRING,
    TIMESTAMP,
    CelType,
    CompiledExpression,
    EnumType,
    ExpressionError,
    ExpressionEvalError,
    ListType,
    MapType,
    ObjectType,
    compile_expression,
)
from flowdesk.expressions import ast as cel_ast
from flowdesk.expressions.compiler import evaluate_on
from flowdesk.expressions.native import AVAILABLE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
PLUS_FIVE = datetime.timezone(datetime.timedelta(hours=5))
EXAMPLES = int(os.environ.get("FLOWDESK_CEL_EXAMPLES", "300"))
DIFFERENTIAL = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# --------------------------------------------------------------------------- agreement


def same(left: object, right: object) -> bool:
    """Equal values of the same Python types; NaN equals NaN; timestamps keep offsets and
    time zone classes."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        assert isinstance(right, float)
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    if isinstance(left, datetime.datetime):
        assert isinstance(right, datetime.datetime)
        same_zone = type(left.tzinfo) is type(right.tzinfo)
        return left == right and left.utcoffset() == right.utcoffset() and same_zone
    if isinstance(left, list):
        assert isinstance(right, list)
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        assert isinstance(right, dict)
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    return left == right


def outcome(evaluate: Callable[[], object]) -> tuple[str, object]:
    try:
        return "value", evaluate()
    except ExpressionEvalError as error:
        return "error", str(error)


def agree(compiled: CompiledExpression, activation: Mapping[str, Any]) -> str:
    """Assert the two points of the module docstring; return what happened, for counts."""
    reference = outcome(lambda: evaluate_on(compiled, "python", activation))
    public = outcome(lambda: compiled.evaluate(activation))
    context = (compiled.source, activation, reference, public)
    assert public[0] == reference[0], context
    if public[0] == "value":
        assert same(public[1], reference[1]), context
    else:
        assert public[1] == reference[1], context
    if compiled.engine == "python":
        return "python"
    native = outcome(lambda: evaluate_on(compiled, "rust", activation))
    if native[0] == "value":
        assert reference[0] == "value", ("Rust returned a value, cel-python failed", *context)
        assert same(native[1], reference[1]), ("the engines disagree", native, *context)
        return "rust value"
    return f"rust failed, cel-python {reference[0]}"


@pytest.fixture(autouse=True)
def _no_callback_warnings(caplog: pytest.LogCaptureFixture) -> Any:
    """Callbacks never raise: the ``cel`` package logs a warning for each exception."""
    with caplog.at_level(logging.WARNING, logger="cel"):
        yield
    assert not [r for r in caplog.records if r.name == "cel"], caplog.text


# --------------------------------------------------------------------------- values


def _json() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.floats(-5, 5),
        st.text(alphabet="ab1", max_size=3),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
        ),
        max_leaves=6,
    )


def values_of(cel_type: CelType, words: tuple[str, ...], depth: int = 0) -> st.SearchStrategy[Any]:
    """Plain Python values of ``cel_type`` as callers pass them (null included).

    Doubles also come as ints and ``Decimal`` (as JSON and databases send them),
    timestamps also as dates, strings also as the expression's own string literals so
    that comparisons with them are sometimes true.
    """
    if cel_type == DYN:
        base: st.SearchStrategy[Any] = _json()
    elif isinstance(cel_type, EnumType):
        base = st.sampled_from(cel_type.values)
    elif isinstance(cel_type, ListType):
        base = st.lists(values_of(cel_type.elem, words, depth + 1), max_size=3)
    elif isinstance(cel_type, MapType):
        keys = values_of(cel_type.key, words, depth + 1).filter(lambda key: key is not None)
        base = st.dictionaries(keys, values_of(cel_type.value, words, depth + 1), max_size=3)
    elif isinstance(cel_type, ObjectType):
        if depth > 2:
            return st.none()
        fields = {name: values_of(t, words, depth + 1) for name, t in cel_type.field_items}
        base = st.fixed_dictionaries(fields)
    elif cel_type == DOUBLE:
        base = st.one_of(_SCALARS[DOUBLE], st.integers(-100, 100), st.decimals(-100, 100, places=2))
    elif cel_type == TIMESTAMP:
        base = st.one_of(_SCALARS[TIMESTAMP], _SCALARS[TIMESTAMP].map(lambda t: t.date()))
    elif cel_type == STRING and words:
        base = st.one_of(_SCALARS[STRING], st.sampled_from(words))
    else:
        base = _SCALARS[cel_type]
    return st.one_of(st.none(), base, base)


def _read_type(cel_type: CelType, paths: set[tuple[str, ...]]) -> CelType:
    """``cel_type`` cut down to the fields on ``paths`` (relative to it)."""
    if () in paths or not isinstance(cel_type, ObjectType):
        return cel_type
    fields = {}
    for name in {path[0] for path in paths}:
        field_type = cel_type.field_type(name)
        if field_type is not None:
            rest = {path[1:] for path in paths if path[0] == name}
            fields[name] = _read_type(field_type, rest)
    return ObjectType(cel_type.name, fields)


def activation_for(compiled: CompiledExpression) -> st.SearchStrategy[dict[str, Any]]:
    words = tuple(
        sorted(
            {
                node.value
                for node in cel_ast.walk(compiled.ast)
                if isinstance(node, cel_ast.Literal) and isinstance(node.value, str)
            }
        )
    )
    roots = sorted({path[0] for path in compiled.names})
    return st.fixed_dictionaries(
        {
            root: values_of(
                _read_type(compiled._scope[root], {p[1:] for p in compiled.names if p[0] == root}),
                words,
            )
            for root in roots
        }
    )


# --------------------------------------------------------------------------- shipped


@functools.cache
def shipped() -> dict[str, CompiledExpression]:
    """Every distinct expression of the shipped apps and template packs, by a readable id."""
    from flowdesk.model.compiler import compile_source
    from flowdesk.model.sources import read_app

    found: dict[str, CompiledExpression] = {}
    seen: set[tuple[str, tuple[str, ...], str]] = set()
    folders = [*sorted((ROOT / "apps").iterdir()), *sorted((ROOT / "templates").iterdir())]
    for folder in folders:
        if not folder.is_dir():
            continue
        result = compile_source(read_app(folder))
        assert result.app is not None, (folder, result.diagnostics[:3])
        for (kind, name, pointer), compiled in result.app.expressions.items():
            key = (compiled.source, tuple(sorted(compiled._scope)), str(compiled.result_type))
            if key not in seen:
                seen.add(key)
                found[f"{folder.name}:{kind}:{name}:{pointer}"] = compiled
    return found


def test_the_rust_engine_is_installed() -> None:
    # A dependency (pyproject.toml): without it every expression would silently run on
    # cel-python, ten times slower.
    assert AVAILABLE


def test_shipped_expressions_are_found_and_mostly_run_on_rust() -> None:
    engines = Counter(compiled.engine for compiled in shipped().values())
    assert sum(engines.values()) >= 150, engines
    assert engines["rust"] >= 0.8 * sum(engines.values()), engines


def test_the_service_desk_ticket_runs_on_rust() -> None:
    # The records benchmark's hot path: the ticket's computed fields and rules.
    ticket = {
        key: compiled
        for key, compiled in shipped().items()
        if key.startswith("service_desk:Entity:ticket:")
    }
    assert len(ticket) == 7
    assert {key: c.engine_reason for key, c in ticket.items() if c.engine != "rust"} == {}


@pytest.mark.parametrize("key", sorted(shipped()))
def test_shipped_expression_agrees_on_both_engines(key: str) -> None:
    compiled = shipped()[key]

    @settings(DIFFERENTIAL, max_examples=max(10, EXAMPLES // 10))
    @given(activation_for(compiled))
    def check(activation: dict[str, Any]) -> None:
        agree(compiled, activation)

    check()


@pytest.mark.parametrize("key", sorted(shipped()))
def test_shipped_expression_agrees_on_whole_records(key: str) -> None:
    # Callers other than the records service pass whole records; the Rust engine is
    # given only the fields read, and the others are still checked.
    compiled = shipped()[key]
    roots = sorted({path[0] for path in compiled.names})
    whole = st.fixed_dictionaries({root: values_of(compiled._scope[root], ()) for root in roots})

    @settings(DIFFERENTIAL, max_examples=max(3, EXAMPLES // 60))
    @given(whole)
    def check(activation: dict[str, Any]) -> None:
        agree(compiled, activation)

    check()


# --------------------------------------------------------------------------- fixed cases


@pytest.mark.parametrize("source", [case[0] for case in CASES])
def test_evaluation_cases_agree(source: str) -> None:
    agree(compile_expression(source, FIXED_SCOPE), FIXED_ACTIVATION)


@pytest.mark.parametrize(("source", "activation"), [(e[0], e[1]) for e in ERRORS])
def test_error_cases_agree(source: str, activation: dict[str, Any]) -> None:
    agree(compile_expression(source, FIXED_SCOPE), activation)


# --------------------------------------------------------------------------- generated


def _compile(source: str) -> CompiledExpression | None:
    try:
        return compile_expression(source, GENERATED_SCOPE)
    except ExpressionError:
        return None


@DIFFERENTIAL
@given(well_typed(), activations())
def test_generated_expressions_agree(
    generated: tuple[str, CelType], activation: dict[str, Any]
) -> None:
    compiled = _compile(generated[0])
    assert compiled is not None, generated
    agree(compiled, activation)


@DIFFERENTIAL
@given(well_typed(), st.data(), activations(nullable=False))
def test_mutated_expressions_agree(
    generated: tuple[str, CelType], data: st.DataObject, activation: dict[str, Any]
) -> None:
    tokens = _TOKEN.findall(generated[0])
    index = data.draw(st.integers(0, len(tokens) - 1))
    tokens[index] = data.draw(st.sampled_from(_MUTATIONS))
    compiled = _compile(" ".join(tokens))
    if compiled is not None:
        agree(compiled, activation)


def test_generated_expressions_exercise_the_rust_engine() -> None:
    # Guards against a router or generator change that would leave the agreement
    # properties above comparing cel-python with itself.
    counts: Counter[str] = Counter()

    @settings(DIFFERENTIAL, max_examples=400)
    @given(well_typed(), activations())
    def run(generated: tuple[str, CelType], activation: dict[str, Any]) -> None:
        compiled = _compile(generated[0])
        assert compiled is not None
        counts[agree(compiled, activation)] += 1

    run()
    total = sum(counts.values())
    assert counts["python"] < 0.7 * total, counts
    assert counts["rust value"] > 0.2 * total, counts


# --------------------------------------------------------------------------- routing

ROUTES = [
    # (source, engine, part of the reason)
    ('rec.priority == "p1" && rec.customer.vip', "rust", None),
    ("rec.customer == null || rec.customer.name == s", "rust", None),
    ('size(s) > 2 && s.contains("é") && li.size() == 3', "rust", None),
    ("sum(li) + max(li) + min(li)", "rust", None),
    ("sum(ld) > 1.0", "rust", None),
    ("now - ts < duration('168h') && ts + dur > now", "rust", None),
    ("timestamp('2024-01-01T00:00:00Z') < now", "rust", None),
    ("string(p) + string(i) + s", "rust", None),
    ("double(i) / 60.0 > d && int(d) < 3", "rust", None),
    ("li.map(x, x * 2).filter(x, x > 2).exists(x, x == 4)", "rust", None),
    ("m.all(k, m[k] > 0) && has(m.a) && 'a' in m", "rust", None),
    ("(dur - duration('30m')).getMinutes()", "python", "duration arithmetic"),
    ("dur.getMinutes() > 1", "rust", None),
    ("-i", "python", "`-` on an int"),
    ("-(5) + i", "rust", None),
    ("rec.payload.k[1]", "rust", None),
    ("rec.payload.k[1] + 1", "python", "`dyn` value"),
    ("rec.payload.k.size()", "python", "`dyn` value"),
    ("dyn(i) == 1", "python", "dyn"),
    ("u + 1u", "python", "uint"),
    ("size(by)", "python", "bytes"),
    ('s.matches("^h")', "python", "`matches`"),
    ("string(d)", "python", "`string` of double"),
    ("string(b)", "python", "`string` of bool"),
    ("string(ts)", "python", "`string` of timestamp"),
    ("string(dur)", "python", "`string` of duration"),
    ('int("42")', "python", "`int` of string"),
    ("double(s)", "python", "`double` of string"),
    ('bool("true")', "python", "`bool`"),
    ("int(ts)", "python", "`int` of timestamp"),
    ('timestamp("2024-01-01T00:00:00.123456789Z")', "python", "`timestamp` of string"),
    ('timestamp("2024-01-01")', "python", "`timestamp` of string"),
    ('duration("1.5h")', "python", "`duration` of string"),
    ('duration("87600000h")', "python", "`duration` of string"),
    ("ts.getHours()", "python", "`getHours`"),
    ('ts.getDate("Europe/Paris")', "python", "`getDate`"),
    ("m.map(k, k)", "python", "over a map"),
    ("m.filter(k, true)", "python", "over a map"),
    ('{"a": 1, "a": 2}', "python", "keys may repeat"),
    ('{s: 1, "b": 2}', "python", "keys may repeat"),
    ('{"a": 1, "b": 2}', "rust", None),
    ("rec.customer == rec.customer", "python", "`==` on customer"),
    ('"a\\nb" == s', "python", "control characters"),
    ("[1] == li", "rust", None),
    ("d / 60.0 + d / (-2.5)", "rust", None),
    ("d / d", "python", "`/` on doubles"),
    ("d / 0.0", "python", "`/` on doubles"),
    ("rec.amount / double(i)", "python", "`/` on doubles"),
]


@pytest.mark.parametrize(("source", "engine", "reason"), ROUTES, ids=[r[0] for r in ROUTES])
def test_router_decisions(source: str, engine: str, reason: str | None) -> None:
    compiled = compile_expression(source, FIXED_SCOPE)
    assert compiled.engine == engine, compiled.engine_reason
    if reason is None:
        assert compiled.engine_reason is None
    else:
        assert compiled.engine_reason is not None and reason in compiled.engine_reason
    agree(compiled, FIXED_ACTIVATION)


@pytest.mark.parametrize("d", [0.0, -0.0, -1.0, 1.0, math.nan, math.inf])
def test_double_division_by_zero_is_cel_pythons(d: float) -> None:
    # cel-python: x / 0.0 is +inf for every x; IEEE (and the Rust engine): NaN, -inf.
    compiled = compile_expression("d / e", {"d": DOUBLE, "e": DOUBLE})
    assert compiled.engine == "python"
    assert compiled.evaluate({"d": d, "e": 0.0}) == math.inf
    agree(compiled, {"d": d, "e": 0.0})


KNOWN_DIFFERENCES = [
    # (source, activation, cel-python's answer): where the raw engines disagree.
    ("size(s)", {"s": "héllo"}, 5),  # Rust: 6 (UTF-8 bytes)
    ("dur.getMilliseconds()", {"dur": datetime.timedelta(milliseconds=1001)}, 1000),
    ("dur.getHours()", {"dur": datetime.timedelta(days=3650000, microseconds=-1)}, 87600000),
    ("string(d)", {"d": 5.0}, "5.0"),  # Rust: "5"
    ("string(dur)", {"dur": datetime.timedelta(seconds=-90)}, "-90s"),
    ("m.filter(k, true)", {"m": {"b": 1, "a": 2}}, ["b", "a"]),  # Rust sorts the keys
    ('{"a": 1, "a": 2}', {}, None),  # cel-python fails; Rust keeps the last key
    ("-i", {"i": -(2**63)}, None),  # cel-python fails; Rust wraps around
    ("dyn(i) == 1.0", {"i": 1}, None),  # cel-python fails; Rust: true
    ("d / d", {"d": 0.0}, math.inf),  # Rust: NaN
    ('timestamp("2024-12-31T23:59:60Z")', {}, None),  # Rust: 23:59:59
    ('duration("1.000001s")', {}, datetime.timedelta(seconds=1, microseconds=1)),
    ("ts.getHours()", {"ts": datetime.datetime(2024, 1, 1, 23, tzinfo=PLUS_FIVE)}, 18),
    (
        "ts + duration('2h') - duration('2h')",  # cel-python checks years 1-9999 locally
        {"ts": datetime.datetime(9999, 12, 31, 23, tzinfo=PLUS_FIVE)},
        None,
    ),
]


@pytest.mark.parametrize(
    ("source", "activation", "expected"), KNOWN_DIFFERENCES, ids=[k[0] for k in KNOWN_DIFFERENCES]
)
def test_known_differences_give_cel_pythons_answer(
    source: str, activation: dict[str, Any], expected: object
) -> None:
    compiled = compile_expression(source, FIXED_SCOPE)
    if expected is None:
        with pytest.raises(ExpressionEvalError):
            compiled.evaluate(activation)
    else:
        assert same(compiled.evaluate(activation), expected)
    agree(compiled, activation)


def test_deep_expressions_stay_on_python() -> None:
    wrapped = compile_expression("(" * 20 + "i" + ")" * 20 + " + 1", FIXED_SCOPE)
    assert wrapped.engine == "rust"  # parentheses are not nodes
    chain = compile_expression(" + ".join(["i"] * 60), FIXED_SCOPE)
    assert chain.engine == "python"
    assert "nested" in (chain.engine_reason or "")
    agree(chain, {"i": 1})


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (2**63, "beyond int64"),
        (True, "a bool for an int"),
        (2.0, "a double for an int"),
        (decimal.Decimal(2), "a decimal for an int"),
    ],
)
def test_values_the_engines_read_differently_go_to_python(value: object, why: str) -> None:
    compiled = compile_expression("i == 2 || i + 1 > 0", FIXED_SCOPE)
    assert compiled.engine == "rust"
    with pytest.raises(ExpressionEvalError):
        evaluate_on(compiled, "rust", {"i": value})
    agree(compiled, {"i": value})


def test_time_zones_with_changing_offsets_go_to_python() -> None:
    from zoneinfo import ZoneInfo

    compiled = compile_expression("ts + duration('24h')", FIXED_SCOPE)
    assert compiled.engine == "rust"
    paris = datetime.datetime(2024, 3, 30, 12, tzinfo=ZoneInfo("Europe/Paris"))  # DST eve
    with pytest.raises(ExpressionEvalError):
        evaluate_on(compiled, "rust", {"ts": paris})
    assert compiled.evaluate({"ts": paris}) == evaluate_on(compiled, "python", {"ts": paris})
    naive = datetime.datetime(2024, 3, 30, 12)
    with pytest.raises(ExpressionEvalError, match="naive datetime"):
        compiled.evaluate({"ts": naive})


def test_rust_failures_defer_to_cel_python() -> None:
    # null && true is null for cel-python and an error for the Rust engine; all()
    # absorbs errors in cel-python only. evaluate() returns cel-python's answers.
    null_and = compile_expression("b && true", FIXED_SCOPE)
    assert null_and.engine == "rust"
    with pytest.raises(ExpressionEvalError):
        evaluate_on(null_and, "rust", {"b": None})
    assert null_and.evaluate({"b": None}) is None
    absorbing = compile_expression("li.all(x, 10 / x > 0)", FIXED_SCOPE)
    assert absorbing.engine == "rust"
    assert absorbing.evaluate({"li": [0, -1]}) is False
    size_of_null = compile_expression("size(s)", FIXED_SCOPE)
    assert size_of_null.evaluate({"s": None}) == evaluate_on(size_of_null, "python", {"s": None})


def test_only_the_fields_read_reach_the_rust_engine() -> None:
    compiled = compile_expression('rec.priority == "p2"', FIXED_SCOPE)
    # The Rust engine cannot take a lone surrogate; cel-python can, and neither reads it.
    record = {**FIXED_ACTIVATION["rec"], "customer": {"name": "\ud800", "vip": True}}
    assert evaluate_on(compiled, "rust", {"rec": record}) is True
    agree(compiled, {"rec": record})


@pytest.mark.parametrize(
    "unread",
    [datetime.datetime(2024, 1, 1), object(), 2**64],
    ids=["naive datetime", "object", "beyond uint64"],
)
def test_unread_fields_cel_python_rejects_fail_on_both_engines(unread: object) -> None:
    compiled = compile_expression('rec.priority == "p2"', FIXED_SCOPE)
    activation = {"rec": {**FIXED_ACTIVATION["rec"], "payload": {"when": unread}}}
    with pytest.raises(ExpressionEvalError, match="value of `rec`"):
        compiled.evaluate(activation)
    agree(compiled, activation)


def test_importing_the_package_does_not_import_the_cel_shell() -> None:
    # `import cel` brings typer, rich and prompt_toolkit (~150 ms at every start-up);
    # the extension is loaded by itself, and a later `import cel` reuses it.
    script = (
        "import sys, flowdesk.expressions.native as n\n"
        "assert n.AVAILABLE and 'prompt_toolkit' not in sys.modules, sorted(sys.modules)\n"
        "import cel\n"
        "assert cel.compile is n._cel.compile\n"
        "assert cel.compile('1 + 1').execute({}) == 2\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "platform")}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=60)
