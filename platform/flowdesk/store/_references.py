"""Referred records: loaded for the expressions that read them, checked when new.

A computed field or rule may read through references (`record.customer.level`,
`user.department.name`); `References.resolve` loads only the paths the
entity's expressions read (`EntityPlan.tree`), nested as deep as they go, as
expressions see them. It also reports every new reference to a record that
does not exist or is deleted, reusing the records it loaded.

Targets are the app's entities and the platform's users, departments,
positions and attachments (`fd_*` tables).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from . import platform_tables as pt
from ._derived import USER_KEYS, as_object
from ._entity_plan import EntityPlan
from .errors import FieldError
from .values import FieldCodec

__all__ = ["References"]


class References:
    """Loads the referred records expressions read, and checks new references exist."""

    def __init__(self, app: str, plans: Mapping[str, EntityPlan]) -> None:
        self.app = app
        self.plans = plans
        ids = bindparam("ids", expanding=True)
        users, departments = pt.users, pt.departments
        self.platform = {
            "user": select(users).where(users.c.id.in_(ids)),
            "department": select(departments).where(departments.c.id.in_(ids)),
            "position": select(pt.positions).where(pt.positions.c.id.in_(ids)),
            "attachment": select(pt.attachments).where(pt.attachments.c.id.in_(ids)),
        }
        self.exists = {
            name: select(table.c.id).where(table.c.id.in_(ids))
            for name, table in (
                ("user", users),
                ("department", departments),
                ("position", pt.positions),
                ("attachment", pt.attachments),
            )
        }
        self.roles = select(pt.user_roles.c.user_id, pt.user_roles.c.role).where(
            pt.user_roles.c.user_id.in_(ids), pt.user_roles.c.app == bindparam("app")
        )

    def resolve(
        self,
        connection: Connection,
        plan: EntityPlan,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], list[FieldError]]:
        """Loaded references by field (for expressions) and errors for missing new ones."""
        loaded: dict[str, Any] = {}
        rows: dict[str, dict[int, Any]] = {}
        for name, subtree in plan.tree.items():
            codec = plan.id_fields.get(name)
            value = record.get(name)
            if codec is None or not value or not _needs_load(subtree):
                continue
            ids = value if codec.multiple else [value]
            found = self.load(connection, codec.target or "", ids, subtree)
            rows.setdefault(codec.target or "", {}).update(found)
            views = [found.get(i) or {"id": i} for i in ids]
            loaded[name] = views if codec.multiple else views[0]
        return loaded, self._check(connection, plan, record, old, rows)

    def _check(self, connection, plan, record, old, rows) -> list[FieldError]:  # type: ignore[no-untyped-def]
        wanted: dict[str, dict[int, list[str]]] = {}
        for name, codec in plan.checked_ids.items():
            for item in _new_ids(codec, record.get(name), old.get(name) if old else None):
                wanted.setdefault(codec.target or "", {}).setdefault(item, []).append(name)
        for name, children in plan.line_views.items():
            before = {line.get("id"): line for line in (old or {}).get(name) or ()}
            for index, line in enumerate(record.get(name) or ()):
                prior = before.get(line.get("id"), {})
                for sub in children:
                    value = line.get(sub)
                    if value is not None and value != prior.get(sub):
                        path = f"{name}[{index}].{sub}"
                        target = plan.codecs[name].lines.codecs[sub].target  # type: ignore[union-attr]
                        wanted.setdefault(target or "", {}).setdefault(value, []).append(path)
        errors = []
        for target, paths in wanted.items():
            known = rows.get(target, {})
            missing = [i for i in paths if i not in known or _deleted(known[i])]
            unknown = [i for i in paths if i not in known]
            live = self._live(connection, target, unknown) if unknown else set()
            for item in missing:
                if item in live:
                    continue
                for path in paths[item]:
                    errors.append(
                        FieldError(
                            path, "not-found", f"{path}: there is no {target} with id {item}"
                        )
                    )
        return errors

    def _live(self, connection: Connection, target: str, ids: list[int]) -> set[int]:
        if target in self.plans:
            plan = self.plans[target]
            if len(ids) == 1:  # the usual case; an expanding IN costs more per call
                return set(connection.execute(plan.live_id, {"id": ids[0]}).scalars())
            return set(connection.execute(plan.live_ids, {"ids": ids}).scalars())
        return set(connection.execute(self.exists[target], {"ids": ids}).scalars())

    def load(
        self, connection: Connection, target: str, ids: Sequence[int], subtree: Mapping
    ) -> dict[int, dict[str, Any]]:
        """Records of `target` by id, as expressions see them, nested as `subtree` reads."""
        if target in self.plans:
            plan = self.plans[target]
            if len(ids) == 1:
                result = connection.execute(plan.select_one, {"id": ids[0]})
            else:
                result = connection.execute(plan.select_many, {"ids": list(ids)})
            records = {row.id: plan.to_record(row) for row in result}
            for name, child in plan.children.items():
                if name in subtree and records:
                    for parent, items in child.read(connection, list(records)).items():
                        records[parent][name] = items
            keys = frozenset(subtree) & frozenset(plan.columns + plan.fields) | {"id", "deleted_at"}
            views = {i: plan.view(r, keys, {}) for i, r in records.items()}
            self._nest(connection, views, plan.id_fields, subtree)
            return views
        if target not in self.platform:
            return {}
        rows = connection.execute(self.platform[target], {"ids": list(ids)}).mappings()
        views = {row["id"]: _platform_view(target, row) for row in rows}
        if target == "user" and "roles" in subtree and views:
            params = {"ids": list(views), "app": self.app}
            for user_id, role in connection.execute(self.roles, params):
                views[user_id]["roles"].append(role)
        nested = {"department": _Target("department"), "manager": _Target("user")}
        self._nest(connection, views, nested if target == "user" else {}, subtree)
        return views

    def _nest(self, connection, views, id_fields, subtree) -> None:  # type: ignore[no-untyped-def]
        for name, child in subtree.items():
            codec = id_fields.get(name)
            if codec is None or not _needs_load(child):
                continue
            ids = {item["id"] for view in views.values() for item in _items(view.get(name))}
            if not ids:
                continue
            found = self.load(connection, codec.target, sorted(ids), child)
            for view in views.values():
                value = view.get(name)
                if isinstance(value, list):
                    view[name] = [found.get(item["id"], item) for item in value]
                elif value:
                    view[name] = found.get(value["id"], value)


def _items(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [value] if value else []


@dataclass(frozen=True)
class _Target:
    """Stands in for a field codec: where `department` and `manager` of a user point."""

    target: str


def _new_ids(codec: FieldCodec, value: Any, old: Any) -> list[int]:
    if codec.multiple:
        before = set(old or ())
        return [item for item in value or () if item not in before]
    return [value] if value is not None and value != old else []


def _deleted(view: Mapping[str, Any]) -> bool:
    return view.get("deleted_at") is not None


def _platform_view(target: str, row: Mapping[str, Any]) -> dict[str, Any]:
    if target == "user":
        view = dict.fromkeys(USER_KEYS)
        view.update(
            {
                k: row[k]
                for k in (
                    "id",
                    "username",
                    "name",
                    "email",
                    "phone",
                    "region",
                    "locale",
                    "timezone",
                    "active",
                )
            }
        )
        view.update(
            department=as_object(row["department_id"]),
            manager=as_object(row["manager_id"]),
            roles=[],
            skills=list(row["skills"] or []),
        )
        return view
    if target == "department":
        view = {k: row[k] for k in ("id", "code", "name", "region")}
        return view | {"parent": as_object(row["parent_id"]), "head": as_object(row["head_id"])}
    if target == "attachment":
        return {k: row[k] for k in ("id", "name", "media_type", "size")} | {"url": None}
    return dict(row)


def _needs_load(subtree: Mapping[str, Any]) -> bool:
    """Whether reading `subtree` of a reference needs its record (not just its id)."""
    return any(key != "id" or subtree[key] for key in subtree)
