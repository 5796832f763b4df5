"""Which `WorkflowEngine` serves a job: the one this process built for the app and
database, else one built from the deployed app (`flowdesk worker` in its own process)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from sqlalchemy import Connection

if TYPE_CHECKING:
    from .workflow import WorkflowEngine

__all__ = ["engine_for", "register"]

_ENGINES: dict[tuple[str, str], weakref.ref[WorkflowEngine]] = {}


def register(engine: WorkflowEngine) -> None:
    """The latest engine built for an (database, app) serves that app's jobs."""
    _ENGINES[(str(engine.store.engine.url), engine.app.name)] = weakref.ref(engine)


def engine_for(connection: Connection, app: str) -> WorkflowEngine:
    ref = _ENGINES.get((str(connection.engine.url), app))
    found = ref() if ref is not None else None
    if found is not None:
        return found
    from flowdesk.store.records import RecordStore
    from flowdesk.store.snapshots import load_active

    from .workflow import WorkflowEngine

    model = load_active(connection, app)
    if model is None:
        raise LookupError(f"app `{app}` is not deployed: no workflow engine for its jobs")
    from .automations import automations_for

    return WorkflowEngine(RecordStore(connection.engine, model),
                          observers=[automations_for(model)])
