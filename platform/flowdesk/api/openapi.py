"""OpenAPI 3.1 for one app, generated from its entities: real schemas per entity (the
record as read, the body of a create, the body of a patch), every path the API serves
for it, and the problem document every error uses.

Built once per app version (cached by content hash) because it only depends on the
model; the API serves it at `/api/v1/{app}/openapi.json` with a docs page beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import Entity, LinesField

__all__ = ["app_openapi", "field_schema", "record_schema"]

_PROBLEM = {"$ref": "#/components/schemas/Problem"}

_SYSTEM: dict[str, dict[str, Any]] = {
    "id": {"type": "integer", "readOnly": True},
    "number": {"type": ["string", "null"], "readOnly": True},
    "state": {"type": ["string", "null"], "readOnly": True},
    "workflow_version": {"type": ["string", "null"], "readOnly": True},
    "assignee": {"type": ["integer", "null"], "description": "User the record is assigned to."},
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
    "created_by": {"type": ["integer", "null"], "readOnly": True},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
    "updated_by": {"type": ["integer", "null"], "readOnly": True},
    "row_version": {"type": "integer", "readOnly": True,
                    "description": "Send it back as `If-Match` to update."},
    "deleted_at": {"type": ["string", "null"], "format": "date-time", "readOnly": True},
}


def _text(label: Any) -> str | None:
    if label is None or isinstance(label, str):
        return label
    return getattr(label, "en", None) or next(iter(label.model_dump().values()), None)


def _scalar(spec: Any, *, reading: bool) -> dict[str, Any]:
    kind = spec.type
    if kind in ("string", "text", "email", "phone", "url"):
        schema: dict[str, Any] = {"type": "string"}
        if kind == "email":
            schema["format"] = "email"
        elif kind == "url":
            schema["format"] = "uri"
        maximum = getattr(spec, "max", None) or (255 if kind == "string" else None)
        if maximum and not spec.mask:
            schema["maxLength"] = maximum
        return schema
    if kind == "integer":
        schema = {"type": "integer"}
        if spec.min is not None:
            schema["minimum"] = spec.min
        if spec.max is not None:
            schema["maximum"] = spec.max
        return schema
    if kind == "decimal":  # text out (no float rounding); text or number in
        text = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
        return text if reading else {"oneOf": [text, {"type": "number"}]}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "date":
        return {"type": "string", "format": "date"}
    if kind == "datetime":
        return {"type": "string", "format": "date-time"}
    if kind == "duration":
        seconds = {"type": "integer", "description": "Whole seconds."}
        return seconds if reading else {"oneOf": [seconds, {"type": "string",
                                                  "description": "e.g. `1d 4h 30m`"}]}
    if kind == "enum":
        one = {"type": "string", "enum": list(spec.value_names)}
        return {"type": "array", "items": one} if spec.multiple else one
    if kind in ("reference", "user"):
        return {"type": "integer", "description": f"Id of a `{getattr(spec, 'to', 'user')}`."}
    if kind == "references":
        return {"type": "array", "items": {"type": "integer"}}
    if kind == "attachment":
        return {"type": "array", "items": {"type": "integer"}} if spec.multiple else {
            "type": "integer", "description": "Id of an uploaded file."}
    return {}  # json: any value


def field_schema(spec: Any, *, reading: bool) -> dict[str, Any]:
    """The JSON Schema of one field's value (nullable when reading or optional)."""
    if isinstance(spec, LinesField):
        line = {
            "type": "object",
            "properties": {"id": {"type": "integer"}} | {
                name: _nullable(field_schema(sub, reading=reading))
                for name, sub in spec.fields.items()
            },
            "additionalProperties": False,
        }
        schema: dict[str, Any] = {"type": "array", "items": line}
    else:
        schema = _scalar(spec, reading=reading)
    label = _text(spec.label)
    if label:
        schema = schema | {"title": label}
    if spec.computed is not None:
        schema = schema | {"readOnly": True}
    if spec.mask:
        schema = schema | {"description": f"Masked as `{spec.mask}` for most roles."}
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if not schema or "oneOf" in schema:
        return {"oneOf": [*schema.get("oneOf", [schema] if schema else []), {"type": "null"}]} \
            if schema else {}
    kind = schema.get("type")
    if isinstance(kind, list):
        return schema if "null" in kind else schema | {"type": [*kind, "null"]}
    if kind is None:
        return schema
    if "enum" in schema:
        return schema | {"type": [kind, "null"], "enum": [*schema["enum"], None]}
    return schema | {"type": [kind, "null"]}


def record_schema(entity: Entity) -> dict[str, Any]:
    """A record as the API returns it: system columns and every field. A caller sees
    only the fields their role may read, so none is listed as required."""
    properties = dict(_SYSTEM) | {
        name: _nullable(field_schema(spec, reading=True)) for name, spec in entity.fields.items()
    }
    return {"type": "object", "title": _text(entity.label) or entity.name,
            "properties": properties, "required": ["id", "row_version"]}


def _input_schema(entity: Entity, *, create: bool) -> dict[str, Any]:
    writable = {
        name: spec for name, spec in entity.fields.items()
        if spec.computed is None and not spec.deprecated
    }
    properties = {name: _nullable(field_schema(spec, reading=False))
                  for name, spec in writable.items()}
    properties["assignee"] = _SYSTEM["assignee"]
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    required = [name for name, spec in writable.items()
                if spec.required and getattr(spec, "default", None) is None]
    if create and required:
        schema["required"] = required
    return schema


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["type", "title", "status"],
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {"description": _REASONS[status],
                      "content": {"application/problem+json": {"schema": _PROBLEM}}}
        for status in statuses
    }


_REASONS = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden",
            404: "Not found", 409: "Conflict", 412: "Precondition failed",
            422: "Invalid values", 428: "If-Match required"}


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _list_parameters() -> list[dict[str, Any]]:
    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": schema}

    return [
        query("filter", "CEL condition over `record`, e.g. `record.priority == \"p1\"`.",
              {"type": "string"}),
        query("sort", "Comma-separated fields; `-` for descending, e.g. `-priority,id`.",
              {"type": "string"}),
        query("limit", "Records per page (1-500).",
              {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
        query("cursor", "From `next_cursor` of the previous page.", {"type": "string"}),
        query("q", "Full-text search over the entity's search fields.", {"type": "string"}),
        query("fields", "Comma-separated fields to return.", {"type": "string"}),
    ]


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": True,
             "description": "The record's `ETag` (or `\"<row_version>\"`).",
             "schema": {"type": "string"}}


def _entity_paths(app: str, name: str, entity: Entity, title: str) -> dict[str, Any]:
    model = _camel(name)
    base = f"/api/v1/{app}/{name}"
    one = {"200": {"description": "The record", "content": _json(model),
                   "headers": {"ETag": {"schema": {"type": "string"}}}}}
    paths: dict[str, Any] = {
        base: {
            "get": {
                "tags": [title], "operationId": f"list_{name}", "summary": f"List {title}",
                "parameters": _list_parameters(),
                "responses": {"200": {"description": "A page", "content": _json(f"{model}Page")}}
                | _errors(400, 401, 403),
            },
            "post": {
                "tags": [title], "operationId": f"create_{name}", "summary": f"Create a {title}",
                "requestBody": {"required": True, "content": _json(f"{model}Create")},
                "responses": {"201": one["200"]} | _errors(400, 401, 403, 409, 422),
            },
        },
        f"{base}/{{id}}": {
            "get": {"tags": [title], "operationId": f"get_{name}", "parameters": [_ID],
                    "summary": f"Get a {title}", "responses": one | _errors(401, 403, 404)},
            "patch": {
                "tags": [title], "operationId": f"update_{name}", "summary": f"Update a {title}",
                "parameters": [_ID, _IF_MATCH],
                "requestBody": {"required": True, "content": _json(f"{model}Patch")},
                "responses": one | _errors(400, 401, 403, 404, 409, 412, 422, 428),
            },
            "delete": {
                "tags": [title], "operationId": f"delete_{name}", "summary": f"Delete a {title}",
                "parameters": [_ID, _IF_MATCH | {"required": False}],
                "responses": {"204": {"description": "Deleted"}} | _errors(401, 403, 404, 412),
            },
        },
        f"{base}/{{id}}/timeline": {
            "get": {"tags": [title], "operationId": f"timeline_{name}", "parameters": [_ID],
                    "summary": "Changes, oldest first",
                    "responses": {"200": {"description": "Audit entries",
                                          "content": _json("Timeline")}}
                    | _errors(401, 403, 404)},
        },
    }
    return paths


def _transition_path(app: str, entity: str, title: str) -> dict[str, Any]:
    return {f"/api/v1/{app}/{entity}/{{id}}/transitions/{{transition}}": {"post": {
        "tags": [title], "operationId": f"transition_{entity}", "summary": "Take a transition",
        "parameters": [_ID, {"name": "transition", "in": "path", "required": True,
                             "schema": {"type": "string"}}, _IF_MATCH],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"comment": {"type": "string"},
                                             "values": {"type": "object"}}}}}},
        "responses": {"200": {"description": "The record after the transition",
                              "content": _json(_camel(entity))}}
        | _errors(400, 401, 403, 404, 409, 412, 422, 428),
    }}}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _timeline_schema() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "integer"}, "action": {"type": "string"},
        "actor": {"type": ["string", "null"]}, "actor_id": {"type": ["integer", "null"]},
        "at": {"type": "string", "format": "date-time"},
        "changes": {"type": ["object", "null"]}, "comment": {"type": ["string", "null"]},
    }, "required": ["id", "action", "at"]}}


_BUILT: dict[str, Mapping[str, Any]] = {}


def app_openapi(app: AppModel) -> Mapping[str, Any]:
    """The OpenAPI document of one app version (built once per version)."""
    built = _BUILT.get(app.content_hash)
    if built is None:
        if len(_BUILT) > 64:
            _BUILT.clear()
        built = _BUILT[app.content_hash] = _build(app)
    return built


def _build(app: AppModel) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": _problem_schema(), "Timeline": _timeline_schema()}
    paths: dict[str, Any] = {}
    workflows = {w.entity for w in app.workflows.values()}
    for name, entity in sorted(app.entities.items()):
        model = _camel(name)
        title = _text(entity.label) or name
        schemas[model] = record_schema(entity)
        schemas[f"{model}Create"] = _input_schema(entity, create=True)
        schemas[f"{model}Patch"] = _input_schema(entity, create=False)
        schemas[f"{model}Page"] = {"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{model}"}},
            "next_cursor": {"type": ["string", "null"]},
        }, "required": ["items", "next_cursor"]}
        paths.update(_entity_paths(app.name, name, entity, title))
        if name in workflows:
            paths.update(_transition_path(app.name, name, title))
    for form in sorted(app.forms):
        paths[f"/api/v1/{app.name}/forms/{form}"] = {"get": {
            "tags": ["Forms"], "operationId": f"form_{form}",
            "summary": "The form, limited to what the caller may see",
            "responses": {"200": {"description": "Form definition",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}
            | _errors(401, 403, 404)}}
    for item in paths.values():
        for operation in item.values():  # any request may be malformed or unauthenticated
            operation["responses"] = _errors(400, 401, 403, 404) | operation["responses"]
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{_text(app.manifest.title) or app.name} API", "version": app.version,
                 "description": _text(getattr(app.manifest, "description", None)) or ""},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A token from `POST /api/v1/auth/token`."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "session": {"type": "apiKey", "in": "cookie", "name": "flowdesk_session"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}, {"session": []}],
    }
