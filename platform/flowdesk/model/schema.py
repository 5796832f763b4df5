"""JSON Schemas of the model kinds: generated from the pydantic models (one
source of truth), committed under `schemas/`, and used as the first
validation pass.

Editors pick them up through `# yaml-language-server: $schema=...` lines, so
the descriptions and examples written on the models become completion help.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from .kinds import KINDS, schema_file_name

__all__ = [
    "ANY_SCHEMA_FILE",
    "SCHEMA_BASE_URI",
    "export_schemas",
    "generate_schemas",
    "kind_validator",
    "stale_schemas",
]

SCHEMA_BASE_URI = "https://flowdesk.dev/schemas/v1/"
ANY_SCHEMA_FILE = "flowdesk.schema.json"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _close_pattern_objects(node: Any) -> None:
    """Objects keyed by names (fields, states ...) allow no key outside the pattern.

    pydantic emits `patternProperties` without `additionalProperties: false`;
    without it, an editor would accept `Title:` where only `title:` is valid.
    """
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_objects(value)


def _kind_schema(kind: str) -> dict[str, Any]:
    model = KINDS[kind]
    body = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    _close_pattern_objects(body)
    schema: dict[str, Any] = {
        "$schema": _DIALECT,
        "$id": SCHEMA_BASE_URI + schema_file_name(kind),
        "title": f"Flowdesk {kind}",
    }
    schema.update(body)
    schema["title"] = f"Flowdesk {kind}"
    return schema


def _any_schema() -> dict[str, Any]:
    """One schema for files that mix kinds: dispatches on `kind`."""
    branches = [
        {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"$ref": schema_file_name(kind)},
        }
        for kind in KINDS
    ]
    return {
        "$schema": _DIALECT,
        "$id": SCHEMA_BASE_URI + ANY_SCHEMA_FILE,
        "title": "Flowdesk document (any kind)",
        "type": "object",
        "required": ["apiVersion", "kind", "name"],
        "properties": {
            "apiVersion": {"const": "flowdesk/v1"},
            "kind": {"enum": list(KINDS)},
        },
        "allOf": branches,
    }


def generate_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every kind plus the dispatching `flowdesk.schema.json`."""
    schemas = {schema_file_name(kind): _kind_schema(kind) for kind in KINDS}
    schemas[ANY_SCHEMA_FILE] = _any_schema()
    return schemas


def _render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def export_schemas(folder: Path) -> list[Path]:
    """Write every schema into `folder`; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate_schemas().items():
        path = folder / name
        path.write_text(_render(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(folder: Path) -> list[str]:
    """Names of schema files that are missing, different, or no longer generated."""
    expected = {name: _render(schema) for name, schema in generate_schemas().items()}
    stale = [
        name
        for name, text in expected.items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text
    ]
    extra = [p.name for p in folder.glob("*.schema.json") if p.name not in expected]
    return sorted(stale + extra)


@cache
def kind_validator(kind: str) -> Draft202012Validator:
    """A compiled validator per kind, built once per process."""
    schema = _kind_schema(kind)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
