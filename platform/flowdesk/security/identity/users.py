"""Creating users and granting roles in the organisation tables (`fd_users`,
`fd_user_roles`): what `flowdesk user ...` and set-up scripts need.

A role is written `app:role`; the app `*` means every app (the rows `load_principal`
reads for any app). Names are checked here so a typo fails at the command line
instead of granting a role no policy mentions.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import Connection, delete, select

from flowdesk.store import platform_tables as pt

from ..policy import ALL_APPS
from ._time import resolve_now
from .errors import UnknownUser
from .passwords import check_policy, set_password

__all__ = [
    "ALL_APPS",
    "create_user",
    "grant_roles",
    "parse_role",
    "revoke_roles",
    "user_id_of",
    "user_roles",
]

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,119}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def parse_role(text: str) -> tuple[str, str]:
    """`"helpdesk:agent"` -> `("helpdesk", "agent")`; `"*:admin"` for every app.

    Raises:
        ValueError: not `APP:ROLE` with snake_case names.
    """
    app, sep, role = text.strip().partition(":")
    if not sep or not (app == ALL_APPS or _NAME.fullmatch(app)) or not _NAME.fullmatch(role):
        raise ValueError(
            f"`{text}` is not a role: write APP:ROLE in snake_case, e.g. `service_desk:agent`, "
            "or `*:ROLE` for every app"
        )
    return app, role


def create_user(
    connection: Connection,
    username: str,
    *,
    name: str,
    email: str | None = None,
    password: str | None = None,
    roles: Iterable[str] = (),
    policy: bool = True,
    now: dt.datetime | None = None,
) -> int:
    """Add an active user, with a password (optional: without one they cannot log in)
    and roles. Returns the new user's id.

    Raises:
        ValueError: a malformed username or role, an empty name, a username or email
            already taken.
        PasswordRejected: the password fails the policy (`policy=False` only in demos).
    """
    now = resolve_now(now)
    if not _USERNAME.fullmatch(username):
        raise ValueError(
            f"`{username}` is not a valid username: 1 to 120 letters, digits or . _ @ + -, "
            "starting with a letter or digit"
        )
    if not name.strip():
        raise ValueError("a user needs a display name")
    parsed = sorted({parse_role(text) for text in roles})
    if password is not None and policy:
        check_policy(username, password)  # before any write: a refusal leaves nothing behind
    users = pt.users
    _check_free(connection, users.c.username, username, "username")
    if email:
        _check_free(connection, users.c.email, email, "email")
    row = {"username": username, "name": name.strip(), "email": email or None, "active": True,
           "created_at": now, "updated_at": now}
    user_id = int(connection.execute(users.insert().values(**row)).inserted_primary_key[0])
    if password is not None:
        set_password(connection, user_id, password, policy=policy, now=now)
    _insert_roles(connection, user_id, parsed)
    return user_id


def user_id_of(connection: Connection, username: str) -> int:
    """The id of the user named `username`.

    Raises:
        UnknownUser: no such user.
    """
    users = pt.users
    user_id = connection.execute(
        select(users.c.id).where(users.c.username == username)
    ).scalar_one_or_none()
    if user_id is None:
        raise UnknownUser(username)
    return int(user_id)


def user_roles(connection: Connection, user_id: int) -> list[tuple[str, str]]:
    """The user's `(app, role)` rows, sorted."""
    table = pt.user_roles
    rows = connection.execute(
        select(table.c.app, table.c.role).where(table.c.user_id == user_id)
    ).all()
    return sorted((app, role) for app, role in rows)


def grant_roles(connection: Connection, user_id: int, roles: Iterable[str]) -> list[str]:
    """Add `app:role` grants; returns those that were new (granting twice is harmless)."""
    held = set(user_roles(connection, user_id))
    new = sorted({parse_role(text) for text in roles} - held)
    _insert_roles(connection, user_id, new)
    return [f"{app}:{role}" for app, role in new]


def revoke_roles(connection: Connection, user_id: int, roles: Iterable[str]) -> list[str]:
    """Remove `app:role` grants; returns those that were held."""
    table = pt.user_roles
    removed = []
    for app, role in sorted({parse_role(text) for text in roles}):
        result = connection.execute(
            delete(table).where(
                table.c.user_id == user_id, table.c.app == app, table.c.role == role
            )
        )
        if result.rowcount:
            removed.append(f"{app}:{role}")
    return removed


def _check_free(connection: Connection, column: object, value: str, what: str) -> None:
    found = connection.execute(select(pt.users.c.id).where(column == value)).first()
    if found is not None:
        raise ValueError(f"a user with {what} `{value}` already exists")


def _insert_roles(connection: Connection, user_id: int, roles: Iterable[tuple[str, str]]) -> None:
    rows = [{"user_id": user_id, "app": app, "role": role} for app, role in roles]
    if rows:
        connection.execute(pt.user_roles.insert(), rows)
