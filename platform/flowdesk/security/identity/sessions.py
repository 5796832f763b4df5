"""Server-side sessions of the web UI (`fd_sessions`) and their CSRF tokens.

The browser holds a random token (32 bytes, URL-safe) in the `flowdesk_session`
cookie; the database holds only its sha256, as the row id. A stolen database copy
therefore yields no usable cookie, and a lookup by the hash needs no constant-time
compare (finding a row by a hash reveals nothing about other rows' tokens).

Expiry slides: every use pushes `expires_at` to `now + idle`, but never past
`created_at + lifetime`, so an idle session dies after `idle` and a busy one after
`lifetime` at most. The sliding write happens at most once per `TOUCH_EVERY`, not on
every request. Revoking marks `revoked_at` (kept so "you were signed out" can be told
apart from "unknown"); `prune_sessions` deletes what can no longer be used.

CSRF: each session has a random secret; the token a form or `X-CSRF-Token` header
must carry is HMAC-SHA256(secret, session id). It is bound to the session (useless
with another cookie), never stored, and checked with a constant-time compare.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, or_, select, update

from flowdesk.store import platform_tables as pt

from ._time import as_utc, resolve_now
from .errors import CsrfRejected, SessionRejected, UnknownUser

__all__ = [
    "IDLE_TIMEOUT",
    "LIFETIME",
    "SESSION_COOKIE",
    "TOUCH_EVERY",
    "Session",
    "check_csrf",
    "cookie_options",
    "create_session",
    "csrf_token",
    "is_local_host",
    "load_session",
    "prune_sessions",
    "revoke_session",
    "revoke_user_sessions",
]

SESSION_COOKIE = "flowdesk_session"
IDLE_TIMEOUT = dt.timedelta(hours=8)
LIFETIME = dt.timedelta(days=7)
TOUCH_EVERY = dt.timedelta(minutes=1)
_MAX_TOKEN = 256  # longer cookie values are not ours; do not hash them


@dataclass(frozen=True)
class Session:
    """A live session as loaded (the token itself is never kept)."""

    id: str
    user_id: int
    created_at: dt.datetime
    expires_at: dt.datetime
    last_seen: dt.datetime
    csrf_secret: str = field(repr=False)
    user_agent: str | None = None
    client: str | None = None


def cookie_options(secure: bool) -> dict[str, Any]:
    """Attributes of the session cookie, named as Litestar's `Cookie` takes them.

    HttpOnly (scripts cannot read it), SameSite=Lax (not sent on cross-site POSTs),
    path `/`, and Secure unless the site is served over plain HTTP on the local
    machine (`is_local_host`), where browsers would drop a Secure cookie.
    """
    return {
        "key": SESSION_COOKIE,
        "httponly": True,
        "samesite": "lax",
        "secure": secure,
        "path": "/",
    }


def is_local_host(host: str) -> bool:
    """`localhost`, `*.localhost` or a loopback address (with or without a port)."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def create_session(
    connection: Connection,
    user_id: int,
    *,
    user_agent: str | None = None,
    client: str | None = None,
    now: dt.datetime | None = None,
    idle: dt.timedelta = IDLE_TIMEOUT,
    lifetime: dt.timedelta = LIFETIME,
) -> tuple[str, Session]:
    """Start a session for an authenticated user.

    Returns:
        The token for the cookie (shown to nobody else, stored nowhere) and the session.

    Raises:
        UnknownUser: no such user.
        SessionRejected: `inactive-user`.
    """
    now = resolve_now(now)
    users = pt.users
    active = connection.execute(
        select(users.c.active).where(users.c.id == user_id)
    ).scalar_one_or_none()
    if active is None:
        raise UnknownUser(user_id)
    if not active:
        raise SessionRejected("inactive-user")
    token = secrets.token_urlsafe(32)
    session = Session(
        id=_session_id(token),
        user_id=user_id,
        created_at=now,
        expires_at=min(now + idle, now + lifetime),
        last_seen=now,
        csrf_secret=secrets.token_hex(32),
        user_agent=_clip(user_agent, 255),
        client=_clip(client, 64),
    )
    connection.execute(pt.sessions.insert().values(**session.__dict__))
    return token, session


def load_session(
    connection: Connection,
    token: str,
    *,
    now: dt.datetime | None = None,
    idle: dt.timedelta = IDLE_TIMEOUT,
    lifetime: dt.timedelta = LIFETIME,
) -> Session:
    """The session of a cookie's token, its expiry slid forward.

    Writes (last_seen, expires_at) at most once per `TOUCH_EVERY`, so run it on a
    connection that may write.

    Raises:
        SessionRejected: `unknown`, `revoked`, `expired` or `inactive-user`.
    """
    now = resolve_now(now)
    if not token or len(token) > _MAX_TOKEN:
        raise SessionRejected("unknown")
    row = _session_row(connection, _session_id(token))
    if row is None:
        raise SessionRejected("unknown")
    session = _session(row)
    if row["revoked_at"] is not None:
        raise SessionRejected("revoked")
    if session.expires_at <= now:
        raise SessionRejected("expired")
    if not row["active"]:
        raise SessionRejected("inactive-user")
    if now - session.last_seen >= TOUCH_EVERY:
        session = _touch(connection, session, now, min(now + idle, session.created_at + lifetime))
    return session


def revoke_session(
    connection: Connection, session: Session | str, *, now: dt.datetime | None = None
) -> bool:
    """End one session (sign out), given the `Session` or the cookie's token.

    Returns True when a live session was revoked (False: unknown or already revoked).
    """
    session_id = session.id if isinstance(session, Session) else _session_id(session)
    table = pt.sessions
    statement = (
        update(table)
        .where(table.c.id == session_id, table.c.revoked_at.is_(None))
        .values(revoked_at=resolve_now(now))
    )
    return bool(connection.execute(statement).rowcount)


def revoke_user_sessions(
    connection: Connection,
    user_id: int,
    *,
    now: dt.datetime | None = None,
    keep: Session | None = None,
) -> int:
    """End every session of a user (password changed, user deactivated, "sign out
    everywhere"), except `keep` if given. Returns how many were revoked."""
    table = pt.sessions
    statement = (
        update(table)
        .where(table.c.user_id == user_id, table.c.revoked_at.is_(None))
        .values(revoked_at=resolve_now(now))
    )
    if keep is not None:
        statement = statement.where(table.c.id != keep.id)
    return int(connection.execute(statement).rowcount)


def prune_sessions(
    connection: Connection, *, now: dt.datetime | None = None, keep: dt.timedelta = dt.timedelta(0)
) -> int:
    """Delete sessions expired or revoked more than `keep` ago. Returns the count."""
    table = pt.sessions
    cutoff = resolve_now(now) - keep
    statement = delete(table).where(
        or_(table.c.expires_at <= cutoff, table.c.revoked_at <= cutoff)
    )
    return int(connection.execute(statement).rowcount)


def csrf_token(session: Session) -> str:
    """The CSRF token to embed in this session's forms (same value for its whole life)."""
    key = bytes.fromhex(session.csrf_secret)
    return hmac.new(key, session.id.encode("ascii"), hashlib.sha256).hexdigest()


def check_csrf(session: Session, token: str | None) -> None:
    """Accept a state-changing request only with this session's CSRF token.

    Raises:
        CsrfRejected: missing or wrong token.
    """
    expected = csrf_token(session).encode("ascii")
    if not token or not hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass")):
        raise CsrfRejected()


def _clip(text: str | None, length: int) -> str | None:
    """Informational text cut to its column (a long User-Agent must not fail a login);
    NUL characters, which PostgreSQL text refuses, are dropped."""
    cleaned = (text or "").replace("\x00", "")[:length]
    return cleaned or None


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _session_row(connection: Connection, session_id: str) -> Mapping[str, Any] | None:
    sessions, users = pt.sessions, pt.users
    query = (
        select(sessions, users.c.active)
        .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
        .where(sessions.c.id == session_id)
    )
    return connection.execute(query).mappings().first()


def _session(row: Mapping[str, Any]) -> Session:
    return Session(
        id=row["id"],
        user_id=int(row["user_id"]),
        created_at=as_utc(row["created_at"]),  # type: ignore[arg-type]
        expires_at=as_utc(row["expires_at"]),  # type: ignore[arg-type]
        last_seen=as_utc(row["last_seen"]),  # type: ignore[arg-type]
        csrf_secret=row["csrf_secret"],
        user_agent=row["user_agent"],
        client=row["client"],
    )


def _touch(
    connection: Connection, session: Session, now: dt.datetime, expires_at: dt.datetime
) -> Session:
    table = pt.sessions
    connection.execute(
        update(table)
        .where(table.c.id == session.id)
        .values(last_seen=now, expires_at=expires_at)
    )
    return Session(**{**session.__dict__, "last_seen": now, "expires_at": expires_at})
