"""Errors of the identity layer, one class per answer the caller must tell apart.

Each carries a stable `code` (for problem details and tests) and a message a person
can act on. Messages about credentials never say whether a user exists: a wrong
password, an unknown user and an inactive user read the same (`InvalidCredentials`).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import ClassVar

__all__ = [
    "AccountLocked",
    "ApiKeyRejected",
    "CsrfRejected",
    "IdentityError",
    "InvalidCredentials",
    "LoginRefused",
    "PasswordRejected",
    "RateLimited",
    "SessionRejected",
    "TokenExpired",
    "TokenInvalid",
    "TokenRejected",
    "UnknownUser",
    "WrongTokenType",
]


class IdentityError(Exception):
    """Base of every refusal of this package."""

    code = "identity-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PasswordRejected(IdentityError, ValueError):
    """A new password fails the minimum policy (too short, equal to the username)."""

    code = "weak-password"


class UnknownUser(IdentityError, LookupError):
    """An administrative command named a user that does not exist (CLI, set_password).

    Never raised by `authenticate`, which must not reveal whether a user exists.
    """

    code = "unknown-user"

    def __init__(self, user: str | int) -> None:
        super().__init__(f"there is no user `{user}`")
        self.user = user


class LoginRefused(IdentityError):
    """A login attempt was refused (base of the three answers below)."""

    code = "login-refused"


class InvalidCredentials(LoginRefused):
    """Wrong username or password, or an inactive user: deliberately one message."""

    code = "invalid-credentials"

    def __init__(self) -> None:
        super().__init__("invalid username or password")


class AccountLocked(LoginRefused):
    """Too many consecutive failures for this username; no password is checked until
    `until`. Raised for unknown usernames too, so it does not reveal who exists."""

    code = "account-locked"

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(
            f"too many failed logins: this account is locked until {until:%Y-%m-%d %H:%M:%S} UTC"
        )
        self.until = until


class RateLimited(LoginRefused):
    """Too many attempts from this client or for this username in the sliding window.

    Attributes:
        retry_after: Seconds until an attempt would be accepted again (fractional).
        scope: `client` or `username`: which limit was hit.
    """

    code = "rate-limited"

    def __init__(self, retry_after: float, scope: str) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"too many login attempts: try again in {seconds} s")
        self.retry_after = retry_after
        self.scope = scope

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds, rounded up, for a `Retry-After` header."""
        return max(1, math.ceil(self.retry_after))


class SessionRejected(IdentityError):
    """The session token does not name a usable session.

    Attributes:
        reason: `unknown`, `expired`, `revoked` or `inactive-user`.
    """

    code = "session-rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(f"session {reason}: sign in again")
        self.reason = reason


class CsrfRejected(IdentityError):
    """A state-changing request did not carry this session's CSRF token."""

    code = "csrf-rejected"

    def __init__(self) -> None:
        super().__init__("missing or wrong CSRF token: reload the page and try again")


class ApiKeyRejected(IdentityError):
    """An API key that cannot be used.

    Attributes:
        reason: `malformed`, `unknown` (also a wrong secret for a known prefix),
            `revoked`, `expired` or `inactive-user`.
    """

    code = "api-key-rejected"

    _MESSAGES: ClassVar[dict[str, str]] = {
        "malformed": "not an API key: expected `fdk_xxxxxx_...` as printed when it was created",
        "unknown": "unknown API key",
        "revoked": "this API key was revoked",
        "expired": "this API key has expired",
        "inactive-user": "the user of this API key is inactive",
    }

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or self._MESSAGES.get(reason, reason))
        self.reason = reason


class TokenRejected(IdentityError):
    """A bearer token that cannot be used (base of the three below)."""

    code = "token-rejected"


class TokenExpired(TokenRejected):
    """The token's `exp` has passed: get a new one from the token endpoint."""

    code = "token-expired"

    def __init__(self, expired_at: dt.datetime) -> None:
        super().__init__(f"the token expired at {expired_at:%Y-%m-%d %H:%M:%S} UTC")
        self.expired_at = expired_at


class TokenInvalid(TokenRejected):
    """Not a token of this server: malformed, bad signature, or missing claims."""

    code = "token-invalid"


class WrongTokenType(TokenRejected):
    """A valid token of another type (`typ`) than the one expected here."""

    code = "token-wrong-type"

    def __init__(self, expected: str, found: object) -> None:
        super().__init__(f"expected a token of type `{expected}`, got `{found}`")
        self.expected = expected
        self.found = found
