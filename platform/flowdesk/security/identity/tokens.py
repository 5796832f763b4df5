"""Short-lived signed bearer tokens (JWT, HS256 with the server's secret key).

A token is self-contained: checking one needs no database query, which is why it
lives only `DEFAULT_LIFETIME` (15 minutes). Claims:

* `sub` the user id (a string, as RFC 7519 requires), `iss` `flowdesk`;
* `iat` / `exp` (seconds), `jti` a random id (for logs and a future deny list);
* `typ` the token type (`access`): a token minted for one purpose is refused
  where another is expected;
* `roles` / `app` / `key` only when the token came from an API key: the key's
  role restriction (`app:role` list), its app, and its prefix.

The time is the caller's `now` (tests move it), so expiry is checked here, not by
PyJWT against the wall clock. Only HS256 is accepted: the algorithm is never taken
from the token's header.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from ._time import resolve_now
from .apikeys import restrict_roles
from .errors import TokenExpired, TokenInvalid, WrongTokenType
from .users import parse_role

__all__ = [
    "ACCESS",
    "ALGORITHM",
    "DEFAULT_LIFETIME",
    "ISSUER",
    "MIN_SECRET_LENGTH",
    "IssuedToken",
    "TokenClaims",
    "issue_token",
    "verify_token",
]

ACCESS = "access"
ALGORITHM = "HS256"
ISSUER = "flowdesk"
DEFAULT_LIFETIME = dt.timedelta(minutes=15)
MIN_SECRET_LENGTH = 32  # RFC 7518 3.2: an HS256 key of at least 256 bits
_REQUIRED = ["sub", "iat", "exp", "jti", "typ", "iss"]


@dataclass(frozen=True)
class IssuedToken:
    """A new token and when it stops working."""

    token: str
    jti: str
    expires_at: dt.datetime
    expires_in: int  # seconds, for the OAuth2 response


@dataclass(frozen=True)
class TokenClaims:
    """A verified token.

    Attributes:
        roles: `(app, role)` pairs kept from the user's roles (API-key tokens); None: all.
        app: The only app the token may act in; None: every app.
        key: The prefix of the API key it was issued for, if any.
    """

    user_id: int
    jti: str
    typ: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    roles: frozenset[tuple[str, str]] | None = None
    app: str | None = None
    key: str | None = None

    def allows_app(self, app: str) -> bool:
        return self.app is None or self.app == app

    def restrict(self, held: Iterable[str], app: str) -> frozenset[str]:
        """The roles the token may use in `app`, out of those the user `held` there."""
        return restrict_roles(self.roles, self.app, held, app)


def issue_token(
    secret: str,
    user_id: int,
    *,
    roles: Iterable[str] | None = None,
    app: str | None = None,
    key: str | None = None,
    typ: str = ACCESS,
    lifetime: dt.timedelta = DEFAULT_LIFETIME,
    now: dt.datetime | None = None,
) -> IssuedToken:
    """Sign a token for `user_id`, optionally narrowed to `roles` (`app:role`) and `app`.

    Raises:
        ValueError: a secret shorter than `MIN_SECRET_LENGTH`, or a lifetime that is
            not positive.
    """
    _check_secret(secret)
    if lifetime <= dt.timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    now = resolve_now(now)
    issued = int(now.timestamp())
    expires = issued + int(lifetime.total_seconds())
    jti = secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": str(user_id),
        "iat": issued,
        "exp": expires,
        "jti": jti,
        "typ": typ,
    }
    if roles is not None:
        claims["roles"] = sorted(f"{a}:{r}" for a, r in {parse_role(text) for text in roles})
    if app is not None:
        claims["app"] = app
    if key is not None:
        claims["key"] = key
    token = jwt.encode(claims, secret, algorithm=ALGORITHM)
    return IssuedToken(token, jti, _instant(expires), expires - issued)


def verify_token(
    secret: str, token: str, *, typ: str = ACCESS, now: dt.datetime | None = None
) -> TokenClaims:
    """Check a token's signature, type and expiry.

    Raises:
        TokenInvalid: malformed, not signed with `secret`, or missing claims.
        WrongTokenType: signed by us for another purpose.
        TokenExpired: past its `exp`.
    """
    _check_secret(secret)
    now = resolve_now(now)
    claims = _decode(secret, token)
    if claims["typ"] != typ:
        raise WrongTokenType(typ, claims["typ"])
    expires_at = _instant(claims["exp"])
    if expires_at <= now:
        raise TokenExpired(expires_at)
    return _claims(claims, expires_at)


def _check_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"the secret key must have at least {MIN_SECRET_LENGTH} characters "
            "(set FLOWDESK_SECRET_KEY, or unset it to have one generated)"
        )


def _decode(secret: str, token: str) -> dict[str, Any]:
    options: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                    "require": _REQUIRED}
    try:
        return jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER, options=options)
    except jwt.InvalidSignatureError:
        raise TokenInvalid("the token's signature is not valid: it was not issued here") from None
    except jwt.MissingRequiredClaimError as error:
        raise TokenInvalid(f"the token lacks the `{error.claim}` claim") from None
    except jwt.InvalidTokenError as error:
        raise TokenInvalid(f"not a valid token: {error}") from None


def _claims(claims: dict[str, Any], expires_at: dt.datetime) -> TokenClaims:
    try:
        user_id = int(claims["sub"])
        roles = claims.get("roles")
        restriction = None if roles is None else frozenset(parse_role(r) for r in roles)
        issued_at = _instant(claims["iat"])
    except (TypeError, ValueError, OverflowError):
        raise TokenInvalid("the token's claims are malformed") from None
    return TokenClaims(
        user_id=user_id,
        jti=str(claims["jti"]),
        typ=str(claims["typ"]),
        issued_at=issued_at,
        expires_at=expires_at,
        roles=restriction,
        app=claims.get("app"),
        key=claims.get("key"),
    )


def _instant(seconds: int | float) -> dt.datetime:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise TokenInvalid("the token's times are not numbers")
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
