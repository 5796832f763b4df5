"""The registry of job handlers: which function runs a job of which `kind`.

The contract every handler keeps (docs/jobs.md says it at length):

* A handler is `fn(connection, job) -> None`. The worker calls it inside the
  transaction that also marks the job `done`: what it writes through
  `connection` and the job's completion commit together or roll back together.
  Database effects therefore happen exactly once, even when a worker is killed
  half way, because a killed worker's transaction never commits and the job is
  claimed again after its lease.
* A handler with effects outside the database (an HTTP call, an e-mail) can run
  more than once: the worker may die after the effect and before the commit.
  Such a handler must be idempotent towards the outside world, e.g. by sending
  `job.idempotency_key` (or `fd-job-<id>`) as the `Idempotency-Key` header or the
  message id, so the receiver drops the repeat.
* Raising fails the attempt: the transaction rolls back and the job is retried
  with backoff, or goes `dead` after its last attempt. Raise `RetryLater` to say
  when to try again (a `Retry-After` header, a rate limit).
* A handler must not commit or roll back `connection` itself.

Handlers register at import time with `@register("kind")`. The worker imports
the built-in ones (`noop`, and `cron` / `automation_run` from `schedule`) and the
modules named in `FLOWDESK_JOB_HANDLERS` (comma-separated module paths), which is
how tests and later layers add kinds without the jobs package importing them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Connection

if TYPE_CHECKING:
    from .queue import Job

__all__ = [
    "BUILT_IN_MODULES",
    "HANDLERS_ENV",
    "Handler",
    "Registry",
    "RetryLater",
    "UnknownKind",
    "import_handler_modules",
    "register",
    "registry",
]

HANDLERS_ENV = "FLOWDESK_JOB_HANDLERS"
BUILT_IN_MODULES = ("flowdesk.engine.sla", "flowdesk.engine._jobs",
                    "flowdesk.integrations.notifications", "flowdesk.integrations.webhooks",
                    "flowdesk.integrations.rest")
"""Handler modules of later layers every worker loads (named, never imported here at
module level, so the jobs package still does not depend on them)."""

Handler = Callable[[Connection, "Job"], None]


class RetryLater(Exception):
    """Raised by a handler that knows when the next attempt makes sense.

    The attempt still counts towards `max_attempts`; only the delay is the
    handler's instead of the backoff's.
    """

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownKind(LookupError):
    """No handler is registered for a job's kind (a typo, or a module not imported)."""


class Registry:
    """Job kinds and their handlers. One process-wide instance, `registry`, is used by
    the worker; tests may build their own."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, *, replace: bool = False) -> Callable[[Handler], Handler]:
        """Decorator registering `fn` for `kind`. Registering a kind twice is an error
        (two modules claiming one kind is a bug) unless `replace=True`, which is how a
        later layer takes over a placeholder such as `automation_run`."""
        if not kind or len(kind) > 64:
            raise ValueError(f"a job kind must have 1-64 characters, got {kind!r}")

        def decorate(fn: Handler) -> Handler:
            current = self._handlers.get(kind)
            if current is not None and current is not fn and not replace:
                raise ValueError(
                    f"job kind `{kind}` already has a handler "
                    f"({current.__module__}.{current.__qualname__})"
                )
            self._handlers[kind] = fn
            return fn

        return decorate

    def unregister(self, kind: str) -> None:
        self._handlers.pop(kind, None)

    def get(self, kind: str) -> Handler:
        try:
            return self._handlers[kind]
        except KeyError:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise UnknownKind(
                f"no handler for job kind `{kind}` (registered: {known}); if another "
                f"module defines it, name that module in {HANDLERS_ENV}"
            ) from None

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers


registry = Registry()
register = registry.register


def import_handler_modules(names: Iterable[str] | str | None = None) -> list[str]:
    """Import the modules that register handlers: `BUILT_IN_MODULES` (SLA timers),
    then `names`, or those listed (comma-separated) in the FLOWDESK_JOB_HANDLERS
    environment variable.

    Returns the module names imported from `names`. An import error propagates: a worker that
    cannot load a configured handler module must not start and let its jobs die.
    """
    if names is None:
        names = os.environ.get(HANDLERS_ENV, "")
    if isinstance(names, str):
        names = names.split(",")
    for name in BUILT_IN_MODULES:
        importlib.import_module(name)
    imported = []
    for name in (n.strip() for n in names):
        if name:
            importlib.import_module(name)
            imported.append(name)
    return imported


@register("noop")
def noop(connection: Connection, job: Job) -> None:
    """Does nothing: for health checks ("is a worker running?") and benchmarks."""
