"""API keys (`fd_api_keys`): long-lived credentials of scripts and integrations.

A key reads `fdk_3f9a1c_<43 URL-safe characters>`: the prefix (`fdk_` + 6 hex digits)
names the key to humans (lists, logs, `flowdesk apikey revoke fdk_3f9a1c`) and is the
lookup key; the rest is 32 random bytes. The text is shown once, when the key is
made; the database keeps only its sha256.

sha256, not argon2, is right for these secrets: argon2's cost exists to slow down
guessing *low-entropy* secrets (passwords people choose) from a stolen hash. A key
holds 256 random bits, so no guessing attack exists to slow down, while a slow hash
would add ~40 ms to every API request that presents the key.

A key acts as its user, optionally narrowed: `roles` (a list of `app:role`, `*` for
every app) keeps only those of the user's roles, and `app` limits the key to one app.
It can never widen: roles the user loses are lost to the key too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, or_, select, update

from flowdesk.store import platform_tables as pt

from ..principal import Principal
from ._time import as_utc, resolve_now
from .errors import ApiKeyRejected, UnknownUser
from .users import ALL_APPS, parse_role, user_roles

__all__ = [
    "KEY_PATTERN",
    "TOUCH_EVERY",
    "ApiKey",
    "ApiKeyIdentity",
    "RoleRestriction",
    "create_api_key",
    "list_api_keys",
    "restrict_principal",
    "restrict_roles",
    "revoke_api_key",
    "verify_api_key",
]

KEY_PATTERN = re.compile(r"(fdk_[0-9a-f]{6})_([A-Za-z0-9_-]{43})")
TOUCH_EVERY = dt.timedelta(minutes=1)
"""`last_used_at` is written at most this often per key, not on every request."""


@dataclass(frozen=True)
class ApiKey:
    """A key as listed (never its secret or hash)."""

    id: int
    prefix: str
    user_id: int
    username: str
    name: str
    roles: tuple[str, ...] | None
    app: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def status(self, now: dt.datetime) -> str:
        """`active`, `revoked` or `expired`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class ApiKeyIdentity:
    """Who a verified key acts as, and how it narrows their roles.

    Attributes:
        roles: `(app, role)` pairs the key keeps (app `*`: every app); None: all.
        app: The only app the key may act in; None: every app.
    """

    key_id: int
    prefix: str
    user_id: int
    username: str
    roles: frozenset[tuple[str, str]] | None
    app: str | None

    def allows_app(self, app: str) -> bool:
        return self.app is None or self.app == app

    def restrict(self, held: Iterable[str], app: str) -> frozenset[str]:
        """The roles the key may use in `app`, out of those the user `held` there."""
        return restrict_roles(self.roles, self.app, held, app)


class RoleRestriction(Protocol):
    """What narrows a user's roles: an `ApiKeyIdentity` or a token's `TokenClaims`."""

    def restrict(self, held: Iterable[str], app: str) -> frozenset[str]: ...


def restrict_roles(
    kept: frozenset[tuple[str, str]] | None,
    only_app: str | None,
    held: Iterable[str],
    app: str,
) -> frozenset[str]:
    """The roles usable in `app`: those `held` there that `kept` keeps (None: all),
    and none at all outside `only_app` (None: every app)."""
    if only_app is not None and only_app != app:
        return frozenset()
    if kept is None:
        return frozenset(held)
    return frozenset(held) & {role for role_app, role in kept if role_app in (app, ALL_APPS)}


def restrict_principal(principal: Principal, restriction: RoleRestriction) -> Principal:
    """`principal` (loaded for the key's or token's user) with only the roles it keeps."""
    roles = restriction.restrict(principal.roles, principal.app)
    return dataclasses.replace(principal, roles=roles)


def create_api_key(
    connection: Connection,
    user_id: int,
    name: str,
    *,
    roles: Sequence[str] | None = None,
    app: str | None = None,
    expires_in: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, ApiKey]:
    """Make a key for a user. The returned text is the only copy: show it once.

    Args:
        roles: `app:role` entries to keep (each must be a role the user holds);
            None keeps all of the user's roles.
        app: Limit the key to this app.
        expires_in: Lifetime; None: until revoked.

    Raises:
        UnknownUser: no such user.
        ValueError: an empty name, a malformed or unheld role, a role for another app
            than `app`, or a lifetime that is not positive.
    """
    now = resolve_now(now)
    name = name.strip()
    if not name or len(name) > 120:
        raise ValueError("an API key needs a name of 1 to 120 characters")
    if expires_in is not None and expires_in <= dt.timedelta(0):
        raise ValueError("an API key's lifetime must be positive")
    username = _username(connection, user_id)
    kept = _check_roles(connection, user_id, username, roles, app)
    prefix = _new_prefix(connection)
    secret = secrets.token_urlsafe(32)
    text = f"{prefix}_{secret}"
    values = {
        "prefix": prefix,
        "secret_hash": _hash(text),
        "user_id": user_id,
        "name": name,
        "roles": kept,
        "app": app,
        "created_at": now,
        "expires_at": now + expires_in if expires_in is not None else None,
        "last_used_at": None,
        "revoked_at": None,
    }
    key_id = connection.execute(pt.api_keys.insert().values(**values)).inserted_primary_key[0]
    return text, _api_key({**values, "id": key_id, "username": username})


def verify_api_key(
    connection: Connection, text: str, *, now: dt.datetime | None = None
) -> ApiKeyIdentity:
    """The identity of a presented key; records its use at most once per `TOUCH_EVERY`.

    The secret is checked before anything else is said about the key, so knowing a
    prefix (which is not secret) tells nothing about whether it was revoked.

    Raises:
        ApiKeyRejected: `malformed`, `unknown`, `revoked`, `expired`, `inactive-user`.
    """
    now = resolve_now(now)
    match = KEY_PATTERN.fullmatch(text.strip()) if text else None
    if match is None:
        raise ApiKeyRejected("malformed")
    row = _key_row(connection, match.group(1))
    if row is None or not hmac.compare_digest(row["secret_hash"], _hash(match.group(0))):
        raise ApiKeyRejected("unknown")
    if row["revoked_at"] is not None:
        raise ApiKeyRejected("revoked")
    expires_at = as_utc(row["expires_at"])
    if expires_at is not None and expires_at <= now:
        raise ApiKeyRejected("expired")
    if not row["active"]:
        raise ApiKeyRejected("inactive-user")
    _touch(connection, row, now)
    roles = row["roles"]
    return ApiKeyIdentity(
        key_id=int(row["id"]),
        prefix=row["prefix"],
        user_id=int(row["user_id"]),
        username=row["username"],
        roles=None if roles is None else frozenset(parse_role(r) for r in roles),
        app=row["app"],
    )


def revoke_api_key(connection: Connection, prefix: str, *, now: dt.datetime | None = None) -> bool:
    """Revoke a key by its prefix. Returns False when it was already revoked.

    Raises:
        ApiKeyRejected: `unknown` prefix.
    """
    table = pt.api_keys
    prefix = prefix.strip()
    if connection.execute(select(table.c.id).where(table.c.prefix == prefix)).first() is None:
        raise ApiKeyRejected("unknown", f"there is no API key `{prefix}`")
    statement = (
        update(table)
        .where(table.c.prefix == prefix, table.c.revoked_at.is_(None))
        .values(revoked_at=resolve_now(now))
    )
    return bool(connection.execute(statement).rowcount)


def list_api_keys(
    connection: Connection, *, user_id: int | None = None, include_revoked: bool = False
) -> list[ApiKey]:
    """Keys, oldest first; revoked ones only when asked."""
    keys, users = pt.api_keys, pt.users
    query = (
        select(*[c for c in keys.c if c.name != "secret_hash"], users.c.username)
        .select_from(keys.join(users, users.c.id == keys.c.user_id))
        .order_by(keys.c.id)
    )
    if user_id is not None:
        query = query.where(keys.c.user_id == user_id)
    if not include_revoked:
        query = query.where(keys.c.revoked_at.is_(None))
    return [_api_key(row) for row in connection.execute(query).mappings()]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _username(connection: Connection, user_id: int) -> str:
    users = pt.users
    username = connection.execute(
        select(users.c.username).where(users.c.id == user_id)
    ).scalar_one_or_none()
    if username is None:
        raise UnknownUser(user_id)
    return str(username)


def _check_roles(
    connection: Connection,
    user_id: int,
    username: str,
    roles: Sequence[str] | None,
    app: str | None,
) -> list[str] | None:
    """The restriction as stored (`app:role` strings), refusing what cannot apply."""
    if roles is None:
        return None
    held = user_roles(connection, user_id)
    kept = []
    for text in roles:
        role_app, role = parse_role(text)
        if app is not None and role_app not in (app, ALL_APPS):
            raise ValueError(f"role `{text}` is for another app than the key's app `{app}`")
        if not _holds(held, role_app, role):
            raise ValueError(f"user `{username}` does not hold role `{text}`")
        kept.append(f"{role_app}:{role}")
    return sorted(set(kept))


def _holds(held: Iterable[tuple[str, str]], role_app: str, role: str) -> bool:
    """The user holds `role` where the key would use it: in that app or in every app
    (a key role for every app needs the role in at least one)."""
    return any(
        r == role and (a == role_app or ALL_APPS in (a, role_app)) for a, r in held
    )


def _new_prefix(connection: Connection) -> str:
    """A prefix no key has yet (24 random bits; a clash is retried, not expected)."""
    table = pt.api_keys
    for _ in range(20):
        prefix = f"fdk_{secrets.token_hex(3)}"
        if connection.execute(select(table.c.id).where(table.c.prefix == prefix)).first() is None:
            return prefix
    raise RuntimeError("could not find a free API key prefix in 20 tries")


def _key_row(connection: Connection, prefix: str) -> Mapping[str, Any] | None:
    keys, users = pt.api_keys, pt.users
    query = (
        select(keys, users.c.username, users.c.active)
        .select_from(keys.join(users, users.c.id == keys.c.user_id))
        .where(keys.c.prefix == prefix)
    )
    return connection.execute(query).mappings().first()


def _touch(connection: Connection, row: Mapping[str, Any], now: dt.datetime) -> None:
    """Record a use unless one was recorded less than `TOUCH_EVERY` ago (the condition
    is repeated in SQL so concurrent requests write once between them)."""
    last = as_utc(row["last_used_at"])
    if last is not None and now - last < TOUCH_EVERY:
        return
    table = pt.api_keys
    connection.execute(
        update(table)
        .where(
            table.c.id == row["id"],
            or_(table.c.last_used_at.is_(None), table.c.last_used_at <= now - TOUCH_EVERY),
        )
        .values(last_used_at=now)
    )


def _api_key(row: Mapping[str, Any]) -> ApiKey:
    roles = row["roles"]
    return ApiKey(
        id=int(row["id"]),
        prefix=row["prefix"],
        user_id=int(row["user_id"]),
        username=row["username"],
        name=row["name"],
        roles=None if roles is None else tuple(roles),
        app=row["app"],
        created_at=as_utc(row["created_at"]),  # type: ignore[arg-type]
        expires_at=as_utc(row["expires_at"]),
        last_used_at=as_utc(row["last_used_at"]),
        revoked_at=as_utc(row["revoked_at"]),
    )
