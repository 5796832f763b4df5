"""RecordGuard: the one place where authorization is applied to records.

The API, the agent UI, exports and reports read and write records through a
`RecordGuard`, never through the records service directly, so every path
applies the same checks (ARCHITECTURE decision 7):

1. **the action** (`Authorizer.require`): `Forbidden` (403) naming entity and action;
2. **the fields**: a write setting a field the caller may not write is `Forbidden`
   naming it (`check_writable`); `fields=` naming a field they cannot read, a filter
   or sort reading a field they cannot read in clear, and full-text search over an
   entity whose search fields include one they cannot read in clear are `Forbidden`
   (`check_readable`, `check_filterable`), so none of them can serve as an oracle;
3. **the data scope** of the action (`ScopePolicy.clause`: `read` for get, list,
   count and timeline, `update`, `delete`), handed to the store as its `where`
   clause so it is applied inside the SQL statement -- a page of 20 is 20 records
   in scope, and a record outside the scope is `NotFound` (404, not 403: its
   existence is not revealed), checked in the transaction of a write;
4. **redaction** of every record returned, also by `create` and `update`
   (`redact`: hidden fields removed, masked fields masked), and of timelines
   (`redact_audit`).

A created record, and an updated one, must also be inside the scope of the action
afterwards (checked in the same transaction, `Forbidden` and rolled back if not):
otherwise a scope such as `when: record.region == user.region` would not limit
which records a user can make, and a record could be written out of the writer's
own scope.

Cost per request: everything per app version is built once (`authorizer_for`,
`field_policy_for`, `scope_policy_for`, cached by content hash); the guard adds
caches of what it derives itself (read access per role set, passed filter, sort
and search checks), so a request costs a few dict lookups on top of the store
call. Scope clauses are cached per principal by `ScopePolicy`; the store caches
its statements per clause object, so a scoped get or list reuses its statement.

May import `flowdesk.model`, `flowdesk.store` (public names of `records`,
`errors`) and the rest of `flowdesk.security`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Table

from flowdesk.store.audit import PROCESS_KEYS, AuditEntry
from flowdesk.store.errors import NotFound
from flowdesk.store.filters import ColumnResolver
from flowdesk.store.records import Actor, Page, RecordStore

from .decisions import Authorizer, authorizer_for
from .errors import Forbidden
from .fields import (
    FieldAccess,
    FieldPolicy,
    check_filterable,
    check_readable,
    check_writable,
    field_policy_for,
    filter_paths,
    redact,
    redact_audit,
)
from .policy import ADMIN
from .principal import Principal
from .scopes import ScopePolicy, scope_policy_for

__all__ = ["RecordGuard", "RecordWriter"]

_ASSIGNEE = "assignee"
_CACHED = 4096


class RecordWriter(Protocol):
    """What writes records for the guard: the `RecordStore`, or a layer with its
    signatures on top of it (the workflow engine, which also runs automations)."""

    def create(
        self,
        entity: str,
        values: Mapping[str, Any],
        *,
        actor: Actor,
        comment: str | None = None,
        connection: Connection | None = None,
    ) -> dict[str, Any]: ...

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
    ) -> dict[str, Any]: ...

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
    ) -> None: ...


class RecordGuard:
    """Records of one app version as one principal may see and change them.

    Args:
        store: The app's records service; `store.app` is the app version whose
            policies apply. Make one guard per app version (cheap per request).

    Attributes:
        writer: What `create`, `update` and `delete` call (default: the store). Its
            methods must accept RecordStore's keywords, `where` and `connection` too.
    """

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.app = store.app
        self.writer: RecordWriter = store
        self._authorizer: Authorizer = authorizer_for(self.app)
        self._fields: FieldPolicy = field_policy_for(self.app)
        self._scopes: ScopePolicy = scope_policy_for(self.app)
        self._targets: dict[str, tuple[Table, ColumnResolver]] = {}
        self._readers: dict[tuple[Any, str], _Reader] = {}
        self._passed: dict[tuple[Any, ...], bool] = {}

    # ------------------------------------------------------------------ reads

    def get(
        self,
        principal: Principal,
        entity: str,
        record_id: int,
        *,
        fields: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """One record in the caller's read scope, redacted; `NotFound` outside it."""
        reader = self._reader(principal, entity, require=True)
        fields = _names(fields)
        if fields is not None:
            check_readable(fields, reader.access)
        where = self._scope(principal, entity, "read")
        return reader.redact(self.store.get(entity, record_id, fields=fields, where=where))

    def list(
        self,
        principal: Principal,
        entity: str,
        *,
        filter: str | None = None,
        sort: Sequence[str] | str = ("-id",),
        limit: int = 50,
        cursor: str | None = None,
        fields: Sequence[str] | None = None,
        search: str | None = None,
    ) -> Page:
        """A page of the records in the caller's read scope, each redacted.

        The scope is part of the SQL statement, so pages are full and cursors stable.
        Filtering, sorting, selecting or searching on a field the caller cannot read
        (in clear, for all but `fields`) is `Forbidden` before anything is queried.
        """
        reader = self._reader(principal, entity, require=True)
        sort = (sort,) if isinstance(sort, str) else tuple(sort)
        fields = _names(fields)
        self._check_query(principal, entity, reader.access, filter, sort, search)
        if fields is not None:
            check_readable(fields, reader.access)
        page = self.store.list(
            entity,
            filter=filter,
            sort=sort,
            limit=limit,
            cursor=cursor,
            fields=fields,
            search=search,
            where=self._scope(principal, entity, "read"),
            actor=principal.actor() if filter else None,
        )
        return Page([reader.redact(item) for item in page.items], page.next_cursor)

    def count(
        self,
        principal: Principal,
        entity: str,
        *,
        filter: str | None = None,
        search: str | None = None,
    ) -> int:
        """How many records `list` with the same filter and search would show."""
        access = self._reader(principal, entity, require=True).access
        self._check_query(principal, entity, access, filter, (), search)
        return self.store.count(
            entity,
            filter=filter,
            search=search,
            where=self._scope(principal, entity, "read"),
            actor=principal.actor() if filter else None,
        )

    def timeline(self, principal: Principal, entity: str, record_id: int) -> list[AuditEntry]:
        """The audit timeline of a record in the caller's read scope.

        Changes of fields the caller cannot read are left out (old and new values, and
        that they changed); masked fields' values are masked. A record outside the
        scope is `NotFound`; for a caller whose scope is every record, a record that
        no longer exists (purged) still shows its timeline.
        """
        access = self._reader(principal, entity, require=True).access
        process = PROCESS_KEYS - self.app.entities[entity].fields.keys()
        access = dataclasses.replace(access, readable=access.readable | process)
        where = self._scope(principal, entity, "read")
        return redact_audit(self.store.timeline(entity, record_id, where=where), access)

    # ------------------------------------------------------------------ writes

    def create(
        self,
        principal: Principal,
        entity: str,
        values: Mapping[str, Any],
        *,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Create a record as the caller; the response is redacted like a read.

        Setting `assignee` needs the `assign` action; any other field must be
        writable for `create`. The new record must be inside the caller's `create`
        scope, else `Forbidden` and nothing is written.
        """
        self._require(principal, entity, "create")
        self._check_write(principal, entity, "create", values)
        actor = principal.actor()
        scope = self._scope(principal, entity, "create")
        if scope is None:
            record = self.writer.create(entity, values, actor=actor, comment=comment)
        else:
            with self.transaction() as conn:
                record = self.writer.create(
                    entity, values, actor=actor, comment=comment, connection=conn
                )
                self._require_in_scope(entity, record["id"], scope, "create", conn)
        return self._reader(principal, entity).redact(record)

    def update(
        self,
        principal: Principal,
        entity: str,
        record_id: int,
        changes: Mapping[str, Any],
        *,
        expected_version: int,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Change a record in the caller's `update` scope; the response is redacted.

        A record outside the scope is `NotFound` (before its version or values are
        looked at); a change that would take it out of the scope is `Forbidden`
        and rolled back.
        """
        self._require(principal, entity, "update")
        self._check_write(principal, entity, "update", changes)
        actor = principal.actor()
        where = self._scope(principal, entity, "update")
        if where is None:
            record = self.writer.update(
                entity,
                record_id,
                changes,
                expected_version=expected_version,
                actor=actor,
                comment=comment,
                where=None,
            )
        else:
            with self.transaction() as conn:
                record = self.writer.update(
                    entity,
                    record_id,
                    changes,
                    expected_version=expected_version,
                    actor=actor,
                    comment=comment,
                    where=where,
                    connection=conn,
                )
                self._require_in_scope(entity, record_id, where, "update", conn)
        return self._reader(principal, entity).redact(record)

    def delete(
        self,
        principal: Principal,
        entity: str,
        record_id: int,
        *,
        expected_version: int | None = None,
        hard: bool = False,
        comment: str | None = None,
    ) -> None:
        """Delete a record in the caller's `delete` scope (soft: restorable).

        `hard=True` removes it for good and is for administrators only.
        """
        self._require(principal, entity, "delete")
        if hard and ADMIN not in self._authorizer.effective_roles(principal.roles):
            raise Forbidden(
                f"only administrators may delete {entity} records for good",
                entity=entity,
                action="purge",
            )
        self.writer.delete(
            entity,
            record_id,
            actor=principal.actor(),
            expected_version=expected_version,
            comment=comment,
            hard=hard,
            where=self._scope(principal, entity, "delete"),
        )

    # ------------------------------------------------------------------ for other layers

    def access(self, principal: Principal, entity: str, action: str = "read") -> FieldAccess:
        """The caller's field access for a form or screen doing `action`.

        `read`: what is shown (its `writable` is empty); `create` / `update`: also
        what may be entered. `assignee` is not among `writable`: it needs the
        `assign` action. `Forbidden` when the caller may neither read the entity
        nor do `action` on it.
        """
        self._known(entity)
        if not (
            self._authorizer.allowed(principal, entity, "read")
            or self._authorizer.allowed(principal, entity, action)
        ):
            self._authorizer.require(principal, entity, action)
        if action == "read":
            return self._reader(principal, entity).access
        return self._fields.access(principal, entity, action)

    def readable_record(
        self, principal: Principal, entity: str, record: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`record` as `principal` may see it (webhook and export payloads built for a
        user): hidden fields removed, masked ones masked; empty for a caller who may
        read no field of the entity. It does not check the record is in their scope."""
        return self._reader(principal, entity).redact(record)

    def transition(
        self,
        principal: Principal,
        entity: str,
        record_id: int,
        name: str,
        *,
        expected_version: int,
        values: Mapping[str, Any] | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Take workflow transition `name` on a record in the caller's scope.

        The policies must grant the transition (`transition` or `transition:<name>`);
        the values sent with it must be writable; the record must be in the caller's
        `update` scope (else `NotFound`). The workflow's own conditions (roles listed
        on the transition, guard, required fields, comment) are the writer's to check.
        """
        self._known(entity)
        if not self._authorizer.may_transition(principal, entity, name):
            raise Forbidden(f"you may not take the transition `{name}` of {entity}",
                            entity=entity, action=f"transition:{name}")
        take = getattr(self.writer, "transition", None)
        if take is None:
            raise Forbidden(f"{entity} records have no workflow here", entity=entity,
                            action="transition")
        if values:
            self._check_write(principal, entity, "update", values)
        where = self._scope(principal, entity, "update")
        with self.transaction() as conn:
            if where is not None:
                self.store.get(entity, record_id, fields=("id",), where=where, connection=conn)
            record = take(entity, record_id, name, actor=principal.actor(),
                          expected_version=expected_version, values=dict(values or {}),
                          comment=comment, connection=conn)
        return self._reader(principal, entity).redact(record)

    def available_transitions(
        self, principal: Principal, entity: str, record_id: int
    ) -> list[Any]:
        """The transitions the caller may take on a record they can read, now: those the
        policies grant and the workflow offers (state, transition roles, guard)."""
        self._require(principal, entity, "read")
        where = self._scope(principal, entity, "read")
        record = self.store.get(entity, record_id, where=where)
        offer = getattr(self.writer, "available_transitions", None)
        if offer is None:
            return []
        return [t for t in offer(entity, record, principal.actor())
                if self._authorizer.may_transition(principal, entity, t.name)]

    def transaction(self, connection: Connection | None = None) -> AbstractContextManager[Any]:
        """The store's write transaction (queued on SQLite's writer lock)."""
        return self.store.transaction(connection)

    # ------------------------------------------------------------------ checks

    def _known(self, entity: str) -> None:
        if entity not in self.app.entities:
            raise NotFound("entity", entity)

    def _require(self, principal: Principal, entity: str, action: str) -> None:
        self._known(entity)
        self._authorizer.require(principal, entity, action)

    def _reader(self, principal: Principal, entity: str, *, require: bool = False) -> _Reader:
        """What the caller sees of `entity`, decided once per role set."""
        if require:
            self._require(principal, entity, "read")
        key = (principal.roles, entity)
        found = self._readers.get(key)
        if found is None:
            access = self._fields.access(principal, entity, "read")
            found = _Reader(dataclasses.replace(access, writable=frozenset()))
            self._readers = _bounded(self._readers, key, found)
        return found

    def _check_write(
        self, principal: Principal, entity: str, action: str, values: Mapping[str, Any]
    ) -> None:
        # Names that are no field at all are left to the store, which reports each as
        # `unknown-field` (a 422 with every other problem), not as a permission.
        fields = self.app.entities[entity].fields
        names = [name for name in values if name in fields or name == _ASSIGNEE]
        if _ASSIGNEE in names and self._authorizer.allowed(principal, entity, "assign"):
            names.remove(_ASSIGNEE)
        check_writable(names, self._fields.access(principal, entity, action))

    def _check_query(
        self,
        principal: Principal,
        entity: str,
        access: FieldAccess,
        filter: str | None,
        sort: tuple[str, ...],
        search: str | None,
    ) -> None:
        """Refuse a filter, sort or search reading what the caller cannot read in clear.

        Passed checks are remembered per (role set, entity, filter text, sort, search
        or not): the same list request then costs one dict lookup.
        """
        searching = bool(search and search.strip())
        key = (principal.roles, entity, filter, sort, searching)
        if key in self._passed:
            return
        if sort:
            check_filterable([item.lstrip("+-") for item in sort], access)
        if searching:
            check_filterable(self.app.entities[entity].search, access)
        if filter:
            paths = filter_paths(self.store.compile_filter(entity, filter))
            check_filterable(paths, access, self._related(principal))
        self._passed = _bounded(self._passed, key, True)

    def _related(self, principal: Principal) -> Callable[[str], FieldAccess]:
        """Access to the entities a filter path reaches through references."""
        return lambda target: self._reader(principal, target).access

    def _scope(self, principal: Principal, entity: str, action: str) -> ColumnElement[bool] | None:
        target = self._targets.get(entity)
        if target is None:
            target = self._targets[entity] = (self.store.table(entity), self.store.resolver(entity))
        table, resolver = target
        return self._scopes.clause(principal, entity, table, resolver, action=action)

    def _require_in_scope(
        self,
        entity: str,
        record_id: int,
        where: ColumnElement[bool],
        action: str,
        connection: Connection,
    ) -> None:
        """After a write: the record must (still) be in the scope of `action`."""
        try:
            self.store.get(
                entity,
                record_id,
                fields=("id",),
                include_deleted=True,
                where=where,
                connection=connection,
            )
        except NotFound:
            raise Forbidden(
                f"the {entity} would be outside the records you may {action}",
                entity=entity,
                action=action,
            ) from None


class _Reader:
    """One role set's read access to one entity, and a fast `redact` for it.

    `fields.redact` calls a function per field; a page of 50 tickets of 35 fields
    made it the largest cost of a guarded list. Here unreadable keys are dropped in
    one pass and only masked fields (and lines with masked fields) go through
    `redact`, so the result is the same (a test compares them).
    """

    __slots__ = ("_masked", "access")

    def __init__(self, access: FieldAccess) -> None:
        self.access = access
        self._masked = (*access.masked, *access.line_masked)

    def redact(self, record: Mapping[str, Any]) -> dict[str, Any]:
        readable = self.access.readable
        if record.keys() <= readable:
            shown = dict(record)
        else:
            shown = {name: value for name, value in record.items() if name in readable}
        if self._masked:
            masked = {name: shown[name] for name in self._masked if name in shown}
            shown.update(redact(masked, self.access))
        return shown


def _names(fields: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if fields is None:
        return None
    return (fields,) if isinstance(fields, str) else tuple(fields)


def _bounded(cache: dict[Any, Any], key: Any, value: Any) -> dict[Any, Any]:
    if len(cache) >= _CACHED:
        cache = {}
    cache[key] = value
    return cache
