"""Outbound HTTP for integrations: one POST with a timeout, the HMAC signature of
webhooks, `Retry-After`, and `${SETTING}` placeholders in URLs.

Kept apart from the webhook logic so the REST connectors (issue 6, still to come)
reuse the same client, timeouts and signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

__all__ = [
    "MAX_RETRY_AFTER",
    "HttpResult",
    "MissingSetting",
    "expand_settings",
    "post",
    "retry_after_seconds",
    "sign",
    "verify",
]

MAX_RETRY_AFTER = 24 * 3600.0
"""A `Retry-After` further away than this is cut to it (a day), so a receiver's typo
cannot park a delivery for a year."""
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingSetting(LookupError):
    """A `${NAME}` in a URL names a setting that is not set."""


@dataclass(frozen=True)
class HttpResult:
    """What one request came to: an answer (any status) or an error without one."""

    status_code: int | None
    body: str
    headers: Mapping[str, str]
    seconds: float
    error: str | None = None  # `timeout after 2s`, `connection refused` ...

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def expand_settings(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace each `${NAME}` with the setting `NAME`, else `FLOWDESK_NAME`.

    Raises:
        MissingSetting: naming the placeholder and both variables looked at.
    """
    source = os.environ if env is None else env

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = source.get(name) or source.get(f"FLOWDESK_{name}")
        if not found:
            raise MissingSetting(
                f"`${{{name}}}` in `{text}` is not set: set {name} or FLOWDESK_{name}"
            )
        return found.rstrip("/") if match.end() < len(text) else found

    return _PLACEHOLDER.sub(value, text)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` with `secret`.

    The timestamp is signed with the body so a captured request cannot be replayed
    later with a fresh timestamp; receivers reject old timestamps (see `verify`)."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delay-seconds or an HTTP date), capped
    at `MAX_RETRY_AFTER`; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, limit: int = 4096
) -> HttpResult:
    """POST `body` to `url`; never raises for HTTP or network failures (they are results).

    `timeout` bounds connecting and each read; the answer's body is kept up to
    `limit` characters (it goes into a log)."""
    began = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException:
        return HttpResult(None, "", {}, time.perf_counter() - began, f"timeout after {timeout:g}s")
    except httpx.HTTPError as error:
        text = str(error) or type(error).__name__
        return HttpResult(None, "", {}, time.perf_counter() - began, f"request failed: {text}")
    text = response.text[:limit]
    return HttpResult(response.status_code, text, response.headers, time.perf_counter() - began)
