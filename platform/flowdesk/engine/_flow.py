"""Entering a state and what follows by itself: on-enter actions, gateways, parallel
forks and joins, sub-processes, service calls and timers (the private half of
`workflow.WorkflowEngine`).

A `Run` is one operation in one transaction: the record as it is now, the
model version it is pinned to, the actor and the clock. `enter` runs the
state's `on_enter` actions, then whatever the state's type does by itself;
automatic moves (a gateway's branch, a join, a finished sub-process) go
through `move`, which runs exit and transition actions, `set_state` (audited
with the transition's name) and `enter` again. Jobs for timers and service
calls are enqueued once the operation is over (`flush`), with the record's
final version, which their handlers check before acting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, select, update

from flowdesk.jobs.queue import enqueue
from flowdesk.model._base import parse_duration
from flowdesk.model.action import Action
from flowdesk.model.appmodel import AppModel
from flowdesk.model.workflow import (
    ApprovalState,
    GatewayState,
    ParallelState,
    ServiceState,
    SubprocessState,
    Workflow,
)
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor

from ._context import Scope, reference_value

if TYPE_CHECKING:
    from .workflow import WorkflowEngine

__all__ = ["MAX_STEPS", "Run", "WorkflowError"]

MAX_STEPS = 50
"""Automatic moves one operation may make before it is stopped as a loop."""


class WorkflowError(Exception):
    """A workflow operation refused or failed; `code` is stable (the API maps it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Run:
    """One operation: everything it changes commits together."""

    engine: WorkflowEngine
    conn: Connection
    model: AppModel
    workflow: Workflow
    entity: str
    record: dict[str, Any]
    actor: Actor
    now: dt.datetime
    steps: int = 0
    entered: list[str] = field(default_factory=list)

    @property
    def scope(self) -> Scope:
        return Scope(self.engine.store, self.model, "Workflow", self.workflow.name, self.entity)

    def actions(self, pointer: str, actions: Sequence[Action]) -> None:
        if actions:
            result = self.engine.runner.run(self.conn, self.scope, pointer, actions, self.record,
                                            actor=self.actor, now=self.now)
            self.record = result.record

    # ------------------------------------------------------------------ moving

    def move(self, to: str, name: str, comment: str | None = None,
             actions_at: str | None = None, actions: Sequence[Action] = ()) -> None:
        """Leave the current state for `to` through transition `name`."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise WorkflowError("workflow-loop", f"{self.entity} {self.record['id']}: more than "
                                f"{MAX_STEPS} automatic steps; the workflow loops")
        source = self.record["state"]
        before = dict(self.record)
        state = self.workflow.states.get(source)
        if state is not None:
            self.actions(f"/states/{source}/on_exit", state.on_exit)
        if actions_at is not None:
            self.actions(actions_at, actions)
        self.record = self.engine.store.set_state(
            self.entity, self.record["id"], to, expected_version=self.record["row_version"],
            actor=self.actor, comment=comment, transition=name, connection=self.conn,
            states=self.workflow.states,
        )
        self.record = self.engine.notify("after_transition", self.conn, self.entity, before,
                                         self.record, name, self.actor) or self.record
        self.enter(to)

    def enter(self, name: str) -> None:
        state = self.workflow.states[name]
        self.entered.append(name)
        self.actions(f"/states/{name}/on_enter", state.on_enter)
        if self.record["state"] != name:
            return  # an on-enter `transition` action already moved on
        if isinstance(state, GatewayState):
            self._gateway(name, state)
        elif isinstance(state, ApprovalState):
            self.engine.approvals.begin(self, name, state)
        elif isinstance(state, ParallelState):
            self._fork(name, state)
        elif isinstance(state, SubprocessState):
            self._subprocess(name, state)
        elif state.category == "done":
            self.engine.child_finished(self)

    def _gateway(self, name: str, state: GatewayState) -> None:
        for index, branch in enumerate(state.branches):
            pointer = f"/states/{name}/branches/{index}/when"
            if self.scope.holds(pointer, self.record, self.actor, self.now, self.conn):
                self.move(branch.to, f"{name}.{index}")
                return
        if state.default is None:
            raise WorkflowError("gateway-no-match", f"gateway `{name}` of workflow "
                                f"{self.workflow.name}: no branch matches and there is no default")
        self.move(state.default, f"{name}.default")

    # ------------------------------------------------------------------ parallel

    def _fork(self, name: str, state: ParallelState) -> None:
        tokens = pt.workflow_tokens
        for branch in state.branches:
            done = branch == state.join
            self.conn.execute(tokens.insert().values(
                app=self.model.name, entity=self.entity, record_id=self.record["id"],
                kind="branch", state=name, round=self.record["row_version"], branch=branch,
                status="done" if done else "active", created_at=self.now, updated_at=self.now))
            if not done:
                self.actions(f"/states/{branch}/on_enter", self.workflow.states[branch].on_enter)
                self.entered.append(branch)
        self._maybe_join(name, state)

    def branches(self) -> list[Any]:
        """Active branch tokens of the record's parallel state."""
        tokens = pt.workflow_tokens
        return list(self.conn.execute(select(tokens).where(
            tokens.c.app == self.model.name, tokens.c.entity == self.entity,
            tokens.c.record_id == self.record["id"], tokens.c.kind == "branch",
            tokens.c.state == self.record["state"], tokens.c.status == "active",
        ).order_by(tokens.c.id)))

    def move_branch(self, token: Any, to: str, name: str, comment: str | None,
                    actions_at: str, actions: Sequence[Action]) -> None:
        """Move one branch of a parallel state; the record enters the join when all arrive."""
        parallel: ParallelState = self.workflow.states[self.record["state"]]  # type: ignore[assignment]
        self.actions(f"/states/{token.branch}/on_exit", self.workflow.states[token.branch].on_exit)
        self.actions(actions_at, actions)
        arrived = to == parallel.join
        self.conn.execute(update(pt.workflow_tokens).where(pt.workflow_tokens.c.id == token.id)
                          .values(branch=to, status="done" if arrived else "active",
                                  updated_at=self.now))
        before = dict(self.record)
        self.record = self.engine.store.set_state(
            self.entity, self.record["id"], self.record["state"],
            expected_version=self.record["row_version"], actor=self.actor, comment=comment,
            transition=name, connection=self.conn, states=self.workflow.states,
        )
        self.record = self.engine.notify("after_transition", self.conn, self.entity, before,
                                         self.record, name, self.actor) or self.record
        if not arrived:
            self.actions(f"/states/{to}/on_enter", self.workflow.states[to].on_enter)
            self.entered.append(to)
        self._maybe_join(self.record["state"], parallel)

    def _maybe_join(self, name: str, state: ParallelState) -> None:
        if not self.branches():
            self.move(state.join, f"{name}.join")

    # ------------------------------------------------------------------ sub-processes

    def _subprocess(self, name: str, state: SubprocessState) -> None:
        entity = state.entity or self.entity
        values = {
            key: reference_value(self.scope.value(f"/states/{name}/values/{key}", value,
                                                  self.record, self.actor, self.now, self.conn))
            for key, value in state.values.items()
        }
        token = self.conn.execute(pt.workflow_tokens.insert().values(
            app=self.model.name, entity=self.entity, record_id=self.record["id"],
            kind="subprocess", state=name, round=self.record["row_version"], child_entity=entity,
            workflow=state.workflow, status="active", created_at=self.now, updated_at=self.now,
        )).inserted_primary_key[0]
        child = self.engine.create_in(self.conn, entity, values, self.actor,
                                      workflow=state.workflow, token=token)
        self.conn.execute(update(pt.workflow_tokens).where(pt.workflow_tokens.c.id == token)
                          .values(child_id=child["id"]))
        self.finish_waiting_parent(token)

    def finish_waiting_parent(self, token_id: int) -> None:
        """If the sub-process of token `token_id` already ended (at creation), move on."""
        tokens = pt.workflow_tokens
        row = self.conn.execute(select(tokens).where(tokens.c.id == token_id)).first()
        if row is not None and row.status == "done" and self.record["state"] == row.state:
            done = self.workflow.states[row.state].done  # type: ignore[union-attr]
            self.move(done, f"{row.state}.done")

    # ------------------------------------------------------------------ jobs

    def flush(self) -> None:
        """Enqueue the timers and service calls of the states this operation entered
        and the record is still in, keyed by the record's final version."""
        current = {self.record["state"], *(t.branch for t in self._branch_rows())}
        for name in dict.fromkeys(self.entered):
            if name not in current:
                continue
            state = self.workflow.states[name]
            if isinstance(state, ServiceState):
                self._job("workflow.service", {"state": name}, self.now,
                          max_attempts=self.engine.service_attempts)
            for tname, transition in self.workflow.transitions.items():
                if transition.is_timer and name in transition.sources:
                    self._job("workflow.timer", {"state": name, "transition": tname},
                              self.timer_due(tname))
        self.entered.clear()

    def _branch_rows(self) -> list[Any]:
        if not isinstance(self.workflow.states.get(self.record["state"]), ParallelState):
            return []
        return self.branches()

    def timer_due(self, name: str) -> dt.datetime:
        transition = self.workflow.transitions[name]
        if transition.at is not None:
            at = self.scope.evaluate(f"/transitions/{name}/at", self.record, self.actor,
                                     self.now, self.conn)
            return at if isinstance(at, dt.datetime) else self.now
        span = parse_duration(transition.after or "0s")
        if transition.time == "business":
            return self.engine.calendar(self.model).add_business_time(self.now, span)
        return self.now + span

    def _job(self, kind: str, extra: dict[str, Any], run_at: dt.datetime,
             max_attempts: int = 8) -> None:
        payload = {"app": self.model.name, "entity": self.entity, "record_id": self.record["id"],
                   "version": self.record["row_version"], **extra}
        key = f"{kind}:{self.model.name}:{self.entity}:{self.record['id']}:" \
              f"{self.record['row_version']}:{extra.get('transition') or extra['state']}"
        enqueue(self.conn, kind, payload, run_at=run_at, idempotency_key=key[:200],
                max_attempts=max_attempts, now=self.now)


def pending_jobs(conn: Connection, app: str, entity: str, record_id: int) -> list[Any]:
    """Waiting timer and service jobs of a record (to re-key them after an edit)."""
    jobs = pt.jobs
    prefix = [f"{kind}:{app}:{entity}:{record_id}:%" for kind in ("workflow.timer",
                                                                   "workflow.service")]
    return list(conn.execute(select(jobs).where(
        and_(jobs.c.status.in_(["pending", "retry"]),
             jobs.c.idempotency_key.like(prefix[0]) | jobs.c.idempotency_key.like(prefix[1])))))
