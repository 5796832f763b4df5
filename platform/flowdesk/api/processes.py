"""Process endpoints: the transitions a caller may take on a record, and approval
tasks (the caller's inbox and their decisions). Taking a transition is in `records.py`
beside the other record writes."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody

from ._threads import threaded
from .auth import principal_for
from .problems import Problem
from .records import JSON, record_response, runtime_of

__all__ = ["PROCESS_HANDLERS"]

_encoder = msgspec.json.Encoder(decimal_format="string")


@get("/api/v1/{app:str}/{entity:str}/{record_id:int}/transitions")
@threaded
def list_transitions(
    request: Request, app: FromPath[str], entity: FromPath[str], record_id: FromPath[int]
) -> Response[bytes]:
    runtime = runtime_of(request, app, entity)
    principal = principal_for(request, runtime)
    offered = runtime.guard.available_transitions(principal, entity, record_id)
    body = [{"name": t.name, "label": t.label, "to": t.to, "requires": list(t.requires),
             "comment": t.comment, "primary": t.primary} for t in offered]
    return Response(_encoder.encode(body), media_type=JSON)


@get("/api/v1/{app:str}/approvals")
@threaded
def my_approvals(request: Request, app: FromPath[str]) -> Response[bytes]:
    """The caller's open approval tasks in this app, oldest first."""
    runtime = runtime_of(request, app)
    principal = principal_for(request, runtime)
    tasks = runtime.workflow.approvals.pending_for(principal.user_id)
    body = [{"id": t.id, "entity": t.entity, "record_id": t.record_id, "state": t.state,
             "level": t.level, "status": t.status, "due_at": t.due_at} for t in tasks]
    return Response(_encoder.encode(body), media_type=JSON)


@post("/api/v1/{app:str}/approvals/{task_id:int}", status_code=200)
@threaded
def decide(
    request: Request, app: FromPath[str], task_id: FromPath[int], data: JSONBody[Any]
) -> Response[bytes]:
    """Approve, reject, return or delegate (`{"decision": ..., "comment": ...,
    "delegate_to": user id}`); only the task's approver may decide it."""
    runtime = runtime_of(request, app)
    principal = principal_for(request, runtime)
    if not isinstance(data, dict) or not isinstance(data.get("decision"), str):
        raise Problem(400, "bad-request", 'send {"decision": "approve" | "reject" | "return" '
                      '| "delegate", "comment": ...}')
    delegate = data.get("delegate_to")
    if delegate is not None and not isinstance(delegate, int):
        raise Problem(400, "bad-request", "`delegate_to` must be a user id")
    comment = data.get("comment")
    task = runtime.workflow.approvals.task(task_id)
    if task is None or task.user_id != principal.user_id:
        raise Problem(404, "task-not-found", f"you have no approval task {task_id}")
    record = runtime.workflow.approvals.decide(
        task_id, data["decision"], actor=principal.actor(),
        comment=comment if isinstance(comment, str) else None, delegate_to=delegate)
    return record_response(runtime, task.entity,
                           runtime.guard.readable_record(principal, task.entity, record))


PROCESS_HANDLERS = [list_transitions, my_approvals, decide]
