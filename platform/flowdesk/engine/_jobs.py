"""Job handlers of the workflow engine: `workflow.timer`, `workflow.service`,
`approval.remind`, `approval.escalate`.

Each runs in the worker's transaction with the job's completion, finds the
engine for the job's app (`_runtime.engine_for`) and does nothing when the
record has moved on since the job was made (the payload's version), so a
repeated or stale job is harmless. Imported by `flowdesk.engine.workflow`, so
any process that builds an engine can run these jobs; a standalone worker
names this module in `FLOWDESK_JOB_HANDLERS`.
"""

from __future__ import annotations

from sqlalchemy import Connection

from flowdesk.jobs.handlers import register
from flowdesk.jobs.queue import Job

from . import automations  # noqa: F401  (registers `automation_run`)
from ._runtime import engine_for

__all__ = ["approval_escalate", "approval_remind", "workflow_service", "workflow_timer"]


@register("workflow.timer", replace=True)
def workflow_timer(connection: Connection, job: Job) -> None:
    engine_for(connection, job.payload["app"]).run_timer(connection, job.payload)


@register("workflow.service", replace=True)
def workflow_service(connection: Connection, job: Job) -> None:
    last = job.attempts >= job.max_attempts
    engine_for(connection, job.payload["app"]).run_service(connection, job.payload, last=last)


@register("approval.remind", replace=True)
def approval_remind(connection: Connection, job: Job) -> None:
    engine_for(connection, job.payload["app"]).approvals.remind(connection, job.payload)


@register("approval.escalate", replace=True)
def approval_escalate(connection: Connection, job: Job) -> None:
    engine_for(connection, job.payload["app"]).approvals.escalate(connection, job.payload)
