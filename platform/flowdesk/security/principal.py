"""Who is asking: a user of the organisation tables, with their roles in one app.

A `Principal` is loaded once per request (or per session) from `fd_users`,
`fd_user_roles` and `fd_departments`, and carries everything the security checks need
without another query: the roles held in the app, the user's department and the ids of
every department below it (for `department_tree` scopes), and the fields of the CEL
`user` value that scope conditions such as `record.region == user.region` read.

The department subtree is computed here, with one recursive CTE (the same SQL on SQLite
and PostgreSQL), rather than inside every scoped query: it changes rarely, is small, and
an `IN (...)` over a handful of ids is the simplest clause both databases plan well.

May import `flowdesk.store` (platform tables, `Actor`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from flowdesk.model.appmodel import AppModel
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor

from .policy import ADMIN, ALL_APPS

__all__ = [
    "Principal",
    "PrincipalNotFound",
    "department_subtree",
    "load_principal",
    "principal_from_roles",
]


class PrincipalNotFound(LookupError):
    """No user with this id: the identity layer should not have authenticated them."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} does not exist")
        self.user_id = user_id


@dataclass(frozen=True)
class Principal:
    """A user acting in one app.

    Attributes:
        user_id: `fd_users.id`.
        username: For audit rows and messages.
        app: The app these roles are held in.
        roles: Roles held directly in the app (inherited ones are the `Authorizer`'s
            to expand); empty for an inactive user, who may therefore do nothing.
        department_id: The user's department, if any.
        department_ids: That department and every department below it.
        attributes: The other fields of the CEL `user` value (name, email, region,
            department {...}, skills ...).
    """

    user_id: int
    username: str
    app: str
    roles: frozenset[str]
    department_id: int | None = None
    department_ids: frozenset[int] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_admin(self) -> bool:
        """Holds the built-in `admin` role directly (inheriting it counts too, through
        the `Authorizer`, for every check)."""
        return ADMIN in self.roles

    @property
    def region(self) -> str | None:
        return self.attributes.get("region")

    def cel_user(self) -> dict[str, Any]:
        """The CEL `user` value of this principal, as scope conditions and rules read it."""
        user = dict(self.attributes)
        user.update(id=self.user_id, username=self.username, roles=sorted(self.roles))
        user["skills"] = list(user.get("skills") or [])
        return user

    def actor(self) -> Actor:
        """The records service's view of this principal (audit rows, CEL `user`)."""
        return Actor(
            self.user_id,
            self.username,
            roles=tuple(sorted(self.roles)),
            locale=self.attributes.get("locale"),
            attributes={k: v for k, v in self.attributes.items() if k not in ("roles",)},
        )


def load_principal(connection: Connection, user_id: int, app: AppModel | str) -> Principal:
    """Load a principal from the organisation tables (three queries).

    Roles are the user's `fd_user_roles` rows for `app`, plus those for every app
    (`app = '*'`). An inactive user keeps their identity but holds no role.

    Raises:
        PrincipalNotFound: there is no such user.
    """
    app_name = app if isinstance(app, str) else app.name
    users, departments, positions = pt.users, pt.departments, pt.positions
    query = (
        select(
            users,
            departments.c.code.label("dept_code"),
            departments.c.name.label("dept_name"),
            departments.c.parent_id.label("dept_parent"),
            departments.c.head_id.label("dept_head"),
            departments.c.region.label("dept_region"),
            positions.c.name.label("position_name"),
        )
        .select_from(
            users.outerjoin(departments, departments.c.id == users.c.department_id).outerjoin(
                positions, positions.c.id == users.c.position_id
            )
        )
        .where(users.c.id == user_id)
    )
    row = connection.execute(query).mappings().first()
    if row is None:
        raise PrincipalNotFound(user_id)
    roles = frozenset(
        connection.execute(
            select(pt.user_roles.c.role).where(
                pt.user_roles.c.user_id == user_id,
                pt.user_roles.c.app.in_([app_name, ALL_APPS]),
            )
        ).scalars()
    )
    department_id = row["department_id"]
    return Principal(
        user_id=row["id"],
        username=row["username"],
        app=app_name,
        roles=roles if row["active"] else frozenset(),
        department_id=department_id,
        department_ids=department_subtree(connection, department_id),
        attributes=_attributes(row),
    )


def department_subtree(connection: Connection, department_id: int | None) -> frozenset[int]:
    """`department_id` and every department below it (recursive CTE; cycles end it)."""
    if department_id is None:
        return frozenset()
    departments = pt.departments
    tree = (
        select(departments.c.id)
        .where(departments.c.id == department_id)
        .cte("subtree", recursive=True)
    )
    # UNION (not UNION ALL) drops rows already found, so a cycle in parent_id ends.
    tree = tree.union(select(departments.c.id).where(departments.c.parent_id == tree.c.id))
    return frozenset(connection.execute(select(tree.c.id)).scalars())


def _attributes(row: Mapping[str, Any]) -> dict[str, Any]:
    department = None
    if row["department_id"] is not None:
        department = {
            "id": row["department_id"],
            "code": row["dept_code"],
            "name": row["dept_name"],
            "parent": row["dept_parent"],
            "head": row["dept_head"],
            "region": row["dept_region"],
        }
    return {
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "department": department,
        "position": row["position_name"],
        "manager": row["manager_id"],
        "skills": list(row["skills"] or []),
        "region": row["region"],
        "locale": row["locale"],
        "timezone": row["timezone"],
        "active": bool(row["active"]),
    }


def principal_from_roles(
    user_id: int, app: str, roles: Iterable[str], **attributes: Any
) -> Principal:
    """A principal made in memory (tests, tools, system jobs acting for a role)."""
    department_ids = frozenset(attributes.pop("department_ids", ()))
    department_id = attributes.pop("department_id", None)
    username = attributes.pop("username", f"user{user_id}")
    return Principal(
        user_id, username, app, frozenset(roles), department_id, department_ids, attributes
    )
