"""Entity documents: a record type, its fields, rules, indexes and numbering.

Each entity becomes one table `<app>__<entity>` (line collections become child
tables). Field types are a closed set so every layer (storage, API schema, UI
widget, CEL type) can map each of them exhaustively.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ._base import CelExpr, Document, Identifier, Label, Strict

__all__ = [
    "SYSTEM_ENTITIES",
    "Entity",
    "EnumValue",
    "FieldSpec",
    "Index",
    "Rule",
    "validate_mask",
]

# Entities the platform owns; references may point at them from any app.
SYSTEM_ENTITIES = ("user", "department", "position")

_MASK_TOKEN = re.compile(r"\{(first|last):(\d+)\}")
_NUMBER_TOKEN = re.compile(r"\{(seq(?::0?\d+)?|yyyy|yy|mm|dd)\}")


def validate_mask(pattern: str) -> str:
    """A mask shows parts of a value and hides the rest: `{first:3}***` -> `110***`."""
    stripped = _MASK_TOKEN.sub("", pattern)
    if "{" in stripped or "}" in stripped:
        raise _pattern_error(
            "invalid-mask",
            "mask `{pattern}` has an unknown placeholder; use {usage}",
            pattern,
            usage="`{first:N}` and `{last:N}`",
        )
    return pattern


def _pattern_error(code: str, template: str, pattern: str, **literals: str) -> PydanticCustomError:
    """An error whose message quotes text with braces.

    pydantic fills `{name}` placeholders from the context by plain replacement
    (no `{{` escaping), so literal braces travel in the context; the author's
    `pattern` goes last so that braces in it are never replaced in turn.
    """
    return PydanticCustomError(code, template, {**literals, "pattern": pattern})


class _FieldBase(Strict):
    label: Label | None = None
    help: Label | None = Field(None, description="Help text shown under the input.")
    required: bool = Field(False, description="A value must be given.")
    unique: bool = Field(False, description="No two records may share a value.")
    index: bool = Field(False, description="Create a database index for fast filtering.")
    computed: CelExpr | None = Field(
        None, description="Computed from other fields (CEL); computed fields are read-only."
    )
    mask: str | None = Field(
        None,
        description="Show only part of the value to users without the unmask permission, "
        "e.g. `{first:3}***` shows `110***`.",
        examples=["{first:3}***", "***{last:4}"],
    )
    renamed_from: Identifier | None = Field(
        None, description="Previous name of this field; deploy keeps its data."
    )
    deprecated: bool = Field(False, description="Hidden from forms; kept in the database.")

    _check_mask = field_validator("mask")(lambda cls, v: v if v is None else validate_mask(v))


class StringField(_FieldBase):
    type: Literal["string"]
    min: int | None = Field(None, ge=0, description="Minimum length.")
    max: int | None = Field(None, ge=1, le=10_000, description="Maximum length (default 255).")
    pattern: str | None = Field(None, description="Regular expression the value must match.")
    default: str | None = None

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise PydanticCustomError(
                    "invalid-regex",
                    "pattern is not a valid regular expression: {why}",
                    {"why": str(error)},
                ) from None
        return value


class TextField(_FieldBase):
    type: Literal["text"]
    max: int | None = Field(None, ge=1)
    default: str | None = None


class _Numeric(_FieldBase):
    min: float | None = None
    max: float | None = None
    unit: str | None = Field(None, description="Unit shown after the value, e.g. `CNY` or `km`.")

    @model_validator(mode="after")
    def _range(self) -> _Numeric:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError("invalid-range", "`min` is greater than `max`")
        return self


class IntegerField(_Numeric):
    type: Literal["integer"]
    default: int | None = None


class DecimalField(_Numeric):
    type: Literal["decimal"]
    precision: int = Field(18, ge=1, le=38, description="Total number of digits.")
    scale: int = Field(2, ge=0, le=18, description="Digits after the decimal point.")
    default: float | None = None

    @model_validator(mode="after")
    def _scale(self) -> DecimalField:
        if self.scale > self.precision:
            raise PydanticCustomError("invalid-range", "`scale` is greater than `precision`")
        return self


class BooleanField(_FieldBase):
    type: Literal["boolean"]
    default: bool | None = None


class DateField(_FieldBase):
    type: Literal["date"]
    default: str | None = Field(None, description="`YYYY-MM-DD`, or `today`.")


class DateTimeField(_FieldBase):
    type: Literal["datetime"]
    default: str | None = Field(None, description="ISO 8601 instant, or `now`.")


class DurationField(_FieldBase):
    type: Literal["duration"]
    default: str | None = None


class EnumValue(Strict):
    label: Label | None = None
    color: str | None = Field(
        None,
        description="Badge colour: a name (red, amber, green, blue, grey ...) or `#rrggbb`.",
        pattern=r"^(#[0-9a-fA-F]{6}|[a-z]+)$",
    )
    deprecated: bool = Field(False, description="Kept for old records, not offered for new ones.")


class EnumField(_FieldBase):
    type: Literal["enum"]
    values: list[Identifier] | dict[Identifier, EnumValue] = Field(
        description="Allowed values: a list, or a map of value -> {label, color}.",
        examples=[
            ["low", "medium", "high"],
            {"p1": {"label": {"en": "Critical", "zh": "紧急"}, "color": "red"}},
        ],
    )
    default: str | None = None
    multiple: bool = Field(False, description="Several values may be chosen (tags).")

    @field_validator("values")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if not value:
            raise PydanticCustomError("empty-enum", "an enum needs at least one value")
        return value

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(self.values)


class EmailField(_FieldBase):
    type: Literal["email"]
    default: str | None = None


class PhoneField(_FieldBase):
    type: Literal["phone"]
    default: str | None = None


class UrlField(_FieldBase):
    type: Literal["url"]
    default: str | None = None


class ReferenceField(_FieldBase):
    type: Literal["reference"]
    to: Identifier = Field(
        description="The entity referred to: one of this app's, or `user`, `department`, "
        "`position`."
    )
    on_delete: Literal["restrict", "set_null", "cascade"] = Field(
        "restrict", description="What happens to this record when the referred one is deleted."
    )
    default: str | None = None


class ReferencesField(_FieldBase):
    type: Literal["references"]
    to: Identifier = Field(description="The entity referred to (several records).")
    max: int | None = Field(None, ge=1)


class UserField(_FieldBase):
    type: Literal["user"]
    default: Literal["current_user"] | None = Field(
        None, description="`current_user` fills in whoever creates the record."
    )


class AttachmentField(_FieldBase):
    type: Literal["attachment"]
    multiple: bool = False
    accept: list[str] | None = Field(
        None, description="Allowed media types or extensions, e.g. `image/*`, `.pdf`."
    )
    max_size_mb: int = Field(20, ge=1, le=2048)


class JsonField(_FieldBase):
    type: Literal["json"]
    default: Any = None


class LinesField(_FieldBase):
    """A child collection edited with its parent, e.g. the items of a purchase request."""

    type: Literal["lines"]
    fields: dict[Identifier, LineFieldSpec] = Field(description="Fields of each line.")
    min: int | None = Field(None, ge=0, description="Minimum number of lines.")
    max: int | None = Field(None, ge=1, description="Maximum number of lines.")


_SCALAR_TYPES = (
    StringField
    | TextField
    | IntegerField
    | DecimalField
    | BooleanField
    | DateField
    | DateTimeField
    | DurationField
    | EnumField
    | EmailField
    | PhoneField
    | UrlField
    | ReferenceField
    | ReferencesField
    | UserField
    | AttachmentField
    | JsonField
)

LineFieldSpec = Annotated[_SCALAR_TYPES, Field(discriminator="type")]
FieldSpec = Annotated[_SCALAR_TYPES | LinesField, Field(discriminator="type")]
LinesField.model_rebuild()


class Rule(Strict):
    """A validation rule: when the condition is true, saving is refused with the message."""

    name: Identifier | None = None
    when: CelExpr = Field(description="Condition that makes the record invalid (CEL).")
    error: Label = Field(description="Message shown to the user.")
    field: Identifier | None = Field(None, description="Field the message is shown next to.")


class Index(Strict):
    fields: list[Identifier] = Field(min_length=1)
    unique: bool = False
    name: Identifier | None = None


class Entity(Document):
    """A record type: becomes a table, an API resource and a default form."""

    kind: Literal["Entity"]
    plural: Label | None = None
    number: str | None = Field(
        None,
        description="Human number pattern: `{seq:06}` is a zero-padded sequence; "
        "`{yyyy}`, `{mm}`, `{dd}` insert the creation date.",
        examples=["TCK-{seq:06}", "PR-{yyyy}-{seq:05}"],
    )
    title: Identifier | None = Field(
        None, description="Field shown as the record's title (default: `title` or `name`)."
    )
    search: list[Identifier] = Field(
        default_factory=list, description="Fields indexed for full-text search."
    )
    natural_key: list[Identifier] = Field(
        default_factory=list,
        description="Fields that identify a record to people and imports (e.g. a customer code).",
    )
    fields: dict[Identifier, FieldSpec] = Field(description="The fields, by name.")
    rules: list[Rule] = Field(default_factory=list)
    indexes: list[Index] = Field(default_factory=list)
    audit: bool = Field(True, description="Record every change on the record's timeline.")

    @field_validator("number")
    @classmethod
    def _number(cls, value: str | None) -> str | None:
        if value is None:
            return value
        rest = _NUMBER_TOKEN.sub("", value)
        if "{" in rest or "}" in rest:
            raise _pattern_error(
                "invalid-number-pattern",
                "number pattern `{pattern}` has an unknown placeholder; use {usage}",
                value,
                usage="`{seq:06}`, `{yyyy}`, `{mm}`, `{dd}`",
            )
        if "{seq" not in value:
            raise _pattern_error(
                "invalid-number-pattern",
                "number pattern `{pattern}` needs a {usage} part",
                value,
                usage="`{seq}`",
            )
        return value

    @field_validator("fields")
    @classmethod
    def _has_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise PydanticCustomError("empty-entity", "an entity needs at least one field")
        return value
