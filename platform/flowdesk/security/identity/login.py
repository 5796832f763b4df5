"""Checking a username and password: rate limits, lockout, constant-time-ish refusals.

`authenticate` takes the **engine**, not a connection, on purpose: a refused login
must still record its failure, and a caller's transaction would roll that record
back when the refusal propagates as an exception. So the function owns its short
transactions: one read (read-only, takes no SQLite write lock), the password check
with no transaction open (argon2 takes ~40 ms), then one write only when there is
something to record (a failure, a reset after earlier failures, a re-hash).

Order of checks, each cheaper than the next:

1. the in-process rate limiter (per client address and per username), which
   refuses with `RateLimited(retry_after)` before any database or hashing work;
2. the lockout row of the username in `fd_login_failures` (shared by every
   process): while `locked_until` is ahead, `AccountLocked(until)` without checking
   the password, so a correct guess during the lock is worth nothing;
3. the password against the user's argon2 hash, or against a dummy hash when the
   user does not exist or has no password, so the time taken is the same;
4. a failure (wrong password, unknown user) is counted for the username; the
   `lockout.failures`-th consecutive one locks it for `lockout.duration`. Unknown
   usernames are counted and locked exactly like real ones, so the answers never
   reveal whether a user exists. A correct password of an inactive user is refused
   with the same `InvalidCredentials` and is not counted.

Failures older than `lockout.duration` are forgotten: the count restarts, and an
expired lock is cleared by the next attempt. A success deletes the row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from flowdesk.store import platform_tables as pt
from flowdesk.store.engine import read_only

from ._time import as_utc, resolve_now
from .errors import AccountLocked, InvalidCredentials
from .passwords import dummy_verify, hash_password, needs_rehash, verify_password
from .ratelimit import LoginLimiter

__all__ = [
    "DEFAULT_LOCKOUT",
    "AuthResult",
    "Lockout",
    "authenticate",
    "default_limiter",
    "prune_login_failures",
    "unlock",
]


@dataclass(frozen=True)
class Lockout:
    """Lock a username after `failures` consecutive failures, for `duration`."""

    failures: int = 5
    duration: dt.timedelta = field(default=dt.timedelta(minutes=15))

    def __post_init__(self) -> None:
        if self.failures < 1 or self.duration <= dt.timedelta(0):
            raise ValueError(f"a lockout needs at least 1 failure and a positive duration: {self}")


DEFAULT_LOCKOUT = Lockout()

_DEFAULT_LIMITER = LoginLimiter()


def default_limiter() -> LoginLimiter:
    """The process-wide limiter `authenticate` uses unless given one."""
    return _DEFAULT_LIMITER


@dataclass(frozen=True)
class AuthResult:
    """A successful login.

    Attributes:
        user_id: `fd_users.id`, for `create_session` or `issue_token`.
        username: As stored.
        rehashed: The stored hash was upgraded to today's argon2 parameters.
    """

    user_id: int
    username: str
    rehashed: bool = False


def authenticate(
    engine: Engine,
    username: str,
    password: str,
    *,
    client: str,
    now: dt.datetime | None = None,
    lockout: Lockout = DEFAULT_LOCKOUT,
    limiter: LoginLimiter | None = None,
) -> AuthResult:
    """Check a username and password (see the module docstring for the order).

    Args:
        engine: The platform database; the function commits its own writes.
        client: The caller's address (rate limited per address).
        now: The current time (aware); default: the clock.
        lockout: Failures before a lock, and its length.
        limiter: Default: the process-wide `default_limiter()`.

    Raises:
        RateLimited: too many attempts from `client` or for `username` just now.
        AccountLocked: the username is locked until `error.until`.
        InvalidCredentials: anything else; the message reveals nothing.
    """
    now = resolve_now(now)
    (limiter or _DEFAULT_LIMITER).acquire(client, username, now)
    key = _key(username)
    if "\x00" in username:  # no user can have it, and PostgreSQL text refuses it
        dummy_verify(password)
        raise InvalidCredentials()
    with read_only(engine).connect() as connection:
        failures = _failure_row(connection, key)
        user = _user_row(connection, username)
    if failures is not None:
        locked_until = as_utc(failures["locked_until"])
        if locked_until is not None and locked_until > now:
            raise AccountLocked(locked_until)
    if user is None or not user["password_hash"]:
        dummy_verify(password)
        matched = False
    else:
        matched = verify_password(user["password_hash"], password)
    if not matched:
        _record_failure(engine, key, now, lockout)
        raise InvalidCredentials()
    if not user["active"]:
        raise InvalidCredentials()
    return _succeed(engine, user, password, had_failures=failures is not None, now=now)


def unlock(connection: Connection, username: str) -> bool:
    """Forget the failures of `username` (an administrator's action); True if any."""
    table = pt.login_failures
    statement = delete(table).where(table.c.username == _key(username))
    return bool(connection.execute(statement).rowcount)


def prune_login_failures(
    connection: Connection, *, now: dt.datetime | None = None, lockout: Lockout = DEFAULT_LOCKOUT
) -> int:
    """Delete the rows that no longer matter (last failure older than a lock would
    last); unknown usernames tried once would otherwise stay forever. Returns the count.
    """
    table = pt.login_failures
    cutoff = resolve_now(now) - lockout.duration
    return int(connection.execute(delete(table).where(table.c.last_failed_at <= cutoff)).rowcount)


def _key(username: str) -> str:
    """The lockout row's key: the username as typed, cut to the column's length."""
    return username[:120]


def _failure_row(connection: Connection, username: str) -> Mapping[str, Any] | None:
    table = pt.login_failures
    return (
        connection.execute(select(table).where(table.c.username == username)).mappings().first()
    )


def _user_row(connection: Connection, username: str) -> Mapping[str, Any] | None:
    users = pt.users
    query = select(users.c.id, users.c.username, users.c.password_hash, users.c.active).where(
        users.c.username == username
    )
    return connection.execute(query).mappings().first()


def _record_failure(engine: Engine, username: str, now: dt.datetime, lockout: Lockout) -> None:
    """Count one failure (an atomic upsert, so concurrent processes never lose one) and
    lock the username when this failure reaches the threshold."""
    table = pt.login_failures
    stale = table.c.last_failed_at <= now - lockout.duration
    with engine.begin() as connection:
        insert = _insert_for(connection)(table).values(
            username=username, failures=1, last_failed_at=now, locked_until=None
        )
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.username],
            set_={
                "failures": case((stale, 1), else_=table.c.failures + 1),
                "locked_until": case((stale, None), else_=table.c.locked_until),
                "last_failed_at": now,
            },
        ).returning(table.c.failures)
        count = connection.execute(statement).scalar_one()
        if count >= lockout.failures:
            connection.execute(
                update(table)
                .where(table.c.username == username)
                .values(locked_until=now + lockout.duration)
            )


def _insert_for(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def _succeed(
    engine: Engine, user: Mapping[str, Any], password: str, *, had_failures: bool, now: dt.datetime
) -> AuthResult:
    # Hash before the transaction: argon2 must not run while SQLite's write lock is held.
    new_hash = hash_password(password) if needs_rehash(user["password_hash"]) else None
    if had_failures or new_hash:
        with engine.begin() as connection:
            if had_failures:
                unlock(connection, user["username"])
            if new_hash:
                users = pt.users
                connection.execute(
                    update(users)
                    .where(users.c.id == user["id"])
                    .values(password_hash=new_hash, updated_at=now)
                )
    return AuthResult(int(user["id"]), user["username"], rehashed=new_hash is not None)
