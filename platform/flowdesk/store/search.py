"""Finding records: sort keys, keyset cursors, filter columns and full-text search.

The records service lists with keyset pagination: each page ends with a
cursor holding the sort-key values and id of its last row, and the next page
starts strictly after that row, so pages stay stable while records are
inserted. NULLs sort as the greatest value on both databases (PostgreSQL's
default; SQLite is told `NULLS LAST` / `NULLS FIRST`).

Full-text search covers the fields an entity declares under `search`:

* SQLite: an FTS5 table with external content (`<table>___fts`, rowid = the
  record id) kept in step by triggers, so rows written by any path (deploy
  backfills too) are indexed;
* PostgreSQL: a GIN index on `to_tsvector('simple', ...)` of the fields,
  queried with `plainto_tsquery('simple', ...)` through the same expression
  so the planner uses the index.

`create_search_index(connection, app, entity)` (re)creates either; deploy
calls it after every schema change of the entity, because SQLite's batch
migrations recreate tables and drop their triggers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    String,
    Table,
    and_,
    bindparam,
    column,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
)

from flowdesk.expressions import (
    BOOL,
    TIMESTAMP,
    CompiledExpression,
    ExpressionError,
    compile_expression,
)
from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import Entity
from flowdesk.model.link.types import user_type

from . import platform_tables as pt
from .errors import InvalidCursor, InvalidFilter, UnsupportedFilterError
from .filters import UnsupportedFilter, check_translatable, to_sql
from .tables import table_name
from .values import json_value

__all__ = [
    "FilterColumns",
    "FilterCompiler",
    "SearchClause",
    "SortKey",
    "after_condition",
    "create_search_index",
    "decode_cursor",
    "drop_search_index",
    "encode_cursor",
    "fts_table_name",
    "order_by",
    "parse_sort",
    "search_condition",
]

_WORD = re.compile(r"\w+", re.UNICODE)


# --------------------------------------------------------------------------- sorting


@dataclass(frozen=True)
class SortKey:
    """One key of a list's order: a column, its direction and how to read it back."""

    name: str
    column: Column[Any]
    descending: bool
    parse: Callable[[Any], Any]


def parse_sort(
    spec: Sequence[str],
    table: Table,
    sortable: Mapping[str, Callable[[Any], Any]],
    entity: str,
) -> tuple[SortKey, ...]:
    """`["-priority", "created_at"]` -> sort keys, with `id` appended as the tie-breaker.

    `sortable` maps the names that may be sorted on to the function that reads a
    cursor's JSON value back. Raises ValueError naming an unknown field.
    """
    keys: list[SortKey] = []
    for item in spec:
        descending = item.startswith("-")
        name = item.lstrip("+-")
        if name not in sortable or name not in table.c:
            choices = ", ".join(sorted(sortable))
            raise ValueError(f"cannot sort {entity} by `{name}`; sortable fields: {choices}")
        if any(key.name == name for key in keys):
            continue
        keys.append(SortKey(name, table.c[name], descending, sortable[name]))
    if not any(key.name == "id" for key in keys):
        keys.append(SortKey("id", table.c.id, bool(keys and keys[0].descending), int))
    return tuple(keys)


def order_by(keys: Sequence[SortKey], dialect: str) -> list[ColumnElement[Any]]:
    """ORDER BY clauses with NULLs greatest on both databases."""
    clauses: list[ColumnElement[Any]] = []
    for key in keys:
        clause = key.column.desc() if key.descending else key.column.asc()
        if dialect == "sqlite" and key.column.nullable:
            clause = clause.nulls_first() if key.descending else clause.nulls_last()
        clauses.append(clause)
    return clauses


def after_condition(
    keys: Sequence[SortKey], values: Sequence[Any]
) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """Rows strictly after `values` in the order of `keys` (the keyset condition).

    Returns the clause, with the values as bound parameters `_after0` ..., and
    those parameters: the clause depends only on which values are null, so a
    caller can cache it per shape.
    """
    params = {f"_after{i}": v for i, v in enumerate(values) if v is not None}
    marks = [
        None if v is None else bindparam(f"_after{i}", type_=k.column.type)
        for i, (k, v) in enumerate(zip(keys, values, strict=True))
    ]
    alternatives = []
    for index, key in enumerate(keys):
        equal = [_equal(k.column, m) for k, m in zip(keys[:index], marks[:index], strict=True)]
        alternatives.append(and_(*equal, _beyond(key, marks[index])))
    return or_(*alternatives), params


def _equal(col: Column[Any], mark: Any) -> ColumnElement[bool]:
    return col.is_(None) if mark is None else col == mark


def _beyond(key: SortKey, mark: Any) -> ColumnElement[bool]:
    """`key` strictly after the value bound as `mark` (None: the value is null)."""
    col = key.column
    if key.descending:
        return col.is_not(None) if mark is None else col < mark
    if mark is None:
        return false()
    return or_(col > mark, col.is_(None)) if col.nullable else col > mark


def encode_cursor(keys: Sequence[SortKey], row: Mapping[str, Any]) -> str:
    """An opaque cursor after `row`: base64 of the sort spec and the row's key values."""
    payload = {
        "s": [("-" if key.descending else "") + key.name for key in keys],
        "v": [json_value(row[key.name]) for key in keys],
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keys: Sequence[SortKey], entity: str) -> list[Any]:
    """The key values of a cursor made by `encode_cursor` for the same sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        spec, values = payload["s"], payload["v"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidCursor(entity, "it is not a cursor of this service") from None
    expected = [("-" if key.descending else "") + key.name for key in keys]
    if spec != expected or not isinstance(values, list) or len(values) != len(keys):
        raise InvalidCursor(entity, f"it was made for the order {spec}, not {expected}")
    try:
        return [None if v is None else key.parse(v) for key, v in zip(keys, values, strict=True)]
    except Exception:  # a hand-made cursor with a value of the wrong type
        raise InvalidCursor(entity, "its values do not fit the sort fields") from None


# --------------------------------------------------------------------------- full text


def fts_table_name(app: str, entity: str) -> str:
    """The SQLite FTS5 table of an entity (three underscores: never a child table's name)."""
    return table_name(app, entity) + "___fts"


def _index_name(app: str, entity: str) -> str:
    return f"ix_{table_name(app, entity)}_fts"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _document_sql(fields: Sequence[str], prefix: str = "") -> str:
    """The text PostgreSQL indexes: the search fields joined by spaces (NULLs as '')."""
    parts = [f"coalesce({prefix}{_quote(name)}, '')" for name in fields]
    return "to_tsvector('simple'::regconfig, " + " || ' ' || ".join(parts) + ")"


def drop_search_index(connection: Connection, app: AppModel | str, entity: str) -> None:
    """Remove an entity's full-text objects, if any (before dropping or rebuilding)."""
    app_name = app if isinstance(app, str) else app.name
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {_quote(_index_name(app_name, entity))}")
        return
    fts = fts_table_name(app_name, entity)
    for suffix in ("ai", "ad", "au"):
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {_quote(fts + '_' + suffix)}")
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_quote(fts)}")


def create_search_index(connection: Connection, app: AppModel, entity: str | Entity) -> None:
    """(Re)create the full-text index of an entity's `search` fields and fill it.

    Idempotent: existing objects are dropped first. An entity without search
    fields ends up without full-text objects.
    """
    model = app.entities[entity] if isinstance(entity, str) else entity
    drop_search_index(connection, app, model.name)
    if not model.search:
        return
    table = table_name(app.name, model.name)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"CREATE INDEX {_quote(_index_name(app.name, model.name))} ON {_quote(table)} "
            f"USING GIN ({_document_sql(model.search)})"
        )
        return
    for statement in _sqlite_statements(fts_table_name(app.name, model.name), table, model.search):
        connection.exec_driver_sql(statement)


def _sqlite_statements(fts: str, table: str, fields: Sequence[str]) -> list[str]:
    names = ", ".join(_quote(name) for name in fields)
    new = ", ".join("new." + _quote(name) for name in fields)
    old = ", ".join("old." + _quote(name) for name in fields)
    q_fts, q_table = _quote(fts), _quote(table)
    delete = f"INSERT INTO {q_fts}({q_fts}, rowid, {names}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {q_fts}(rowid, {names}) VALUES (new.id, {new});"
    return [
        f"CREATE VIRTUAL TABLE {q_fts} USING fts5({names}, content={q_table}, "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
        f"CREATE TRIGGER {_quote(fts + '_ai')} AFTER INSERT ON {q_table} BEGIN {insert} END",
        f"CREATE TRIGGER {_quote(fts + '_ad')} AFTER DELETE ON {q_table} BEGIN {delete} END",
        f"CREATE TRIGGER {_quote(fts + '_au')} AFTER UPDATE OF {names} ON {q_table} "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {q_fts}({q_fts}) VALUES ('rebuild')",
    ]


@dataclass(frozen=True)
class SearchClause:
    """Full-text search of one entity: a clause with the parameter `_search`, and how
    the user's text becomes that parameter (None for text without words).

    Words are matched whole and all must occur (like `plainto_tsquery`); the
    text is never interpreted as query syntax on either database.
    """

    clause: ColumnElement[bool]
    parameter: Callable[[str], str | None]


def search_condition(app: str, entity: Entity, table: Table, dialect: str) -> SearchClause:
    """The full-text search clause of `entity` on `dialect`."""
    if not entity.search:
        raise ValueError(f"{entity.name} declares no search fields")
    query = bindparam("_search", type_=String())
    if dialect == "postgresql":
        document = literal_column(_document_sql(entity.search, _quote(table.name) + "."))
        tsquery = func.plainto_tsquery(literal_column("'simple'::regconfig"), query)
        return SearchClause(document.op("@@")(tsquery), _postgres_query)
    fts = _quote(fts_table_name(app, entity.name))
    ids = text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :_search").bindparams(query)
    return SearchClause(table.c.id.in_(ids.columns(column("rowid"))), _fts5_query)


def _postgres_query(text_: str) -> str | None:
    return text_ if _WORD.search(text_) else None


def _fts5_query(text_: str) -> str | None:
    words = _WORD.findall(text_)
    return " ".join('"' + word.replace('"', '""') + '"' for word in words) or None


# --------------------------------------------------------------------------- filters


_PLATFORM_COLUMNS: Mapping[str, tuple[Table, Mapping[str, tuple[str, str | None]]]] = {
    # CEL field -> (column, referred target when the column holds an id)
    "user": (pt.users, {
        "id": ("id", None), "username": ("username", None), "name": ("name", None),
        "email": ("email", None), "phone": ("phone", None), "region": ("region", None),
        "locale": ("locale", None), "timezone": ("timezone", None), "active": ("active", None),
        "department": ("department_id", "department"), "manager": ("manager_id", "user"),
    }),
    "department": (pt.departments, {
        "id": ("id", None), "code": ("code", None), "name": ("name", None),
        "region": ("region", None), "parent": ("parent_id", "department"),
        "head": ("head_id", "user"),
    }),
}  # fmt: skip
_SYSTEM_TARGETS = {"created_by": "user", "updated_by": "user", "assignee": "user"}


class FilterColumns:
    """The `ColumnResolver` of one entity: fields are columns, references are followed.

    `("customer", "level")` becomes a correlated scalar subquery on the customer
    table (`NULL` when the reference is empty); line collections and
    multi-references have no single column and are refused.
    """

    def __init__(self, app: AppModel, tables: Mapping[str, Any], entity: str) -> None:
        self.app = app
        self.tables = tables
        self.entity = entity

    def column(self, path: tuple[str, ...]) -> ColumnElement[Any]:
        return self._resolve(self.entity, self.tables[self.entity].main, path)

    def _resolve(self, target: str, table: Any, path: tuple[str, ...]) -> ColumnElement[Any]:
        name, rest = path[0], path[1:]
        column_name, referred = self._field(target, name)
        if column_name is None or column_name not in table.c:
            raise UnsupportedFilter(
                f"`{'.'.join(path)}` of {target} has no column to filter on",
                hint="line collections and multi-references cannot be filtered on yet",
            )
        here = table.c[column_name]
        if not rest:
            return here
        if referred is None:
            raise UnsupportedFilter(f"`{name}` of {target} is not a reference")
        if rest == ("id",):
            return here
        target_table = self._table(referred).alias()
        inner = self._resolve(referred, target_table, rest)
        return select(inner).where(target_table.c.id == here).scalar_subquery()

    def _field(self, target: str, name: str) -> tuple[str | None, str | None]:
        if target in _PLATFORM_COLUMNS:
            return _PLATFORM_COLUMNS[target][1].get(name, (None, None))
        entity = self.app.entities[target]
        if name in _SYSTEM_TARGETS:
            return name, _SYSTEM_TARGETS[name]
        spec = entity.fields.get(name)
        if spec is None:
            return name, None  # a system column
        if spec.type in ("lines", "references"):
            return None, None
        if spec.type in ("reference", "user"):
            return name, "user" if spec.type == "user" else spec.to
        return name, None

    def _table(self, target: str) -> Table:
        if target in _PLATFORM_COLUMNS:
            return _PLATFORM_COLUMNS[target][0]
        if target not in self.tables:
            raise UnsupportedFilter(f"records of `{target}` cannot be filtered on")
        return self.tables[target].main


class FilterCompiler:
    """CEL list filters of an app: compiled once per text, translated per call.

    A filter reading only `record` translates to the same clause every time, so
    that clause is cached too; filters reading `user` or `now` bind their values
    on each call.
    """

    def __init__(self, app: AppModel, tables: Mapping[str, Any]) -> None:
        self.app = app
        self._resolvers = {name: FilterColumns(app, tables, name) for name in app.entities}
        self._compiled: dict[tuple[str, str], CompiledExpression] = {}
        self._clauses: dict[tuple[str, str], ColumnElement[bool]] = {}

    def clause(
        self, entity: str, source: str, values: Mapping[str, object]
    ) -> tuple[ColumnElement[bool], bool]:
        """The WHERE clause of a filter, and whether it is the same on every call."""
        key = (entity, source)
        cached = self._clauses.get(key)
        if cached is not None:
            return cached, True
        expression = self.compile(entity, source)
        try:
            clause = to_sql(expression, self._resolvers[entity], values)
        except UnsupportedFilter as problem:
            raise UnsupportedFilterError(entity, source, [problem]) from None
        static = {path[0] for path in expression.names} <= {"record"}
        if static and len(self._clauses) < 512:
            self._clauses[key] = clause
        return clause, static

    def resolver(self, entity: str) -> FilterColumns:
        """The resolver of `entity`'s filters: one object per entity (a cache key)."""
        return self._resolvers[entity]

    def compile(self, entity: str, source: str) -> CompiledExpression:
        """The filter compiled against `entity`'s record type (cached per text).

        Raises:
            InvalidFilter: not a boolean CEL expression over `record`, `user`, `now`.
            UnsupportedFilterError: it has constructs that cannot run in SQL.
        """
        key = (entity, source)
        expression = self._compiled.get(key)
        if expression is not None:
            return expression
        scope = {"record": self.app.record_types[entity], "user": user_type(), "now": TIMESTAMP}
        try:
            expression = compile_expression(source, scope, expect=BOOL)
        except ExpressionError as error:
            raise InvalidFilter(entity, source, [str(issue) for issue in error.issues]) from None
        problems = check_translatable(expression)
        if problems:
            raise UnsupportedFilterError(entity, source, problems)
        if len(self._compiled) < 512:
            self._compiled[key] = expression
        return expression
