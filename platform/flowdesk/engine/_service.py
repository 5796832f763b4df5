"""Service states: call an integration's operation and route on the answer.

Run by the `workflow.service` job (never inside a user's request): the input
is evaluated, the call made through the engine's `service_caller` (the
integrations layer; tests pass a fake), `save` fields set from `response`,
then the first route whose condition holds, else `success`. A failure (an
exception, `TimeoutError` past the state's `timeout`) is raised so the job is
retried; on the last attempt the record goes to the state's `error` state
with the failure on the timeline instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowdesk.model._base import parse_duration
from flowdesk.model.workflow import ServiceState
from flowdesk.store.values import json_value

from ._context import plain

if TYPE_CHECKING:
    from ._flow import Run
    from .workflow import WorkflowEngine

__all__ = ["ServiceUnavailable", "call_and_route"]


class ServiceUnavailable(RuntimeError):
    """No service caller is configured (the integrations layer did not register one)."""


def call_and_route(engine: WorkflowEngine, run: Run, name: str, *, last: bool) -> None:
    state: ServiceState = run.workflow.states[name]  # type: ignore[assignment]
    here = f"/states/{name}"
    given = {
        key: json_value(run.scope.value(f"{here}/input/{key}", value, run.record, run.actor,
                                        run.now, run.conn))
        for key, value in state.input.items()
    }
    try:
        if engine.service_caller is None:
            raise ServiceUnavailable("no service caller is configured for service states")
        integration = run.model.integrations.get(state.integration)
        response: Any = engine.service_caller(
            integration, state.operation, given,
            timeout=parse_duration(state.timeout).total_seconds(),
            idempotency_key=f"{run.model.name}:{run.entity}:{run.record['id']}:"
                            f"{run.record['row_version']}:{name}",
        )
    except Exception as error:  # any failure of the call is the integration's, not ours
        if not last:
            raise
        run.move(state.error, f"{name}.error", comment=f"{type(error).__name__}: {error}")
        return
    response = plain(response)
    saved = {
        field: run.scope.evaluate(f"{here}/save/{field}", run.record, run.actor, run.now,
                                  run.conn, response=response)
        for field in state.save
    }
    if saved:
        run.record = engine.store.update(run.entity, run.record["id"], saved,
                                         expected_version=run.record["row_version"],
                                         actor=run.actor, connection=run.conn)
    for index, route in enumerate(state.routes):
        if run.scope.holds(f"{here}/routes/{index}/when", run.record, run.actor, run.now,
                           run.conn, response=response):
            run.move(route.to, f"{name}.route.{index}")
            return
    run.move(state.success, f"{name}.success")
