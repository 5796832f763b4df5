"""Automation rules at run time: an observer of record writes that runs the app's
Automation documents in the writer's transaction (start here for automations).

```python
from flowdesk.engine.automations import automations_for
from flowdesk.engine.sla import clocks_for

flow = WorkflowEngine(store, observers=[clocks_for(app), automations_for(app)])
flow.create("ticket", {...}, actor=alice)       # `created` rules run before this returns
```

`Automations(app)` (or `automations_for(app)`, cached per app version) indexes
the enabled rules by (entity, event), in increasing `order` then name. On each
event it checks the trigger's narrowing (`fields` changed for `updated`, `state`
for `state_entered` / `state_left`), evaluates `when` (the linker's compiled
CEL, through `Scope`) and runs `do` with the workflow engine's `ActionRunner`
(so `create`, `start` and `transition` go through the engine), inside a
SAVEPOINT: a rule that fails is rolled back and logged (`failed`), and the
user's write stands. `stop` ends the rule *and* the rules after it on the same
event.

Rules triggered by rules: the writes a rule makes are announced to every
observer of the engine as one `after_update` (SLA clocks re-target, `updated`
rules run), one level deeper. The depth lives in a context variable for the
duration of a rule, so transitions and creations made by a rule count too. A
rule that would run deeper than its `limits.max_depth` is refused; so is a run
past `max_runs` within `window` on the same record, and one within `cooldown`
of the last. Refusals never raise: they are logged (`logging`, the run log) and
put on the record's timeline (cooldowns: run log only).

Every run is a row of `fd_automation_runs` (conditions evaluated, actions done,
duration; see `_automation_log`) and an `automation` row on the record's
timeline. Scheduled rules (`cron`, `relative`) are run by the `automation_run`
job (`_automation_schedule`).

Events: `created`, `updated`, `state_entered`, `state_left` (from the engine's
hooks), `approval_decided` (`Approvals.decide`), `sla_warning` / `sla_breach`
(`sla.event_listeners`), and any other through `after_event` (`comment_added`,
`email_received` once their producers exist; `deleted` is not announced yet).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from flowdesk.model._base import parse_duration
from flowdesk.model.action import Action, Step
from flowdesk.model.appmodel import AppModel
from flowdesk.model.automation import Automation
from flowdesk.store.records import Actor

from . import sla
from ._automation_log import RunEntry, RunLog
from ._context import EvaluationFailed, Scope
from ._runtime import engine_for

if TYPE_CHECKING:
    from .workflow import WorkflowEngine

__all__ = ["Automations", "RuleRun", "automations_for", "automations_of", "current_depth"]

_log = logging.getLogger("flowdesk.automation")
_DEPTH: ContextVar[int] = ContextVar("flowdesk_automation_depth", default=0)


def current_depth() -> int:
    """How deep in a chain of rules the code runs now: 0 for a user's own write."""
    return _DEPTH.get()


@contextmanager
def _deeper(depth: int) -> Iterator[None]:
    token = _DEPTH.set(depth)
    try:
        yield
    finally:
        _DEPTH.reset(token)


@dataclass(frozen=True)
class _RecordingScope(Scope):
    """A `Scope` that notes each condition it decides, for the run log."""

    seen: list[dict[str, Any]] = field(default_factory=list)

    def holds(self, pointer: str, record: Mapping[str, Any], actor: Actor, now: dt.datetime,
              connection: Connection, **extra: Any) -> bool:
        result = super().holds(pointer, record, actor, now, connection, **extra)
        self.seen.append({"at": pointer, "holds": result})
        return result


@dataclass
class RuleRun:
    """What running one rule on one record gave: the record after it, whether `stop`
    ended processing, and the run's outcome (`done`, `stopped`, `failed`, `skipped`
    when `when` did not hold, or a refusal: `depth`, `max-runs`, `cooldown`)."""

    record: dict[str, Any]
    stopped: bool
    outcome: str


class Automations:
    """The automation rules of one app version, as a record-write observer."""

    def __init__(self, app: AppModel) -> None:
        self.app = app
        self.log = RunLog(app.name)
        index: dict[tuple[str, str], list[Automation]] = {}
        for rule in sorted(app.automations.values(), key=lambda r: (r.order, r.name)):
            if rule.enabled and rule.entity and rule.trigger.event:
                index.setdefault((rule.entity, rule.trigger.event), []).append(rule)
        self.rules = {key: tuple(rules) for key, rules in index.items()}
        _KNOWN[(app.name, app.version, app.content_hash)] = self

    def rules_for(self, entity: str, event: str) -> tuple[Automation, ...]:
        """Enabled rules on `event` of `entity`, in the order they run."""
        return self.rules.get((entity, event), ())

    # ------------------------------------------------------------------ observer hooks

    def after_create(self, connection: Connection, entity: str, record: Mapping[str, Any],
                     actor: Actor) -> dict[str, Any] | None:
        return self.fire(connection, entity, "created", None, record, actor)

    def after_update(self, connection: Connection, entity: str, before: Mapping[str, Any],
                     after: Mapping[str, Any], actor: Actor) -> dict[str, Any] | None:
        return self.fire(connection, entity, "updated", before, after, actor)

    def after_transition(self, connection: Connection, entity: str, before: Mapping[str, Any],
                         after: Mapping[str, Any], transition: str | None, actor: Actor
                         ) -> dict[str, Any] | None:
        """`state_left` (the old state) then `state_entered` (the new one), when the
        state changed (a move inside a parallel state does not change it)."""
        if before.get("state") == after.get("state"):
            return None
        left = self.fire(connection, entity, "state_left", before, after, actor,
                         state=before.get("state"))
        current = left or after
        entered = self.fire(connection, entity, "state_entered", before, current, actor,
                            state=after.get("state"))
        return entered or left

    def after_event(self, connection: Connection, entity: str, record: Mapping[str, Any],
                    event: str, actor: Actor) -> dict[str, Any] | None:
        """Any other event on a record (`approval_decided`, `sla_warning`, ...)."""
        return self.fire(connection, entity, event, None, record, actor)

    # ------------------------------------------------------------------ running

    def fire(self, connection: Connection, entity: str, event: str,
             before: Mapping[str, Any] | None, record: Mapping[str, Any], actor: Actor,
             *, state: str | None = None) -> dict[str, Any] | None:
        """Run the rules on `event` in order; the record as they left it, or None when
        none of them wrote to it."""
        rules = [r for r in self.rules_for(entity, event) if _narrowed(r, before, record, state)]
        if not rules:
            return None
        engine = engine_for(connection, self.app.name)
        current, changed = dict(record), False
        for rule in rules:
            result = self.run_rule(engine, connection, rule, current, actor, trigger=event)
            if result.record.get("row_version") != current.get("row_version"):
                current, changed = result.record, True
            if result.stopped:
                break
        return current if changed else None

    def run_rule(self, engine: WorkflowEngine, connection: Connection, rule: Automation,
                 record: Mapping[str, Any], actor: Actor, *, trigger: str,
                 trigger_key: str | None = None) -> RuleRun:
        """Run one rule on one record in `connection`'s transaction: `when`, limits,
        `do` in a savepoint, the follow-on `after_update`, the run log."""
        began = time.perf_counter()
        depth = _DEPTH.get() + 1
        now = engine.clock()
        scope = _RecordingScope(engine.store, self.app, "Automation", rule.name,
                                rule.entity or "")
        entry = RunEntry(rule.name, rule.entity, record["id"], trigger, depth, trigger_key)
        current = dict(record)
        try:
            if rule.when is not None and not scope.holds("/when", current, actor, now,
                                                         connection):
                return RuleRun(current, False, "skipped")
            refusal = self._refusal(connection, rule, current, depth, now,
                                    fresh=trigger == "created" and depth == 1)
        except EvaluationFailed as error:
            refusal = ("failed", str(error))
        stopped = False
        if refusal is not None:
            entry.outcome, entry.error = refusal
            _log.warning("%s", refusal[1])
        else:
            try:
                with connection.begin_nested(), _deeper(depth):
                    result = engine.runner.run(connection, scope, "/do", rule.do, current,
                                               actor=actor, now=now)
                    current, stopped = self._announce(engine, connection, rule, record,
                                                      result.record, actor), result.stopped
                entry.outcome = "stopped" if stopped else "done"
            except Exception as error:  # a failing rule must not lose the user's write
                _log.warning("automation %s on %s %s failed", rule.name, rule.entity,
                             record["id"], exc_info=True)
                current, stopped = dict(record), False
                entry.outcome, entry.error = "failed", f"{type(error).__name__}: {error}"
        entry.conditions = list(scope.seen)
        entry.actions = actions_done(rule.do, "/do", scope.seen)
        self.log.write(connection, entry, now, (time.perf_counter() - began) * 1000,
                       audit=self.app.entities[rule.entity].audit if rule.entity else False)
        return RuleRun(current, stopped, entry.outcome)

    def _announce(self, engine: WorkflowEngine, connection: Connection, rule: Automation,
                  before: Mapping[str, Any], after: dict[str, Any], actor: Actor
                  ) -> dict[str, Any]:
        """A rule's writes, told to every observer as one update (one level deeper);
        waiting timers follow the record to its new version."""
        if after.get("row_version") == before.get("row_version"):
            return after
        engine._rekey_jobs(connection, rule.entity or "", after)
        return engine.notify("after_update", connection, rule.entity, before, after,
                             actor) or after

    def _refusal(self, connection: Connection, rule: Automation, record: Mapping[str, Any],
                 depth: int, now: dt.datetime, *, fresh: bool = False
                 ) -> tuple[str, str] | None:
        """Why loop protection refuses this run (outcome, message), or None.

        `fresh`: the record was created in this transaction by a user, so no run of
        any rule on it can be in the log yet; the log is not read (a query per rule
        on every create, bench/README.md)."""
        limits = rule.limits
        where = f"automation `{rule.name}` on {rule.entity} {record['id']}"
        if depth > limits.max_depth:
            return "depth", (f"{where} not run: rules triggered by rules reached its "
                             f"max_depth {limits.max_depth}")
        if fresh:
            return None
        window = now - parse_duration(limits.window)
        runs, last = self.log.recent(connection, rule.name, rule.entity or "", record["id"],
                                     window)
        if runs >= limits.max_runs:
            return "max-runs", (f"{where} not run: it already ran {runs} times within "
                                f"{limits.window} (max_runs {limits.max_runs})")
        if limits.cooldown and last is not None and now - last < parse_duration(limits.cooldown):
            return "cooldown", (f"{where} not run: its cooldown of {limits.cooldown} since "
                                f"{last.isoformat()} has not passed")
        return None


def _narrowed(rule: Automation, before: Mapping[str, Any] | None, record: Mapping[str, Any],
              state: str | None) -> bool:
    """The trigger's `fields` (one of them changed) and `state` (this state) hold."""
    trigger = rule.trigger
    if trigger.fields and before is not None and not any(
        before.get(name) != record.get(name) for name in trigger.fields
    ):
        return False
    return trigger.state is None or trigger.state == state


def actions_done(steps: Sequence[Action], pointer: str, seen: Sequence[Mapping[str, Any]]
                 ) -> list[str]:
    """Pointers of the actions a run reached, replaying the `if` outcomes it noted."""
    holds = {c["at"]: c["holds"] for c in seen}
    done: list[str] = []
    _walk(steps, pointer, holds, done)
    return done


def _walk(steps: Sequence[Action], pointer: str, holds: Mapping[str, bool],
          done: list[str]) -> bool:
    """Append reached actions; True when a `stop` (or an unreached `if`) ends the run."""
    for index, step in enumerate(steps):
        here = f"{pointer}/{index}"
        if isinstance(step, Step) and step.if_ is not None:
            if here + "/if" not in holds:
                return True
            branch, where = (step.then, "/then") if holds[here + "/if"] else (step.else_, "/else")
            if _walk(branch or [], here + where, holds, done):
                return True
            continue
        key, _ = step.chosen
        done.append(f"{here}/{key}")
        if key == "stop":
            return True
    return False


_KNOWN: dict[tuple[str, str, str], Automations] = {}


def automations_for(app: AppModel) -> Automations:
    """The `Automations` of `app`, built on first use per app version."""
    known = _KNOWN.get((app.name, app.version, app.content_hash))
    return known if known is not None else Automations(app)


def automations_of(engine: WorkflowEngine) -> Automations:
    """The engine's own automation observer, else the one of its app version."""
    found = next((o for o in engine.observers if isinstance(o, Automations)), None)
    return found if found is not None else automations_for(engine.app)


def _on_sla_event(connection: Connection, app: str, entity: str, record_id: int,
                  event: str) -> None:
    """`sla_warning` / `sla_breach` rules, run when the SLA timer fires."""
    from flowdesk.store.errors import NotFound
    from flowdesk.store.records import SYSTEM_ACTOR

    try:
        engine = engine_for(connection, app)
    except LookupError:
        return
    automations = automations_of(engine)
    if not automations.rules_for(entity, event):
        return
    try:
        record = engine.store.get(entity, record_id, connection=connection)
    except NotFound:
        return
    automations.after_event(connection, entity, record, event, SYSTEM_ACTOR)


if _on_sla_event not in sla.event_listeners:
    sla.event_listeners.append(_on_sla_event)

from . import _automation_schedule  # noqa: E402, F401  (registers `automation_run`)
