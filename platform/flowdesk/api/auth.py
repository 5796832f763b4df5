"""Authentication for the API: who is calling, as which principal in which app.

Three ways in, tried in this order:
- `Authorization: Bearer <token>` from `POST /api/v1/auth/token` (a signed token: no
  database read), or `Authorization: Bearer fdk_...` / `X-API-Key: fdk_...` (an API key);
- the `flowdesk_session` cookie from `POST /api/v1/auth/login` (the web UI), where every
  unsafe method must also carry the session's CSRF token in `X-CSRF-Token`.

The principal (roles, department subtree, attributes) is loaded from the organisation
tables and kept for `PRINCIPAL_TTL` seconds per user and app version, so a request
costs no extra query; a role change therefore applies within that time. API keys are
verified once per `KEY_TTL` seconds (a revoked key stops working within it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody, URLEncodedBody
from sqlalchemy import Engine

from flowdesk.security.identity import (
    AccountLocked,
    ApiKeyIdentity,
    ApiKeyRejected,
    CsrfRejected,
    InvalidCredentials,
    LoginLimiter,
    OAuthError,
    RateLimited,
    SessionRejected,
    TokenRejected,
    authenticate,
    restrict_principal,
    token_grant,
    verify_api_key,
)
from flowdesk.security.identity.sessions import (
    SESSION_COOKIE,
    Session,
    check_csrf,
    cookie_options,
    create_session,
    csrf_token,
    is_local_host,
    load_session,
    revoke_session,
)
from flowdesk.security.identity.tokens import TokenClaims, verify_token
from flowdesk.security.principal import Principal, PrincipalNotFound, load_principal
from flowdesk.settings import Settings

from ._threads import threaded
from .problems import Problem
from .registry import AppRuntime

__all__ = ["AUTH_HANDLERS", "Authenticator", "Identity", "principal_for"]

PRINCIPAL_TTL = 5.0
KEY_TTL = 10.0
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_API_KEY_PREFIX = "fdk_"


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: a user, maybe narrowed by the key or token used."""

    user_id: int
    via: str  # "token", "apikey" or "session"
    restriction: ApiKeyIdentity | TokenClaims | None = None
    session: Session | None = None


def _unauthorized(detail: str, code: str = "unauthorized") -> Problem:
    return Problem(401, code, detail, title="Not authenticated",
                   headers={"WWW-Authenticate": 'Bearer realm="flowdesk"'})


class Authenticator:
    """Per-server authentication state: the secret, the caches and the login limiter."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.limiter = LoginLimiter()  # the server's own: logins and password grants share it
        self._secret: str | None = None
        self._keys: dict[str, tuple[float, ApiKeyIdentity]] = {}
        self._tokens: dict[str, tuple[dt.datetime, Identity]] = {}
        self._principals: dict[tuple[int, str, str], tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    @property
    def secret(self) -> str:
        if self._secret is None:
            self._secret = self.settings.secret_key
        return self._secret

    # ------------------------------------------------------------------ identify

    def identify(self, request: Request) -> Identity:
        """The caller of `request`, or a 401 problem saying what was wrong."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, credential = header.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise _unauthorized("the Authorization header must be `Bearer <token>`")
            credential = credential.strip()
            if credential.startswith(_API_KEY_PREFIX):
                return self._api_key(credential)
            return self._token(credential)
        key = request.headers.get("x-api-key")
        if key is not None:
            return self._api_key(key.strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return self._session(request, cookie)
        raise _unauthorized("sign in, or send a bearer token or an API key")

    def _token(self, token: str) -> Identity:
        """A verified token is remembered until it expires: checking the signature again
        on every request cost a third of a get-by-id (bench/README.md)."""
        cached = self._tokens.get(token)
        if cached is not None and cached[0] > dt.datetime.now(dt.UTC):
            return cached[1]
        try:
            claims = verify_token(self.secret, token)
        except TokenRejected as error:
            raise _unauthorized(str(error), "invalid-token") from None
        restricted = claims.roles is not None or claims.app is not None
        identity = Identity(claims.user_id, "token", claims if restricted else None)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[token] = (claims.expires_at, identity)
        return identity

    def _api_key(self, text: str) -> Identity:
        digest = hashlib.sha256(text.encode()).hexdigest()
        cached = self._keys.get(digest)
        now = time.monotonic()
        if cached is None or now - cached[0] > KEY_TTL:
            try:
                with self.engine.begin() as connection:
                    key = verify_api_key(connection, text)
            except ApiKeyRejected as error:
                self._keys.pop(digest, None)
                raise _unauthorized(str(error), "invalid-api-key") from None
            if len(self._keys) > 10_000:
                self._keys.clear()
            cached = self._keys[digest] = (now, key)
        key = cached[1]
        return Identity(key.user_id, "apikey", key)

    def _session(self, request: Request, token: str) -> Identity:
        try:
            with self.engine.begin() as connection:
                session = load_session(connection, token)
        except SessionRejected as error:
            raise _unauthorized(f"your session is {error.reason}; sign in again",
                                "session-" + error.reason) from None
        if request.method not in _SAFE:
            try:
                check_csrf(session, request.headers.get("x-csrf-token"))
            except CsrfRejected as error:
                raise Problem(403, "csrf-rejected", str(error), title="CSRF check failed") \
                    from None
        return Identity(session.user_id, "session", session=session)

    # ------------------------------------------------------------------ principal

    def principal(self, identity: Identity, runtime: AppRuntime) -> Principal:
        """The caller as a principal of this app version (cached briefly)."""
        restriction = identity.restriction
        if restriction is not None and restriction.app not in (None, runtime.name):
            raise Problem(403, "app-not-allowed",
                          f"this credential is limited to the app `{restriction.app}`",
                          title="Forbidden")
        key = (identity.user_id, runtime.name, runtime.app.content_hash)
        now = time.monotonic()
        cached = self._principals.get(key)
        if cached is None or now - cached[0] > PRINCIPAL_TTL:
            try:
                with runtime.store.engine.connect() as connection:
                    principal = load_principal(connection, identity.user_id, runtime.app)
            except PrincipalNotFound:
                raise _unauthorized("the user of this credential no longer exists") from None
            with self._lock:
                if len(self._principals) > 10_000:
                    self._principals.clear()
                self._principals[key] = cached = (now, principal)
        principal = cached[1]
        return principal if restriction is None else restrict_principal(principal, restriction)


def _authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


def identity_of(request: Request) -> Identity:
    """The request's identity, established once per request."""
    identity = request.scope.get("flowdesk_identity")  # type: ignore[typeddict-item]
    if identity is None:
        identity = _authenticator(request).identify(request)
        request.scope["flowdesk_identity"] = identity  # type: ignore[typeddict-unknown-key]
    return identity


def principal_for(request: Request, runtime: AppRuntime) -> Principal:
    """The caller of `request` as a principal of `runtime`'s app."""
    return _authenticator(request).principal(identity_of(request), runtime)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --------------------------------------------------------------------------- endpoints


@post("/api/v1/auth/token", status_code=200)
@threaded
def issue_token(
    request: Request,
    data: URLEncodedBody[dict[str, str]],
) -> Response[bytes]:
    """OAuth2 token endpoint (RFC 6749): `password` and `client_credentials` grants.
    Errors use the RFC's own JSON shape, which OAuth2 clients expect."""
    form = dict(data)
    basic = _basic(request.headers.get("authorization"))
    authenticator = _authenticator(request)
    try:
        body = token_grant(authenticator.engine, {k: str(v) for k, v in form.items()},
                           client=_client(request), secret=authenticator.secret, basic=basic,
                           limiter=authenticator.limiter)
    except OAuthError as error:
        return Response(msgspec.json.encode(error.body()), status_code=error.status,
                        media_type="application/json", headers=error.headers())
    return Response(msgspec.json.encode(body), media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _basic(header: str | None) -> tuple[str, str] | None:
    import base64
    import binascii

    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Problem(400, "bad-request", "the Basic credentials are not base64") from None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


@post("/api/v1/auth/login", status_code=200)
@threaded
def login(request: Request, data: JSONBody[Any]) -> Response[bytes]:
    """Password sign-in for the web UI: sets the session cookie and returns the CSRF token."""
    if not isinstance(data, Mapping) or not isinstance(data.get("username"), str) \
            or not isinstance(data.get("password"), str):
        raise Problem(400, "bad-request", "send {\"username\": ..., \"password\": ...}")
    authenticator = _authenticator(request)
    try:
        result = authenticate(authenticator.engine, data["username"], data["password"],
                              client=_client(request), limiter=authenticator.limiter)
    except RateLimited as error:
        raise Problem(429, "too-many-attempts", str(error), title="Too many attempts",
                      headers={"Retry-After": str(error.retry_after_seconds)}) from None
    except AccountLocked as error:
        raise Problem(403, "account-locked", str(error), title="Account locked",
                      locked_until=error.until.isoformat()) from None
    except InvalidCredentials as error:
        raise _unauthorized(str(error), "invalid-credentials") from None
    with authenticator.engine.begin() as connection:
        token, session = create_session(connection, result.user_id,
                                        user_agent=request.headers.get("user-agent"),
                                        client=_client(request))
    secure = not is_local_host(request.url.hostname or "")
    body = {"user_id": result.user_id, "username": result.username,
            "csrf_token": csrf_token(session), "expires_at": session.expires_at.isoformat()}
    return Response(msgspec.json.encode(body), media_type="application/json",
                    cookies=[Cookie(value=token, **cookie_options(secure))])


@post("/api/v1/auth/logout", status_code=204)
@threaded
def logout(request: Request) -> Response[None]:
    identity = identity_of(request)
    if identity.session is not None:
        with _authenticator(request).engine.begin() as connection:
            revoke_session(connection, identity.session)
    return Response(None, status_code=204,
                    cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, expires=0)])


@get("/api/v1/auth/me")
@threaded
def me(request: Request) -> dict[str, Any]:
    """Who the caller is and their roles in each deployed app (what the UI shows)."""
    identity = identity_of(request)
    registry = request.app.state.registry
    apps = {}
    username = None
    for runtime in registry.runtimes():
        principal = principal_for(request, runtime) if _allowed(identity, runtime) else None
        if principal is not None:
            username = principal.username
            apps[runtime.name] = sorted(principal.roles)
    body: dict[str, Any] = {"user_id": identity.user_id, "username": username,
                            "via": identity.via, "roles": apps}
    if identity.session is not None:
        body["csrf_token"] = csrf_token(identity.session)
        body["session_expires_at"] = identity.session.expires_at.astimezone(dt.UTC).isoformat()
    return body


def _allowed(identity: Identity, runtime: AppRuntime) -> bool:
    return identity.restriction is None or identity.restriction.app in (None, runtime.name)


AUTH_HANDLERS = [issue_token, login, logout, me]
