"""The active apps of a running server, kept in step with deploys without a restart.

Every request asks the registry for its app. At most once per `refresh_every` seconds
the registry reads the active versions' content hashes (one small query); an app whose
hash changed is compiled from its stored snapshot and its runtime (records service,
guard, workflow engine) rebuilt, then swapped in whole, so a request sees one version
from start to end. Policies deployed with a new version therefore apply from the next
request after the refresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

import flowdesk.integrations.rest
import flowdesk.integrations.webhooks  # noqa: F401  (registers the webhook observer)
from flowdesk.engine._runtime import build_engine
from flowdesk.engine.workflow import WorkflowEngine
from flowdesk.model.appmodel import AppModel
from flowdesk.security.guard import RecordGuard
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import RecordStore
from flowdesk.store.snapshots import load_active

from .problems import Problem

__all__ = ["RESERVED_APP_NAMES", "AppRegistry", "AppRuntime"]

RESERVED_APP_NAMES = frozenset({"auth", "apps", "me", "docs", "openapi"})
"""Path segments under `/api/v1/` that are the platform's, not an app's."""


@dataclass
class AppRuntime:
    """Everything a request needs for one app version, built once per version."""

    app: AppModel
    store: RecordStore
    guard: RecordGuard
    workflow: WorkflowEngine
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.app.name


RuntimeHook = Callable[[AppRuntime], None]


class AppRegistry:
    """The active app versions on one database.

    Args:
        engine: the server's engine.
        refresh_every: seconds between checks for newly deployed versions (0: every call).
        on_build: called with each new runtime (the workflow engine and other layers
            attach themselves here, keeping this module free of them).
    """

    def __init__(
        self, engine: Engine, *, refresh_every: float = 1.0, on_build: RuntimeHook | None = None
    ) -> None:
        self.engine = engine
        self.refresh_every = refresh_every
        self.on_build = on_build
        self._runtimes: dict[str, AppRuntime] = {}
        self._checked = 0.0
        self._lock = threading.Lock()

    def get(self, name: str) -> AppRuntime:
        """The runtime of app `name`; a 404 problem when no version of it is active."""
        self._maybe_refresh()
        runtime = self._runtimes.get(name)
        if runtime is None:
            raise Problem(404, "unknown-app", f"no app named `{name}` is deployed here",
                          title="Unknown app")
        return runtime

    def names(self) -> list[str]:
        self._maybe_refresh()
        return sorted(self._runtimes)

    def runtimes(self) -> list[AppRuntime]:
        self._maybe_refresh()
        return [self._runtimes[name] for name in sorted(self._runtimes)]

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._checked >= self.refresh_every:
            self.refresh()

    def refresh(self) -> None:
        """Load the versions activated since the last check (and drop undeployed apps)."""
        with self._lock:
            self._checked = time.monotonic()
            with self.engine.connect() as connection:
                active = dict(connection.execute(
                    select(pt.app_versions.c.app, pt.app_versions.c.content_hash)
                    .where(pt.app_versions.c.active.is_(True))
                ).all())
            current = {name: runtime.app.content_hash for name, runtime in self._runtimes.items()}
            if active == current:
                return
            runtimes = {n: r for n, r in self._runtimes.items() if active.get(n) == current[n]}
            for name in active.keys() - runtimes.keys():
                app = load_active(self.engine, name)
                if app is not None and name not in RESERVED_APP_NAMES:
                    runtimes[name] = self._build(app)
            self._runtimes = runtimes

    def _build(self, app: AppModel) -> AppRuntime:
        store = RecordStore(self.engine, app)
        guard = RecordGuard(store)
        workflow = build_engine(store)  # SLA clocks, rules, webhooks, REST service calls
        guard.writer = workflow  # creates, edits and transitions run the workflows and SLAs
        runtime = AppRuntime(app, store, guard, workflow)
        if self.on_build is not None:
            self.on_build(runtime)
        return runtime
