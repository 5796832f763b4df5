"""Integration documents: outbound REST operations, webhooks and value maps.

Secrets are referenced by name (`secret: erp_api_key`) and stored encrypted
by the platform; a YAML file never holds a credential.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import CelExpr, Document, Duration, Identifier, Strict, Value

__all__ = ["Auth", "Integration", "Operation", "Retry", "Webhook"]


class Auth(Strict):
    type: Literal["none", "api_key", "basic", "bearer", "oauth2"] = "none"
    header: str | None = Field(None, description="Header carrying the API key, e.g. `X-API-Key`.")
    username: str | None = None
    secret: Identifier | None = Field(None, description="Name of the stored secret.")
    token_url: str | None = Field(None, description="OAuth2 token endpoint (client credentials).")
    client_id: str | None = None
    scopes: list[str] = Field(default_factory=list)


class Retry(Strict):
    attempts: int = Field(5, ge=1, le=20)
    backoff: Duration = Field("30s", description="First delay; doubles each attempt, with jitter.")


class Operation(Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = Field(description="Appended to `base_url`; `{name}` inserts an input value.")
    query: dict[str, Value] = Field(default_factory=dict)
    body: dict[str, Value] | None = Field(None, description="Body fields: literals or `= CEL`.")
    response: dict[Identifier, CelExpr] = Field(
        default_factory=dict, description="Named values read from the answer (CEL over `response`)."
    )
    timeout: Duration | None = None


class Webhook(Strict):
    name: Identifier
    entity: Identifier
    events: list[str] = Field(min_length=1, description="e.g. `created`, `state_entered:closed`.")
    when: CelExpr | None = None
    url: str
    fields: list[Identifier] | None = Field(
        None, description="Fields sent (default: all readable)."
    )
    map: dict[str, Value] | None = Field(None, description="Payload built from these values.")
    sign: bool = Field(True, description="Add an HMAC-SHA256 signature header.")


class Integration(Document):
    kind: Literal["Integration"]
    base_url: str = Field(description="Base URL; `${SETTING}` reads a setting.")
    auth: Auth = Field(default_factory=Auth)
    format: Literal["json", "xml"] = "json"
    timeout: Duration = "10s"
    retry: Retry = Field(default_factory=Retry)
    operations: dict[Identifier, Operation] = Field(default_factory=dict)
    webhooks: list[Webhook] = Field(default_factory=list)
    value_maps: dict[Identifier, dict[str, str | int | float | bool]] = Field(
        default_factory=dict,
        description="Conversion tables between our values and theirs, e.g. "
        "`priority: {high: 1, medium: 2, low: 3}` (used both ways).",
    )
