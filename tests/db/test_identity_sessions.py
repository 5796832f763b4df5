"""Web sessions: only a hash stored, sliding and absolute expiry, throttled writes,
revocation, inactive users, CSRF tokens and cookie attributes."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa
from test_identity_support import NOW, add_user, at, set_active

from flowdesk.security.identity import (
    SESSION_COOKIE,
    CsrfRejected,
    SessionRejected,
    UnknownUser,
    check_csrf,
    cookie_options,
    create_session,
    csrf_token,
    is_local_host,
    load_session,
    prune_sessions,
    revoke_session,
    revoke_user_sessions,
)
from flowdesk.store import platform_tables as pt

HOUR = dt.timedelta(hours=1)


def load(engine: sa.Engine, token: str, when: dt.datetime, **kw: object):
    with engine.begin() as connection:
        return load_session(connection, token, now=when, **kw)  # type: ignore[arg-type]


def new_session(engine: sa.Engine, user_id: int, when: dt.datetime = NOW, **kw: object):
    with engine.begin() as connection:
        return create_session(connection, user_id, now=when, **kw)  # type: ignore[arg-type]


def rejected(engine: sa.Engine, token: str, when: dt.datetime, **kw: object) -> str:
    with pytest.raises(SessionRejected) as caught:
        load(engine, token, when, **kw)
    return caught.value.reason


def test_a_session_round_trips_and_only_its_hash_is_stored(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    token, session = new_session(engine, alice, user_agent="Firefox " + "x" * 300,
                                 client="192.0.2.7")
    assert len(token) >= 43 and session.id == hashlib.sha256(token.encode()).hexdigest()
    with engine.connect() as connection:
        stored = connection.execute(sa.select(pt.sessions)).mappings().one()
    assert token not in {str(value) for value in stored.values()}
    assert len(stored["user_agent"]) == 255 and stored["client"] == "192.0.2.7"
    loaded = load(engine, token, at(seconds=30))
    assert (loaded.id, loaded.user_id, loaded.created_at) == (session.id, alice, NOW)
    assert loaded.expires_at == NOW + 8 * HOUR
    assert "csrf_secret" not in repr(loaded)


def test_expiry_slides_with_use_but_not_past_the_lifetime(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    idle, lifetime = 2 * HOUR, 5 * HOUR
    token, _ = new_session(engine, alice, idle=idle, lifetime=lifetime)
    for hours in (1.5, 3, 4.5):  # each use within the idle time keeps it alive
        session = load(engine, token, NOW + hours * HOUR, idle=idle, lifetime=lifetime)
        assert session.expires_at == min(NOW + hours * HOUR + idle, NOW + lifetime)
    assert rejected(engine, token, NOW + lifetime, idle=idle, lifetime=lifetime) == "expired"


def test_an_idle_session_expires(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    token, session = new_session(engine, alice)
    assert load(engine, token, session.expires_at - dt.timedelta(seconds=1))
    token, session = new_session(engine, alice)
    assert rejected(engine, token, session.expires_at) == "expired"


def test_last_seen_is_written_at_most_once_a_minute(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    token, _ = new_session(engine, alice)
    assert load(engine, token, at(seconds=59)).last_seen == NOW  # no write
    with engine.connect() as connection:
        stored = connection.execute(sa.select(pt.sessions.c.last_seen)).scalar_one()
    assert stored.replace(tzinfo=dt.UTC) == NOW
    assert load(engine, token, at(seconds=60)).last_seen == at(seconds=60)
    assert load(engine, token, at(seconds=61)).expires_at == at(seconds=60) + 8 * HOUR


def test_revoked_unknown_and_inactive_are_refused(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    token, session = new_session(engine, alice)
    other, _ = new_session(engine, alice)
    with engine.begin() as connection:
        assert revoke_session(connection, token, now=at(minutes=1)) is True
        assert revoke_session(connection, session, now=at(minutes=1)) is False
    assert rejected(engine, token, at(minutes=2)) == "revoked"
    assert rejected(engine, "not-a-token", NOW) == "unknown"
    assert rejected(engine, "", NOW) == "unknown"
    assert rejected(engine, "x" * 5000, NOW) == "unknown"
    set_active(engine, alice, False)
    assert rejected(engine, other, at(minutes=2)) == "inactive-user"
    with pytest.raises(SessionRejected, match="inactive-user"):
        new_session(engine, alice)
    with pytest.raises(UnknownUser):
        new_session(engine, 9999)


def test_revoking_every_session_of_a_user_can_keep_one(engine: sa.Engine) -> None:
    alice, bob = add_user(engine, "alice"), add_user(engine, "bob")
    tokens = [new_session(engine, alice)[0] for _ in range(3)]
    current = load(engine, tokens[0], NOW)
    bobs, _ = new_session(engine, bob)
    with engine.begin() as connection:
        assert revoke_user_sessions(connection, alice, now=NOW, keep=current) == 2
        assert revoke_user_sessions(connection, alice, now=NOW) == 1
    assert {rejected(engine, t, NOW) for t in tokens} == {"revoked"}
    assert load(engine, bobs, NOW).user_id == bob


def test_prune_deletes_only_what_cannot_be_used(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    live, _ = new_session(engine, alice, at(minutes=30))
    old, _ = new_session(engine, alice)
    gone, _ = new_session(engine, alice, at(minutes=20))
    with engine.begin() as connection:
        revoke_session(connection, gone, now=at(minutes=25))
        assert prune_sessions(connection, now=NOW + 8 * HOUR, keep=dt.timedelta(0)) == 2
    assert load(engine, live, NOW + 8 * HOUR).user_id == alice
    assert rejected(engine, old, NOW) == "unknown"


def test_csrf_tokens_belong_to_their_session(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    _, first = new_session(engine, alice)
    _, second = new_session(engine, alice)
    token = csrf_token(first)
    assert token == csrf_token(first) and len(token) == 64
    check_csrf(first, token)
    for wrong in (None, "", csrf_token(second), token[:-1] + "0" if token[-1] != "0" else "1",
                  "é" * 64):
        with pytest.raises(CsrfRejected):
            check_csrf(first, wrong)


def test_cookie_attributes() -> None:
    assert SESSION_COOKIE == "flowdesk_session"
    options = cookie_options(secure=True)
    assert options == {"key": "flowdesk_session", "httponly": True, "samesite": "lax",
                       "secure": True, "path": "/"}
    assert cookie_options(secure=False)["secure"] is False
    local = ["localhost", "localhost:8000", "app.localhost", "127.0.0.1:8000", "[::1]:8000", "::1"]
    remote = ["example.com", "10.0.0.5:443", "localhost.example.com", ""]
    assert all(is_local_host(host) for host in local)
    assert not any(is_local_host(host) for host in remote)
