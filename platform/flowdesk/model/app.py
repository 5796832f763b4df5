"""App manifests (`app.yaml`) and template pack manifests (`pack.yaml`).

An app is a folder whose `app.yaml` names it and carries its semantic
version; every other YAML file in the folder (except `tests/`) holds its
documents. A pack has the same shape with a `Pack` manifest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import Document, Identifier, Label, Strict

__all__ = ["SEMVER_PATTERN", "App", "Pack", "PackParameter", "PackUse"]

SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
)


class PackUse(Strict):
    name: Identifier
    version: str = Field(
        description="Version constraint, e.g. `^1.0` or `>=1.2,<2`.", examples=["^1.0"]
    )
    with_: dict[str, str | int | float | bool] = Field(
        default_factory=dict, alias="with", description="Parameters given to the pack."
    )


class App(Document):
    kind: Literal["App"]
    version: str = Field(pattern=SEMVER_PATTERN, description="Semantic version, e.g. `1.4.0`.")
    title: Label = Field(description="Name shown to users.")
    locale: Literal["en", "zh"] = Field("en", description="Default language.")
    locales: list[Literal["en", "zh"]] = Field(default_factory=lambda: ["en", "zh"])
    timezone: str = Field("UTC", description="IANA timezone, e.g. `Asia/Shanghai`.")
    calendar: Identifier | None = Field(None, description="Default business calendar.")
    icon: str | None = None
    packs: list[PackUse] = Field(default_factory=list, description="Template packs this app uses.")


class PackParameter(Strict):
    type: Literal["string", "integer", "duration", "boolean"] = "string"
    default: str | int | bool | None = None
    label: Label | None = None


class Pack(Document):
    kind: Literal["Pack"]
    version: str = Field(pattern=SEMVER_PATTERN)
    title: Label
    provides: list[
        Literal[
            "calendars",
            "sla",
            "roles",
            "notifications",
            "reports",
            "dashboards",
            "automations",
            "forms",
            "entities",
        ]
    ] = Field(default_factory=list)
    requires: dict[Identifier, list[Identifier]] = Field(
        default_factory=dict,
        description="Entities (and their fields) the pack's documents expect the app to have.",
    )
    parameters: dict[Identifier, PackParameter] = Field(default_factory=dict)
