"""Notification documents: message templates and who receives them.

Templates are Jinja2, rendered in a sandbox with the record as the recipient
may see it; they can read values but never run code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import Document, Identifier, Label
from .party import PartyRef

__all__ = ["Notification"]


class Notification(Document):
    kind: Literal["Notification"]
    entity: Identifier | None = Field(None, description="Entity whose records are rendered.")
    channels: list[Literal["email", "in_app"]] = Field(
        default_factory=lambda: ["email", "in_app"], min_length=1
    )
    to: list[PartyRef] = Field(default_factory=list, description="Recipients.")
    cc: list[PartyRef] = Field(default_factory=list)
    subject: Label = Field(description="Subject line (Jinja2 template).")
    body: Label = Field(description="Plain-text body (Jinja2 template).")
    html: Label | None = Field(None, description="HTML body (Jinja2 template, auto-escaped).")
