"""Shared set-up of the identity tests (no tests here): users made through the library's
own `create_user`, a fixed clock, and a generous rate limiter for tests that are not
about rate limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa

from flowdesk.security.identity import LoginLimiter, Rate, create_user
from flowdesk.store import platform_tables as pt

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SECRET = "test-secret-key-of-at-least-32-characters!"


def add_user(
    engine: sa.Engine,
    username: str,
    password: str | None = "correct horse",
    *,
    roles: Iterable[str] = (),
    active: bool = True,
) -> int:
    with engine.begin() as connection:
        user_id = create_user(
            connection, username, name=username.title(), password=password, roles=roles, now=NOW
        )
        if not active:
            connection.execute(
                pt.users.update().where(pt.users.c.id == user_id).values(active=False)
            )
    return user_id


def set_active(engine: sa.Engine, user_id: int, active: bool) -> None:
    with engine.begin() as connection:
        connection.execute(pt.users.update().where(pt.users.c.id == user_id).values(active=active))


def relaxed_limiter() -> LoginLimiter:
    """A limiter that never gets in the way of tests about something else."""
    return LoginLimiter(Rate(10_000, 60), Rate(10_000, 60))


def at(minutes: float = 0, seconds: float = 0) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes, seconds=seconds)
