"""The statements of `RecordStore.list`: filter, full-text search, sort and keyset page.

A statement is built once per (entity, filter text, sort, selected columns,
deleted or not, cursor shape, search or not) and cached; later calls only bind
values. A filter reading `user` or `now` translates to a different clause on
each call (its values are bound in it), so its statements are not cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam

from flowdesk.model.appmodel import AppModel

from . import search as finding
from ._entity_plan import EntityPlan
from .errors import InvalidQuery
from .tables import EntityTables

__all__ = ["ListQueries", "ListQuery"]

_CACHED = 512


@dataclass(frozen=True)
class ListQuery:
    """One list request ready to run: `columns` are the selected ones, sort keys included."""

    statement: Select[Any]
    params: dict[str, Any]
    keys: tuple[finding.SortKey, ...]
    columns: tuple[str, ...]


class ListQueries:
    """Builds and caches the list statements of one app's entities."""

    def __init__(self, app: AppModel, tables: Mapping[str, EntityTables], dialect: str) -> None:
        self.dialect = dialect
        self._filters = finding.FilterCompiler(app, tables)
        self._statements: dict[tuple[Any, ...], Select[Any]] = {}
        self._sorts: dict[tuple[str, tuple[str, ...]], tuple[finding.SortKey, ...]] = {}

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
    ) -> ListQuery:
        """The query of one page of `limit` records (one more is fetched: is there a next?).

        `names` are the columns the caller wants; `values` are those of the
        names a filter may read besides `record` (`user`, `now`).
        """
        keys = self.sort_keys(plan, sort)
        needed = tuple(dict.fromkeys((*names, *(key.name for key in keys))))
        params: dict[str, Any] = {"_limit": limit + 1}
        conditions = [] if include_deleted else [plan.table.c.deleted_at.is_(None)]
        static = True
        if filter:
            clause, static = self._filters.clause(plan.name, filter, values or {})
            conditions.append(clause)
        if search is not None and search.strip():
            conditions.extend(_search(plan, search, params))
        shape = _after(plan, keys, cursor, params, conditions) if cursor else None
        key = (plan.name, filter, sort, needed, include_deleted, shape, "_search" in params)
        statement = self._statements.get(key) if static else None
        if statement is None:
            statement = (
                plan.select_columns(needed)
                .where(*conditions)
                .order_by(*finding.order_by(keys, self.dialect))
                .limit(bindparam("_limit"))
            )
            if static and len(self._statements) < _CACHED:
                self._statements[key] = statement
        return ListQuery(statement, params, keys, needed)

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
