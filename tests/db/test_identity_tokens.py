"""Bearer tokens (expiry, tampering, type, algorithm) and the OAuth2 grants with their
RFC 6749 error codes; the secret key setting and its generated file."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from test_identity_support import NOW, SECRET, add_user, at, relaxed_limiter

from flowdesk.security.identity import (
    LoginLimiter,
    OAuthError,
    Rate,
    TokenExpired,
    TokenInvalid,
    WrongTokenType,
    client_credentials_grant,
    create_api_key,
    issue_token,
    password_grant,
    revoke_api_key,
    token_grant,
    verify_token,
)
from flowdesk.settings import Settings, load_settings


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def payload(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


# --- tokens ---------------------------------------------------------------------------------


def test_a_token_carries_its_user_and_restrictions() -> None:
    issued = issue_token(SECRET, 42, now=NOW)
    assert issued.expires_in == 900 and issued.expires_at == at(minutes=15)
    claims = verify_token(SECRET, issued.token, now=at(minutes=14, seconds=59))
    assert (claims.user_id, claims.typ, claims.jti) == (42, "access", issued.jti)
    assert (claims.issued_at, claims.expires_at) == (NOW, at(minutes=15))
    assert claims.roles is None and claims.app is None and claims.key is None
    assert claims.restrict({"agent", "admin"}, "service_desk") == {"agent", "admin"}
    assert payload(issued.token)["sub"] == "42"

    narrow = issue_token(SECRET, 42, roles=["service_desk:agent", "*:monitor"],
                         app="service_desk", key="fdk_abcdef", now=NOW)
    claims = verify_token(SECRET, narrow.token, now=NOW)
    assert claims.roles == {("service_desk", "agent"), ("*", "monitor")}
    assert (claims.app, claims.key) == ("service_desk", "fdk_abcdef")
    assert claims.restrict({"agent", "admin", "monitor"}, "service_desk") == {"agent", "monitor"}
    assert claims.restrict({"agent"}, "procurement") == frozenset()


def test_expired_tokens_are_refused() -> None:
    issued = issue_token(SECRET, 1, now=NOW, lifetime=dt.timedelta(minutes=1))
    with pytest.raises(TokenExpired) as caught:
        verify_token(SECRET, issued.token, now=at(minutes=1))
    assert caught.value.expired_at == at(minutes=1)
    assert "expired at 2026-03-02 09:01:00 UTC" in caught.value.message


def test_tampered_and_foreign_tokens_are_refused() -> None:
    token = issue_token(SECRET, 1, now=NOW).token
    header, body, signature = token.split(".")
    raised = {**payload(token), "sub": "2", "exp": payload(token)["exp"] + 3600}  # type: ignore[operator]
    candidates = {
        "changed claims": f"{header}.{b64(raised)}.{signature}",
        "changed signature": f"{header}.{body}.{signature[:-2]}AA",
        "other secret": issue_token("another-secret-key-of-32-characters!!", 1, now=NOW).token,
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{body}.",
        "garbage": "not.a.token",
        "empty": "",
    }
    for name, candidate in candidates.items():
        with pytest.raises(TokenInvalid):
            verify_token(SECRET, candidate, now=NOW)
            pytest.fail(f"{name}: accepted")


def test_missing_claims_and_wrong_types_are_refused() -> None:
    claims = {"iss": "flowdesk", "sub": "1", "iat": 1, "exp": int(at(minutes=60).timestamp())}
    no_jti = jwt.encode({**claims, "typ": "access"}, SECRET, algorithm="HS256")
    with pytest.raises(TokenInvalid, match="lacks the `jti` claim"):
        verify_token(SECRET, no_jti, now=NOW)
    bad_sub = jwt.encode({**claims, "typ": "access", "jti": "x", "sub": "alice"}, SECRET,
                         algorithm="HS256")
    with pytest.raises(TokenInvalid, match="malformed"):
        verify_token(SECRET, bad_sub, now=NOW)
    other = issue_token(SECRET, 1, typ="password-reset", now=NOW).token
    with pytest.raises(WrongTokenType) as caught:
        verify_token(SECRET, other, now=NOW)
    assert (caught.value.expected, caught.value.found) == ("access", "password-reset")
    assert verify_token(SECRET, other, typ="password-reset", now=NOW).user_id == 1


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        issue_token("short", 1, now=NOW)
    with pytest.raises(ValueError, match="at least 32 characters"):
        verify_token("short", "a.b.c", now=NOW)


# --- grants ---------------------------------------------------------------------------------


def oauth_error(call, *args: object, **kw: object) -> OAuthError:  # type: ignore[no-untyped-def]
    with pytest.raises(OAuthError) as caught:
        call(*args, **kw)
    return caught.value


def test_password_grant(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice", roles=["service_desk:agent"])
    body = password_grant(engine, "alice", "correct horse", client="10.0.0.1", secret=SECRET,
                          now=NOW, limiter=relaxed_limiter())
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert set(body) == {"access_token", "token_type", "expires_in"}
    claims = verify_token(SECRET, body["access_token"], now=NOW)
    assert claims.user_id == alice and claims.roles is None

    error = oauth_error(password_grant, engine, "alice", "wrong", client="10.0.0.1",
                        secret=SECRET, now=NOW, limiter=relaxed_limiter())
    assert (error.error, error.status) == ("invalid_grant", 400)
    assert error.body() == {"error": "invalid_grant",
                            "error_description": "invalid username or password"}
    assert error.headers()["Cache-Control"] == "no-store"


def test_password_grant_locked_and_rate_limited(engine: sa.Engine) -> None:
    add_user(engine, "alice")
    for _ in range(5):
        oauth_error(password_grant, engine, "alice", "wrong", client="c", secret=SECRET,
                    now=NOW, limiter=relaxed_limiter())
    locked = oauth_error(password_grant, engine, "alice", "correct horse", client="c",
                         secret=SECRET, now=NOW, limiter=relaxed_limiter())
    assert locked.error == "invalid_grant" and "locked until" in locked.description

    limiter = LoginLimiter(per_client=Rate(1, 60), per_username=Rate(10, 60))
    oauth_error(password_grant, engine, "bob", "x", client="c", secret=SECRET, now=NOW,
                limiter=limiter)
    slow = oauth_error(password_grant, engine, "bob", "x", client="c", secret=SECRET,
                       now=at(seconds=20.5), limiter=limiter)
    assert (slow.error, slow.status, slow.retry_after) == ("slow_down", 429, 40)
    assert slow.headers()["Retry-After"] == "40"


def test_client_credentials_grant(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice", roles=["service_desk:agent", "service_desk:admin"])
    with engine.begin() as connection:
        text, key = create_api_key(connection, alice, "ci", roles=["service_desk:agent"],
                                   app="service_desk", now=NOW)
        body = client_credentials_grant(connection, key.prefix, text, secret=SECRET, now=NOW)
    claims = verify_token(SECRET, body["access_token"], now=NOW)
    assert (claims.user_id, claims.app, claims.key) == (alice, "service_desk", key.prefix)
    assert claims.restrict({"agent", "admin"}, "service_desk") == {"agent"}

    with engine.begin() as connection:
        wrong_id = oauth_error(client_credentials_grant, connection, "fdk_000000", text,
                               secret=SECRET, now=NOW)
        forged = oauth_error(client_credentials_grant, connection, key.prefix, text[:-2] + "xx",
                             secret=SECRET, now=NOW)
        revoke_api_key(connection, key.prefix, now=NOW)
        revoked = oauth_error(client_credentials_grant, connection, key.prefix, text,
                              secret=SECRET, now=NOW)
    for error in (wrong_id, forged, revoked):
        assert (error.error, error.status) == ("invalid_client", 401)
        assert error.headers()["WWW-Authenticate"].startswith("Basic")
    assert revoked.description == "this API key was revoked"


def test_token_grant_dispatches_and_reports_request_errors(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    with engine.begin() as connection:
        text, key = create_api_key(connection, alice, "ci", now=NOW)

    def grant(form: dict[str, str], basic: tuple[str, str] | None = None) -> dict[str, object]:
        return token_grant(engine, form, client="10.0.0.1", secret=SECRET, basic=basic, now=NOW)

    assert grant({"grant_type": "client_credentials", "client_id": key.prefix,
                  "client_secret": text})["token_type"] == "Bearer"
    assert grant({"grant_type": "client_credentials"}, basic=(key.prefix, text))["expires_in"]
    assert grant({"grant_type": "password", "username": "alice",
                  "password": "correct horse"})["access_token"]
    cases = [
        ({}, None, "invalid_request", "no `grant_type`"),
        ({"grant_type": "authorization_code"}, None, "unsupported_grant_type", "not supported"),
        ({"grant_type": "password", "username": "alice"}, None, "invalid_request",
         "missing `password`"),
        ({"grant_type": "client_credentials"}, None, "invalid_client", "no client credentials"),
        ({"grant_type": "client_credentials", "client_secret": text}, None, "invalid_request",
         "missing `client_id`"),
        ({"grant_type": "client_credentials", "client_id": key.prefix}, (key.prefix, text),
         "invalid_request", "not both"),
    ]
    for form, basic, code, words in cases:
        error = oauth_error(grant, form, basic)
        assert error.error == code and words in error.description, (form, error)


# --- the secret key setting -----------------------------------------------------------------


def test_the_secret_key_comes_from_the_environment() -> None:
    settings = load_settings({"FLOWDESK_SECRET_KEY": SECRET})
    assert settings.secret_key == SECRET
    assert SECRET not in repr(settings)


def test_a_generated_key_is_kept_next_to_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/data/flowdesk.db"
    settings = load_settings({"FLOWDESK_DATABASE_URL": url})
    assert settings.secret_key_path == tmp_path / "data" / "secret_key"
    assert not settings.secret_key_path.exists()  # made on first use only
    key = settings.secret_key
    assert len(key) >= 60
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == key
    assert load_settings({"FLOWDESK_DATABASE_URL": url}).secret_key == key
    assert Settings(database_url="postgresql+psycopg://db/x").secret_key_path == Path(
        ".flowdesk/secret_key")
    token = issue_token(key, 1, now=NOW).token
    assert verify_token(Settings(database_url=url).secret_key, token, now=NOW).user_id == 1
