"""Errors as RFC 9457 problem details: one mapping from every error the layers below
raise to a status, a stable `type` and a message a person can act on.

Handlers never build error responses themselves: they raise, and `to_problem` decides.
Nothing a user sees is a traceback; an unexpected error is logged with its traceback and
answered with a 500 problem carrying only a reference to the log line.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from flowdesk.engine.workflow import WorkflowError
from flowdesk.security.errors import Forbidden
from flowdesk.store.errors import (
    Conflict,
    InvalidQuery,
    NotFound,
    RecordError,
    UnsupportedFilterError,
    ValidationFailed,
)

__all__ = ["PROBLEM_TYPE_BASE", "Problem", "problem_handlers", "to_problem"]

_log = logging.getLogger("flowdesk.api")

PROBLEM_TYPE_BASE = "https://flowdesk.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error the API answers with a problem document.

    `code` becomes the `type` URI's last segment (stable, kebab-case); `extra` members
    are added to the document (`errors`, `current_version`, `retry_after` ...).
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("-", " ").capitalize()
        self.headers = dict(headers or {})
        self.extra = extra

    def document(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def _field_errors(error: ValidationFailed) -> list[dict[str, Any]]:
    return [
        {"field": item.field, "code": item.code, "message": item.message}
        | ({"rule": item.rule} if item.rule else {})
        for item in error.errors
    ]


def _from_record_error(error: RecordError) -> Problem:
    if isinstance(error, NotFound):
        return Problem(404, "not-found", str(error), title="Not found")
    if isinstance(error, Conflict):
        return Problem(
            412, "version-conflict", str(error), title="The record changed",
            current_version=error.current_version,
        )
    if isinstance(error, ValidationFailed):
        return Problem(
            422, "validation-failed", str(error), title="Invalid values",
            errors=_field_errors(error),
        )
    if isinstance(error, UnsupportedFilterError):
        return Problem(
            400, "unsupported-filter", str(error), title="Filter not supported",
            errors=[{"message": str(item), "line": item.line, "column": item.column}
                    for item in error.unsupported],
        )
    if isinstance(error, InvalidQuery):
        return Problem(400, "invalid-query", str(error), title="Invalid query")
    code = "unique-violation" if error.__class__.__name__ == "UniqueViolation" else "record-error"
    return Problem(409, code, str(error), title="Not saved")


def to_problem(error: Exception) -> Problem:
    """The problem for any error a handler lets through."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, Forbidden):
        return Problem(403, "forbidden", error.message, title="Forbidden",
                       **({"fields": list(error.fields)} if error.fields else {}))
    if isinstance(error, RecordError):
        return _from_record_error(error)
    if isinstance(error, WorkflowError):
        status = _WORKFLOW_STATUS.get(error.code, 409)
        return Problem(status, error.code, error.message, title="Transition refused")
    if isinstance(error, ValidationException):
        return Problem(400, "bad-request", str(error.detail), title="Bad request",
                       errors=error.extra if isinstance(error.extra, list) else [])
    if isinstance(error, HTTPException):
        return Problem(error.status_code, _slug(error.status_code), str(error.detail),
                       headers=error.headers)
    reference = uuid.uuid4().hex[:12]
    _log.error("unexpected error %s", reference, exc_info=error)
    return Problem(500, "internal-error",
                   f"An unexpected error occurred; the server log has it as {reference}.",
                   title="Internal error", reference=reference)


_WORKFLOW_STATUS = {"role-not-allowed": 403, "not-your-task": 403, "self-approval": 403,
                    "field-required": 422, "comment-required": 422, "invalid-decision": 400,
                    "no-workflow": 404, "task-not-found": 404}
"""Workflow refusals by code; the rest (not-available, guard-false, already-decided ...)
are 409: the request is fine, the record's state does not allow it now."""


def _slug(status: int) -> str:
    return {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
            405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type",
            429: "too-many-requests"}.get(status, f"http-{status}")


def problem_response(request: Request, error: Exception) -> Response[bytes]:
    problem = to_problem(error)
    return Response(
        msgspec.json.encode(problem.document(request.url.path)),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=problem.headers,
    )


def problem_handlers() -> dict[type[Exception], Callable[[Request, Exception], Response]]:
    """Litestar `exception_handlers`: every exception becomes a problem document."""
    return {Exception: problem_response}
