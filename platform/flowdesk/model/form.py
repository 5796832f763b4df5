"""Form documents: how an entity is laid out for people to read and edit.

Visibility and requiredness are CEL over the record, evaluated on the server
(so hidden fields are really hidden) and refreshed as the user types.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ._base import CelExpr, Document, Identifier, Label, Strict

__all__ = ["WIDGETS", "Form", "FormField", "FormFieldRef", "Section"]

WIDGETS = (
    "input",
    "textarea",
    "richtext",
    "number",
    "currency",
    "select",
    "radio",
    "checkbox",
    "switch",
    "tags",
    "date",
    "datetime",
    "duration",
    "email",
    "phone",
    "url",
    "lookup",
    "user_picker",
    "file",
    "photo",
    "signature",
    "rating",
    "table",
    "json",
    "readonly",
)


class FormField(Strict):
    field: Identifier = Field(description="A field of the form's entity.")
    label: Label | None = Field(None, description="Overrides the field's label on this form.")
    widget: Literal[WIDGETS] | None = Field(  # type: ignore[valid-type]
        None, description="How the field is edited (default: chosen from its type)."
    )
    span: int = Field(1, ge=1, le=4, description="Columns this field spans.")
    help: Label | None = None
    placeholder: Label | None = None
    visible: CelExpr | None = Field(None, description="Shown only when this holds (CEL).")
    required: bool | CelExpr | None = Field(
        None, description="`true`, or required only when this holds (CEL)."
    )
    readonly: bool | CelExpr | None = None


FormFieldRef = Annotated[
    Identifier | FormField,
    Field(description="A field name, or `{field: name, widget: ..., visible: ...}`."),
]


class Section(Strict):
    name: Identifier | None = None
    label: Label | None = None
    columns: int = Field(2, ge=1, le=4)
    collapsed: bool = False
    visible: CelExpr | None = Field(None, description="Section shown only when this holds (CEL).")
    fields: list[FormFieldRef] = Field(min_length=1)


class Form(Document):
    """A layout of an entity's fields in sections."""

    kind: Literal["Form"]
    entity: Identifier
    purpose: Literal["edit", "create", "view", "public"] = Field(
        "edit",
        description="`public` forms can be submitted without logging in (web channel).",
    )
    sections: list[Section] = Field(min_length=1)
    submit_label: Label | None = None
