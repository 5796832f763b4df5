"""OAuth2 token endpoint grants (RFC 6749) as plain functions the API calls.

* `password_grant` (4.3): a user's username and password -> an access token for them.
* `client_credentials_grant` (4.4): an API key -> an access token carrying the key's
  restrictions. The client id is the key's prefix (`fdk_3f9a1c`) and the client
  secret is the whole key text.
* `token_grant` reads a token request's form (and HTTP Basic client credentials)
  and dispatches on `grant_type`.

Each returns the RFC 6749 5.1 body (`access_token`, `token_type: "Bearer"`,
`expires_in`); each refusal is an `OAuthError` carrying the 5.2 `error` code, an
`error_description`, the HTTP status and the headers to send. No refresh tokens are
issued: a client asks again with its credentials when the token expires.

`password_grant` takes the engine, not a connection, because `authenticate` must
commit failed attempts (the lockout) even though the grant then fails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from .apikeys import verify_api_key
from .errors import AccountLocked, ApiKeyRejected, InvalidCredentials, RateLimited
from .login import DEFAULT_LOCKOUT, Lockout, authenticate
from .ratelimit import LoginLimiter
from .tokens import DEFAULT_LIFETIME, IssuedToken, issue_token

__all__ = [
    "OAuthError",
    "client_credentials_grant",
    "password_grant",
    "token_grant",
    "token_response",
]


class OAuthError(Exception):
    """A token request refused, shaped as RFC 6749 5.2.

    Attributes:
        error: `invalid_request`, `invalid_client`, `invalid_grant`,
            `unsupported_grant_type`, or `slow_down` (RFC 8628 3.5's code, used here
            for the login rate limit, with status 429 and `Retry-After`).
        description: A sentence for the person reading the client's logs.
        status: 400, 401 for `invalid_client`, 429 for `slow_down`.
        retry_after: Seconds to wait (only for `slow_down`).
    """

    def __init__(
        self, error: str, description: str, *, status: int = 400, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after

    def body(self) -> dict[str, str]:
        """The JSON body of the error response."""
        return {"error": self.error, "error_description": self.description}

    def headers(self) -> dict[str, str]:
        """`Cache-Control: no-store` always; `WWW-Authenticate` for a 401 (RFC 6749
        5.2); `Retry-After` when rate limited."""
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="flowdesk"'
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def token_response(issued: IssuedToken) -> dict[str, Any]:
    """RFC 6749 5.1 body of a successful token request (send with `no-store`)."""
    return {"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.expires_in}


def password_grant(
    engine: Engine,
    username: str,
    password: str,
    *,
    client: str,
    secret: str,
    now: dt.datetime | None = None,
    lifetime: dt.timedelta = DEFAULT_LIFETIME,
    lockout: Lockout = DEFAULT_LOCKOUT,
    limiter: LoginLimiter | None = None,
) -> dict[str, Any]:
    """Resource owner password credentials: the same checks as the login form.

    Raises:
        OAuthError: `invalid_grant` (bad credentials, locked), `slow_down` (429).
    """
    try:
        result = authenticate(
            engine, username, password, client=client, now=now, lockout=lockout, limiter=limiter
        )
    except RateLimited as error:
        raise OAuthError(
            "slow_down", error.message, status=429, retry_after=error.retry_after_seconds
        ) from None
    except (InvalidCredentials, AccountLocked) as error:
        raise OAuthError("invalid_grant", error.message) from None
    issued = issue_token(secret, result.user_id, lifetime=lifetime, now=now)
    return token_response(issued)


def client_credentials_grant(
    connection: Connection,
    client_id: str,
    client_secret: str,
    *,
    secret: str,
    now: dt.datetime | None = None,
    lifetime: dt.timedelta = DEFAULT_LIFETIME,
) -> dict[str, Any]:
    """An API key exchanged for a token with the key's role and app restrictions.

    The token outlives a revocation of the key by at most `lifetime`.

    Raises:
        OAuthError: `invalid_client` (401) for an unknown, wrong, revoked or expired
            key, a key of an inactive user, or a client id that is not the key's prefix.
    """
    try:
        identity = verify_api_key(connection, client_secret, now=now)
    except ApiKeyRejected as error:
        raise OAuthError("invalid_client", error.message, status=401) from None
    if identity.prefix != client_id.strip():
        raise OAuthError(
            "invalid_client", "the client id is not the prefix of this API key", status=401
        )
    roles = None if identity.roles is None else [f"{a}:{r}" for a, r in identity.roles]
    issued = issue_token(
        secret,
        identity.user_id,
        roles=roles,
        app=identity.app,
        key=identity.prefix,
        lifetime=lifetime,
        now=now,
    )
    return token_response(issued)


def token_grant(
    engine: Engine,
    form: Mapping[str, str],
    *,
    client: str,
    secret: str,
    basic: tuple[str, str] | None = None,
    now: dt.datetime | None = None,
    lifetime: dt.timedelta = DEFAULT_LIFETIME,
    limiter: LoginLimiter | None = None,
) -> dict[str, Any]:
    """Answer a token request (the `application/x-www-form-urlencoded` body).

    Args:
        form: `grant_type` and that grant's parameters.
        client: The caller's address (login rate limits).
        basic: Client id and secret from an `Authorization: Basic` header, if sent
            (RFC 6749 2.3.1 prefers it to form fields).

    Raises:
        OAuthError: `invalid_request` (missing parameters, two client authentications),
            `unsupported_grant_type`, and the grants' own errors.
    """
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "the request has no `grant_type`")
    if grant_type == "password":
        username, password = _required(form, "username", "password")
        return password_grant(
            engine, username, password, client=client, secret=secret, now=now, lifetime=lifetime,
            limiter=limiter,
        )
    if grant_type == "client_credentials":
        client_id, client_secret = _client_credentials(form, basic)
        with engine.begin() as connection:
            return client_credentials_grant(
                connection, client_id, client_secret, secret=secret, now=now, lifetime=lifetime
            )
    raise OAuthError(
        "unsupported_grant_type",
        f"grant type `{grant_type}` is not supported: use `password` or `client_credentials`",
    )


def _required(form: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not form.get(name)]
    if missing:
        raise OAuthError(
            "invalid_request", "missing " + ", ".join(f"`{name}`" for name in missing)
        )
    return [form[name] for name in names]


def _client_credentials(
    form: Mapping[str, str], basic: tuple[str, str] | None
) -> tuple[str, str]:
    in_form = bool(form.get("client_id") or form.get("client_secret"))
    if basic is not None:
        if in_form:
            raise OAuthError(
                "invalid_request", "send the client credentials once: header or form, not both"
            )
        return basic
    if not form.get("client_secret"):
        raise OAuthError(
            "invalid_client", "no client credentials: send the API key as client_secret",
            status=401,
        )
    client_id, client_secret = _required(form, "client_id", "client_secret")
    return client_id, client_secret
