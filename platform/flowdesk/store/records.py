"""The records service: create, read, update, delete and list the records of an app.

`RecordStore(engine, app)` decides everything per entity once, at
construction (`EntityPlan`: codecs, statements, row converters, computed
fields and rules with the references they read), so a call only converts
values, evaluates prebuilt expressions and runs prepared statements
(ARCHITECTURE: "per-request work is decided once"). Each write is one
transaction holding the record, its lines and links, its human number and its
audit row; on SQLite, write transactions also queue on one in-process lock per
engine rather than on SQLite's sleeping busy handler. Reads (`get`, `list`,
`timeline`) run on read-only connections (`engine.read_only`): on SQLite they
begin DEFERRED, take no write lock and do not queue behind writes.

Optimistic locking: every change names the `row_version` it was based on and
runs `UPDATE ... WHERE id = ? AND row_version = ?`; a stale version is a
`Conflict`, never a silent overwrite.

Reads and changes of existing records take `where=`, an extra clause over the
entity's table applied in the SQL (the security layer's data scopes): a record
outside it is `NotFound`, for writes checked in the write's own transaction.

Values in and out are plain Python (see `values`); a record is a dict of the
system fields (`id`, `number`, `state`, `row_version` ...) and the entity's
fields, lines as lists of dicts with their `id`, multi-references as id lists.

This module is the service's surface (`Actor`, `Page`, `RecordStore`: its
transactions, reads and writes, in that order). The work it orchestrates lives
in private modules: `_entity_plan` (one entity, decided once), `_children`
(lines and link tables), `_derived` (computed fields and rules),
`_references` (referred records that expressions read, existence of new
references), `_write_steps` (version checks, line merging, unique values) and
`_list_query` (list statements).

May import: `flowdesk.model`, `flowdesk.expressions` and the rest of `store`.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Engine, Table, bindparam
from sqlalchemy.exc import IntegrityError

from flowdesk.expressions import CompiledExpression
from flowdesk.model.appmodel import AppModel

from . import search as finding
from ._derived import USER_KEYS, evaluate
from ._entity_plan import EntityPlan
from ._list_query import ListQueries
from ._references import References
from ._write_steps import (
    check_unique,
    current_record,
    deprecated_values,
    error_paths,
    merge_lines,
    update_row,
)
from .audit import AuditEntry, AuditLog, diff
from .engine import read_only
from .errors import FieldError, InvalidQuery, NotFound, ValidationFailed
from .filters import ColumnResolver
from .numbers import SequenceAllocator
from .tables import SYSTEM_COLUMNS, EntityTables, build_tables
from .values import DefaultContext

__all__ = ["SYSTEM_ACTOR", "Actor", "Page", "RecordStore"]

UTC = dt.UTC
_MAX_LIMIT = 1000


@dataclass(frozen=True)
class Actor:
    """Who acts: recorded in audit rows and seen by expressions as `user`.

    `attributes` holds the other fields of the CEL `user` type (name, email,
    department {...}, region ...); missing ones are null.
    """

    id: int | None
    username: str | None = None
    roles: tuple[str, ...] = ()
    locale: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def cel_user(self) -> dict[str, Any]:
        user: dict[str, Any] = dict.fromkeys(USER_KEYS)
        user.update(self.attributes)
        user.update(id=self.id, username=self.username, roles=list(self.roles))
        if self.locale is not None:
            user["locale"] = self.locale
        user["skills"] = list(user.get("skills") or [])
        return user


SYSTEM_ACTOR = Actor(None, "system")
"""The platform itself (timers, imports): no user id."""


@dataclass(frozen=True)
class Page:
    """One page of a list; `next_cursor` is None on the last page."""

    items: list[dict[str, Any]]
    next_cursor: str | None


# --------------------------------------------------------------------------- the service


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _sqlite_lock(engine: Engine) -> threading.Lock:
    """One lock per SQLite engine, shared by every store on it (SQLite has one writer)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(engine, threading.Lock())


class RecordStore:
    """Records of one app's entities on one database.

    Args:
        engine: from `flowdesk.store.engine.make_engine`; the app's tables exist.
        app: the compiled app.
        tables: the app's tables if already built (they must be `build_tables(app)`).

    Every write method takes `connection=` to join a transaction the caller
    owns (the workflow engine changes a state and writes its own rows at once);
    without it the method commits on its own.
    """

    def __init__(
        self, engine: Engine, app: AppModel, tables: Mapping[str, EntityTables] | None = None
    ) -> None:
        self.engine = engine
        self.app = app
        self.tables = dict(tables) if tables is not None else build_tables(app)
        self.dialect = engine.dialect.name
        # Reads begin DEFERRED on SQLite; PostgreSQL ignores the option, so it is not set
        # there (an engine with execution options costs SQLAlchemy a few µs per call).
        self._reader = read_only(engine) if self.dialect == "sqlite" else engine
        self._plans = {
            name: EntityPlan(app, entity, self.tables[name], self.dialect)
            for name, entity in app.entities.items()
        }
        self._references = References(app.name, self._plans)
        self._numbers = SequenceAllocator(self.dialect)
        self._audit = AuditLog(app.name)
        self._timezone = ZoneInfo(getattr(app.manifest, "timezone", "UTC") or "UTC")
        self._locale = "en"  # rule messages: the actor's locale, else English
        self._lock = _sqlite_lock(engine) if self.dialect == "sqlite" else None
        self._workflows = {w.entity: w for w in app.workflows.values()}
        self._lists = ListQueries(app, self.tables, self.dialect)

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _transaction(self, connection: Connection | None) -> Iterator[Connection]:
        if connection is not None:
            yield connection
            return
        if self._lock is None:
            with self.engine.begin() as own:
                yield own
            return
        with self._lock, self.engine.begin() as own:
            yield own

    def transaction(self, connection: Connection | None = None) -> Any:
        """A write transaction as the store's own writes take it (on SQLite, queued on
        the engine's in-process lock), or `connection` as it is. For layers (the
        workflow engine) that write records and their own rows together."""
        return self._transaction(connection)

    @contextmanager
    def _reading(self, connection: Connection | None) -> Iterator[Connection]:
        # Our own read-only connection begins DEFERRED on SQLite (engine.py): in WAL
        # mode it waits for no writer, so it need not queue on the writers' lock.
        if connection is not None:
            yield connection
            return
        with self._reader.connect() as own:
            yield own

    def _plan(self, entity: str) -> EntityPlan:
        try:
            return self._plans[entity]
        except KeyError:
            raise NotFound("entity", entity) from None

    # ------------------------------------------------------------------ reads

    def get(
        self,
        entity: str,
        record_id: int,
        *,
        fields: Sequence[str] | None = None,
        include_deleted: bool = False,
        where: ColumnElement[bool] | None = None,
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """One record by id; `NotFound` if there is none, it is deleted or it is not
        matched by `where` (a clause over `table(entity)`, such as a data scope)."""
        plan = self._plan(entity)
        names = plan.columns_for(fields)
        with self._reading(connection) as conn:
            statement = (
                plan.select_one
                if names is plan.columns
                else (plan.select_columns(names).where(plan.table.c.id == bindparam("id")))
            )
            if where is not None:
                statement = plan.restricted(statement, where, names)
            row = conn.execute(statement, {"id": record_id}).first()
            if row is None:
                raise NotFound(entity, record_id)
            record = plan.to_record(row, names)
            if not include_deleted and record.get("deleted_at") is not None:
                raise NotFound(entity, record_id, deleted=True)
            plan.read_children(conn, [record], fields)
        return record

    def list(
        self,
        entity: str,
        *,
        filter: str | None = None,
        sort: Sequence[str] = ("-id",),
        limit: int = 50,
        cursor: str | None = None,
        fields: Sequence[str] | None = None,
        search: str | None = None,
        include_deleted: bool = False,
        where: ColumnElement[bool] | None = None,
        actor: Actor | None = None,
        connection: Connection | None = None,
    ) -> Page:
        """A page of records: CEL `filter`, full-text `search`, `sort` keys, keyset `cursor`.

        `where` is an extra clause over `table(entity)` (a data scope), applied in
        the same statement. The statement for a combination of filter text, sort,
        fields, cursor shape and `where` clause object is built once and cached;
        later calls only bind values.
        """
        plan = self._plan(entity)
        sort = (sort,) if isinstance(sort, str) else sort
        fields = (fields,) if isinstance(fields, str) else fields
        if not 1 <= limit <= _MAX_LIMIT:
            raise InvalidQuery(entity, f"limit must be between 1 and {_MAX_LIMIT}, not {limit}")
        names = plan.columns_for(fields)
        values = {"user": (actor or SYSTEM_ACTOR).cel_user(), "now": _now()} if filter else None
        query = self._lists.build(
            plan,
            names,
            tuple(sort),
            limit=limit,
            filter=filter,
            values=values,
            search=search,
            cursor=cursor,
            include_deleted=include_deleted,
            where=where,
        )
        with self._reading(connection) as conn:
            rows = conn.execute(query.statement, query.params).all()
            records = [plan.to_record(row, query.columns) for row in rows[:limit]]
            plan.read_children(conn, records, fields)
        following = finding.encode_cursor(query.keys, records[-1]) if len(rows) > limit else None
        if query.columns != names:
            extra = set(query.columns) - set(names)
            records = [{k: v for k, v in r.items() if k not in extra} for r in records]
        return Page(records, following)

    def count(
        self,
        entity: str,
        *,
        filter: str | None = None,
        search: str | None = None,
        where: ColumnElement[bool] | None = None,
        include_deleted: bool = False,
        actor: Actor | None = None,
        connection: Connection | None = None,
    ) -> int:
        """How many records `list` with the same filter, search and `where` would page
        through (one `SELECT count(*)`, cached like list statements)."""
        plan = self._plan(entity)
        values = {"user": (actor or SYSTEM_ACTOR).cel_user(), "now": _now()} if filter else None
        query = self._lists.count(
            plan,
            filter=filter,
            values=values,
            search=search,
            include_deleted=include_deleted,
            where=where,
        )
        with self._reading(connection) as conn:
            return int(conn.execute(query.statement, query.params).scalar_one())

    def table(self, entity: str) -> Table:
        """The main table of `entity`: what `where` clauses and data scopes are written over."""
        return self._plan(entity).table

    def resolver(self, entity: str) -> ColumnResolver:
        """The `ColumnResolver` list filters of `entity` use (paths through references
        become correlated subqueries), so scope conditions follow references the same
        way. One object per entity, for the store's life: clauses may be cached by it."""
        self._plan(entity)
        return self._lists.resolver(entity)

    def compile_filter(self, entity: str, filter: str) -> CompiledExpression:
        """A list filter compiled as `list` compiles it (cached), to inspect what it reads.

        Raises:
            InvalidFilter: the text is not a boolean CEL expression over the record.
            UnsupportedFilterError: it cannot run in SQL.
        """
        self._plan(entity)
        return self._lists.compile(entity, filter)

    def expression_view(
        self,
        entity: str,
        record: Mapping[str, Any],
        paths: Iterable[tuple[str, ...]],
        *,
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """`record` as a CEL expression reading `paths` (`CompiledExpression.names`) sees
        it: references along those paths loaded (as for computed fields), ids as `{id}`.

        For layers evaluating their own expressions (workflow guards, actions)."""
        plan = self._plan(entity)
        tree: dict[str, Any] = {}
        whole = False
        for path in paths:
            if path[0] != "record":
                continue
            whole |= len(path) == 1
            node = tree
            for step in path[1:]:
                node = node.setdefault(step, {})
        loaded: dict[str, Any] = {}
        with self._reading(connection) as conn:
            for name, subtree in tree.items():
                codec = plan.id_fields.get(name)
                value = record.get(name)
                if codec is None or not value or not any(k != "id" or subtree[k] for k in subtree):
                    continue
                ids = value if codec.multiple else [value]
                found = self._references.load(conn, codec.target or "", ids, subtree)
                views = [found.get(i) or {"id": i} for i in ids]
                loaded[name] = views if codec.multiple else views[0]
        names = frozenset(record) if whole else frozenset(tree) & frozenset(record)
        return plan.view(record, names, loaded)

    def timeline(
        self,
        entity: str,
        record_id: int,
        *,
        where: ColumnElement[bool] | None = None,
        connection: Connection | None = None,
    ) -> list[AuditEntry]:
        """The audit rows of one record, oldest first (one query).

        Without `where` there is no check that the record exists (a purged record
        keeps its timeline). With it, the record (deleted or not) must exist and match
        it, else `NotFound`.
        """
        plan = self._plan(entity)
        with self._reading(connection) as conn:
            if where is not None:
                statement = plan.restricted(plan.version_of, where, 3)
                if conn.execute(statement, {"id": record_id}).first() is None:
                    raise NotFound(entity, record_id)
            return self._audit.timeline(conn, entity, record_id)

    # ------------------------------------------------------------------ writes

    def create(
        self,
        entity: str,
        values: Mapping[str, Any],
        *,
        actor: Actor,
        comment: str | None = None,
        state: str | None = None,
        workflow_version: str | None = None,
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Validate, compute and insert a record with its lines, number and audit row."""
        plan = self._plan(entity)
        now = _now()
        given, errors = plan.shape.coerce(values)
        context = DefaultContext(actor.id, now, self._timezone)
        record = plan.shape.defaults(context)
        for name in plan.line_views.keys() & given.keys():
            given[name] = merge_lines(plan, name, given[name], [], context, errors)
        record.update(given)
        workflow = self._workflows.get(entity)
        record.update(
            id=None, number=None, deleted_at=None, row_version=1,
            state=state or (workflow.initial if workflow else None),
            workflow_version=workflow_version or (self.app.version if workflow else None),
            created_at=now, updated_at=now, created_by=actor.id, updated_by=actor.id,
            assignee=given.get("assignee"),
        )  # fmt: skip
        errors.extend(plan.shape.check_required(record, skip=error_paths(errors)))
        errors.extend(deprecated_values(plan, record, None))
        try:
            with self._transaction(connection) as conn:
                self._derive(conn, plan, record, None, actor, now, errors)
                self._check_unique(conn, plan, record, plan.fields, None)
                if plan.number is not None:
                    day = now.astimezone(self._timezone).date()
                    seq = self._numbers.next(conn, self.app.name, entity, plan.number.period(day))
                    record["number"] = plan.number.format(seq, day)
                row = plan.db_values(record, plan.scalars) | {
                    k: record[k] for k in SYSTEM_COLUMNS if k != "id"
                }
                record["id"] = conn.execute(plan.insert, row).inserted_primary_key[0]
                for name, child in plan.children.items():
                    child.write(conn, record["id"], record[name], None)
                given_fields = [n for n in plan.fields if record[n] not in (None, [])]
                self._write_audit(
                    conn,
                    plan,
                    record,
                    "create",
                    actor,
                    now,
                    comment,
                    diff({}, record, given_fields),
                )
        except IntegrityError as error:
            self._explain(error, plan, record, None, connection)
        return record

    def update(
        self,
        entity: str,
        record_id: int,
        changes: Mapping[str, Any],
        *,
        expected_version: int,
        actor: Actor,
        comment: str | None = None,
        where: ColumnElement[bool] | None = None,
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Change some fields of a record last read at `expected_version`.

        Lines given replace the collection: lines with an `id` keep it (and
        their other values unless given), lines without are added, the rest
        removed. Raises `Conflict` when the record is at another version, and
        `NotFound` when it is not matched by `where` (checked in the transaction
        of the write, before anything else about the record is told).
        """
        plan = self._plan(entity)
        now = _now()
        given, errors = plan.shape.coerce(changes)
        try:
            with self._transaction(connection) as conn:
                current = current_record(conn, plan, record_id, expected_version, where=where)
                record = dict(current)
                context = DefaultContext(actor.id, now, self._timezone)
                for name in plan.line_views.keys() & given.keys():
                    given[name] = merge_lines(
                        plan, name, given[name], current[name], context, errors
                    )
                record.update(given)
                errors.extend(plan.shape.check_required(record, skip=error_paths(errors)))
                errors.extend(deprecated_values(plan, record, current))
                self._derive(conn, plan, record, current, actor, now, errors)
                changed = [n for n in (*plan.fields, "assignee") if record[n] != current[n]]
                if not changed:
                    return current
                self._check_unique(conn, plan, record, changed, record_id)
                columns = [n for n in changed if n in plan.table.c]
                values = plan.db_values(record, columns)
                update_row(conn, plan, record_id, expected_version, actor.id, now, values, where)
                for name in changed:
                    if name in plan.children:
                        plan.children[name].write(conn, record_id, record[name], current[name])
                record.update(row_version=expected_version + 1, updated_at=now, updated_by=actor.id)
                self._write_audit(
                    conn,
                    plan,
                    record,
                    "update",
                    actor,
                    now,
                    comment,
                    diff(current, record, changed),
                )
        except IntegrityError as error:
            self._explain(error, plan, record, record_id, connection)
        return record

    def delete(
        self,
        entity: str,
        record_id: int,
        *,
        actor: Actor,
        expected_version: int | None = None,
        comment: str | None = None,
        hard: bool = False,
        where: ColumnElement[bool] | None = None,
        connection: Connection | None = None,
    ) -> None:
        """Soft-delete a record (restorable); `hard=True` removes it and its lines for good.

        Callers allow `hard` to administrators only. A hard delete of a record
        others still refer to (`on_delete: restrict`) fails with `ValidationFailed`.
        A record not matched by `where` is `NotFound`.
        """
        plan = self._plan(entity)
        now = _now()
        try:
            with self._transaction(connection) as conn:
                current = current_record(
                    conn, plan, record_id, expected_version, deleted=hard, where=where
                )
                if hard:
                    purge = plan.purge if where is None else plan.restricted(plan.purge, where, 4)
                    if conn.execute(purge, {"id": record_id}).rowcount != 1:
                        raise NotFound(entity, record_id)
                    changes = diff(current, {}, [*plan.fields, "number", "state"])
                    self._write_audit(conn, plan, current, "purge", actor, now, comment, changes)
                    return
                version = current["row_version"]
                values = {"deleted_at": now}
                update_row(conn, plan, record_id, version, actor.id, now, values, where)
                changes = diff(current, {"deleted_at": now}, ["deleted_at"])
                self._write_audit(conn, plan, current, "delete", actor, now, comment, changes)
        except IntegrityError:
            message = f"{entity} {record_id} cannot be deleted: other records refer to it"
            raise ValidationFailed(entity, [FieldError(None, "in-use", message)]) from None

    def restore(
        self,
        entity: str,
        record_id: int,
        *,
        actor: Actor,
        expected_version: int | None = None,
        comment: str | None = None,
        where: ColumnElement[bool] | None = None,
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Bring back a soft-deleted record (a no-op for a live one); `NotFound` outside
        `where`."""
        plan = self._plan(entity)
        now = _now()
        with self._transaction(connection) as conn:
            current = current_record(
                conn, plan, record_id, expected_version, deleted=True, where=where
            )
            if current["deleted_at"] is None:
                return current
            version = current["row_version"]
            values = {"deleted_at": None}
            update_row(conn, plan, record_id, version, actor.id, now, values, where)
            record = current | {
                "deleted_at": None,
                "row_version": version + 1,
                "updated_at": now,
                "updated_by": actor.id,
            }
            changes = diff(current, record, ["deleted_at"])
            self._write_audit(conn, plan, record, "restore", actor, now, comment, changes)
        return record

    def set_state(
        self,
        entity: str,
        record_id: int,
        state: str,
        *,
        expected_version: int,
        actor: Actor,
        comment: str | None = None,
        workflow_version: str | None = None,
        transition: str | None = None,
        states: Collection[str] | None = None,
        where: ColumnElement[bool] | None = None,
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Move a record to `state` (the workflow engine's primitive): bumps the row
        version and audits a `transition` (named in the audit row's changes when given).
        Guards and rules are the caller's. `states` are the valid states when the
        record runs on another version of its workflow than this store's app."""
        plan = self._plan(entity)
        workflow = self._workflows.get(entity)
        valid = states if states is not None else workflow.states if workflow else None
        if valid is not None and state not in valid:
            message = f"`{state}` is not a state of the workflow of {entity}"
            raise ValidationFailed(entity, [FieldError("state", "not-allowed", message)])
        now = _now()
        with self._transaction(connection) as conn:
            current = current_record(conn, plan, record_id, expected_version, where=where)
            values: dict[str, Any] = {"state": state}
            if workflow_version is not None:
                values["workflow_version"] = workflow_version
            update_row(conn, plan, record_id, expected_version, actor.id, now, values, where)
            record = (
                current
                | values
                | {"row_version": expected_version + 1, "updated_at": now, "updated_by": actor.id}
            )
            changes = diff(current, record, list(values))
            if transition is not None:
                changes["transition"] = {"old": current.get("state"), "new": transition}
            self._write_audit(conn, plan, record, "transition", actor, now, comment, changes)
        return record

    # ------------------------------------------------------------------ write steps

    def _derive(
        self,
        conn: Connection,
        plan: EntityPlan,
        record: dict[str, Any],
        old: Mapping[str, Any] | None,
        actor: Actor,
        now: dt.datetime,
        errors: list[FieldError],
    ) -> None:
        """Load what expressions read, compute fields, check rules; raise on any error."""
        loaded, missing = self._references.resolve(conn, plan, record, old)
        errors.extend(missing)
        if plan.computed or plan.rules or plan.line_computed:
            locale = actor.locale or self._locale
            evaluate(plan, record, loaded, actor.cel_user(), now, errors, locale)
        if errors:
            raise ValidationFailed(plan.name, errors)

    def _check_unique(
        self,
        conn: Connection,
        plan: EntityPlan,
        record: Mapping[str, Any],
        changed: Sequence[str],
        record_id: int | None,
    ) -> None:
        # A method, not just the function: tests replace it to let a race past the check.
        check_unique(conn, plan, record, changed, record_id)

    def _write_audit(
        self,
        conn: Connection,
        plan: EntityPlan,
        record: Mapping[str, Any],
        action: str,
        actor: Actor,
        now: dt.datetime,
        comment: str | None,
        changes: Mapping[str, Any],
    ) -> None:
        if not plan.entity.audit:
            return
        row = self._audit.row(
            plan.name,
            record["id"],
            action,
            actor_id=actor.id,
            actor=actor.username,
            at=now,
            changes=changes,
            comment=comment,
        )
        self._audit.write(conn, [row])

    def _explain(
        self,
        error: IntegrityError,
        plan: EntityPlan,
        record: Mapping[str, Any],
        record_id: int | None,
        connection: Connection | None,
    ) -> None:
        """Turn a constraint violation (a race the checks could not see) into a RecordError.

        The checks run again on a fresh connection, where the racing
        transaction's row is now visible; PostgreSQL aborted ours.
        """
        if connection is not None and self.dialect != "sqlite":
            raise error
        with self._reading(connection) as conn:
            self._check_unique(conn, plan, record, plan.fields, record_id)
            _loaded, missing = self._references.resolve(conn, plan, record, None)
        if missing:
            raise ValidationFailed(plan.name, missing) from error
        raise error
