"""Approval states: levels of approvers, their tasks and decisions.

Entering an approval state opens its first level whose `when` holds: one task
per approver (`fd_approval_tasks`, resolved by `parties`), the requester left
out unless `allow_self_approval`. A level passes by its mode — `any` (the
first decision decides), `all` (countersign: every approver; one rejection
rejects), `n_of_m` (`n` approvals; rejected once `n` cannot be reached),
`percent` (that share of the approvers, rounded up) — and then the next
applicable level opens; after the last the record moves to `approved`. A
rejection moves it to `rejected`, a return to `returned`, a delegation hands
the task to another user. Every decision is a row in `fd_approval_decisions`
(one per task: a unique constraint) and an `approval` audit row on the
record's timeline. Decisions on one record are serialised by locking the
record's row (`FOR UPDATE` on PostgreSQL; SQLite has one writer), so two
approvers deciding at once both count and the level moves on exactly once.

A level's `remind` and `due` become `approval.remind` / `approval.escalate`
jobs; escalation hands the pending tasks to `escalate_to`.

```python
approvals = engine.approvals
tasks = approvals.pending_for(user_id)
approvals.decide(tasks[0].id, "approve", actor=manager, comment="ok")
```
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from flowdesk.model._base import parse_duration
from flowdesk.model.workflow import ApprovalLevel, ApprovalState
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import SYSTEM_ACTOR, Actor

from ._flow import Run, WorkflowError
from .parties import requester_of

if TYPE_CHECKING:
    from .workflow import WorkflowEngine

__all__ = ["DECISIONS", "ApprovalTask", "Approvals"]

DECISIONS = ("approve", "reject", "return", "delegate")
_CLOSED = ("delegated", "escalated", "skipped")  # tasks that no longer count


@dataclass(frozen=True)
class ApprovalTask:
    """One approver's task on one level of one record."""

    id: int
    entity: str
    record_id: int
    state: str
    level: str
    user_id: int
    status: str
    due_at: dt.datetime | None


class Approvals:
    """Approval tasks of one engine's app."""

    def __init__(self, engine: WorkflowEngine) -> None:
        self.engine = engine
        self.app = engine.app.name

    # ------------------------------------------------------------------ opening levels

    def begin(self, run: Run, name: str, state: ApprovalState) -> None:
        """The record entered approval state `name`: open its first applicable level."""
        self._open_next(run, name, state, 0, run.record["row_version"])

    def _open_next(self, run: Run, name: str, state: ApprovalState, start: int,
                   round_: int) -> None:
        for index in range(start, len(state.levels)):
            level = state.levels[index]
            pointer = f"/states/{name}/levels/{index}/when"
            if level.when is None or run.scope.holds(pointer, run.record, run.actor, run.now,
                                                     run.conn):
                self._open(run, name, state, index, round_)
                return
        run.move(state.approved, f"{name}.approved")

    def _open(self, run: Run, name: str, state: ApprovalState, index: int, round_: int) -> None:
        level = state.levels[index]
        users = self.engine.parties.resolve_all(
            run.conn, level.approvers, run.record, scope=run.scope,
            pointer=f"/states/{name}/levels/{index}/approvers", actor=run.actor, now=run.now)
        if not state.allow_self_approval:
            users = [u for u in users if u != requester_of(run.record)]
        if not users:
            raise WorkflowError("no-approvers", f"level `{level.name}` of `{name}` has no "
                                "approver for this record (self-approval excluded)")
        due = run.now + parse_duration(level.due) if level.due else None
        for user in users:
            self._insert_task(run.conn, run, name, round_, level.name, index, user, due)
        self.engine.runner.write_audit(
            run.conn, run.entity, run.record, "approval", run.actor, run.now,
            {"level": {"old": None, "new": level.name}, "approvers": {"old": None, "new": users}},
            f"approval requested: {level.name}")
        self._schedule(run, name, round_, level, due)

    def _insert_task(self, conn: Connection, run: Run, name: str, round_: int, level: str,
                     index: int, user: int, due: dt.datetime | None,
                     delegated_from: int | None = None) -> None:
        conn.execute(pt.approval_tasks.insert().values(
            app=self.app, entity=run.entity, record_id=run.record["id"], state=name,
            round=round_, level=level, level_index=index, user_id=user, status="pending",
            delegated_from=delegated_from, due_at=due, created_at=run.now))

    def _schedule(self, run: Run, name: str, round_: int, level: ApprovalLevel,
                  due: dt.datetime | None) -> None:
        from flowdesk.jobs.queue import enqueue

        payload = {"app": self.app, "entity": run.entity, "record_id": run.record["id"],
                   "state": name, "round": round_, "level": level.name}
        base = f"{self.app}:{run.entity}:{run.record['id']}:{name}:{round_}:{level.name}"
        if level.remind:
            enqueue(run.conn, "approval.remind", payload, now=run.now,
                    run_at=run.now + parse_duration(level.remind),
                    idempotency_key=f"approval.remind:{base}"[:200])
        if due is not None:
            enqueue(run.conn, "approval.escalate", payload, run_at=due, now=run.now,
                    idempotency_key=f"approval.escalate:{base}"[:200])

    # ------------------------------------------------------------------ reading

    def pending_for(self, user_id: int, *, connection: Connection | None = None
                    ) -> list[ApprovalTask]:
        """The open tasks of a user, oldest first."""
        tasks = pt.approval_tasks
        statement = select(tasks).where(tasks.c.app == self.app, tasks.c.user_id == user_id,
                                        tasks.c.status == "pending").order_by(tasks.c.id)
        with self.engine.store.transaction(connection) as conn:
            return [_task(row) for row in conn.execute(statement)]

    def task(self, task_id: int, *, connection: Connection | None = None
             ) -> ApprovalTask | None:
        tasks = pt.approval_tasks
        statement = select(tasks).where(tasks.c.app == self.app, tasks.c.id == task_id)
        with self.engine.store.transaction(connection) as conn:
            row = conn.execute(statement).first()
        return None if row is None else _task(row)

    def tasks_of(self, entity: str, record_id: int, *, connection: Connection | None = None
                 ) -> list[ApprovalTask]:
        tasks = pt.approval_tasks
        statement = select(tasks).where(tasks.c.app == self.app, tasks.c.entity == entity,
                                        tasks.c.record_id == record_id).order_by(tasks.c.id)
        with self.engine.store.transaction(connection) as conn:
            return [_task(row) for row in conn.execute(statement)]

    # ------------------------------------------------------------------ deciding

    def decide(self, task_id: int, decision: str, *, actor: Actor, comment: str | None = None,
               delegate_to: int | None = None, connection: Connection | None = None
               ) -> dict[str, Any]:
        """Record `actor`'s decision on a task and move the record on if it decides the
        level. Returns the record as it is afterwards."""
        if decision not in DECISIONS:
            raise WorkflowError("invalid-decision", f"`{decision}` is not one of "
                                f"{', '.join(DECISIONS)}")
        with self.engine.store.transaction(connection) as conn:
            task = self._lock_task(conn, task_id)
            record = self._lock_record(conn, task.entity, task.record_id)
            run = self.engine._run(conn, task.entity, record, actor)
            state = run.workflow.states.get(task.state)
            self._check(task, record, state, decision, actor, comment, delegate_to)
            self._record(run, task, decision, comment, delegate_to)
            assert isinstance(state, ApprovalState)
            self._outcome(run, task, state, decision, comment, delegate_to)
            run.record = self.engine.notify("after_event", conn, task.entity, run.record,
                                            "approval_decided", actor) or run.record
            run.flush()
            return run.record

    def _lock_task(self, conn: Connection, task_id: int) -> Any:
        tasks = pt.approval_tasks
        row = conn.execute(select(tasks).where(tasks.c.id == task_id, tasks.c.app == self.app)
                           .with_for_update()).first()
        if row is None:
            raise WorkflowError("task-not-found", f"there is no approval task {task_id}")
        return row

    def _lock_record(self, conn: Connection, entity: str, record_id: int) -> dict[str, Any]:
        """Serialise decisions on one record (SQLite: the write lock already does)."""
        table = self.engine.store.tables[entity].main
        conn.execute(select(table.c.id).where(table.c.id == record_id).with_for_update())
        return self.engine.store.get(entity, record_id, connection=conn)

    def _check(self, task: Any, record: Mapping[str, Any], state: Any, decision: str,
               actor: Actor, comment: str | None, delegate_to: int | None) -> None:
        if task.status != "pending":
            raise WorkflowError("already-decided", f"task {task.id} is already {task.status}")
        if task.user_id != actor.id:
            raise WorkflowError("not-your-task", f"task {task.id} is not assigned to you")
        if record["state"] != task.state or not isinstance(state, ApprovalState):
            raise WorkflowError("task-closed", f"the record is no longer in `{task.state}`")
        needs_comment = state.comment_required == "always" or (
            state.comment_required == "on_reject" and decision in ("reject", "return"))
        if needs_comment and not (comment or "").strip():
            raise WorkflowError("comment-required", f"a `{decision}` here needs a comment")
        if decision == "return" and state.returned is None:
            raise WorkflowError("return-not-allowed", f"`{task.state}` cannot be returned")
        if decision == "delegate":
            if delegate_to is None or delegate_to == actor.id:
                raise WorkflowError("delegate-required", "name another user to delegate to")
            if delegate_to == requester_of(record) and not state.allow_self_approval:
                raise WorkflowError("self-approval", "the requester cannot approve their own "
                                    "request")

    def _record(self, run: Run, task: Any, decision: str, comment: str | None,
                delegate_to: int | None) -> None:
        status = {"approve": "approved", "reject": "rejected", "return": "returned",
                  "delegate": "delegated"}[decision]
        try:
            run.conn.execute(pt.approval_decisions.insert().values(
                task_id=task.id, app=self.app, entity=task.entity, record_id=task.record_id,
                user_id=task.user_id, decision=decision, comment=comment,
                delegate_to=delegate_to, at=run.now))
        except IntegrityError:
            raise WorkflowError("already-decided", f"task {task.id} was decided meanwhile"
                                ) from None
        run.conn.execute(update(pt.approval_tasks).where(pt.approval_tasks.c.id == task.id)
                         .values(status=status, decided_at=run.now))
        changes = {"decision": {"old": None, "new": decision},
                   "level": {"old": None, "new": task.level}}
        if delegate_to is not None:
            changes["delegate_to"] = {"old": None, "new": delegate_to}
        self.engine.runner.write_audit(run.conn, task.entity, run.record, "approval",
                                       run.actor, run.now, changes, comment)

    def _outcome(self, run: Run, task: Any, state: ApprovalState, decision: str,
                 comment: str | None, delegate_to: int | None) -> None:
        name = task.state
        if decision == "delegate":
            self._insert_task(run.conn, run, name, task.round, task.level, task.level_index,
                              delegate_to, task.due_at, delegated_from=task.user_id)  # type: ignore[arg-type]
            return
        if decision == "return":
            self._close_level(run, task)
            run.move(state.returned, f"{name}.returned", comment)  # type: ignore[arg-type]
            return
        verdict = self._tally(run.conn, task, state.levels[task.level_index])
        if verdict is None:
            return
        self._close_level(run, task)
        if verdict:
            self._open_next(run, name, state, task.level_index + 1, task.round)
        else:
            run.move(state.rejected, f"{name}.rejected", comment)

    def _tally(self, conn: Connection, task: Any, level: ApprovalLevel) -> bool | None:
        """True: the level passed; False: it failed; None: not decided yet."""
        statuses = [row.status for row in conn.execute(self._level_tasks(task))
                    if row.status not in _CLOSED]
        total, approved = len(statuses), statuses.count("approved")
        rejected, pending = statuses.count("rejected"), statuses.count("pending")
        if level.mode == "any":
            return True if approved else (False if rejected else None)
        if level.mode == "all":
            return False if rejected else (True if approved == total else None)
        need = min(level.n or 1, total) if level.mode == "n_of_m" else \
            max(1, math.ceil((level.percent or 100) * total / 100))
        if approved >= need:
            return True
        return False if approved + pending < need else None

    def _level_tasks(self, task: Any) -> Any:
        tasks = pt.approval_tasks
        return select(tasks).where(
            tasks.c.app == self.app, tasks.c.entity == task.entity,
            tasks.c.record_id == task.record_id, tasks.c.state == task.state,
            tasks.c.round == task.round, tasks.c.level == task.level)

    def _close_level(self, run: Run, task: Any) -> None:
        tasks = pt.approval_tasks
        run.conn.execute(update(tasks).where(
            tasks.c.app == self.app, tasks.c.entity == task.entity,
            tasks.c.record_id == task.record_id, tasks.c.state == task.state,
            tasks.c.round == task.round, tasks.c.level == task.level,
            tasks.c.status == "pending").values(status="skipped", decided_at=run.now))

    # ------------------------------------------------------------------ reminders, escalation

    def _pending_level(self, conn: Connection, payload: Mapping[str, Any]) -> list[Any]:
        tasks = pt.approval_tasks
        return list(conn.execute(select(tasks).where(
            tasks.c.app == self.app, tasks.c.entity == payload["entity"],
            tasks.c.record_id == payload["record_id"], tasks.c.state == payload["state"],
            tasks.c.round == payload["round"], tasks.c.level == payload["level"],
            tasks.c.status == "pending")))

    def remind(self, conn: Connection, payload: Mapping[str, Any]) -> None:
        """`approval.remind`: a reminder to approvers who have not decided yet."""
        from flowdesk.jobs.queue import enqueue

        users = [row.user_id for row in self._pending_level(conn, payload)]
        if users:
            enqueue(conn, "notify.send", {**payload, "template": "approval_reminder",
                                          "recipients": users},
                    idempotency_key=f"notify.send:remind:{payload['app']}:{payload['entity']}:"
                                    f"{payload['record_id']}:{payload['round']}:"
                                    f"{payload['level']}"[:200])

    def escalate(self, conn: Connection, payload: Mapping[str, Any]) -> None:
        """`approval.escalate`: past due, pending tasks go to the level's `escalate_to`."""
        pending = self._pending_level(conn, payload)
        if not pending:
            return
        record = self.engine.store.get(payload["entity"], payload["record_id"], connection=conn)
        run = self.engine._run(conn, payload["entity"], record, SYSTEM_ACTOR)
        state = run.workflow.states.get(payload["state"])
        if not isinstance(state, ApprovalState) or record["state"] != payload["state"]:
            return
        index = pending[0].level_index
        level = state.levels[index]
        if level.escalate_to is None:
            self.remind(conn, payload)
            return
        users = self.engine.parties.resolve(conn, level.escalate_to, record, scope=run.scope,
                                            pointer=f"/states/{payload['state']}/levels/"
                                                    f"{index}/escalate_to",
                                            actor=SYSTEM_ACTOR, now=run.now)
        taken = {row.user_id for row in conn.execute(self._level_tasks(pending[0]))}
        users = [u for u in users if u not in taken]
        if not users:
            return
        tasks = pt.approval_tasks
        conn.execute(update(tasks).where(tasks.c.id.in_([t.id for t in pending]))
                     .values(status="escalated", decided_at=run.now))
        for user in users:
            self._insert_task(conn, run, payload["state"], payload["round"], level.name, index,
                              user, None, delegated_from=pending[0].user_id)
        self.engine.runner.write_audit(conn, run.entity, record, "approval", SYSTEM_ACTOR,
                                       run.now, {"escalated_to": {"old": None, "new": users}},
                                       f"approval overdue: {level.name} escalated")


def _task(row: Any) -> ApprovalTask:
    return ApprovalTask(row.id, row.entity, row.record_id, row.state, row.level, row.user_id,
                        row.status, row.due_at)
