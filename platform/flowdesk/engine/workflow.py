"""The workflow engine: records moving through their workflow (start here).

`WorkflowEngine(store)` stands in for the `RecordStore` as a writer (same
`create` / `update` / `delete` signatures) and adds `available_transitions`
and `transition`. Every operation is one transaction (the caller's, when
`connection=` is given): the record's writes, its audit rows, the engine's
own rows (approval tasks, branch tokens) and the jobs that follow up (timers,
service calls, notifications) commit together or not at all.

```python
engine = WorkflowEngine(store)                         # versions: load_version by default
ticket = engine.create("ticket", {...}, actor=alice)   # initial state, on_enter, gateways...
[t.name for t in engine.available_transitions("ticket", ticket, alice)]
ticket = engine.transition("ticket", ticket["id"], "accept", actor=alice,
                           expected_version=ticket["row_version"])
```

Refusals are `WorkflowError` with a stable `code`: `not-available` (unknown,
timer-only, or not from the record's state), `role-not-allowed`,
`field-required`, `comment-required`, `guard-false`; a stale version is the
store's `Conflict`. Records keep the workflow version they started on
(`workflow_version`); the engine runs them on that version's `AppModel`.

Observers (SLA clocks, automations) get `after_create(connection, entity,
record, actor)`, `after_update(connection, entity, before, after, actor)` and
`after_transition(connection, entity, before, after, transition, actor)`,
each optional, inside the transaction. See `_flow` for what entering a state
does, `approvals` for approval states, `_jobs` for timer and service jobs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, select, update

from flowdesk.jobs.queue import enqueue, utc_now
from flowdesk.model.appmodel import AppModel
from flowdesk.model.workflow import ParallelState, Transition, Workflow
from flowdesk.store import platform_tables as pt
from flowdesk.store.errors import Conflict
from flowdesk.store.records import SYSTEM_ACTOR, Actor, RecordStore
from flowdesk.store.snapshots import load_version
from flowdesk.store.values import json_value

from . import _jobs, _runtime  # noqa: F401  (_jobs registers the job handlers)
from ._flow import Run, WorkflowError, pending_jobs
from .actions import ActionRunner, label_text
from .approvals import Approvals
from .calendar import BusinessCalendar
from .parties import PartyResolver

__all__ = ["AvailableTransition", "ServiceCaller", "WorkflowEngine", "WorkflowError"]

ServiceCaller = Callable[..., Mapping[str, Any]]
"""`caller(integration, operation, input, *, timeout, idempotency_key) -> response`;
raises on failure (`TimeoutError` for a timeout). Filled in by the integrations layer."""


@dataclass(frozen=True)
class AvailableTransition:
    """A transition a user may take now (for buttons and the API)."""

    name: str
    label: str
    to: str
    requires: tuple[str, ...]
    comment: str  # none | optional | required
    primary: bool


class WorkflowEngine:
    """Runs the workflows of one app's records.

    Args:
        store: the records service of the app's current version.
        versions: the `AppModel` of a deployed version (records pinned to an older
            one run on it); default: loaded from `fd_app_versions` and cached.
        observers: told of every create, update and state change, in the transaction.
        clock: the current UTC time (timers and jobs are scheduled from it).
        service_caller: calls an integration for service states (see `ServiceCaller`).
    """

    def __init__(
        self,
        store: RecordStore,
        *,
        versions: Callable[[str], AppModel] | None = None,
        observers: Sequence[object] = (),
        clock: Callable[[], dt.datetime] = utc_now,
        service_caller: ServiceCaller | None = None,
        service_attempts: int = 3,
    ) -> None:
        self.store = store
        self.app = store.app
        self.observers = list(observers)
        self.clock = clock
        self.service_caller = service_caller
        self.service_attempts = service_attempts
        self._versions = versions
        self._models: dict[str, AppModel] = {self.app.version: self.app}
        self._calendars: dict[str, BusinessCalendar] = {}
        self.parties = PartyResolver(self.app.name)
        self.runner = ActionRunner(store, self.parties, host=self)
        self.approvals = Approvals(self)
        _runtime.register(self)

    # ------------------------------------------------------------------ models

    def model_for(self, record: Mapping[str, Any], connection: Connection | None = None
                  ) -> AppModel:
        """The app version a record is pinned to (the current one if it has none).

        Inside a transaction pass its `connection`: on SQLite a second connection would
        wait for the write lock this one holds."""
        version = record.get("workflow_version") or self.app.version
        if version not in self._models:
            if self._versions is not None:
                self._models[version] = self._versions(version)
            else:
                source = connection if connection is not None else self.store.engine
                self._models[version] = load_version(source, self.app.name, version)
        return self._models[version]

    def workflow_of(self, conn: Connection, model: AppModel, entity: str,
                    record: Mapping[str, Any]) -> Workflow | None:
        """The workflow a record runs: its entity's, or the sub-process it was started as."""
        candidates = [w for w in model.workflows.values() if w.entity == entity]
        if len(candidates) > 1:
            tokens = pt.workflow_tokens
            row = conn.execute(select(tokens.c.workflow).where(
                tokens.c.app == self.app.name, tokens.c.child_entity == entity,
                tokens.c.child_id == record["id"])).first()
            if row is not None and row.workflow in model.workflows:
                return model.workflows[row.workflow]
        return candidates[0] if candidates else None

    def calendar(self, model: AppModel) -> BusinessCalendar:
        if model.content_hash not in self._calendars:
            self._calendars[model.content_hash] = BusinessCalendar.from_app(model)
        return self._calendars[model.content_hash]

    def notify(self, hook: str, *args: Any) -> dict[str, Any] | None:
        """Tell the observers; an observer that wrote to the record (an automation rule)
        returns it as it left it, and the latest such record is returned, so the
        operation carries on from the record's current version."""
        latest = None
        for observer in self.observers:
            method = getattr(observer, hook, None)
            if method is not None:
                changed = method(*args)
                if isinstance(changed, dict):
                    latest = changed
        return latest

    def _run(self, conn: Connection, entity: str, record: dict[str, Any], actor: Actor) -> Run:
        model = self.model_for(record, conn)
        workflow = self.workflow_of(conn, model, entity, record)
        if workflow is None:
            raise WorkflowError("no-workflow", f"entity `{entity}` has no workflow")
        return Run(self, conn, model, workflow, entity, record, actor, self.clock())

    # ------------------------------------------------------------------ writes

    def create(self, entity: str, values: Mapping[str, Any], *, actor: Actor,
               comment: str | None = None, connection: Connection | None = None) -> dict[str, Any]:
        """Create a record in its workflow's initial state and run what follows."""
        with self.store.transaction(connection) as conn:
            return self.create_in(conn, entity, values, actor, comment=comment)

    def create_in(self, connection: Connection, entity: str, values: Mapping[str, Any],
                  actor: Actor, *, workflow: str | None = None, comment: str | None = None,
                  token: int | None = None) -> dict[str, Any]:
        """`create` inside a transaction; `workflow` names a sub-workflow to start."""
        chosen = self.app.workflows.get(workflow) if workflow else self.app.workflow_for(entity)
        if chosen is None:
            record = self.store.create(entity, values, actor=actor, comment=comment,
                                       connection=connection)
            return self.notify("after_create", connection, entity, record, actor) or record
        record = self.store.create(entity, values, actor=actor, comment=comment,
                                   state=chosen.initial, workflow_version=self.app.version,
                                   connection=connection)
        if token is not None:
            connection.execute(update(pt.workflow_tokens).where(pt.workflow_tokens.c.id == token)
                               .values(child_id=record["id"]))
        record = self.notify("after_create", connection, entity, record, actor) or record
        run = Run(self, connection, self.app, chosen, entity, record, actor, self.clock())
        run.enter(chosen.initial)
        run.flush()
        return run.record

    def update(self, entity: str, record_id: int, changes: Mapping[str, Any], *,
               expected_version: int, actor: Actor, comment: str | None = None,
               where: ColumnElement[bool] | None = None,
               connection: Connection | None = None) -> dict[str, Any]:
        """Change fields (as `RecordStore.update`, `where` limiting the records it may
        change); waiting timers keep their due time."""
        with self.store.transaction(connection) as conn:
            before = self.store.get(entity, record_id, where=where, connection=conn)
            after = self.store.update(entity, record_id, changes,
                                      expected_version=expected_version, actor=actor,
                                      comment=comment, where=where, connection=conn)
            if after["row_version"] != before["row_version"]:
                self._rekey_jobs(conn, entity, after)
                after = self.notify("after_update", conn, entity, before, after, actor) or after
            return after

    def delete(self, entity: str, record_id: int, *, actor: Actor,
               expected_version: int | None = None, comment: str | None = None,
               hard: bool = False, where: ColumnElement[bool] | None = None,
               connection: Connection | None = None) -> None:
        """As `RecordStore.delete`; timers of a deleted record find nothing to do."""
        self.store.delete(entity, record_id, actor=actor, expected_version=expected_version,
                          comment=comment, hard=hard, where=where, connection=connection)

    def _rekey_jobs(self, conn: Connection, entity: str, record: Mapping[str, Any]) -> None:
        """Jobs check the version they were made for: carry waiting ones to the new version,
        same due time, so an edit neither cancels nor restarts a timer."""
        for job in pending_jobs(conn, self.app.name, entity, record["id"]):
            payload = dict(job.payload) | {"version": record["row_version"]}
            head = job.idempotency_key.rsplit(":", 2)[0]
            key = f"{head}:{record['row_version']}:{job.idempotency_key.rsplit(':', 1)[1]}"
            run_at = job.run_at if job.run_at.tzinfo else job.run_at.replace(tzinfo=dt.UTC)
            enqueue(conn, job.kind, payload, run_at=run_at, idempotency_key=key[:200],
                    max_attempts=job.max_attempts, now=self.clock())

    # ------------------------------------------------------------------ transitions

    def available_transitions(self, entity: str, record: Mapping[str, Any],
                              actor: Actor) -> list[AvailableTransition]:
        """Transitions `actor` may take on `record` now: from its state (or one of its
        parallel branches), with the actor's role, and the guard holding."""
        with self.store.transaction(None) as conn:
            run = self._run(conn, entity, dict(record), actor)
            found = []
            for name, transition in run.workflow.transitions.items():
                if self._refusal(run, name, transition, actor, None, check_fields=False):
                    continue
                found.append(AvailableTransition(
                    name, label_text(transition.label, actor.locale) or name, transition.to,
                    tuple(transition.requires), transition.comment, transition.primary))
            return found

    def transition(self, entity: str, record_id: int, name: str, *, actor: Actor,
                   expected_version: int, values: Mapping[str, Any] | None = None,
                   comment: str | None = None, connection: Connection | None = None
                   ) -> dict[str, Any]:
        """Take transition `name`: apply `values`, check, run actions, move, follow on."""
        with self.store.transaction(connection) as conn:
            record = self.store.get(entity, record_id, connection=conn)
            if record["row_version"] != expected_version:
                raise Conflict(entity, record_id, expected_version, record["row_version"])
            run = self._run(conn, entity, record, actor)
            transition = run.workflow.transitions.get(name)
            if transition is None or transition.is_timer:
                raise WorkflowError("not-available", f"`{name}` is not a transition a user "
                                    f"can take in workflow {run.workflow.name}")
            self._refuse(run, name, transition, actor, comment, check_fields=False)
            if values:
                run.record = self.store.update(entity, record_id, values,
                                               expected_version=expected_version, actor=actor,
                                               connection=conn)
            self._refuse(run, name, transition, actor, comment, check_fields=True)
            self._take(run, name, transition, comment)
            return run.record

    def transition_in(self, connection: Connection, entity: str, record: Mapping[str, Any],
                      name: str, actor: Actor) -> dict[str, Any]:
        """A transition taken by an action or a timer: roles are not asked, the guard is."""
        run = self._run(connection, entity, dict(record), actor)
        transition = run.workflow.transitions.get(name)
        if transition is None:
            raise WorkflowError("not-available", f"no transition `{name}`")
        self._refuse(run, name, transition, SYSTEM_ACTOR, None, check_fields=True, system=True)
        self._take(run, name, transition, None)
        return run.record

    def _take(self, run: Run, name: str, transition: Transition, comment: str | None) -> None:
        at = f"/transitions/{name}/actions"
        token = self._branch_token(run, transition)
        if token is not None:
            run.move_branch(token, transition.to, name, comment, at, transition.actions)
        else:
            run.move(transition.to, name, comment, at, transition.actions)
        run.flush()

    def _branch_token(self, run: Run, transition: Transition) -> Any:
        if not isinstance(run.workflow.states.get(run.record["state"]), ParallelState):
            return None
        return next((t for t in run.branches() if t.branch in transition.sources), None)

    def _refuse(self, run: Run, name: str, transition: Transition, actor: Actor,
                comment: str | None, *, check_fields: bool, system: bool = False) -> None:
        problem = self._refusal(run, name, transition, actor, comment,
                                check_fields=check_fields, system=system)
        if problem is not None:
            raise WorkflowError(*problem)

    def _refusal(self, run: Run, name: str, transition: Transition, actor: Actor,
                 comment: str | None, *, check_fields: bool, system: bool = False
                 ) -> tuple[str, str] | None:
        """Why `actor` may not take the transition now (code, message), or None."""
        state = run.record["state"]
        states = run.workflow.states
        sources = transition.sources
        here = (state in sources or (sources == ["*"] and states[state].category != "done")
                or self._branch_token(run, transition) is not None)
        if not here or (transition.is_timer and not system):
            return "not-available", f"`{name}` cannot be taken from state `{state}`"
        if not system and transition.roles and not set(transition.roles) & set(actor.roles):
            return "role-not-allowed", f"`{name}` needs one of the roles " \
                                       f"{', '.join(transition.roles)}"
        if check_fields:
            missing = [f for f in transition.requires if run.record.get(f) in (None, "", [])]
            if missing:
                return "field-required", f"`{name}` needs a value in: {', '.join(missing)}"
            if transition.comment == "required" and not (comment or "").strip() and not system:
                return "comment-required", f"`{name}` needs a comment"
        if transition.when is not None and not run.scope.holds(
            f"/transitions/{name}/when", run.record, actor, run.now, run.conn
        ):
            return "guard-false", f"the condition of `{name}` does not hold for this record"
        return None

    # ------------------------------------------------------------------ sub-processes

    def child_finished(self, run: Run) -> None:
        """A record reached a `done` state: a parent waiting on it moves on."""
        tokens = pt.workflow_tokens
        rows = run.conn.execute(select(tokens).where(
            tokens.c.app == self.app.name, tokens.c.kind == "subprocess",
            tokens.c.child_entity == run.entity, tokens.c.status == "active",
            (tokens.c.child_id == run.record["id"]) | tokens.c.child_id.is_(None),
        )).all()
        for row in rows:
            if row.child_id is None and row.child_entity != run.entity:
                continue
            run.conn.execute(update(tokens).where(tokens.c.id == row.id)
                             .values(status="done", child_id=run.record["id"],
                                     updated_at=run.now))
            if row.child_id is None:
                continue  # still being created: the parent moves on when creation returns
            parent = self.store.get(row.entity, row.record_id, connection=run.conn)
            if parent["state"] != row.state:
                continue
            outer = self._run(run.conn, row.entity, parent, run.actor)
            state = outer.workflow.states[row.state]
            self._hand_back(outer, row.state, state, run.record)
            outer.move(state.done, f"{row.state}.done")  # type: ignore[union-attr]
            outer.flush()

    def _hand_back(self, outer: Run, name: str, state: Any, child: Mapping[str, Any]) -> None:
        """Set the parent's `result` fields from the finished child (`= child.field`)."""
        result = getattr(state, "result", None)
        if not result:
            return
        child_view = json_value(dict(child))
        values = {
            field: outer.scope.value(f"/states/{name}/result/{field}", value, outer.record,
                                     outer.actor, outer.now, outer.conn, child=child_view)
            for field, value in result.items()
        }
        outer.record = self.store.update(outer.entity, outer.record["id"], values,
                                         expected_version=outer.record["row_version"],
                                         actor=outer.actor, connection=outer.conn)

    # ------------------------------------------------------------------ jobs

    def run_timer(self, conn: Connection, payload: Mapping[str, Any]) -> bool:
        """The `workflow.timer` job: take the transition if the record is still where the
        timer was set, at that version. True when it moved."""
        record = self._pinned(conn, payload)
        if record is None:
            return False
        run = self._run(conn, payload["entity"], record, SYSTEM_ACTOR)
        name = payload["transition"]
        transition = run.workflow.transitions.get(name)
        if transition is None or self._refusal(run, name, transition, SYSTEM_ACTOR, None,
                                               check_fields=True, system=True):
            return False
        self._take(run, name, transition, label_text(transition.label, None) or None)
        return True

    def run_service(self, conn: Connection, payload: Mapping[str, Any], *, last: bool) -> bool:
        """The `workflow.service` job: call, save, route. Failures retry; the last one
        routes to the state's `error`."""
        record = self._pinned(conn, payload)
        if record is None:
            return False
        run = self._run(conn, payload["entity"], record, SYSTEM_ACTOR)
        from ._service import call_and_route

        call_and_route(self, run, payload["state"], last=last)
        run.flush()
        return True

    def _pinned(self, conn: Connection, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        from flowdesk.store.errors import NotFound

        try:
            record = self.store.get(payload["entity"], payload["record_id"], connection=conn)
        except NotFound:
            return None
        if record["row_version"] != payload["version"]:
            return None
        if record["state"] != payload["state"]:
            state = self.workflow_of(conn, self.model_for(record, conn), payload["entity"], record)
            in_branch = state is not None and isinstance(
                state.states.get(record["state"]), ParallelState)
            if not in_branch:
                return None
        return record
