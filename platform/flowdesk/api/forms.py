"""Form definitions as JSON, already limited to what the caller may see.

A field the caller cannot read is left out (so a form never reveals that it exists);
a field they cannot write is `readonly`; a masked field says so. Labels are sent in
every language the model has; CEL conditions (`visible`, `required`, `readonly`) are
sent as text for the client to show and are evaluated by the server on save.
"""

from __future__ import annotations

from typing import Any

from flowdesk.model.entity import EnumField, LinesField
from flowdesk.model.form import Form, FormField
from flowdesk.security.fields import FieldAccess
from flowdesk.security.principal import Principal

from .registry import AppRuntime

__all__ = ["form_definition"]

_WIDGETS = {
    "string": "input", "text": "textarea", "integer": "number", "decimal": "number",
    "boolean": "checkbox", "date": "date", "datetime": "datetime", "duration": "duration",
    "enum": "select", "email": "email", "phone": "phone", "url": "url",
    "reference": "lookup", "references": "lookup", "user": "user_picker",
    "attachment": "file", "json": "json", "lines": "table",
}


def _label(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return {k: v for k, v in value.model_dump().items() if v is not None}


def _condition(value: Any) -> Any:
    """`true`/`false`, or the CEL text (without the leading `=`) of a condition."""
    if value is None or isinstance(value, bool):
        return value
    return str(value).removeprefix("=").strip()


def _field(ref: str | FormField, entity_fields: dict[str, Any], access: FieldAccess,
           purpose: str) -> dict[str, Any] | None:
    item = FormField(field=ref) if isinstance(ref, str) else ref
    name = item.field
    spec = entity_fields.get(name)
    if spec is None or not access.can_read(name) or spec.deprecated:
        return None
    writable = access.can_write(name) and spec.computed is None and purpose != "view"
    out: dict[str, Any] = {
        "field": name,
        "type": spec.type,
        "label": _label(item.label or spec.label) or name,
        "widget": item.widget or ("readonly" if not writable else _WIDGETS.get(spec.type)),
        "span": item.span,
        "required": _condition(item.required) if item.required is not None else spec.required,
        "readonly": True if not writable else _condition(item.readonly) or False,
    }
    if item.visible is not None:
        out["visible"] = _condition(item.visible)
    if item.help or spec.help:
        out["help"] = _label(item.help or spec.help)
    if item.placeholder:
        out["placeholder"] = _label(item.placeholder)
    if not access.shows_clear(name):
        out["masked"] = True
    if isinstance(spec, EnumField):
        out["multiple"] = spec.multiple
        values = spec.values if isinstance(spec.values, dict) else {v: None for v in spec.values}
        out["options"] = [
            {"value": value, "label": _label(meta.label) if meta and meta.label else value}
            | ({"color": meta.color} if meta and meta.color else {})
            for value, meta in values.items() if not (meta and meta.deprecated)
        ]
    if getattr(spec, "to", None):
        out["to"] = spec.to
    if isinstance(spec, LinesField):
        out["columns"] = [
            {"field": key, "type": sub.type, "label": _label(sub.label) or key}
            for key, sub in spec.fields.items()
        ]
    return out


def form_definition(runtime: AppRuntime, form: Form, principal: Principal) -> dict[str, Any]:
    """The form for this caller; a 403 when they may not read its entity at all."""
    action = {"create": "create", "view": "read"}.get(form.purpose, "update")
    access = runtime.guard.access(principal, form.entity, action)
    fields = dict(runtime.app.entities[form.entity].fields)
    sections = []
    for section in form.sections:
        items = [f for f in (_field(ref, fields, access, form.purpose) for ref in section.fields)
                 if f is not None]
        if not items:
            continue
        entry: dict[str, Any] = {"name": section.name, "label": _label(section.label),
                                 "columns": section.columns, "collapsed": section.collapsed,
                                 "fields": items}
        if section.visible is not None:
            entry["visible"] = _condition(section.visible)
        sections.append(entry)
    return {
        "name": form.name,
        "entity": form.entity,
        "purpose": form.purpose,
        "label": _label(form.label) if hasattr(form, "label") else None,
        "submit_label": _label(form.submit_label),
        "sections": sections,
    }
