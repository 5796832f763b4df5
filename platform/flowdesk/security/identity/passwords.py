"""Password hashing (argon2id) and the minimum password policy.

Parameters are OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): about 40 ms per
hash or check on the 2-core reference machine, against ~250 ms for argon2-cffi's
default profile (64 MiB, 3 passes, 4 lanes). A login is a CPU-bound request on a
small server, so the cheaper recommended profile keeps logins from starving other
requests while still costing an offline attacker 19 MiB per guess. Hashes made with
other parameters still verify; `needs_rehash` tells `authenticate` to re-hash them
with these on the next successful login, so changing the parameters needs no
migration.
"""

from __future__ import annotations

import datetime as dt

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, delete, select, update

from flowdesk.store import platform_tables as pt

from ._time import resolve_now
from .errors import PasswordRejected, UnknownUser

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "check_policy",
    "dummy_verify",
    "hash_password",
    "needs_rehash",
    "set_password",
    "verify_password",
]

MIN_LENGTH = 8
MAX_LENGTH = 1024  # beyond this a "password" is a request body, not something typed

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted; a new salt every call)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; a missing or corrupt hash never does."""
    if not password_hash:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with other parameters than today's: re-hash after a success."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def dummy_verify(password: str) -> None:
    """Spend the time of one real check against a throw-away hash.

    Used when there is no hash to check (unknown user, user without a password) so
    that the response time does not tell a caller whether the user exists.
    """
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _HASHER.hash("flowdesk dummy password, never valid")
    verify_password(_dummy_hash, password)


def check_policy(username: str, password: str) -> None:
    """The minimum policy: at least `MIN_LENGTH` characters and not the username.

    Raises:
        PasswordRejected: naming the rule that failed.
    """
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"the password must have at most {MAX_LENGTH} characters")
    if password.strip().casefold() == username.strip().casefold():
        raise PasswordRejected("the password must not be the username")


def set_password(
    connection: Connection,
    user_id: int,
    password: str,
    *,
    policy: bool = True,
    now: dt.datetime | None = None,
) -> None:
    """Hash and store a user's password, and lift a lockout of their username.

    Args:
        policy: Check the minimum policy. Only demo set-ups pass `False`, explicitly,
            because their users' password is their user name.

    Raises:
        UnknownUser: no user has this id.
        PasswordRejected: the password fails the policy.
    """
    users = pt.users
    username = connection.execute(
        select(users.c.username).where(users.c.id == user_id)
    ).scalar_one_or_none()
    if username is None:
        raise UnknownUser(user_id)
    if policy:
        check_policy(username, password)
    elif not password:
        raise PasswordRejected("the password must not be empty")
    connection.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=hash_password(password), updated_at=resolve_now(now))
    )
    connection.execute(delete(pt.login_failures).where(pt.login_failures.c.username == username))
