"""What the records service decided about one entity, once, when it started.

`EntityPlan` holds an entity's field codecs, its prepared statements, how rows
become records and back, how expressions see a record (`view`), its computed
fields and rules with the references they read, its unique sets, sortable
columns, human-number pattern and full-text search. A call on the records
service then only converts values and binds prepared statements
(ARCHITECTURE: "per-request work is decided once").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, bindparam, delete, select, update

from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import Entity

from . import search as finding
from ._children import Children
from ._derived import as_object, as_objects, derivations, reference_tree
from .errors import InvalidQuery
from .numbers import NumberPattern
from .tables import SYSTEM_COLUMNS, EntityTables
from .values import FieldCodec, Shape, build_codec, system_codec

__all__ = ["EntityPlan"]

_RESTRICTED = 256


class EntityPlan:
    """Everything about one entity that does not change between calls."""

    def __init__(self, app: AppModel, entity: Entity, tables: EntityTables, dialect: str):
        self.name = entity.name
        self.entity = entity
        self.table = table = tables.main
        self.codecs = {name: build_codec(name, spec) for name, spec in entity.fields.items()}
        self.system = {
            name: system_codec(name)
            for name in (
                "assignee",
                "created_by",
                "updated_by",
                "created_at",
                "updated_at",
                "deleted_at",
            )
        }
        writable = frozenset(name for name, codec in self.codecs.items() if not codec.computed)
        self.shape = Shape(self.codecs, writable, system={"assignee": self.system["assignee"]})
        self.fields = tuple(self.codecs)
        self.scalars = tuple(name for name in self.codecs if name in table.c)
        self.columns = (*SYSTEM_COLUMNS, *self.scalars)
        everything = self.system | self.codecs
        self.loaders = [(n, c.load) for n, c in everything.items() if c.load and n in table.c]
        self.dumps = [(n, c.dump) for n, c in self.codecs.items() if c.dump and n in table.c]
        self.children = {
            name: Children(child, self.codecs[name])
            for name, child in {**tables.lines, **tables.links}.items()
        }
        self.id_fields = {n: c for n, c in everything.items() if c.target is not None}
        # created_by / updated_by are the actor, set by the platform: not checked
        self.checked_ids = {
            n: c for n, c in self.id_fields.items() if n not in ("created_by", "updated_by")
        }
        self.views = self._views(everything)
        self.line_views = {
            name: {s: as_object for s, c in codec.lines.codecs.items() if c.target}
            for name, codec in self.codecs.items()
            if codec.lines is not None
        }
        self.line_computed, self.computed, self.rules = derivations(app, entity, self.codecs)
        every = [*self.computed, *self.rules, *(e for v in self.line_computed.values() for e in v)]
        self.tree = reference_tree(every)
        self.uniques = _unique_sets(entity, table)
        self.number = NumberPattern(entity.number) if entity.number else None
        self.sortable = _sortable(self.codecs, table)
        self.search = (
            finding.search_condition(app.name, entity, table, dialect) if entity.search else None
        )
        self._statements(table)
        self._selects: dict[tuple[str, ...], Any] = {}
        self._restricted: dict[tuple[Any, ...], Any] = {}

    def _statements(self, table: Table) -> None:
        columns = [table.c[c] for c in self.columns]
        self.select_one = select(*columns).where(table.c.id == bindparam("id"))
        self.select_many = select(*columns).where(table.c.id.in_(bindparam("ids", expanding=True)))
        self.insert = table.insert()
        self.update = update(table).where(
            table.c.id == bindparam("_id"), table.c.row_version == bindparam("_version")
        )
        self.version_of = select(table.c.row_version, table.c.deleted_at).where(
            table.c.id == bindparam("id")
        )
        self.purge = delete(table).where(table.c.id == bindparam("id"))
        self.live_id = select(table.c.id).where(
            table.c.id == bindparam("id"), table.c.deleted_at.is_(None)
        )
        self.live_ids = select(table.c.id).where(
            table.c.id.in_(bindparam("ids", expanding=True)), table.c.deleted_at.is_(None)
        )

    @staticmethod
    def _views(codecs: Mapping[str, FieldCodec]) -> dict[str, Any]:
        """How expressions see a field's value: ids of references as `{"id": ...}` objects."""
        views: dict[str, Any] = {}
        for name, codec in codecs.items():
            if codec.target is not None:
                views[name] = as_objects if codec.multiple else as_object
        return views

    def columns_for(self, fields: Sequence[str] | None) -> tuple[str, ...]:
        if fields is None:
            return self.columns
        unknown = [
            name for name in fields if name not in self.codecs and name not in SYSTEM_COLUMNS
        ]
        if unknown:
            raise InvalidQuery(self.name, f"unknown fields of {self.name}: {', '.join(unknown)}")
        wanted = {"id", "row_version", *fields}
        return tuple(c for c in self.columns if c in wanted)

    def select_columns(self, names: tuple[str, ...]) -> Any:
        statement = self._selects.get(names)
        if statement is None:
            statement = select(*(self.table.c[n] for n in names))
            if len(self._selects) < 64:
                self._selects[names] = statement
        return statement

    def restricted(self, statement: Any, where: ColumnElement[bool], *key: Any) -> Any:
        """`statement` (a prepared one of this plan) also limited by `where`.

        Cached per (`key`, clause object): callers pass the same clause object again
        for the same caller (scope clauses are cached by the security layer), so the
        statement and its SQL cache key are built once, not per call.
        """
        cache_key = (*key, where)
        found = self._restricted.get(cache_key)
        if found is None:
            found = statement.where(where)
            if len(self._restricted) >= _RESTRICTED:  # clauses made per call (`now`)
                self._restricted = {}
            self._restricted[cache_key] = found
        return found

    def to_record(self, row: Sequence[Any], names: Sequence[str] | None = None) -> dict[str, Any]:
        record = dict(zip(names or self.columns, row, strict=True))
        for name, load in self.loaders:
            if name in record:
                record[name] = load(record[name])
        return record

    def db_values(self, record: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
        values = {name: record.get(name) for name in names}
        for name, dump in self.dumps:
            if name in values:
                values[name] = dump(values[name])
        return values

    def view(self, record: Mapping[str, Any], names: frozenset[str], loaded: Mapping) -> dict:
        """The `record` an expression reading `names` is given."""
        result: dict[str, Any] = {}
        for name in names:
            if name in loaded:
                result[name] = loaded[name]
            elif name in self.views:
                result[name] = self.views[name](record.get(name))
            elif name in self.line_views:
                result[name] = [self.line_view(name, line) for line in record.get(name) or ()]
            else:
                result[name] = record.get(name)
        return result

    def line_view(self, name: str, line: Mapping[str, Any]) -> dict[str, Any]:
        views = self.line_views[name]
        return {k: views[k](v) if k in views else v for k, v in line.items()}

    def read_children(
        self, conn: Connection, records: list[dict], fields: Sequence[str] | None
    ) -> None:
        """Add the lines and multi-references of `records` (those in `fields`, if given)."""
        if not records:
            return
        ids = [record["id"] for record in records]
        for name, child in self.children.items():
            if fields is None or name in fields:
                found = child.read(conn, ids)
                for record in records:
                    record[name] = found[record["id"]]


def _unique_sets(entity: Entity, table: Table) -> list[tuple[str, ...]]:
    sets = [(name,) for name, spec in entity.fields.items() if spec.unique and name in table.c]
    sets.extend(tuple(index.fields) for index in entity.indexes if index.unique)
    return sets


def _sortable(codecs: Mapping[str, FieldCodec], table: Table) -> dict[str, Callable]:
    """Columns a list may be sorted on, with how a cursor's JSON value is read back."""
    instant = dt.datetime.fromisoformat
    parse: dict[str, Callable[[Any], Any]] = {
        "id": int, "number": str, "state": str, "workflow_version": str, "row_version": int,
        "assignee": int, "created_by": int, "updated_by": int,
        "created_at": instant, "updated_at": instant, "deleted_at": instant,
    }  # fmt: skip
    by_kind: dict[str, Callable[[Any], Any]] = {
        "integer": int, "duration": int, "reference": int, "user": int, "attachment": int,
        "decimal": Decimal, "boolean": bool, "date": dt.date.fromisoformat, "datetime": instant,
    }  # fmt: skip
    for name, codec in codecs.items():
        if name in table.c and not codec.multiple and codec.kind != "json":
            parse[name] = by_kind.get(codec.kind, str)
    return parse
