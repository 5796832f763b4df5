"""API keys: shown once and stored as a hash, verified before anything is said about
them, revoked, expired, throttled `last_used_at`, and role restrictions that can only
narrow what the user holds."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa
from test_identity_support import NOW, add_user, at, set_active

from flowdesk.security import load_principal
from flowdesk.security.identity import (
    ApiKeyRejected,
    UnknownUser,
    create_api_key,
    grant_roles,
    list_api_keys,
    restrict_principal,
    revoke_api_key,
    revoke_roles,
    verify_api_key,
)
from flowdesk.security.identity.apikeys import KEY_PATTERN
from flowdesk.store import platform_tables as pt


def new_key(engine: sa.Engine, user_id: int, name: str = "ci", **kw: object):
    with engine.begin() as connection:
        return create_api_key(connection, user_id, name, now=NOW, **kw)  # type: ignore[arg-type]


def verify(engine: sa.Engine, text: str, when: dt.datetime = NOW):
    with engine.begin() as connection:
        return verify_api_key(connection, text, now=when)


def reason(engine: sa.Engine, text: str, when: dt.datetime = NOW) -> str:
    with pytest.raises(ApiKeyRejected) as caught:
        verify(engine, text, when)
    return caught.value.reason


def last_used(engine: sa.Engine, prefix: str) -> dt.datetime | None:
    with engine.connect() as connection:
        value = connection.execute(
            sa.select(pt.api_keys.c.last_used_at).where(pt.api_keys.c.prefix == prefix)
        ).scalar_one()
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


def test_a_key_is_shown_once_and_stored_as_its_hash(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice", roles=["service_desk:agent"])
    text, key = new_key(engine, alice, "  nightly export ")
    match = KEY_PATTERN.fullmatch(text)
    assert match is not None and match.group(1) == key.prefix
    assert (key.user_id, key.username, key.name, key.roles, key.app) == (
        alice, "alice", "nightly export", None, None)
    with engine.connect() as connection:
        row = connection.execute(sa.select(pt.api_keys)).mappings().one()
    assert row["secret_hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert text not in {str(value) for value in row.values()}
    identity = verify(engine, text)
    assert (identity.user_id, identity.username, identity.prefix) == (alice, "alice", key.prefix)
    assert identity.roles is None and identity.app is None


def test_refusals_name_their_reason_after_the_secret_is_checked(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    text, key = new_key(engine, alice, expires_in=dt.timedelta(days=1))
    forged = text[:-1] + ("A" if text[-1] != "A" else "B")
    assert reason(engine, "Bearer " + text) == "malformed"
    assert reason(engine, "") == "malformed"
    assert reason(engine, forged) == "unknown"
    assert reason(engine, "fdk_000000_" + "a" * 43) == "unknown"
    assert reason(engine, text, NOW + dt.timedelta(days=1)) == "expired"
    with engine.begin() as connection:
        assert revoke_api_key(connection, key.prefix, now=at(minutes=1)) is True
        assert revoke_api_key(connection, key.prefix, now=at(minutes=2)) is False
        with pytest.raises(ApiKeyRejected, match="there is no API key `fdk_ffffff`"):
            revoke_api_key(connection, "fdk_ffffff")
    assert reason(engine, text) == "revoked"
    assert reason(engine, forged) == "unknown"  # knowing the prefix tells nothing
    other, _ = new_key(engine, alice)
    set_active(engine, alice, False)
    assert reason(engine, other) == "inactive-user"


def test_last_used_is_written_at_most_once_a_minute(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    text, key = new_key(engine, alice)
    assert last_used(engine, key.prefix) is None
    verify(engine, text, NOW)
    assert last_used(engine, key.prefix) == NOW
    verify(engine, text, at(seconds=59))
    assert last_used(engine, key.prefix) == NOW
    verify(engine, text, at(seconds=60))
    assert last_used(engine, key.prefix) == at(seconds=60)


def test_roles_narrow_and_never_widen(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice",
                     roles=["service_desk:agent", "service_desk:supervisor", "*:monitor"])
    text, key = new_key(engine, alice, roles=["service_desk:agent", "*:monitor"])
    assert key.roles == ("*:monitor", "service_desk:agent")
    identity = verify(engine, text)
    with engine.connect() as connection:
        full = load_principal(connection, alice, "service_desk")
        elsewhere = load_principal(connection, alice, "procurement")
    assert full.roles == {"agent", "supervisor", "monitor"}
    assert restrict_principal(full, identity).roles == {"agent", "monitor"}
    assert restrict_principal(elsewhere, identity).roles == {"monitor"}
    with engine.begin() as connection:  # a role the user loses is lost to the key
        revoke_roles(connection, alice, ["service_desk:agent"])
        grant_roles(connection, alice, ["service_desk:admin"])
        now_held = load_principal(connection, alice, "service_desk")
    assert restrict_principal(now_held, identity).roles == {"monitor"}


def test_an_app_limited_key_has_no_roles_elsewhere(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice", roles=["*:agent"])
    text, _ = new_key(engine, alice, app="service_desk")
    identity = verify(engine, text)
    with engine.connect() as connection:
        there = load_principal(connection, alice, "service_desk")
        elsewhere = load_principal(connection, alice, "procurement")
    assert identity.allows_app("service_desk") and not identity.allows_app("procurement")
    assert restrict_principal(there, identity).roles == {"agent"}
    assert restrict_principal(elsewhere, identity).roles == frozenset()


def test_creation_refuses_what_cannot_apply(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice", roles=["service_desk:agent"])
    bad = [
        ({"roles": ["service_desk:admin"]}, "does not hold role `service_desk:admin`"),
        ({"roles": ["procurement:agent"]}, "does not hold role `procurement:agent`"),
        ({"roles": ["agent"]}, "is not a role"),
        ({"roles": ["service_desk:agent"], "app": "procurement"}, "another app"),
        ({"expires_in": dt.timedelta(0)}, "lifetime must be positive"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            new_key(engine, alice, **options)
    with pytest.raises(ValueError, match="needs a name"):
        new_key(engine, alice, "   ")
    with pytest.raises(UnknownUser):
        new_key(engine, 9999)
    # `*:agent` asks for the role in every app: holding it in one is enough to keep it
    assert new_key(engine, alice, roles=["*:agent"])[1].roles == ("*:agent",)


def test_list_keys_without_secrets(engine: sa.Engine) -> None:
    alice, bob = add_user(engine, "alice"), add_user(engine, "bob")
    _, first = new_key(engine, alice, "one")
    _, second = new_key(engine, bob, "two", expires_in=dt.timedelta(days=1))
    with engine.begin() as connection:
        revoke_api_key(connection, first.prefix, now=NOW)
        assert [k.prefix for k in list_api_keys(connection)] == [second.prefix]
        listed = list_api_keys(connection, include_revoked=True)
        assert [k.prefix for k in listed] == [first.prefix, second.prefix]
        assert [k.prefix for k in list_api_keys(connection, user_id=bob)] == [second.prefix]
    assert [k.status(at(minutes=1)) for k in listed] == ["revoked", "active"]
    assert listed[1].status(NOW + dt.timedelta(days=1)) == "expired"
    assert not hasattr(listed[0], "secret_hash")
