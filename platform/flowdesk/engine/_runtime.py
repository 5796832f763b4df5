"""Which `WorkflowEngine` serves a job: the one this process built for the app and
database, else one built from the deployed app (`flowdesk worker` in its own process)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

if TYPE_CHECKING:
    from .workflow import WorkflowEngine

__all__ = ["EXTENSIONS", "build_engine", "engine_for", "register"]

_ENGINES: dict[tuple[str, str], weakref.ref[WorkflowEngine]] = {}

EXTENSIONS: list[Callable[[WorkflowEngine], None]] = []
"""Called with every engine `build_engine` makes. Layers above the engine plug in here
(the integrations layer adds its webhook observer and its REST service caller) so the
API's engines and the worker's are wired alike without the engine importing them."""


def build_engine(store: Any) -> WorkflowEngine:
    """The engine of a `RecordStore`'s app with everything that observes writes: SLA
    clocks, automation rules, and what `EXTENSIONS` add."""
    from .automations import automations_for
    from .sla import clocks_for
    from .workflow import WorkflowEngine

    engine = WorkflowEngine(store, observers=[clocks_for(store.app, store),
                                              automations_for(store.app)])
    for extend in EXTENSIONS:
        extend(engine)
    return engine


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

    model = load_active(connection, app)
    if model is None:
        raise LookupError(f"app `{app}` is not deployed: no workflow engine for its jobs")
    return build_engine(RecordStore(connection.engine, model))
