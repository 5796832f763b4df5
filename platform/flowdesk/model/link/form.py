"""Linker checks for forms: fields exist, widgets suit them, conditions compile."""

from __future__ import annotations

from flowdesk.expressions import BOOL

from ..form import Form, FormField
from .context import LinkContext, ParsedDocument
from .entity import require_field
from .types import record_scope

__all__ = ["check"]

# Widgets that only make sense for some field types.
_WIDGET_TYPES = {
    "signature": ("attachment",),
    "photo": ("attachment",),
    "file": ("attachment",),
    "table": ("lines",),
    "user_picker": ("user", "reference", "references"),
    "lookup": ("reference", "references"),
    "rating": ("integer", "decimal"),
    "currency": ("decimal", "integer"),
    "number": ("decimal", "integer"),
    "date": ("date",),
    "datetime": ("datetime",),
    "switch": ("boolean",),
    "checkbox": ("boolean", "enum"),
    "radio": ("enum",),
    "tags": ("enum", "references"),
}


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("Form").values():
        form: Form = doc.model
        entity = ctx.resolve(doc, "/entity", "Entity", form.entity)
        scope = record_scope(ctx, form.entity)
        seen: dict[str, str] = {}
        for s_index, section in enumerate(form.sections):
            here = f"/sections/{s_index}"
            if section.visible:
                ctx.compile(doc, here + "/visible", section.visible, scope, expect=BOOL)
            for f_index, item in enumerate(section.fields):
                pointer = f"{here}/fields/{f_index}"
                _check_item(ctx, doc, pointer, item, entity, scope, seen)
        if form.purpose == "public" and entity is not None:
            _check_public(ctx, doc, form, entity, seen)


def _check_item(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    item: str | FormField,
    entity: object,
    scope: dict,
    seen: dict[str, str],
) -> None:  # type: ignore[type-arg]
    name = item if isinstance(item, str) else item.field
    field_pointer = pointer if isinstance(item, str) else pointer + "/field"
    if name in seen:
        ctx.error(
            doc,
            field_pointer,
            "duplicate-form-field",
            f"field `{name}` is already on this form (at {seen[name]})",
        )
    seen[name] = field_pointer
    spec = require_field(ctx, doc, field_pointer, entity, name)  # type: ignore[arg-type]
    if isinstance(item, str):
        return
    for key in ("visible", "required", "readonly"):
        value = getattr(item, key)
        if isinstance(value, str):
            ctx.compile(doc, f"{pointer}/{key}", value, scope, expect=BOOL)
    allowed = _WIDGET_TYPES.get(item.widget or "")
    if spec is not None and allowed and spec.type not in allowed:  # type: ignore[attr-defined]
        ctx.error(
            doc,
            pointer + "/widget",
            "widget-mismatch",
            f"widget `{item.widget}` cannot edit a `{spec.type}` field",  # type: ignore[attr-defined]
            "suits: " + ", ".join(allowed),
        )


def _check_public(
    ctx: LinkContext, doc: ParsedDocument, form: Form, entity: object, seen: dict[str, str]
) -> None:
    for name, spec in entity.fields.items():  # type: ignore[attr-defined]
        if (
            spec.required
            and spec.default is None
            and not spec.computed
            and name not in seen
            and getattr(spec, "type", "") != "lines"
        ):
            ctx.error(
                doc,
                "/sections",
                "public-form-incomplete",
                f"required field `{name}` is not on this public form, so nobody could submit it",
                f"add `{name}` to a section, or give it a default",
            )
