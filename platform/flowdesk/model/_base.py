"""Building blocks shared by every model kind: the document header, labels,
identifiers, durations, CEL expressions and "one key of" objects.

Models here are the documents *as written*: strict (`extra="forbid"`, so a
typo is an error, not a silently ignored key) and frozen. Their JSON Schemas
in `schemas/` are generated from them, so descriptions written here are what
editors show as help.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "API_VERSION",
    "CelExpr",
    "Document",
    "Duration",
    "Identifier",
    "Label",
    "LocalizedText",
    "OneKeyOf",
    "Strict",
    "Value",
    "parse_duration",
]

API_VERSION = "flowdesk/v1"
IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]*$"
IDENTIFIER_MAX = 40  # `<app>__<entity>__<field>` must stay within PostgreSQL's 63 bytes
DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(w|d|h|m|s)(\s*\d+(\.\d+)?\s*(w|d|h|m|s))*\s*$"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class Strict(BaseModel):
    """Base of every model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Identifier = Annotated[
    str,
    StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=IDENTIFIER_MAX),
    Field(
        description="A snake_case name: lower-case letters, digits and `_`, starting with a letter."
    ),
]


class LocalizedText(Strict):
    """Text in several languages; the UI shows the user's language, else the app's default."""

    en: str | None = Field(None, description="English text.")
    zh: str | None = Field(None, description="Chinese text (中文).")

    @model_validator(mode="after")
    def _not_empty(self) -> LocalizedText:
        if self.en is None and self.zh is None:
            raise PydanticCustomError("empty-label", "a label map needs at least `en` or `zh`")
        return self

    def text(self, locale: str = "en") -> str:
        return getattr(self, locale, None) or self.en or self.zh or ""


Label = Annotated[
    str | LocalizedText,
    Field(
        description="Display text: a plain string, or a map of languages such as "
        "`{en: Ticket, zh: 工单}`.",
        examples=["Ticket", {"en": "Ticket", "zh": "工单"}],
    ),
]

CelExpr = Annotated[
    str,
    StringConstraints(min_length=1),
    Field(
        description="A CEL expression (https://cel.dev), checked against the names in scope "
        "when the app is validated. Names: `record` (this record), `user` (the current user), "
        "`now` (the current time).",
        examples=['record.priority == "p1"'],
        json_schema_extra={"format": "cel"},
    ),
]

Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN),
    Field(
        description="A duration such as `30m`, `4h`, `1d 4h` or `2w` (units: w, d, h, m, s).",
        examples=["4h", "72h", "1d 4h"],
    ),
]

Value = Annotated[
    Any,
    Field(
        description="A literal value, or an expression when the text starts with `=` "
        "(for example `= record.amount * 2`).",
    ),
]


def parse_duration(text: str) -> timedelta:
    """`1d 4h` -> timedelta(days=1, hours=4). Assumes the schema pattern already matched."""
    total = timedelta()
    for amount, unit in _DURATION_PART.findall(text):
        total += timedelta(**{_UNITS[unit]: float(amount)})
    return total


class Document(Strict):
    """The header every document starts with."""

    api_version: Literal["flowdesk/v1"] = Field(
        alias="apiVersion", description="Version of the model language; always `flowdesk/v1`."
    )
    kind: str = Field(description="What this document describes.")
    name: Identifier = Field(description="Unique name of this document within its kind in the app.")
    label: Label | None = None
    description: Label | None = None


class OneKeyOf(Strict):
    """An object written as exactly one key, e.g. `{role: agent}` or `{set: {...}}`.

    Analysts read `- notify: {...}` more easily than `- {type: notify, ...}`;
    this base enforces that exactly one of the declared keys is present.
    """

    one_of_extra: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _exactly_one(self) -> OneKeyOf:
        self._check_shape()
        present = [
            name
            for name in type(self).model_fields
            if name not in self.one_of_extra and getattr(self, name) is not None
        ]
        if len(present) != 1:
            keys = ", ".join(
                f"`{self._key(n)}`" for n in type(self).model_fields if n not in self.one_of_extra
            )
            found = ", ".join(f"`{self._key(n)}`" for n in present) or "none"
            raise PydanticCustomError(
                "one-key-expected",
                "write exactly one of {keys} (found {found})",
                {"keys": keys, "found": found},
            )
        return self

    def _check_shape(self) -> None:
        """Checks a subclass needs to win over "exactly one key": run first, in the
        same validator, because pydantic stops at the first failing model validator."""

    @classmethod
    def _key(cls, name: str) -> str:
        return cls.model_fields[name].alias or name

    @property
    def chosen(self) -> tuple[str, Any]:
        """The (key, value) that was written."""
        for name in type(self).model_fields:
            if name not in self.one_of_extra and getattr(self, name) is not None:
                return self._key(name), getattr(self, name)
        raise AssertionError("validated OneKeyOf without a key")
