"""Record endpoints of every deployed app: CRUD, lists, timeline, transitions, forms.

The handlers are thin: authenticate, find the app's runtime, ask its `RecordGuard`
(the one place where authorization meets records), encode. Paths carry the app and
entity as parameters, so apps deployed while the server runs are served at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from flowdesk.model.entity import LinesField

from ._threads import threaded
from .auth import principal_for
from .forms import form_definition
from .problems import Problem
from .registry import AppRegistry, AppRuntime

__all__ = ["RECORD_HANDLERS"]

JSON = "application/json"
_encoder = msgspec.json.Encoder(decimal_format="string")


def _registry(request: Request) -> AppRegistry:
    return request.app.state.registry


def runtime_of(request: Request, app: str, entity: str | None = None) -> AppRuntime:
    runtime = _registry(request).get(app)
    if entity is not None and entity not in runtime.app.entities:
        raise Problem(404, "unknown-entity", f"app `{app}` has no entity `{entity}`",
                      title="Unknown entity")
    return runtime


def _durations(runtime: AppRuntime, entity: str) -> tuple[tuple[str, ...], dict[str, tuple]]:
    """Duration fields (and those inside lines): sent as whole seconds, as they are read."""
    cache = runtime.extras.setdefault("durations", {})
    found = cache.get(entity)
    if found is None:
        fields = runtime.app.entities[entity].fields
        top = tuple(n for n, s in fields.items() if getattr(s, "type", None) == "duration")
        lines = {
            n: tuple(k for k, sub in s.fields.items() if sub.type == "duration")
            for n, s in fields.items() if isinstance(s, LinesField)
        }
        found = cache[entity] = (top, {n: names for n, names in lines.items() if names})
    return found


def _seconds(value: Any) -> Any:
    return int(value.total_seconds()) if isinstance(value, dt.timedelta) else value


def _plain(runtime: AppRuntime, entity: str, record: dict[str, Any]) -> dict[str, Any]:
    top, lines = _durations(runtime, entity)
    for name in top:
        if name in record:
            record[name] = _seconds(record[name])
    for name, inner in lines.items():
        for line in record.get(name) or ():
            for key in inner:
                if key in line:
                    line[key] = _seconds(line[key])
    return record


def _etag(record: Mapping[str, Any]) -> str:
    return f'"{record["row_version"]}"'


def record_response(
    runtime: AppRuntime, entity: str, record: dict[str, Any], status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    body = _encoder.encode(_plain(runtime, entity, record))
    extra = {"ETag": _etag(record)} if "row_version" in record else {}
    return Response(body, status_code=status, media_type=JSON, headers=extra | dict(headers or {}))


def expected_version(request: Request, *, required: bool = True) -> int | None:
    """The row version named by `If-Match` (`"3"`, `W/"3"` or `3`)."""
    header = request.headers.get("if-match")
    if header is None:
        if required:
            raise Problem(428, "if-match-required",
                          "send the record's ETag as If-Match to change it "
                          "(GET the record to learn it)", title="If-Match required")
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise Problem(400, "bad-if-match", f"If-Match `{header}` is not an ETag of a record",
                      title="Bad If-Match")
    return int(text)


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    return names or None


def _body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Problem(400, "bad-request", "the body must be a JSON object of field values",
                      title="Bad request")
    return data


# --------------------------------------------------------------------------- handlers


@get("/api/v1/{app:str}/{entity:str}")
@threaded
def list_records(
    request: Request,
    app: FromPath[str],
    entity: FromPath[str],
    filter_: Annotated[str | None, Parameter(query="filter")] = None,
    sort: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    cursor: str | None = None,
    q: str | None = None,
    fields: str | None = None,
    count: bool = False,
) -> Response[bytes]:
    runtime = runtime_of(request, app, entity)
    principal = principal_for(request, runtime)
    order: Sequence[str] = _names(sort) or ("-id",)
    chosen = _names(fields)
    page = runtime.guard.list(principal, entity, filter=filter_, sort=order, limit=limit,
                              cursor=cursor, fields=chosen, search=q)
    body: dict[str, Any] = {
        "items": [_plain(runtime, entity, record) for record in page.items],
        "next_cursor": page.next_cursor,
    }
    if count:
        body["total"] = runtime.guard.count(principal, entity, filter=filter_, search=q)
    return Response(_encoder.encode(body), media_type=JSON)


@get("/api/v1/{app:str}/{entity:str}/{record_id:int}")
@threaded
def get_record(
    request: Request,
    app: FromPath[str],
    entity: FromPath[str],
    record_id: FromPath[int],
    fields: str | None = None,
) -> Response[bytes]:
    runtime = runtime_of(request, app, entity)
    principal = principal_for(request, runtime)
    record = runtime.guard.get(principal, entity, record_id, fields=_names(fields))
    if "row_version" in record and request.headers.get("if-none-match") == _etag(record):
        return Response(b"", status_code=304, headers={"ETag": _etag(record)})
    return record_response(runtime, entity, record)


@post("/api/v1/{app:str}/{entity:str}")
@threaded
def create_record(
    request: Request, app: FromPath[str], entity: FromPath[str], data: JSONBody[Any]
) -> Response[bytes]:
    runtime = runtime_of(request, app, entity)
    principal = principal_for(request, runtime)
    values = _body(data)
    comment = values.pop("_comment", None)
    record = runtime.guard.create(principal, entity, values, comment=comment)
    location = f"/api/v1/{app}/{entity}/{record['id']}"
    return record_response(runtime, entity, record, 201, {"Location": location})


@patch("/api/v1/{app:str}/{entity:str}/{record_id:int}")
@threaded
def update_record(
    request: Request, app: FromPath[str], entity: FromPath[str], record_id: FromPath[int],
    data: JSONBody[Any],
) -> Response[bytes]:
    runtime = runtime_of(request, app, entity)
    principal = principal_for(request, runtime)
    changes = _body(data)
    comment = changes.pop("_comment", None)
    version = expected_version(request)
    record = runtime.guard.update(principal, entity, record_id, changes,
                                  expected_version=version, comment=comment)
    return record_response(runtime, entity, record)


@delete("/api/v1/{app:str}/{entity:str}/{record_id:int}", status_code=204)
@threaded
def delete_record(
    request: Request, app: FromPath[str], entity: FromPath[str], record_id: FromPath[int]
) -> None:
    runtime = runtime_of(request, app, entity)
    principal = principal_for(request, runtime)
    runtime.guard.delete(principal, entity, record_id,
                         expected_version=expected_version(request, required=False))


@get("/api/v1/{app:str}/{entity:str}/{record_id:int}/timeline")
@threaded
def record_timeline(
    request: Request, app: FromPath[str], entity: FromPath[str], record_id: FromPath[int]
) -> Response[bytes]:
    runtime = runtime_of(request, app, entity)
    principal = principal_for(request, runtime)
    entries = runtime.guard.timeline(principal, entity, record_id)
    body = [
        {"id": e.id, "action": e.action, "actor": e.actor, "actor_id": e.actor_id,
         "at": e.at, "changes": e.changes, "comment": e.comment}
        for e in entries
    ]
    return Response(_encoder.encode(body), media_type=JSON)


@post("/api/v1/{app:str}/{entity:str}/{record_id:int}/transitions/{transition:str}",
      status_code=200)
@threaded
def take_transition(
    request: Request,
    app: FromPath[str],
    entity: FromPath[str],
    record_id: FromPath[int],
    transition: FromPath[str],
    data: JSONBody[Any] = None,
) -> Response[bytes]:
    runtime = runtime_of(request, app, entity)
    principal = principal_for(request, runtime)
    body = _body(data) if data is not None else {}
    values = body.get("values") or {}
    if not isinstance(values, dict):
        raise Problem(400, "bad-request", "`values` must be an object of field values")
    record = runtime.guard.transition(
        principal, entity, record_id, transition, expected_version=expected_version(request),
        values=values, comment=body.get("comment"),
    )
    return record_response(runtime, entity, record)


@get("/api/v1/{app:str}/forms/{form:str}")
@threaded
def get_form(request: Request, app: FromPath[str], form: FromPath[str]) -> Response[bytes]:
    runtime = runtime_of(request, app)
    document = runtime.app.forms.get(form)
    if document is None:
        raise Problem(404, "unknown-form", f"app `{app}` has no form `{form}`",
                      title="Unknown form")
    principal = principal_for(request, runtime)
    return Response(_encoder.encode(form_definition(runtime, document, principal)),
                    media_type=JSON)


RECORD_HANDLERS = [
    get_form,
    list_records,
    get_record,
    create_record,
    update_record,
    delete_record,
    record_timeline,
    take_transition,
]
