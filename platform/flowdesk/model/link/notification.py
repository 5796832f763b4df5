"""Linker checks for notifications: recipients, and templates that parse in
the Jinja2 sandbox and only name what the renderer provides."""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from ..diagnostics import Diagnostic, did_you_mean
from ..entity import Entity
from ..notification import Notification
from .actions import check_party
from .context import LinkContext, ParsedDocument, text_offset
from .types import SYSTEM_FIELDS, record_scope

__all__ = ["TEMPLATE_NAMES", "check"]

# Names a notification template may use; the renderer provides exactly these.
TEMPLATE_NAMES = ("record", "recipient", "user", "app", "link", "now", "survey_link")
_ENV = SandboxedEnvironment(autoescape=False)


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("Notification").values():
        notification: Notification = doc.model
        entity = (
            ctx.resolve(doc, "/entity", "Entity", notification.entity)
            if notification.entity
            else None
        )
        scope = record_scope(ctx, notification.entity)
        for key in ("to", "cc"):
            for index, party in enumerate(getattr(notification, key)):
                check_party(ctx, doc, f"/{key}/{index}", party, entity, scope)
        for key in ("subject", "body", "html"):
            label = getattr(notification, key)
            for pointer, text in _texts(f"/{key}", label):
                _check_template(ctx, doc, pointer, text, entity)


def _texts(pointer: str, label: object) -> Iterator[tuple[str, str]]:
    if label is None:
        return
    if isinstance(label, str):
        yield pointer, label
        return
    for locale in ("en", "zh"):
        text = getattr(label, locale)
        if text is not None:
            yield f"{pointer}/{locale}", text


def _check_template(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, text: str, entity: Entity | None
) -> None:
    try:
        tree = _ENV.parse(text)
    except TemplateSyntaxError as error:
        line, column = _error_position(ctx, doc, pointer, text, error.lineno or 1)
        ctx.sink.add(
            Diagnostic(
                doc.source.file,
                line,
                column,
                "template-syntax",
                f"template error: {error.message}",
                pointer,
                "check `{{ ... }}` and `{% ... %}` pairs",
            )
        )
        return
    for name in sorted(meta.find_undeclared_variables(tree)):
        if name not in TEMPLATE_NAMES:
            ctx.error(
                doc,
                pointer,
                "template-unknown-name",
                f"template uses unknown name `{name}`",
                did_you_mean(name, TEMPLATE_NAMES) or "available: " + ", ".join(TEMPLATE_NAMES),
            )
    if entity is None:
        return
    for attribute in _record_attributes(tree):
        if attribute not in entity.fields and attribute not in SYSTEM_FIELDS:
            ctx.error(
                doc,
                pointer,
                "unknown-field",
                f"template uses `record.{attribute}`, which entity `{entity.name}` lacks",
                did_you_mean(attribute, [*entity.fields, *SYSTEM_FIELDS]),
            )


def _error_position(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, text: str, lineno: int
) -> tuple[int, int]:
    """Jinja gives only a line: the value's start for the first, else the first
    character written on that line of the template."""
    if lineno <= 1:
        return doc.source.position(pointer)
    offset = text_offset(text, lineno, 1)
    indent = len(text[offset:]) - len(text[offset:].lstrip(" \t"))
    return ctx.value_position(doc, pointer, text, offset + indent)


def _record_attributes(tree: nodes.Template) -> Iterator[str]:
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "record":
            yield node.attr
