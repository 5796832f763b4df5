"""CEL filters translated to SQL select the same records as the CEL evaluated in memory.

Every test runs on SQLite (a file in ``tmp_path``) and on PostgreSQL when
``FLOWDESK_TEST_POSTGRES_URL`` is set (CI sets it), each PostgreSQL test in a schema of
its own. On PostgreSQL the string columns use an ICU collation when the server has one,
so that a translation relying on the database's collation for ``<`` would fail here.

* unit cases per construct check the ids selected in SQL *and* in memory;
* unsupported constructs must be reported with their position by both
  ``check_translatable`` and ``to_sql``;
* a property test generates random rows (with nulls) and random well-typed filters and
  compares the SQL result with the in-memory evaluation, row by row.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from flowdesk.expressions import (
    BOOL,
    DOUBLE,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    CompiledExpression,
    EnumType,
    ExpressionEvalError,
    ListType,
    MapType,
    ObjectType,
    compile_expression,
)
from flowdesk.store.filters import (
    CEL_NOT_TRANSLATABLE,
    TableColumns,
    UnsupportedFilter,
    check_translatable,
    to_sql,
)

NOW = datetime.datetime(2026, 3, 15, 12, 0, tzinfo=datetime.UTC)
PRIORITY = EnumType("priority", ("p1", "p2", "p3"))
TICKET = ObjectType(
    "ticket",
    {
        "id": INT,
        "title": STRING,
        "priority": PRIORITY,
        "amount": DOUBLE,
        "count": INT,
        "vip": BOOL,
        "created_at": TIMESTAMP,
        "region": STRING,
        "note": STRING,
        # Fields without a column, for the constructs outside the SQL subset.
        "tags": ListType(STRING),
        "items": ListType(ObjectType("line", {"quantity": INT})),
        "data": MapType(STRING, DYN),
        "customer": ObjectType("customer", {"level": STRING}),
    },
)
USER = ObjectType(
    "user", {"region": STRING, "regions": ListType(STRING), "admin": BOOL, "name": STRING}
)
SCOPE = {"record": TICKET, "user": USER, "now": TIMESTAMP}
USER_VALUE = {"region": "EU", "regions": ["EU", "APAC"], "admin": False, "name": "Li Lei"}
VALUES = {"user": USER_VALUE, "now": NOW}
ICU_COLLATION = "und-x-icu"


def compile_filter(source: str) -> CompiledExpression:
    return compile_expression(source, SCOPE, expect=BOOL)


# --------------------------------------------------------------------------- databases


def _postgres_url() -> str | None:
    return os.environ.get("FLOWDESK_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[sa.Engine]:
    """An engine on an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        sqlite_engine = sa.create_engine(f"sqlite:///{tmp_path / 'filters.db'}")
        yield sqlite_engine
        sqlite_engine.dispose()
        return
    url = _postgres_url()
    if not url:
        pytest.skip("set FLOWDESK_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1/test)")
    base = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    schema = f"filters_{uuid.uuid4().hex[:12]}"
    with base.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.execution_options(schema_translate_map={None: schema})
    finally:
        with base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()


def _string_type(engine: sa.Engine) -> sa.String:
    """Strings with an ICU collation on PostgreSQL when available (its order is not C's)."""
    if engine.dialect.name != "postgresql":
        return sa.String(200)
    with engine.connect() as conn:
        found = conn.scalar(
            sa.text("SELECT count(*) FROM pg_collation WHERE collname = :name"),
            {"name": ICU_COLLATION},
        )
    return sa.String(200, collation=ICU_COLLATION) if found else sa.String(200)


@dataclass(frozen=True)
class Tickets:
    """The ticket table in one database, and the way to query it on given rows."""

    engine: sa.Engine
    table: sa.Table

    def select(self, rows: list[dict[str, Any]], clause: sa.ColumnElement[bool]) -> set[int]:
        """Insert ``rows``, return the ids ``clause`` selects, and roll everything back."""
        return self.select_each(rows, [clause])[0]

    def select_each(
        self, rows: list[dict[str, Any]], clauses: list[sa.ColumnElement[bool]]
    ) -> list[set[int]]:
        """The ids each of ``clauses`` selects among ``rows`` (inserted once, rolled back)."""
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                if rows:
                    conn.execute(self.table.insert(), rows)
                return [
                    set(conn.scalars(sa.select(self.table.c.id).where(clause)))
                    for clause in clauses
                ]
            finally:
                transaction.rollback()

    def filter(
        self, rows: list[dict[str, Any]], source: str, values: Mapping[str, object] = VALUES
    ) -> set[int]:
        return self.select(rows, to_sql(compile_filter(source), TableColumns(self.table), values))


@pytest.fixture
def tickets(engine: sa.Engine) -> Tickets:
    text = _string_type(engine)
    table = sa.Table(
        "tickets",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("title", text, nullable=False),
        sa.Column("priority", text),
        sa.Column("amount", sa.Float),
        sa.Column("count", sa.Integer),
        sa.Column("vip", sa.Boolean),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("region", text),
        sa.Column("note", text),
    )
    table.metadata.create_all(engine)
    return Tickets(engine, table)


def in_memory(
    expr: CompiledExpression, rows: list[dict[str, Any]], values: Mapping[str, object] = VALUES
) -> set[int]:
    """Ids of the rows the evaluator selects: an error or a null result excludes a row."""
    selected = set()
    for row in rows:
        try:
            result = expr.evaluate({**values, "record": row})
        except ExpressionEvalError:
            continue
        if result is True:
            selected.add(row["id"])
    return selected


# --------------------------------------------------------------------------- unit cases


def _row(id_: int, title: str, **fields: Any) -> dict[str, Any]:
    columns = ("priority", "amount", "count", "vip", "created_at", "region", "note")
    return {"id": id_, "title": title, **dict.fromkeys(columns), **fields}


ROWS = [
    _row(
        1,
        "Alpha",
        priority="p1",
        amount=10.5,
        count=3,
        vip=True,
        created_at=NOW - datetime.timedelta(hours=1),
        region="EU",
        note="urgent",
    ),
    _row(
        2,
        "beta",
        priority="p2",
        amount=0.0,
        count=0,
        vip=False,
        created_at=NOW - datetime.timedelta(days=2),
        region="US",
    ),
    _row(
        3,
        "Gamma_50%",
        priority="p3",
        amount=-2.25,
        count=-7,
        created_at=NOW - datetime.timedelta(days=30),
        region="eu",
        note="",
    ),
    _row(4, "alpha"),
    _row(
        5,
        "Delta",
        priority="p1",
        amount=100.0,
        count=12,
        vip=True,
        created_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        region="APAC",
        note="Call back",
    ),
]
ALL = {1, 2, 3, 4, 5}

CASES: list[tuple[str, set[int]]] = [
    # enums and equality (a null field is unequal to everything but null)
    ('record.priority == "p1"', {1, 5}),
    ('record.priority != "p1"', {2, 3, 4}),
    ('!(record.priority == "p1")', {2, 3, 4}),
    ('record.priority in ["p2", "p3"]', {2, 3}),
    ('!(record.priority in ["p2", "p3"])', {1, 4, 5}),
    ("record.region == record.note", {4}),
    ("record.note == record.priority", {4}),
    # ordering: a null field excludes the row, negated or not
    ('record.priority < "p2"', {1, 5}),
    ('!(record.priority < "p2")', {2, 3}),
    ("record.count > 2", {1, 5}),
    ("record.count <= 0", {2, 3}),
    ("record.count >= 3 && record.count < 12", {1}),
    ("record.vip == false", {2}),
    ("record.vip != true", {2, 3, 4}),
    ("record.vip", {1, 5}),
    ("!record.vip", {2}),
    # arithmetic
    ("record.amount / 2.0 > 5.0", {1, 5}),
    ("record.count * 2 - 1 == 5", {1}),
    ("record.count % 2 == 1", {1}),
    ("record.count % 2 == -1", {3}),
    ("record.count / 2 == -3", {3}),
    ("record.count / 0 == 0 || record.vip", {1, 5}),
    ("!(record.count / 0 == 0)", set()),
    ("-record.count > 0", {3}),
    ("double(record.count) < record.amount", {1, 3, 5}),
    ("record.amount * 2.0 + 1.0 == 22.0", {1}),
    # strings: case-sensitive, no LIKE wildcards, code point order
    ('record.title.startsWith("al")', {4}),
    ('record.title.startsWith("Al")', {1}),
    ('record.title.endsWith("%")', {3}),
    ('record.title.contains("a_")', {3}),
    ('record.title.contains("LPH")', set()),
    ('record.note.contains("")', {1, 3, 5}),
    ("record.title.startsWith(record.note)", {3}),
    ('record.title.matches("^Al")', {1}),
    ('record.title.matches("pha$")', {1, 4}),
    ('record.title.matches("^beta$")', {2}),
    ('record.title.matches("a_5")', {3}),
    ('record.title.matches("50\\\\%")', {3}),
    ('record.region < "a"', {1, 2, 5}),
    ('record.title < "a"', {1, 3, 5}),
    ('record.title > "Zeta"', {2, 4}),
    ('record.note + "!" == "urgent!"', {1}),
    ('(record.title + "!").contains("a!")', {1, 2, 4, 5}),
    ('record.title + record.region > "alphaUS"', {2}),
    # size (of a null field: 0, as the evaluator answers)
    ("size(record.note) == 0", {2, 3, 4}),
    ("size(record.title) > 5", {3}),
    ('size(record.note + "?") == 1', {3}),
    # null checks
    ("record.note == null", {2, 4}),
    ("record.note != null", {1, 3, 5}),
    ("null == record.created_at", {4}),
    ("record.title == null", set()),
    ("record.count + 1 == null", set()),
    ("record.count + 1 != null", {1, 2, 3, 5}),
    # timestamps, with values folded in Python
    ('record.created_at > now - duration("24h")', {1}),
    ('record.created_at < timestamp("2026-02-01T00:00:00Z")', {5}),
    ('record.created_at >= now - duration("3d") && record.created_at <= now', {1, 2}),
    ('record.created_at == timestamp("2026-01-01T01:00:00+01:00")', {5}),
    # values known at query time
    ("record.region == user.region", {1}),
    ("record.region in user.regions", {1, 5}),
    ("!(record.region in user.regions)", {2, 3, 4}),
    ('user.regions.exists(r, r == "EU") && record.count > 10', {5}),
    ('user.region == "XX" || record.count > 10', {5}),
    ("user.admin || record.vip == false", {2}),
    ("!(record.region == user.regions[5])", set()),
    ("record.region == user.regions[5] || record.count == 0", {2}),
    # `in` with lists built from the record, and with nulls
    ('record.region in ["EU", record.note]', {1, 4}),
    ('record.note in ["urgent", null]', {1, 2, 4}),
    ("record.count in []", set()),
    ("!(record.count in [])", ALL),
    ("!(record.count in [0])", {1, 3, 4, 5}),
    ("!(record.amount in [0.0, 10.5])", {3, 4, 5}),
    ("!(0 in [record.count])", {1, 3, 4, 5}),
    ('!(record.note in ["urgent", null])', {3, 5}),
    # ?: (an erroneous condition is an error, not the else branch)
    ('(record.vip ? record.note : "none") == "none"', {2}),
    ("(record.count > 0 ? record.note : null) == null", {2, 3}),
    ('record.amount > 50.0 ? record.vip : record.title.startsWith("A")', {1, 5}),
    ("size(record.count > 0 ? record.note : null) == 0", {2, 3}),
    ('!((record.count > 0 ? record.region : "EU") in ["EU"])', {5}),
    # combinations, literals, layout
    ('record.priority == "p1" && record.amount > 50.0 || record.region == "eu"', {3, 5}),
    ('record.priority == "p1"\n  && record.count > 5', {5}),
    ("true", ALL),
    ("false", set()),
    ("record.count > 1 || true", ALL),
]


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[case[0] for case in CASES])
def test_filter_selects_the_same_records_as_in_memory(
    tickets: Tickets, source: str, expected: set[int]
) -> None:
    assert in_memory(compile_filter(source), ROWS) == expected, "the case itself is wrong"
    assert tickets.filter(ROWS, source) == expected


def test_has_is_a_null_check_unlike_in_memory(tickets: Tickets) -> None:
    # Documented difference: a record carries all its fields, so has() is true in memory
    # even for a null field; in SQL it means "is filled in", as analysts use it.
    expr = compile_filter("has(record.note)")
    assert in_memory(expr, ROWS) == ALL
    assert tickets.filter(ROWS, "has(record.note)") == {1, 3, 5}
    assert tickets.filter(ROWS, "!has(record.note)") == {2, 4}


def test_nested_paths_are_resolved_by_the_resolver(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    customers = sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("level", sa.String(20)),
    )
    orders = sa.Table(
        "orders",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer),
    )
    metadata.create_all(engine)

    class Resolver:
        def column(self, path: tuple[str, ...]) -> sa.ColumnElement[Any]:
            if path == ("customer", "level"):
                query = sa.select(customers.c.level).where(customers.c.id == orders.c.customer_id)
                return query.scalar_subquery()
            if path == ("customer",):
                return orders.c.customer_id
            raise UnsupportedFilter(f"no column for {path}")

    with engine.begin() as conn:
        conn.execute(customers.insert(), [{"id": 1, "level": "vip"}, {"id": 2, "level": "std"}])
        conn.execute(
            orders.insert(),
            [
                {"id": 10, "customer_id": 1},
                {"id": 11, "customer_id": 2},
                {"id": 12, "customer_id": None},
            ],
        )

    def ids(source: str) -> set[int]:
        clause = to_sql(compile_filter(source), Resolver(), VALUES)
        with engine.connect() as conn:
            return set(conn.scalars(sa.select(orders.c.id).where(clause)))

    assert ids('record.customer.level == "vip"') == {10}
    assert ids('record.customer.level < "t"') == {11}
    assert ids("record.customer == null") == {12}
    with pytest.raises(UnsupportedFilter) as raised:
        ids("record.title == user.name")
    assert (raised.value.line, raised.value.column) == (1, 8)


# --------------------------------------------------------------------------- the SQL itself


def _sql(source: str, dialect: sa.Dialect, values: Mapping[str, object] = VALUES) -> str:
    table = sa.table(
        "t",
        sa.column("title", sa.String),
        sa.column("priority", sa.String),
        sa.column("region", sa.String),
        sa.column("count", sa.Integer),
    )
    return str(to_sql(compile_filter(source), TableColumns(table), values).compile(dialect=dialect))


def test_positive_equalities_stay_sargable() -> None:
    pg = postgresql.psycopg.dialect()
    assert _sql('record.priority == "p1"', pg) == "t.priority = %(param_1)s::VARCHAR"
    assert "coalesce" not in _sql('record.priority == "p1" && record.region in ["EU"]', pg)
    assert "coalesce" in _sql('!(record.priority == "p1")', pg)


def test_string_ordering_compares_code_points() -> None:
    assert 'COLLATE "C"' in _sql('record.title < "a"', postgresql.psycopg.dialect())
    assert "COLLATE BINARY" in _sql('record.title < "a"', sqlite.dialect())
    assert "COLLATE" not in _sql('record.title == "a"', postgresql.psycopg.dialect())


def test_string_tests_do_not_use_like() -> None:
    for function in ("startsWith", "endsWith", "contains"):
        text = _sql(f'record.title.{function}("a%")', sqlite.dialect())
        assert "LIKE" not in text.upper()


def test_values_are_bound_never_formatted(tickets: Tickets) -> None:
    hostile = "EU' OR 1=1; DROP TABLE tickets; --"
    values = {**VALUES, "user": {**USER_VALUE, "region": hostile}}
    clause = to_sql(
        compile_filter("record.region == user.region"), TableColumns(tickets.table), values
    )
    compiled = clause.compile(dialect=postgresql.psycopg.dialect())
    assert "DROP" not in str(compiled)
    assert hostile in compiled.params.values()
    assert tickets.filter(ROWS, "record.region == user.region", values) == set()
    assert tickets.filter(ROWS, "record.id > 0") == ALL  # the table is still there


@pytest.mark.parametrize(
    "text", ['a"b', "back\\slash", "new\nline\ttab\r", "\x01ctrl\x7f", "é 中文 😀", ""]
)
def test_record_free_subexpressions_keep_their_exact_value(text: str) -> None:
    # `"x" + <literal>` is folded by unparsing it and evaluating it with the evaluator.
    folded = f'"x" + {json.dumps(text, ensure_ascii=False)}'
    expected = compile_expression(folded, {}).evaluate({})
    table = sa.table("t", sa.column("title", sa.String))
    clause = to_sql(compile_filter(f"record.title == {folded}"), TableColumns(table), VALUES)
    assert list(clause.compile().params.values()) == [expected]


def test_timestamps_are_bound_in_utc() -> None:
    table = sa.table("t", sa.column("created_at", sa.DateTime(timezone=True)))
    expr = compile_filter('record.created_at > timestamp("2026-01-01T08:00:00+08:00")')
    (bound,) = to_sql(expr, TableColumns(table), VALUES).compile().params.values()
    assert bound == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert bound.utcoffset() == datetime.timedelta(0)


def test_missing_values_are_reported() -> None:
    table = sa.table("t", sa.column("region", sa.String))
    with pytest.raises(ValueError, match="`user`"):
        to_sql(compile_filter("record.region == user.region"), TableColumns(table), {"now": NOW})


# --------------------------------------------------------------------------- unsupported

UNSUPPORTED: list[tuple[str, tuple[int, int], str]] = [
    (
        "record.items.exists(i, i.quantity > 1)",
        (1, 14),
        "`record.items.exists(...)` cannot be used in a filter: macros over line collections",
    ),
    ('record.priority == "p1" &&\n  "vip" in record.tags', (2, 9), "membership in a list field"),
    ("size(record.tags) > 0", (1, 1), "sizes of line collections and list fields"),
    ('record.tags[0] == "a"', (1, 12), "indexing"),
    ('record.data.level == "x"', (1, 13), "fields inside JSON and map values"),
    ('record.title.matches("[a-z]+")', (1, 14), "regular expressions"),
    ("record.title.matches(user.name)", (1, 14), "literal plain-text pattern"),
    ('record.created_at + duration("1h") > now', (1, 19), "date arithmetic"),
    ('now - record.created_at > duration("1h")', (1, 5), "date arithmetic"),
    ("record.created_at.getHours() > 8", (1, 19), "date parts"),
    ("int(record.amount) > 3", (1, 1), "`int()` of record fields"),
    ('{"a": record.title}["a"] == "x"', (1, 20), "indexing"),
    ('{"a": record.title} == {"a": "x"}', (1, 21), "comparing lists, maps or records"),
    ("[record.title] == []", (1, 16), "comparing lists, maps or records"),
    ("record.tags == user.regions", (1, 13), "comparing lists, maps or records"),
    ("record == null", (1, 1), "a whole record cannot be compared"),
    ("user.regions.exists(r, r == record.region)", (1, 14), "condition that reads the record"),
    ("record.count", (1, 1), "a filter must be a condition (bool)"),
    ("  record.amount", (1, 3), "a filter must be a condition (bool)"),
    ("sum(record.items.map(i, i.quantity)) > 3", (1, 1), "aggregates over line collections"),
    ('record.title in [record.vip ? "a" : "b"]', (1, 14), "`?:` inside the list of `in`"),
]


@pytest.mark.parametrize(
    ("source", "position", "message"), UNSUPPORTED, ids=[case[0] for case in UNSUPPORTED]
)
def test_unsupported_constructs_are_located(
    source: str, position: tuple[int, int], message: str
) -> None:
    expr = compile_expression(source, SCOPE)
    problems = check_translatable(expr)
    assert problems, "should be unsupported"
    first = problems[0]
    assert (first.line, first.column) == position
    assert message in first.message
    assert first.code == CEL_NOT_TRANSLATABLE
    table = sa.table("t", sa.column("title"))
    with pytest.raises(UnsupportedFilter) as raised:
        to_sql(expr, TableColumns(table), VALUES)
    assert (raised.value.line, raised.value.column, raised.value.message) == (
        first.line,
        first.column,
        first.message,
    )


def test_every_problem_is_reported_in_source_order() -> None:
    expr = compile_filter(
        'record.tags.exists(t, t == "x")\n'
        '  || record.title.matches("a+")\n'
        "  || record.count > 1\n"
        "  || record.created_at.getDayOfWeek() == 1"
    )
    problems = check_translatable(expr)
    assert [(problem.line, problem.column) for problem in problems] == [(1, 13), (2, 19), (4, 24)]
    assert all(problem.offset is not None for problem in problems)
    assert str(problems[1]).startswith("2:19: cel-not-translatable: `record.title.matches(")


def test_supported_filters_have_no_problems() -> None:
    for source, _ in CASES:
        assert check_translatable(compile_filter(source)) == [], source


def test_resolver_refusals_are_located() -> None:
    table = sa.table("t", sa.column("title"))
    expr = compile_filter('record.title == "a" && record.customer.level == "vip"')
    assert check_translatable(expr) == []
    with pytest.raises(UnsupportedFilter) as raised:
        to_sql(expr, TableColumns(table), VALUES)
    problem = raised.value
    assert (problem.line, problem.column, problem.offset) == (1, 40, 39)
    assert "customer.level" in problem.message
    assert problem.hint is not None and "join" in problem.hint


# --------------------------------------------------------------------------- property test

ALPHABET = "aAbBzZ_%"
DYADIC = (-2.5, -0.25, 0.0, 0.5, 1.0, 1.25, 3.0, 10.0)
NULLABLE_FIELDS = ("priority", "amount", "count", "vip", "created_at", "region", "note")
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


def _cel_string(value: str) -> str:
    return json.dumps(value)


# A few shared values make equalities and prefixes hit; random ones cover the rest.
short_text = st.one_of(
    st.sampled_from(("", "a", "A", "ab", "aB", "Ab", "b%", "a_")),
    st.text(alphabet=ALPHABET, max_size=3),
)


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``values``, or null about one time in four."""
    return st.one_of(values, values, values, st.none())


@st.composite
def int_expr(draw: st.DrawFn, depth: int) -> str:
    kinds = ["field", "literal", "size"] + (["arith", "div", "neg", "ternary"] if depth else [])
    kind = draw(st.sampled_from(kinds))
    below = max(depth - 1, 0)
    if kind == "field":
        return "record.count"
    if kind == "literal":
        return str(draw(st.integers(-5, 12)))
    if kind == "size":
        return f"size({draw(str_expr(below))})"
    if kind == "neg":
        return f"-({draw(int_expr(below))})"
    if kind == "ternary":
        return f"({draw(bool_expr(below))} ? {draw(int_expr(below))} : {draw(int_expr(below))})"
    ops = ("+", "-", "*") if kind == "arith" else ("/", "%")
    op = draw(st.sampled_from(ops))
    return f"({draw(int_expr(below))} {op} {draw(int_expr(below))})"


@st.composite
def double_expr(draw: st.DrawFn, depth: int) -> str:
    kinds = ["field", "literal", "double"] + (["arith", "div", "neg", "ternary"] if depth else [])
    kind = draw(st.sampled_from(kinds))
    below = max(depth - 1, 0)
    if kind == "field":
        return "record.amount"
    if kind == "literal":
        return repr(draw(st.sampled_from(DYADIC)))
    if kind == "double":
        return f"double({draw(int_expr(below))})"
    if kind == "neg":
        return f"-({draw(double_expr(below))})"
    if kind == "ternary":
        return (
            f"({draw(bool_expr(below))} ? {draw(double_expr(below))} : {draw(double_expr(below))})"
        )
    if kind == "div":  # exact, and never by zero (in memory that is inf, in SQL an error)
        return f"({draw(double_expr(below))} / {draw(st.sampled_from(('2.0', '-4.0', '0.5')))})"
    op = draw(st.sampled_from(("+", "-", "*")))
    return f"({draw(double_expr(below))} {op} {draw(double_expr(below))})"


@st.composite
def str_expr(draw: st.DrawFn, depth: int) -> str:
    kinds = ["field", "field", "literal", "user"] + (["concat", "ternary"] if depth else [])
    kind = draw(st.sampled_from(kinds))
    below = max(depth - 1, 0)
    if kind == "field":
        return draw(st.sampled_from(("record.title", "record.region", "record.note")))
    if kind == "literal":
        return _cel_string(draw(short_text))
    if kind == "user":
        return "user.region"
    if kind == "concat":
        return f"({draw(str_expr(below))} + {draw(str_expr(below))})"
    return f"({draw(bool_expr(below))} ? {draw(str_expr(below))} : {draw(str_expr(below))})"


@st.composite
def timestamp_expr(draw: st.DrawFn) -> str:
    hours = draw(st.integers(0, 100))
    return draw(
        st.sampled_from(
            (
                "now",
                f'now - duration("{hours}h")',
                f'now + duration("{hours * 7}m")',
                f'timestamp("2026-03-{1 + hours % 28:02d}T00:00:00Z")',
            )
        )
    )


@st.composite
def atom(draw: st.DrawFn, depth: int) -> str:
    below = max(depth - 1, 0)
    kind = draw(
        st.sampled_from(
            (
                "string",
                "in_literals",
                "null",
                "enum",
                "in_user",
                "int",
                "double",
                "string_test",
                "matches",
                "null_ternary",
                "timestamp",
                "vip",
                "constant",
            )
        )
    )
    op = draw(st.sampled_from(COMPARISONS))
    if kind == "int":
        return f"{draw(int_expr(below))} {op} {draw(int_expr(below))}"
    if kind == "double":
        return f"{draw(double_expr(below))} {op} {draw(double_expr(below))}"
    if kind == "string":
        return f"{draw(str_expr(below))} {op} {draw(str_expr(below))}"
    if kind == "enum":
        values = draw(st.lists(st.sampled_from(PRIORITY.values), max_size=3))
        return draw(
            st.sampled_from(
                (
                    f'record.priority {op} "{draw(st.sampled_from(PRIORITY.values))}"',
                    f"record.priority in {json.dumps(values)}",
                    f"record.priority {op} record.region"
                    if op in ("==", "!=")
                    else "record.priority < record.note",
                )
            )
        )
    if kind == "in_literals":
        if draw(st.booleans()):
            items = json.dumps(draw(st.lists(st.integers(-3, 5), max_size=3)))
            return f"{draw(int_expr(below))} in {items}"
        items = draw(
            st.lists(
                st.one_of(short_text.map(_cel_string), st.sampled_from(("null", "record.note"))),
                max_size=3,
            )
        )
        return f"{draw(str_expr(below))} in [{', '.join(items)}]"
    if kind == "in_user":
        return f"{draw(str_expr(below))} in user.regions"
    if kind == "string_test":
        function = draw(st.sampled_from(("startsWith", "endsWith", "contains")))
        target = draw(str_expr(below))
        target = target if not target.startswith('"') else f"({target})"
        return f"{target}.{function}({draw(str_expr(below))})"
    if kind == "matches":
        text = draw(short_text)
        pattern = draw(st.sampled_from((text, f"^{text}", f"{text}$", f"^{text}$")))
        target = draw(st.sampled_from(("record.title", "record.note")))
        return f"{target}.matches({_cel_string(pattern)})"
    if kind == "null":
        field = draw(st.sampled_from(NULLABLE_FIELDS))
        return f"record.{field} {draw(st.sampled_from(('==', '!=')))} null"
    if kind == "null_ternary":
        return (
            f"({draw(bool_expr(below))} ? {draw(str_expr(below))} : null) "
            f"{draw(st.sampled_from(('==', '!=')))} null"
        )
    if kind == "timestamp":
        return f"record.created_at {op} {draw(timestamp_expr())}"
    if kind == "vip":
        return draw(
            st.sampled_from(
                ("record.vip", "record.vip == true", "record.vip != false", "user.admin")
            )
        )
    return draw(st.sampled_from(("true", "false", 'user.region == "EU"')))


@st.composite
def bool_expr(draw: st.DrawFn, depth: int) -> str:
    # Negation is where null and error semantics differ most, hence its weight.
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        simple = draw(atom(depth))
        return f"!({simple})" if draw(st.integers(0, 2)) == 0 else simple
    below = depth - 1
    kind = draw(st.sampled_from(("and", "or", "not", "not", "ternary")))
    if kind == "not":
        return f"!({draw(bool_expr(below))})"
    if kind == "ternary":
        return f"({draw(bool_expr(below))} ? {draw(bool_expr(below))} : {draw(bool_expr(below))})"
    op = "&&" if kind == "and" else "||"
    return f"({draw(bool_expr(below))} {op} {draw(bool_expr(below))})"


row_strategy = st.fixed_dictionaries(
    {
        "title": short_text,
        "priority": nullable(st.sampled_from(PRIORITY.values)),
        "amount": nullable(st.sampled_from(DYADIC)),
        "count": nullable(st.integers(-8, 15)),
        "vip": nullable(st.booleans()),
        "created_at": nullable(
            st.integers(-120 * 60, 120 * 60).map(lambda m: NOW + datetime.timedelta(minutes=m))
        ),
        "region": nullable(st.one_of(st.sampled_from(("EU", "eu", "US", "a")), short_text)),
        "note": nullable(short_text),
    }
)
user_strategy = st.fixed_dictionaries(
    {
        "region": nullable(st.one_of(st.sampled_from(("EU", "eu", "a")), short_text)),
        "regions": st.lists(nullable(st.sampled_from(("EU", "US", "a", "ab"))), max_size=3),
        "admin": nullable(st.booleans()),
        "name": short_text,
    }
)


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(row_strategy, min_size=1, max_size=10),
    user=user_strategy,
    sources=st.lists(st.integers(0, 3).flatmap(bool_expr), min_size=1, max_size=6),
)
def test_sql_selects_the_same_records_as_in_memory_evaluation(
    tickets: Tickets, rows: list[dict[str, Any]], user: dict[str, Any], sources: list[str]
) -> None:
    # Several filters per example: the rows are inserted once, and each example of the
    # budget checks more of the grammar.
    records = [{"id": index, **row} for index, row in enumerate(rows, start=1)]
    values = {"user": user, "now": NOW}
    exprs = [compile_filter(source) for source in sources]
    for expr in exprs:
        assert check_translatable(expr) == [], expr.source
    clauses = [to_sql(expr, TableColumns(tickets.table), values) for expr in exprs]
    selected = tickets.select_each(records, clauses)
    for expr, in_sql in zip(exprs, selected, strict=True):
        assert in_sql == in_memory(expr, records, values), expr.source
