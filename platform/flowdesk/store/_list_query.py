"""The statements of `RecordStore.list` and `count`: filter, full-text search, an extra
`where` clause (a data scope), sort and keyset page.

A statement is built once per (entity, filter text, sort, selected columns,
deleted or not, cursor shape, search or not) and cached; later calls only bind
values. A filter reading `user` or `now` translates to a different clause on
each call (its values are bound in it), so its statements are not cached.

A `where` clause is part of the key as the object it is: the security layer
hands the same clause object to the same caller again, so their statements are
reused. Those statements live in a separate, bounded cache that is emptied when
full, because clause objects made per call (a scope reading `now`) would
otherwise fill the cache of unscoped statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select

from flowdesk.expressions import CompiledExpression
from flowdesk.model.appmodel import AppModel

from . import search as finding
from ._entity_plan import EntityPlan
from .errors import InvalidQuery
from .tables import EntityTables

__all__ = ["ListQueries", "ListQuery"]

_CACHED = 512
_SCOPED = 1024


@dataclass(frozen=True)
class ListQuery:
    """One list request ready to run: `columns` are the selected ones, sort keys included."""

    statement: Select[Any]
    params: dict[str, Any]
    keys: tuple[finding.SortKey, ...]
    columns: tuple[str, ...]


class ListQueries:
    """Builds and caches the list and count statements of one app's entities."""

    def __init__(self, app: AppModel, tables: Mapping[str, EntityTables], dialect: str) -> None:
        self.dialect = dialect
        self._filters = finding.FilterCompiler(app, tables)
        self._statements: dict[tuple[Any, ...], Select[Any]] = {}
        self._scoped: dict[tuple[Any, ...], Select[Any]] = {}
        self._sorts: dict[tuple[str, tuple[str, ...]], tuple[finding.SortKey, ...]] = {}

    def resolver(self, entity: str) -> finding.FilterColumns:
        """The column resolver filters of `entity` are translated with."""
        return self._filters.resolver(entity)

    def compile(self, entity: str, source: str) -> CompiledExpression:
        """A filter compiled as lists compile it (cached)."""
        return self._filters.compile(entity, source)

    def build(
        self,
        plan: EntityPlan,
        names: tuple[str, ...],
        sort: tuple[str, ...],
        *,
        limit: int,
        filter: str | None,
        values: Mapping[str, object] | None,
        search: str | None,
        cursor: str | None,
        include_deleted: bool,
        where: ColumnElement[bool] | None = None,
    ) -> ListQuery:
        """The query of one page of `limit` records (one more is fetched: is there a next?).

        `names` are the columns the caller wants; `values` are those of the
        names a filter may read besides `record` (`user`, `now`); `where` is an
        extra clause over the entity's table.
        """
        keys = self.sort_keys(plan, sort)
        needed = tuple(dict.fromkeys((*names, *(key.name for key in keys))))
        params: dict[str, Any] = {"_limit": limit + 1}
        conditions, static = self._conditions(
            plan, filter, values, search, include_deleted, where, params
        )
        shape = _after(plan, keys, cursor, params, conditions) if cursor else None
        key = (plan.name, filter, sort, needed, include_deleted, shape, "_search" in params)
        statement = self._cached(key, where) if static else None
        if statement is None:
            statement = (
                plan.select_columns(needed)
                .where(*conditions)
                .order_by(*finding.order_by(keys, self.dialect))
                .limit(bindparam("_limit"))
            )
            if static:
                self._remember(key, where, statement)
        return ListQuery(statement, params, keys, needed)

    def count(
        self,
        plan: EntityPlan,
        *,
        filter: str | None,
        values: Mapping[str, object] | None,
        search: str | None,
        include_deleted: bool,
        where: ColumnElement[bool] | None = None,
    ) -> ListQuery:
        """The `SELECT count(*)` of the records a list with the same conditions pages through."""
        params: dict[str, Any] = {}
        conditions, static = self._conditions(
            plan, filter, values, search, include_deleted, where, params
        )
        key = ("_count", plan.name, filter, include_deleted, "_search" in params)
        statement = self._cached(key, where) if static else None
        if statement is None:
            statement = select(func.count()).select_from(plan.table).where(*conditions)
            if static:
                self._remember(key, where, statement)
        return ListQuery(statement, params, (), ())

    def _conditions(
        self,
        plan: EntityPlan,
        filter: str | None,
        values: Mapping[str, object] | None,
        search: str | None,
        include_deleted: bool,
        where: ColumnElement[bool] | None,
        params: dict[str, Any],
    ) -> tuple[list[ColumnElement[bool]], bool]:
        """The WHERE conditions of a list or count, and whether they are the same on
        every call with the same arguments (then the statement may be cached)."""
        conditions = [] if include_deleted else [plan.table.c.deleted_at.is_(None)]
        static = True
        if filter:
            clause, static = self._filters.clause(plan.name, filter, values or {})
            conditions.append(clause)
        if search is not None and search.strip():
            conditions.extend(_search(plan, search, params))
        if where is not None:
            conditions.append(where)
        return conditions, static

    def _cached(self, key: tuple[Any, ...], where: ColumnElement[bool] | None) -> Any:
        if where is None:
            return self._statements.get(key)
        return self._scoped.get((*key, where))

    def _remember(
        self, key: tuple[Any, ...], where: ColumnElement[bool] | None, statement: Any
    ) -> None:
        if where is None:
            if len(self._statements) < _CACHED:
                self._statements[key] = statement
            return
        if len(self._scoped) >= _SCOPED:
            self._scoped = {}
        self._scoped[(*key, where)] = statement

    def sort_keys(self, plan: EntityPlan, sort: tuple[str, ...]) -> tuple[finding.SortKey, ...]:
        keys = self._sorts.get((plan.name, sort))
        if keys is None:
            try:
                keys = finding.parse_sort(sort, plan.table, plan.sortable, plan.name)
            except ValueError as error:
                raise InvalidQuery(plan.name, str(error)) from None
            if len(self._sorts) < _CACHED:
                self._sorts[(plan.name, sort)] = keys
        return keys


def _search(plan: EntityPlan, text: str, params: dict[str, Any]) -> list[ColumnElement[bool]]:
    """The full-text condition for `text`, none when it holds no word."""
    if plan.search is None:
        raise InvalidQuery(plan.name, f"{plan.name} declares no search fields")
    query = plan.search.parameter(text)
    if query is None:
        return []
    params["_search"] = query
    return [plan.search.clause]


def _after(
    plan: EntityPlan,
    keys: Sequence[finding.SortKey],
    cursor: str,
    params: dict[str, Any],
    conditions: list[ColumnElement[bool]],
) -> tuple[bool, ...]:
    """Add the keyset condition of `cursor`; return its shape (which keys it binds)."""
    marks = finding.decode_cursor(cursor, keys, plan.name)
    after, after_params = finding.after_condition(keys, marks)
    params.update(after_params)
    conditions.append(after)
    return tuple(f"_after{i}" in after_params for i in range(len(keys)))
