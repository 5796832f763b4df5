"""Linker checks for integrations: auth completeness, operation expressions,
webhooks' events and fields, reversible value maps."""

from __future__ import annotations

from flowdesk.expressions import BOOL, DYN

from ..action import is_expression
from ..automation import EVENTS
from ..diagnostics import did_you_mean
from ..integration import Auth, Integration, Webhook
from .context import LinkContext, ParsedDocument
from .entity import require_field
from .types import record_scope

__all__ = ["check"]

_AUTH_NEEDS = {
    "api_key": ("header", "secret"),
    "basic": ("username", "secret"),
    "bearer": ("secret",),
    "oauth2": ("token_url", "client_id", "secret"),
    "none": (),
}


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("Integration").values():
        integration: Integration = doc.model
        if not integration.base_url.startswith(("http://", "https://", "${")):
            ctx.error(
                doc,
                "/base_url",
                "invalid-url",
                f"`{integration.base_url}` is not an http(s) URL",
                "write `https://...`, or `${SETTING}` to read it from settings",
            )
        _check_auth(ctx, doc, integration.auth)
        scope = {**record_scope(ctx, None), "input": DYN}
        for name, operation in integration.operations.items():
            here = f"/operations/{name}"
            for key in ("query", "body"):
                for field, value in (getattr(operation, key) or {}).items():
                    if is_expression(value):
                        ctx.compile(doc, f"{here}/{key}/{field}", value, scope, expect=None)
            for field, expr in operation.response.items():
                ctx.compile(doc, f"{here}/response/{field}", expr, {"response": DYN}, expect=None)
        for index, webhook in enumerate(integration.webhooks):
            _check_webhook(ctx, doc, f"/webhooks/{index}", webhook)
        for name, table in integration.value_maps.items():
            targets = [str(v) for v in table.values()]
            if len(set(targets)) != len(targets):
                ctx.warn(
                    doc,
                    f"/value_maps/{name}",
                    "value-map-not-reversible",
                    f"value map `{name}` sends two values to the same one, so answers "
                    "cannot be converted back",
                )


def _check_auth(ctx: LinkContext, doc: ParsedDocument, auth: Auth) -> None:
    for key in _AUTH_NEEDS[auth.type]:
        if getattr(auth, key) is None:
            ctx.error(
                doc,
                "/auth",
                "auth-incomplete",
                f"auth `{auth.type}` needs `{key}`",
                "secrets are named here and stored with `flowdesk secret set`",
            )


def _check_webhook(ctx: LinkContext, doc: ParsedDocument, here: str, webhook: Webhook) -> None:
    entity = ctx.resolve(doc, here + "/entity", "Entity", webhook.entity)
    for index, event in enumerate(webhook.events):
        name = event.split(":", 1)[0]
        if name not in EVENTS:
            ctx.error(
                doc,
                f"{here}/events/{index}",
                "unknown-event",
                f"unknown event `{name}`",
                did_you_mean(name, EVENTS) or "events: " + ", ".join(EVENTS),
            )
    scope = record_scope(ctx, webhook.entity)
    if webhook.when:
        ctx.compile(doc, here + "/when", webhook.when, scope, expect=BOOL)
    for index, field in enumerate(webhook.fields or []):
        require_field(ctx, doc, f"{here}/fields/{index}", entity, field)
    for key, value in (webhook.map or {}).items():
        if is_expression(value):
            ctx.compile(doc, f"{here}/map/{key}", value, scope, expect=None)
