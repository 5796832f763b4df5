"""Password hashing and policy, `set_password`, and users and roles as `flowdesk user`
makes them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from test_identity_support import NOW, add_user, relaxed_limiter

from flowdesk.security import load_principal
from flowdesk.security.identity import (
    InvalidCredentials,
    PasswordRejected,
    UnknownUser,
    authenticate,
    check_policy,
    create_user,
    grant_roles,
    hash_password,
    needs_rehash,
    parse_role,
    revoke_roles,
    set_password,
    user_id_of,
    user_roles,
    verify_password,
)
from flowdesk.security.identity.passwords import dummy_verify
from flowdesk.store import platform_tables as pt


def test_hash_and_verify() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(first, "correct horse") and verify_password(second, "correct horse")
    assert not verify_password(first, "correct horsE")
    assert not verify_password(None, "") and not verify_password("", "x")
    assert not verify_password("not a hash", "x")
    assert not needs_rehash(first)
    assert needs_rehash(PasswordHasher(time_cost=3).hash("x")) and needs_rehash("garbage")
    dummy_verify("anything")  # never raises, never matches anything


def test_the_policy() -> None:
    check_policy("alice", "12345678")
    refused = {
        "1234567": "at least 8 characters",
        "x" * 1025: "at most 1024 characters",
        "ALICE.SMITH": "must not be the username",
    }
    for password, message in refused.items():
        with pytest.raises(PasswordRejected, match=message):
            check_policy("alice.smith", password)


def test_set_password(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice", password=None)
    with engine.begin() as connection:
        with pytest.raises(PasswordRejected, match="must not be the username"):
            set_password(connection, alice, "Alice   ", now=NOW)
        with pytest.raises(UnknownUser, match="there is no user `9999`"):
            set_password(connection, 9999, "long enough", now=NOW)
        with pytest.raises(PasswordRejected, match="must not be empty"):
            set_password(connection, alice, "", policy=False, now=NOW)
        set_password(connection, alice, "alice", policy=False, now=NOW)  # a demo user
    limiter = relaxed_limiter()
    assert authenticate(engine, "alice", "alice", client="c", limiter=limiter).user_id == alice
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            authenticate(engine, "alice", "wrong", client="c", limiter=limiter)
    with engine.begin() as connection:  # an administrator's reset lifts the lockout
        set_password(connection, alice, "a new password", now=NOW)
    assert authenticate(engine, "alice", "a new password", client="c", limiter=limiter)


def test_create_user_and_roles(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        alice = create_user(connection, "alice", name=" Alice ", email="a@example.com",
                            password="correct horse", now=NOW,
                            roles=["service_desk:agent", "*:monitor", "service_desk:agent"])
        assert user_id_of(connection, "alice") == alice
        assert user_roles(connection, alice) == [("*", "monitor"), ("service_desk", "agent")]
        assert grant_roles(connection, alice, ["service_desk:agent", "procurement:approver"]) == [
            "procurement:approver"]
        assert revoke_roles(connection, alice, ["*:monitor", "*:admin"]) == ["*:monitor"]
        principal = load_principal(connection, alice, "procurement")
        row = connection.execute(sa.select(pt.users).where(pt.users.c.id == alice)).mappings().one()
    assert principal.roles == {"approver"}
    assert (row["name"], row["email"], row["active"]) == ("Alice", "a@example.com", True)

    refusals = [
        ({"username": "alice"}, "username `alice` already exists"),
        ({"username": "alice2", "email": "a@example.com"}, "email `a@example.com` already"),
        ({"username": "has space"}, "not a valid username"),
        ({"username": ""}, "not a valid username"),
        ({"username": "bob", "name": "  "}, "needs a display name"),
        ({"username": "bob", "roles": ["Service:agent"]}, "is not a role"),
    ]
    for options, message in refusals:
        arguments = {"name": "Someone", **options}
        with pytest.raises(ValueError, match=message), engine.begin() as connection:
            create_user(connection, arguments.pop("username"), **arguments)  # type: ignore[arg-type]
    with pytest.raises(PasswordRejected), engine.begin() as connection:
        create_user(connection, "carol", name="Carol", password="carol")
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(pt.users)).scalar() == 1
        with pytest.raises(UnknownUser):
            user_id_of(connection, "carol")


def test_parse_role() -> None:
    assert parse_role(" service_desk:agent ") == ("service_desk", "agent")
    assert parse_role("*:admin") == ("*", "admin")
    for text in ("agent", ":agent", "app:", "app:Agent", "*:*", "a b:c"):
        with pytest.raises(ValueError, match="is not a role"):
            parse_role(text)
