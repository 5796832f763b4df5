"""Running actions (`set`, `assign`, `create`, `transition`, `comment`, `start`,
`notify`, `call`, `if`/`then`/`else`, `stop`) against one record, in the
caller's transaction.

One runner for workflows, automations and SLA escalations: a list of actions
is run with the `Scope` of the document it was written in and the JSON
pointer of the list, so each `= expr` is found compiled in the `AppModel`.
Writes go through the records service (validation, computed fields, audit);
`create`, `start` and `transition` go through a `Host` (the workflow engine),
so a created record enters its workflow. `notify` and `call` only enqueue
jobs (`notify.send`, `integration.call`) with an idempotency key: delivery is
the integrations layer's, and happens only if this transaction commits.

```python
runner = ActionRunner(store, PartyResolver(app.name), host=engine)
result = runner.run(connection, scope, "/states/closed/on_enter", state.on_enter,
                    record, actor=actor, now=now)
result.record, result.stopped
```
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, func, select

from flowdesk.jobs.queue import enqueue
from flowdesk.model.action import Action, AssignAction, Step
from flowdesk.store import platform_tables as pt
from flowdesk.store.audit import AuditLog
from flowdesk.store.numbers import SequenceAllocator
from flowdesk.store.records import Actor, RecordStore
from flowdesk.store.values import json_value

from ._context import Scope, reference_value
from .parties import PartyResolver

__all__ = ["ActionResult", "ActionRunner", "Host", "label_text"]


class Host(Protocol):
    """What actions need from the workflow engine."""

    def create_in(
        self,
        connection: Connection,
        entity: str,
        values: Mapping[str, Any],
        actor: Actor,
        *,
        workflow: str | None = None,
    ) -> dict[str, Any]: ...

    def transition_in(
        self, connection: Connection, entity: str, record: Mapping[str, Any], name: str,
        actor: Actor,
    ) -> dict[str, Any]: ...


@dataclass
class ActionResult:
    """The record after the actions ran, and whether a `stop` ended them."""

    record: dict[str, Any]
    stopped: bool = False


def label_text(label: Any, locale: str | None) -> str:
    if label is None or isinstance(label, str):
        return label or ""
    return str(label.text(locale or "en"))


class ActionRunner:
    """Runs action lists for the records of one app's store."""

    def __init__(self, store: RecordStore, parties: PartyResolver, host: Host | None = None):
        self.store = store
        self.parties = parties
        self.host = host
        self._audit = AuditLog(store.app.name)
        self._sequences = SequenceAllocator(store.dialect)

    def run(
        self,
        connection: Connection,
        scope: Scope,
        pointer: str,
        actions: Sequence[Action],
        record: Mapping[str, Any],
        *,
        actor: Actor,
        now: dt.datetime,
    ) -> ActionResult:
        """Run `actions` (written at `pointer` of `scope`'s document) in order."""
        result = ActionResult(dict(record))
        for index, action in enumerate(actions):
            here = f"{pointer}/{index}"
            if isinstance(action, Step) and action.if_ is not None:
                holds = scope.holds(here + "/if", result.record, actor, now, connection)
                branch, where = (action.then, "/then") if holds else (action.else_, "/else")
                inner = self.run(connection, scope, here + where, branch or [], result.record,
                                 actor=actor, now=now)
                result.record = inner.record
                if inner.stopped:
                    return ActionResult(result.record, True)
                continue
            key, value = action.chosen
            if key == "stop":
                return ActionResult(result.record, True)
            step = getattr(self, f"_{key}")
            result.record = step(connection, scope, f"{here}/{key}", value, result.record,
                                 actor, now) or result.record
        return result

    # ------------------------------------------------------------------ one action each

    def _set(self, conn, scope, pointer, values, record, actor, now):  # type: ignore[no-untyped-def]
        changes = {
            field: scope.value(f"{pointer}/{field}", value, record, actor, now, conn)
            for field, value in values.items()
        }
        changes = {k: reference_value(v) for k, v in changes.items()}
        return self._update(conn, scope.entity, record, changes, actor)

    def _update(self, conn, entity, record, changes, actor):  # type: ignore[no-untyped-def]
        return self.store.update(
            entity, record["id"], changes, expected_version=record["row_version"],
            actor=actor, connection=conn,
        )

    def _assign(self, conn, scope, pointer, spec: AssignAction, record, actor, now):  # type: ignore[no-untyped-def]
        candidates: list[int] = []
        if spec.to is not None:
            candidates = self.parties.resolve(conn, spec.to, record, scope=scope,
                                              pointer=pointer + "/to", actor=actor, now=now)
        team = None
        if not candidates and spec.team:
            team = scope.value(pointer + "/team", spec.team, record, actor, now, conn)
            candidates = self.parties.team(conn, team)
        if spec.skills and candidates:
            wanted = scope.evaluate(pointer + "/skills", record, actor, now, conn) or []
            candidates = self._skilled(conn, candidates, wanted)
        if not candidates and spec.fallback:
            team = spec.fallback
            candidates = self.parties.team(conn, team)
        if not candidates:
            return record  # nobody to give it to: it stays where it is, visible in the queue
        chosen = self._choose(conn, scope.entity, spec.strategy, candidates, str(team or spec.to))
        if record.get("assignee") == chosen:
            return record
        return self._update(conn, scope.entity, record, {"assignee": chosen}, actor)

    def _skilled(self, conn: Connection, candidates: list[int], wanted: Any) -> list[int]:
        wanted = set(wanted if isinstance(wanted, list) else [wanted])
        rows = conn.execute(select(pt.users.c.id, pt.users.c.skills)
                            .where(pt.users.c.id.in_(candidates)))
        skills = {row.id: set(row.skills or ()) for row in rows}
        return [c for c in candidates if wanted <= skills.get(c, set())]

    def _choose(self, conn: Connection, entity: str, strategy: str, candidates: list[int],
                key: str) -> int:
        """One of `candidates` by `strategy` (`skill_match` narrows, then balances load)."""
        if strategy == "first" or len(candidates) == 1:
            return candidates[0]
        if strategy == "round_robin":
            digest = hashlib.sha1(f"{entity}:{key}".encode()).hexdigest()[:16]
            turn = self._sequences.next(conn, self.store.app.name, "~assign", digest)
            return candidates[(turn - 1) % len(candidates)]
        return self._least_loaded(conn, entity, candidates)

    def _least_loaded(self, conn: Connection, entity: str, candidates: list[int]) -> int:
        """The candidate with the fewest open (not `done`) live records of `entity`."""
        table = self.store.tables[entity].main
        workflow = self.store.app.workflow_for(entity)
        done = [n for n, s in (workflow.states.items() if workflow else ()) if s.category == "done"]
        statement = (
            select(table.c.assignee, func.count())
            .where(table.c.assignee.in_(candidates), table.c.deleted_at.is_(None))
            .group_by(table.c.assignee)
        )
        if done:
            statement = statement.where(table.c.state.not_in(done))
        load = dict.fromkeys(candidates, 0) | {row[0]: row[1] for row in conn.execute(statement)}
        return min(candidates, key=lambda c: (load[c], candidates.index(c)))

    def _create(self, conn, scope, pointer, spec, record, actor, now):  # type: ignore[no-untyped-def]
        values = {
            field: reference_value(
                scope.value(f"{pointer}/values/{field}", value, record, actor, now, conn)
            )
            for field, value in spec.values.items()
        }
        if self.host is not None:
            self.host.create_in(conn, spec.entity, values, actor)
        else:
            self.store.create(spec.entity, values, actor=actor, connection=conn)
        return record

    def _start(self, conn, scope, pointer, spec, record, actor, now):  # type: ignore[no-untyped-def]
        entity = spec.entity or scope.entity
        values: dict[str, Any] = {}
        if entity != scope.entity:  # link the child back when it can refer to its parent
            plan_fields = self.store.app.entities[entity].fields
            values = {f: record["id"] for f, s in plan_fields.items()
                      if getattr(s, "to", None) == scope.entity}
        if self.host is None:
            raise RuntimeError("`start` needs the workflow engine")
        self.host.create_in(conn, entity, values, actor, workflow=spec.workflow)
        return record

    def _transition(self, conn, scope, pointer, name, record, actor, now):  # type: ignore[no-untyped-def]
        if self.host is None:
            raise RuntimeError("`transition` needs the workflow engine")
        return self.host.transition_in(conn, scope.entity, record, name, actor)

    def _comment(self, conn, scope, pointer, label, record, actor, now):  # type: ignore[no-untyped-def]
        self.write_audit(conn, scope.entity, record, "comment", actor, now, None,
                         label_text(label, actor.locale))
        return record

    def write_audit(self, conn: Connection, entity: str, record: Mapping[str, Any], action: str,
                    actor: Actor, now: dt.datetime, changes: Mapping[str, Any] | None,
                    comment: str | None) -> None:
        """An audit row of the engine's own (comments, approval decisions)."""
        if not self.store.app.entities[entity].audit:
            return
        row = self._audit.row(entity, record["id"], action, actor_id=actor.id,
                              actor=actor.username, at=now, changes=changes, comment=comment)
        self._audit.write(conn, [row])

    def _notify(self, conn, scope, pointer, spec, record, actor, now):  # type: ignore[no-untyped-def]
        recipients = None
        emails: list[str] = []
        if spec.to is not None:
            recipients = self.parties.resolve_all(conn, spec.to, record, scope=scope,
                                                  pointer=pointer + "/to", actor=actor, now=now)
            emails = [p.email for p in spec.to if not isinstance(p, str) and p.email]
        payload = {
            "app": self.store.app.name, "entity": scope.entity, "record_id": record["id"],
            "template": spec.template, "recipients": recipients, "emails": emails,
        }
        self.enqueue_once(conn, "notify.send", payload, record, pointer, now)
        return record

    def _call(self, conn, scope, pointer, spec, record, actor, now):  # type: ignore[no-untyped-def]
        given = {
            name: json_value(scope.value(f"{pointer}/input/{name}", value, record, actor, now,
                                         conn))
            for name, value in spec.input.items()
        }
        payload = {
            "app": self.store.app.name, "entity": scope.entity, "record_id": record["id"],
            "integration": spec.integration, "operation": spec.operation, "input": given,
            "save": {"kind": scope.kind, "document": scope.name, "pointer": pointer + "/save",
                     "fields": list(spec.save)},
        }
        self.enqueue_once(conn, "integration.call", payload, record, pointer, now)
        return record

    def enqueue_once(self, conn: Connection, kind: str, payload: Mapping[str, Any],
                     record: Mapping[str, Any], pointer: str, now: dt.datetime) -> int:
        """Enqueue a follow-up job, once per record version and action."""
        raw = f"{self.store.app.name}:{payload['entity']}:{record['id']}:" \
              f"{record['row_version']}:{pointer}"
        key = f"{kind}:{hashlib.sha1(raw.encode()).hexdigest()}"
        return enqueue(conn, kind, payload, idempotency_key=key, now=now)
