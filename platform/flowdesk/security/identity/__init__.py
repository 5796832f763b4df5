"""Identity: who is calling. Passwords, logins with lockout and rate limits, web
sessions with CSRF tokens, API keys, signed bearer tokens and the OAuth2 grants.

A library (no HTTP): the API's authentication middleware and its `/auth/...`
endpoints call it, and so does `flowdesk user` / `flowdesk apikey`. Authorization
(what an identified user may do) is the rest of `flowdesk.security`; an API key or
token that narrows a user's roles hands that to it through `restrict_principal`.

Start with `login.authenticate`, then `sessions`, `apikeys`, `tokens`, `grants`.
See docs/identity.md.

May import `flowdesk.store` (platform tables, engine helpers), `flowdesk.settings`
and the rest of `flowdesk.security`; never the API, web, jobs or CLI layers.
"""

from __future__ import annotations

from .apikeys import (
    ApiKey,
    ApiKeyIdentity,
    create_api_key,
    list_api_keys,
    restrict_principal,
    revoke_api_key,
    verify_api_key,
)
from .errors import (
    AccountLocked,
    ApiKeyRejected,
    CsrfRejected,
    IdentityError,
    InvalidCredentials,
    LoginRefused,
    PasswordRejected,
    RateLimited,
    SessionRejected,
    TokenExpired,
    TokenInvalid,
    TokenRejected,
    UnknownUser,
    WrongTokenType,
)
from .grants import (
    OAuthError,
    client_credentials_grant,
    password_grant,
    token_grant,
    token_response,
)
from .login import (
    DEFAULT_LOCKOUT,
    AuthResult,
    Lockout,
    authenticate,
    default_limiter,
    prune_login_failures,
    unlock,
)
from .passwords import check_policy, hash_password, needs_rehash, set_password, verify_password
from .ratelimit import LoginLimiter, Rate
from .sessions import (
    SESSION_COOKIE,
    Session,
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
from .tokens import IssuedToken, TokenClaims, issue_token, verify_token
from .users import create_user, grant_roles, parse_role, revoke_roles, user_id_of, user_roles

__all__ = [
    "DEFAULT_LOCKOUT",
    "SESSION_COOKIE",
    "AccountLocked",
    "ApiKey",
    "ApiKeyIdentity",
    "ApiKeyRejected",
    "AuthResult",
    "CsrfRejected",
    "IdentityError",
    "InvalidCredentials",
    "IssuedToken",
    "Lockout",
    "LoginLimiter",
    "LoginRefused",
    "OAuthError",
    "PasswordRejected",
    "Rate",
    "RateLimited",
    "Session",
    "SessionRejected",
    "TokenClaims",
    "TokenExpired",
    "TokenInvalid",
    "TokenRejected",
    "UnknownUser",
    "WrongTokenType",
    "authenticate",
    "check_csrf",
    "check_policy",
    "client_credentials_grant",
    "cookie_options",
    "create_api_key",
    "create_session",
    "create_user",
    "csrf_token",
    "default_limiter",
    "grant_roles",
    "hash_password",
    "is_local_host",
    "issue_token",
    "list_api_keys",
    "load_session",
    "needs_rehash",
    "parse_role",
    "password_grant",
    "prune_login_failures",
    "prune_sessions",
    "restrict_principal",
    "revoke_api_key",
    "revoke_roles",
    "revoke_session",
    "revoke_user_sessions",
    "set_password",
    "token_grant",
    "token_response",
    "unlock",
    "user_id_of",
    "user_roles",
    "verify_api_key",
    "verify_password",
    "verify_token",
]
