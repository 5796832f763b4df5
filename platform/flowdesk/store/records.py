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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam
from sqlalchemy.exc import IntegrityError

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
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """One record by id; `NotFound` if there is none or it is deleted."""
        plan = self._plan(entity)
        names = plan.columns_for(fields)
        with self._reading(connection) as conn:
            statement = (
                plan.select_one
                if names is plan.columns
                else (plan.select_columns(names).where(plan.table.c.id == bindparam("id")))
            )
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
        actor: Actor | None = None,
        connection: Connection | None = None,
    ) -> Page:
        """A page of records: CEL `filter`, full-text `search`, `sort` keys, keyset `cursor`.

        The statement for a combination of filter text, sort, fields and cursor
        shape is built once and cached; later calls only bind values.
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

    def timeline(self, entity: str, record_id: int) -> list[AuditEntry]:
        """The audit rows of one record, oldest first (one query)."""
        self._plan(entity)
        with self._reading(None) as conn:
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
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Change some fields of a record last read at `expected_version`.

        Lines given replace the collection: lines with an `id` keep it (and
        their other values unless given), lines without are added, the rest
        removed. Raises `Conflict` when the record is at another version.
        """
        plan = self._plan(entity)
        now = _now()
        given, errors = plan.shape.coerce(changes)
        try:
            with self._transaction(connection) as conn:
                current = current_record(conn, plan, record_id, expected_version)
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
                update_row(conn, plan, record_id, expected_version, actor.id, now, values)
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
        connection: Connection | None = None,
    ) -> None:
        """Soft-delete a record (restorable); `hard=True` removes it and its lines for good.

        Callers allow `hard` to administrators only. A hard delete of a record
        others still refer to (`on_delete: restrict`) fails with `ValidationFailed`.
        """
        plan = self._plan(entity)
        now = _now()
        try:
            with self._transaction(connection) as conn:
                current = current_record(conn, plan, record_id, expected_version, deleted=hard)
                if hard:
                    conn.execute(plan.purge, {"id": record_id})
                    changes = diff(current, {}, [*plan.fields, "number", "state"])
                    self._write_audit(conn, plan, current, "purge", actor, now, comment, changes)
                    return
                version = current["row_version"]
                update_row(conn, plan, record_id, version, actor.id, now, {"deleted_at": now})
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
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Bring back a soft-deleted record (a no-op for a live one)."""
        plan = self._plan(entity)
        now = _now()
        with self._transaction(connection) as conn:
            current = current_record(conn, plan, record_id, expected_version, deleted=True)
            if current["deleted_at"] is None:
                return current
            version = current["row_version"]
            update_row(conn, plan, record_id, version, actor.id, now, {"deleted_at": None})
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
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Move a record to `state` (the workflow engine's primitive): bumps the row
        version and audits a `transition`. Guards and rules are the caller's."""
        plan = self._plan(entity)
        workflow = self._workflows.get(entity)
        if workflow is not None and state not in workflow.states:
            message = f"`{state}` is not a state of workflow {workflow.name}"
            raise ValidationFailed(entity, [FieldError("state", "not-allowed", message)])
        now = _now()
        with self._transaction(connection) as conn:
            current = current_record(conn, plan, record_id, expected_version)
            values: dict[str, Any] = {"state": state}
            if workflow_version is not None:
                values["workflow_version"] = workflow_version
            update_row(conn, plan, record_id, expected_version, actor.id, now, values)
            record = (
                current
                | values
                | {"row_version": expected_version + 1, "updated_at": now, "updated_by": actor.id}
            )
            changes = diff(current, record, list(values))
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
