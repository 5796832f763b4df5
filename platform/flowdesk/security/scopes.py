"""Data scopes: which records a principal may see or act on, as a SQL `WHERE` clause.

A grant's `scope` is applied inside the query -- lists, counts, reports, search, get by
id and writes -- never by filtering rows in Python (issue 4, part 5), so a page of 20
is 20 rows the principal may see and a count is the count of those rows.

**Per grant** (the keys of a `{own, department, when}` scope combine with AND):

* `all` (the default, or an empty `{}`): no restriction;
* `own`: the record was created by the user or is assigned to them
  (`created_by = :user OR assignee = :user`);
* `department`: the record's department is the user's; `department_tree`: it is the
  user's or one below it (ids precomputed by `load_principal`, bound as `IN (...)`).
  *The record's department* is its `department` field when the entity has one that
  refers to `department` (a purchase request belongs to the requesting department,
  whoever typed it in; a budget to the department it funds), otherwise the department
  of the user who created it (a ticket belongs to its creator's department). A user
  without a department sees nothing through these scopes;
* `when: CEL`: the condition, compiled by the linker against `record` and `user`, and
  translated by `store.filters.to_sql` with the principal's `user` value and `now`
  bound as parameters; paths through references (`record.customer.region`) are
  resolved by the store's `ColumnResolver`.

**Across grants**: the grants of all the principal's roles (inherited included) on the
entity (or on `*`) that allow the action combine with OR; if any of them is unscoped,
there is no restriction (`None`). With no such grant the clause is `false`. The
built-in `admin` role is never restricted.

May import `flowdesk.model`, `flowdesk.expressions`, `flowdesk.store` (filters,
platform tables) and the rest of `flowdesk.security`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from flowdesk.expressions import CompiledExpression
from flowdesk.model.appmodel import AppModel
from flowdesk.model.policy import Scope
from flowdesk.store import platform_tables as pt
from flowdesk.store.filters import ColumnResolver, UnsupportedFilter, check_translatable, to_sql

from .decisions import HasRoles, authorizer_for
from .errors import ScopeNotTranslatable
from .policy import ADMIN, AppGrant, app_grants, per_app
from .principal import Principal

__all__ = [
    "ScopePolicy",
    "check_scopes",
    "record_department",
    "scope_clause",
    "scope_policy_for",
]

_UNRESTRICTED = None


@dataclass(frozen=True)
class _GrantScope:
    """The scope of one grant, ready to become SQL for a principal."""

    source: AppGrant
    own: bool = False
    department: str | None = None  # "own" | "tree"
    when: CompiledExpression | None = None


class ScopePolicy:
    """Data scopes of one app version: which grants apply is decided once per
    (role set, entity, action); the clause is built per call from the principal."""

    def __init__(self, app: AppModel) -> None:
        self.app = app
        self.authorizer = authorizer_for(app)
        self._grants: dict[str, list[AppGrant]] = {entity: [] for entity in app.entities}
        for item in app_grants(app):
            targets = app.entities if item.grant.entity == "*" else [item.grant.entity]
            for entity in targets:
                self._grants.setdefault(entity, []).append(item)
        self._scopes: dict[tuple[Any, str, str], tuple[_GrantScope, ...] | None] = {}
        # Translated clauses, keyed by what they depend on (strong references to the
        # table and resolver, so an identity-hashed key can never be reused).
        self._departments: dict[tuple[str, FromClause], ColumnElement[Any]] = {}
        self._conditions: dict[tuple[Any, ...], ColumnElement[bool]] = {}
        self._clauses: dict[tuple[Any, ...], ColumnElement[bool]] = {}

    def scopes(
        self, principal: HasRoles, entity: str, action: str
    ) -> tuple[_GrantScope, ...] | None:
        """The scoped grants that apply, or `None` when one applicable grant is unscoped
        (an empty tuple: no grant applies, nothing is visible)."""
        key = (principal.roles, entity, action)
        if key in self._scopes:
            return self._scopes[key]
        found = self._decide(principal, entity, action)
        if len(self._scopes) >= 8192:
            self._scopes.clear()
        self._scopes[key] = found
        return found

    def _decide(
        self, principal: HasRoles, entity: str, action: str
    ) -> tuple[_GrantScope, ...] | None:
        roles = self.authorizer.effective_roles(principal.roles)
        if ADMIN in roles:
            return _UNRESTRICTED
        scoped: list[_GrantScope] = []
        for item in self._grants.get(entity, []):
            if not roles.intersection(item.grant.roles) or not item.permits(action):
                continue
            scope = self._grant_scope(item)
            if scope is None:
                return _UNRESTRICTED
            scoped.append(scope)
        return tuple(scoped)

    def _grant_scope(self, item: AppGrant) -> _GrantScope | None:
        scope = item.grant.scope
        if scope == "all":
            return None
        if scope == "own":
            return _GrantScope(item, own=True)
        if scope == "department":
            return _GrantScope(item, department="own")
        if scope == "department_tree":
            return _GrantScope(item, department="tree")
        assert isinstance(scope, Scope)
        when = None
        if scope.when:
            when = self.app.expression("Policy", item.policy, item.pointer + "/scope/when")
        if not scope.own and scope.department is None and when is None:
            return None  # `{}`: every record
        return _GrantScope(item, own=bool(scope.own), department=scope.department, when=when)

    def clause(
        self,
        principal: Principal,
        entity: str,
        table: FromClause,
        resolver: ColumnResolver,
        *,
        action: str = "read",
        now: dt.datetime | None = None,
    ) -> ColumnElement[bool] | None:
        """The `WHERE` clause limiting `table` (the entity's main table, or an alias of
        it) to the records `principal` may `action`; `None` means every record."""
        scopes = self.scopes(principal, entity, action)
        if scopes is None:
            return None
        if not scopes:
            return sa.false()
        values: dict[str, object] = {}
        if any(scope.when is not None for scope in scopes):
            values = {"user": principal.cel_user(), "now": now or dt.datetime.now(dt.UTC)}
        key = _clause_key(principal, entity, action, table, resolver, scopes, values)
        try:
            found = self._clauses.get(key) if key is not None else None
        except TypeError:  # an unhashable resolver
            key = found = None
        if found is not None:
            return found
        built = self._build(principal, entity, table, resolver, scopes, values)
        if key is not None:
            self._clauses = _bounded(self._clauses, key, built, 4096)
        return built

    def _build(
        self,
        principal: Principal,
        entity: str,
        table: FromClause,
        resolver: ColumnResolver,
        scopes: tuple[_GrantScope, ...],
        values: Mapping[str, object],
    ) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        for scope in scopes:
            conditions: list[ColumnElement[bool]] = []
            if scope.own:
                conditions.append(_own(principal, table))
            if scope.department is not None:
                conditions.append(self._department(principal, entity, table, scope.department))
            if scope.when is not None:
                conditions.append(self._when(scope, table, resolver, values))
            parts.append(sa.and_(*conditions) if len(conditions) > 1 else conditions[0])
        return sa.or_(*parts) if len(parts) > 1 else parts[0]

    def _department(
        self, principal: Principal, entity: str, table: FromClause, which: str
    ) -> ColumnElement[bool]:
        ids = (
            sorted(principal.department_ids)
            if which == "tree"
            else [principal.department_id]
            if principal.department_id is not None
            else []
        )
        if not ids:
            return sa.false()
        key = (entity, table)
        column = self._departments.get(key)
        if column is None:
            column = record_department(self.app, entity, table)
            self._departments = _bounded(self._departments, key, column)
        if len(ids) == 1:
            return column == ids[0]
        return column.in_(ids)

    def _when(
        self,
        scope: _GrantScope,
        table: FromClause,
        resolver: ColumnResolver,
        values: Mapping[str, object],
    ) -> ColumnElement[bool]:
        """The grant's condition in SQL; translating costs ~1 ms (the CEL evaluator
        computes `user.region` ...), so clauses are reused for the same user values."""
        assert scope.when is not None
        depends = _condition_key(scope.when, values)
        if depends is None:
            return _translate(scope, resolver, values)
        key = (scope.source.policy, scope.source.index, table, resolver, depends)
        try:
            found = self._conditions.get(key)
        except TypeError:  # an unhashable resolver: translate every time
            return _translate(scope, resolver, values)
        if found is None:
            found = _translate(scope, resolver, values)
            self._conditions = _bounded(self._conditions, key, found)
        return found


def record_department(app: AppModel, entity: str, table: FromClause) -> ColumnElement[Any]:
    """The SQL value of a record's department: its `department` field when it has one
    referring to `department`, else its creator's department."""
    spec = app.entities[entity].fields.get("department")
    if spec is not None and getattr(spec, "to", None) == "department" and "department" in table.c:
        return table.c.department
    users = pt.users
    return (
        sa.select(users.c.department_id).where(users.c.id == table.c.created_by).scalar_subquery()
    )


def _own(principal: Principal, table: FromClause) -> ColumnElement[bool]:
    user = principal.user_id
    return sa.or_(table.c.created_by == user, table.c.assignee == user)


def _translate(
    scope: _GrantScope, resolver: ColumnResolver, values: Mapping[str, object]
) -> ColumnElement[bool]:
    assert scope.when is not None
    try:
        return to_sql(scope.when, resolver, values)
    except UnsupportedFilter as problem:
        source = scope.source
        raise ScopeNotTranslatable(source.policy, source.pointer, str(problem)) from None


def _condition_key(expression: CompiledExpression, values: Mapping[str, Any]) -> tuple | None:
    """What a translated condition depends on besides the table: the values of the
    `user` paths it reads (`user.region` -> "north"); `None` when it cannot be reused
    (it reads `now`, the whole `user`, or a value that is not hashable)."""
    parts: list[Any] = []
    for path in sorted(expression.names):
        if path[0] == "record":
            continue
        if path[0] != "user" or len(path) < 2:
            return None
        value: Any = values.get("user")
        for name in path[1:]:
            value = value.get(name) if isinstance(value, Mapping) else None
        if isinstance(value, list):
            value = tuple(value)
        try:
            hash(value)
        except TypeError:
            return None
        parts.append((path, value))
    return tuple(parts)


def _clause_key(
    principal: Principal,
    entity: str,
    action: str,
    table: FromClause,
    resolver: ColumnResolver,
    scopes: tuple[_GrantScope, ...],
    values: Mapping[str, Any],
) -> tuple[Any, ...] | None:
    """Everything a principal's clause depends on, so the same user's next request
    reuses it; `None` when a condition reads `now` (or values that cannot be keyed)."""
    depends = []
    for scope in scopes:
        if scope.when is not None:
            condition = _condition_key(scope.when, values)
            if condition is None:
                return None
            depends.append(condition)
    return (
        principal.roles,
        entity,
        action,
        table,
        resolver,
        principal.user_id,
        principal.department_id,
        principal.department_ids,
        tuple(depends),
    )


def _bounded(cache: dict[Any, Any], key: Any, value: Any, limit: int = 1024) -> dict[Any, Any]:
    if len(cache) >= limit:
        cache = {}
    cache[key] = value
    return cache


def scope_policy_for(app: AppModel) -> ScopePolicy:
    """The `ScopePolicy` of this app version, built once and shared."""
    return per_app("scopes", app, ScopePolicy)


def scope_clause(
    principal: Principal,
    entity: str,
    table: FromClause,
    resolver: ColumnResolver,
    app: AppModel,
    *,
    action: str = "read",
    now: dt.datetime | None = None,
) -> ColumnElement[bool] | None:
    """The `WHERE` clause of the records of `entity` that `principal` may `action`.

    Args:
        principal: A `Principal` (roles, user id, departments, CEL `user` value).
        entity: The entity listed, counted, read or written.
        table: Its main table (or an alias), whose `created_by`, `assignee` and
            `department` columns the scope reads.
        resolver: The store's resolver of record paths for `table`, used by `when`
            conditions (`record.customer.region`).
        app: The app version.
        action: `read` for lists, counts, reports, search and get; `update`, `delete`,
            `transition:<name>`, ... for writes (a grant may scope them differently).
        now: The `now` of `when` conditions (default: the current time).

    Returns:
        `None` when every record is in scope, else a boolean clause (`false` when no
        grant applies).

    Raises:
        ScopeNotTranslatable: a `when` condition is outside the SQL subset.
    """
    return scope_policy_for(app).clause(principal, entity, table, resolver, action=action, now=now)


def check_scopes(app: AppModel) -> list[ScopeNotTranslatable]:
    """Every grant condition of `app` that could not run in SQL (static; for deploy
    and `flowdesk validate`, so the analyst learns it before a list fails)."""
    problems = []
    for item in app_grants(app):
        scope = item.grant.scope
        if isinstance(scope, Scope) and scope.when:
            key = ("Policy", item.policy, item.pointer + "/scope/when")
            expression = app.expressions.get(key)
            if expression is None:
                continue
            for problem in check_translatable(expression):
                problems.append(ScopeNotTranslatable(item.policy, item.pointer, str(problem)))
    return problems
