"""Scenario runner: an app's `tests/*.yaml` scenarios played against the real engine.

`flowdesk test APP_DIR` calls `run_app_tests`. The app and its scenarios are
compiled together (the linker checks every name a scenario uses); then each
scenario gets a fresh SQLite database in a temporary folder, migrated and with
the app deployed (built once per run and copied per scenario), and runs on a
fake clock: `WorkflowEngine(..., clock=)` for transitions and timers, the SLA
clocks told the same instant, and `Worker(..., clock=)` for the jobs a `wait`
makes due, one due instant at a time, so a warning fires before a breach and
at its own minute. Integration operations answer from `given.integrations`
(scenarios run offline).

SQLite by design: a scenario tests the app's model, not the database, and a
temporary file needs no server. The result is a `TestReport`: per scenario
passed or the first failing step, located (file:line), with what was expected
and what was found. Refusals by the engine or the records service are
failures with their code and message, never tracebacks.

Lives in `flowdesk.testing`, above the engine and the jobs layer, because it
drives both (the worker may not be imported by the engine); it reads the
compiled `AppModel` only.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from flowdesk.engine.sla import clock_status, clocks_for
from flowdesk.engine.workflow import WorkflowEngine, WorkflowError
from flowdesk.jobs.handlers import Handler, Registry, registry
from flowdesk.jobs.queue import Job
from flowdesk.jobs.worker import Worker
from flowdesk.model._base import parse_duration
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import CompileResult, compile_texts
from flowdesk.model.diagnostics import Diagnostic
from flowdesk.model.loader import SourceDocument, load_text
from flowdesk.model.scenario import (
    Create,
    Decide,
    Expect,
    ExpectError,
    Find,
    Move,
    Scenario,
    ScenarioStep,
    SlaExpectation,
    StubAnswer,
    Update,
)
from flowdesk.model.sources import read_app, read_tests
from flowdesk.store import platform_tables as pt
from flowdesk.store.errors import RecordError, ValidationFailed
from flowdesk.store.records import Actor, RecordStore

__all__ = [
    "DEFAULT_START",
    "ScenarioResult",
    "StepFailure",
    "TestReport",
    "compile_app_tests",
    "run_app_tests",
]

DEFAULT_START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
_MAX_JOB_ROUNDS = 10_000  # a wait that keeps finding due jobs this often is a runaway loop
OUTBOUND_KINDS = ("notify.send", "integration.call", "webhook.deliver", "email.send")
"""Jobs that would leave the machine: a scenario records them instead of running them."""


@dataclass(frozen=True)
class StepFailure:
    """Where and why a scenario failed: the step, what it expected, what it found."""

    file: str
    line: int
    step: int  # 1-based
    action: str
    expected: str
    found: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "step": self.step, "action": self.action,
                "expected": self.expected, "found": self.found}


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    file: str
    line: int
    description: str
    steps: int
    failure: StepFailure | None
    seconds: float

    @property
    def passed(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "line": self.line,
                "description": self.description, "passed": self.passed, "steps": self.steps,
                "seconds": round(self.seconds, 3),
                "failure": self.failure.as_dict() if self.failure else None}


@dataclass
class TestReport:
    """Everything `flowdesk test` prints: compile diagnostics, or one result per scenario."""

    __test__ = False  # not a pytest test class

    app: str | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    results: list[ScenarioResult] = field(default_factory=list)
    files: Mapping[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    @property
    def passed(self) -> bool:
        return self.valid and all(r.passed for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {"app": self.app, "valid": self.valid, "passed": self.passed,
                "diagnostics": [d.as_dict() for d in self.diagnostics],
                "scenarios": [r.as_dict() for r in self.results]}


# --------------------------------------------------------------------------- entry points


def compile_app_tests(
    root: Path,
) -> tuple[CompileResult, dict[str, str], dict[str, SourceDocument]]:
    """Compile an app with its scenarios: (result, the app's own texts, scenario sources).

    The scenarios are linked against the app (so a misspelt transition is a located
    error), but only the app's own texts are deployed."""
    app, tests = read_app(root), read_tests(root)
    result = compile_texts({**app.texts, **tests.texts})
    result.diagnostics[:0] = [*app.diagnostics, *tests.diagnostics]
    sources = {}
    for name, text in tests.texts.items():
        for document in load_text(text, name)[0]:
            if isinstance(document.data, dict) and document.data.get("kind") == "Scenario":
                sources.setdefault(str(document.data.get("name")), document)
    return result, dict(app.texts), sources


def run_app_tests(root: Path, *, only: Sequence[str] = ()) -> TestReport:
    """Compile the app at `root` with its scenarios and run them (those named in `only`).

    Raises `LookupError` naming the known scenarios when `only` names an unknown one."""
    result, app_texts, sources = compile_app_tests(root)
    report = TestReport(result.app.name if result.app else None, result.diagnostics,
                        files=result.files)
    if result.app is None:
        return report
    scenarios: Mapping[str, Scenario] = result.app.of_kind("Scenario")  # type: ignore[assignment]
    unknown = [n for n in only if n not in scenarios]
    if unknown:
        known = ", ".join(sorted(scenarios)) or "none"
        raise LookupError(f"no scenario named {', '.join(unknown)} (scenarios: {known})")
    chosen = [s for name, s in scenarios.items() if not only or name in only]
    with _template_database(app_texts) as (template, model):
        for scenario in chosen:
            report.results.append(_run(template, model, scenario, sources[scenario.name]))
    return report


# --------------------------------------------------------------------------- databases


@contextmanager
def _template_database(app_texts: Mapping[str, str]) -> Iterator[tuple[Path, AppModel]]:
    """A migrated SQLite file with the app deployed, copied for each scenario."""
    from flowdesk.store.deploy import deploy
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import upgrade
    from flowdesk.store.snapshots import load_active

    with tempfile.TemporaryDirectory(prefix="flowdesk-test-") as folder:
        path = Path(folder) / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            upgrade(engine)
            result = deploy(engine, app_texts, actor="flowdesk test")
            model = load_active(engine, result.app)
        finally:
            engine.dispose()
        for backup in Path(folder).glob("template.db.bak-*"):
            backup.unlink()
        assert model is not None
        yield path, model


@contextmanager
def _scenario_database(template: Path, name: str) -> Iterator[sa.Engine]:
    from flowdesk.store.engine import make_engine

    with tempfile.TemporaryDirectory(prefix=f"flowdesk-{name[:20]}-") as folder:
        path = Path(folder) / "scenario.db"
        shutil.copyfile(template, path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()


# --------------------------------------------------------------------------- one scenario


class _Failed(Exception):
    """A step did not do what the scenario says: expected vs found."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(found)
        self.expected = expected
        self.found = found


class _Clock:
    """The scenario's time: starts at `given.now`, moves only by `wait`."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start.astimezone(dt.UTC)
        self.zone = start.tzinfo or dt.UTC

    def __call__(self) -> dt.datetime:
        return self.now

    def show(self, value: dt.datetime) -> str:
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(self.zone).isoformat()


class _TimedObserver:
    """Tells the SLA clocks the scenario's time (they default to the record's timestamps,
    which the records service takes from the real clock)."""

    def __init__(self, inner: Any, clock: _Clock) -> None:
        self.inner, self.clock = inner, clock

    def after_create(self, connection: Any, entity: str, record: Any, actor: Any) -> None:
        self.inner.after_create(connection, entity, record, actor, now=self.clock())

    def after_update(self, connection: Any, entity: str, before: Any, after: Any,
                     actor: Any) -> None:
        self.inner.after_update(connection, entity, before, after, actor, now=self.clock())

    def after_transition(self, connection: Any, entity: str, before: Any, after: Any,
                         transition: str | None, actor: Any) -> None:
        self.inner.after_transition(connection, entity, before, after, transition, actor,
                                    now=self.clock())


class _Stubs:
    """The service caller of a scenario: answers from `given.integrations`."""

    def __init__(self, answers: Mapping[str, StubAnswer]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, integration: Any, operation: str, given: dict[str, Any],
                 **_options: Any) -> Mapping[str, Any]:
        key = f"{getattr(integration, 'name', '?')}.{operation}"
        self.calls.append((key, given))
        answer = self.answers.get(key)
        if answer is None:
            raise LookupError(f"`{key}` was called but the scenario gives no answer for it "
                              f"(add `given: {{integrations: {{{key}: {{response: ...}}}}}}`)")
        if answer.error is not None:
            raise RuntimeError(answer.error)
        if answer.timeout:
            raise TimeoutError(f"`{key}` did not answer in time")
        return answer.response or {}


class _OfflineRegistry(Registry):
    """The process's job handlers, except that outbound jobs (and kinds no module
    handles here) go to the scenario's outbox: scenarios run offline."""

    def __init__(self) -> None:
        super().__init__()
        self.outbox: list[Job] = []

    def get(self, kind: str) -> Handler:
        if kind in OUTBOUND_KINDS or kind not in registry:
            return self._send
        return registry.get(kind)

    def _send(self, _connection: sa.Connection, job: Job) -> None:
        self.outbox.append(job)


def _run(template: Path, model: AppModel, scenario: Scenario,
         source: SourceDocument) -> ScenarioResult:
    began = time.perf_counter()
    with _scenario_database(template, scenario.name) as engine, _store_time() as set_clock:
        play = _Play(engine, model, scenario)
        set_clock(play.clock)
        failure = _attempt(play.setup)
        if failure is not None:
            return _result(scenario, source, 0, began, StepFailure(
                source.file, source.position("/given")[0], 0, "given", failure.expected,
                failure.found))
        for index, step in enumerate(scenario.steps):
            failure = _attempt(lambda step=step: play.step(step))  # type: ignore[misc]
            if failure is not None:
                line = source.position(f"/steps/{index}")[0]
                return _result(scenario, source, index + 1, began, StepFailure(
                    source.file, line, index + 1, step.chosen[0], failure.expected,
                    failure.found))
    return _result(scenario, source, len(scenario.steps), began, None)


@contextmanager
def _store_time() -> Iterator[Any]:
    """Records' own timestamps (`created_at`, `updated_at`, `default: now`) on the
    scenario's clock: the records service reads the time from one module function,
    swapped here for the run of one scenario (single-threaded, restored after).
    A `clock=` on `RecordStore` would make this unnecessary."""
    from flowdesk.store import records

    original = records._now
    chosen: list[Any] = [original]
    records._now = lambda: chosen[0]()  # type: ignore[assignment]
    try:
        yield lambda clock: chosen.__setitem__(0, clock)
    finally:
        records._now = original  # type: ignore[assignment]


def _attempt(action: Any) -> _Failed | None:
    """Run a step; what went wrong as expected-vs-found, never a traceback."""
    try:
        action()
    except _Failed as failed:
        return failed
    except (WorkflowError, RecordError, LookupError, ValueError) as error:
        return _Failed("the step to succeed", _describe(error))
    return None


def _result(scenario: Scenario, source: SourceDocument, steps: int, began: float,
            failure: StepFailure | None) -> ScenarioResult:
    return ScenarioResult(scenario.name, source.file, source.line, _text(scenario.description),
                          steps, failure, time.perf_counter() - began)


class _Play:
    """One scenario's world: its database, engine, clock, users and named records."""

    def __init__(self, engine: sa.Engine, model: AppModel, scenario: Scenario) -> None:
        start = dt.datetime.fromisoformat(scenario.given.now) if scenario.given.now \
            else DEFAULT_START
        self.engine = engine
        self.model = model
        self.scenario = scenario
        self.clock = _Clock(start)
        self.stubs = _Stubs(scenario.given.integrations)
        store = RecordStore(engine, model)
        self.flow = WorkflowEngine(
            store, observers=[_TimedObserver(clocks_for(model, store), self.clock)],
            clock=self.clock, service_caller=self.stubs)
        self.jobs = _OfflineRegistry()
        self.worker = Worker(engine, "scenario", clock=self.clock, batch=50, registry=self.jobs)
        self.users: dict[str, Actor] = {}
        self.departments: dict[str, int] = {}
        self.files: dict[str, int] = {}
        self.records: dict[str, tuple[str, int]] = {}

    # -- given ---------------------------------------------------------------------------
    def setup(self) -> None:
        given = self.scenario.given
        with self.engine.begin() as conn:
            for code in [*given.departments, *(u.department for u in given.users.values()
                                                if u.department)]:
                if code not in self.departments:
                    self.departments[code] = self._department(conn, code)
            for name, user in given.users.items():
                self.users[name] = Actor(self._user(conn, name, user), name,
                                         roles=tuple(user.roles))
            for name, user in given.users.items():
                if user.manager:
                    conn.execute(pt.users.update().where(pt.users.c.id == self.users[name].id)
                                 .values(manager_id=self.users[user.manager].id))
            for code, department in given.departments.items():
                changes = {}
                if department.head:
                    changes["head_id"] = self.users[department.head].id
                if department.parent:
                    changes["parent_id"] = self.departments[department.parent]
                if changes:
                    conn.execute(pt.departments.update()
                                 .where(pt.departments.c.id == self.departments[code])
                                 .values(**changes))
            for key, file in given.files.items():
                self.files[key] = int(conn.execute(pt.attachments.insert().values(
                    app=self.model.name, entity="", name=file.name, media_type=file.type,
                    size=0, sha256="0" * 64, storage_key=f"scenario/{key}",
                    created_at=self.clock())).inserted_primary_key[0])
        for alias, record in given.records.items():
            who = self.users[record.as_] if record.as_ else _SETUP_ACTOR
            created = self.flow.create(record.entity, self._values(record.values), actor=who)
            self.records[alias] = (record.entity, created["id"])

    def _department(self, conn: sa.Connection, code: str) -> int:
        spec = self.scenario.given.departments.get(code)
        row = {"code": code, "name": (spec.name if spec and spec.name else code),
               "active": True, "created_at": self.clock(), "updated_at": self.clock()}
        return int(conn.execute(pt.departments.insert().values(**row)).inserted_primary_key[0])

    def _user(self, conn: sa.Connection, name: str, user: Any) -> int:
        row = {"username": name, "name": user.name or name.title(), "active": True,
               "email": user.email, "skills": list(user.skills),
               "department_id": self.departments.get(user.department or ""),
               "created_at": self.clock(), "updated_at": self.clock()}
        user_id = int(conn.execute(pt.users.insert().values(**row)).inserted_primary_key[0])
        for role in user.roles:
            conn.execute(pt.user_roles.insert().values(user_id=user_id, app=self.model.name,
                                                       role=role))
        return user_id

    # -- steps ---------------------------------------------------------------------------
    def step(self, step: ScenarioStep) -> None:
        verb, value = step.chosen
        if verb == "wait":
            self.wait(parse_duration(value))
        elif verb == "expect":
            self.expect(value)
        elif verb == "expect_error":
            self.expect_error(value)
        elif verb == "find":
            self.find(value)
        else:
            self.act(verb, value)

    def act(self, verb: str, value: Any) -> None:
        if isinstance(value, Create):
            record = self.flow.create(value.entity, self._values(value.values),
                                      actor=self.users[value.as_], comment=value.comment)
            if value.save_as:
                self.records[value.save_as] = (value.entity, record["id"])
        elif isinstance(value, Update):
            entity, record = self._record(value.record)
            self.flow.update(entity, record["id"], self._values(value.values),
                             expected_version=record["row_version"],
                             actor=self.users[value.as_], comment=value.comment)
        elif isinstance(value, Move):
            entity, record = self._record(value.record)
            self.flow.transition(entity, record["id"], value.name, actor=self.users[value.as_],
                                 expected_version=record["row_version"],
                                 values=self._values(value.values) or None,
                                 comment=value.comment)
        elif isinstance(value, Decide):
            self.decide(verb, value)

    def decide(self, verb: str, value: Decide) -> None:
        entity, record = self._record(value.record)
        who = self.users[value.as_]
        pending = [t for t in self.flow.approvals.tasks_of(entity, record["id"])
                   if t.status == "pending"]
        if not pending:
            raise _Failed(f"a pending approval task on {value.record}",
                          f"none: the record is in state `{record['state']}`")
        mine = next((t for t in pending if t.user_id == who.id), None)
        decision = "return" if verb == "return" else verb
        try:  # someone else's task: the engine refuses it (`not-your-task`)
            self.flow.approvals.decide(
                (mine or pending[0]).id, decision, actor=who, comment=value.comment,
                delegate_to=self.users[value.to].id if value.to else None)
        except WorkflowError as error:
            if mine is None:
                holders = ", ".join(sorted(self._user_name(t.user_id) for t in pending))
                error.message += f" (pending tasks are held by: {holders})"
            raise

    def wait(self, span: dt.timedelta) -> None:
        """Move the clock by `span`, running each job at the instant it falls due."""
        end = self.clock.now + span
        for _ in range(_MAX_JOB_ROUNDS):
            due = self._next_due(end)
            if due is None:
                break
            self.clock.now = max(self.clock.now, due)
            self.worker.run_once()
        else:
            raise _Failed("the jobs of the wait to settle",
                          f"jobs kept falling due more than {_MAX_JOB_ROUNDS} times")
        self.clock.now = end

    def _next_due(self, end: dt.datetime) -> dt.datetime | None:
        jobs = pt.jobs
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.min(jobs.c.run_at)).where(
                jobs.c.status.in_(("pending", "retry")), jobs.c.run_at <= end)).scalar()
        if found is None:
            return None
        return found if found.tzinfo else found.replace(tzinfo=dt.UTC)

    def find(self, value: Find) -> None:
        found = [r for r in self.flow.store.list(value.entity, sort=["-id"], limit=500).items
                 if all(self._same(r.get(k), v) for k, v in value.where.items())]
        if not found:
            shown = ", ".join(f"{k} = {_show(v)}" for k, v in value.where.items())
            raise _Failed(f"a {value.entity} record with {shown}", "none")
        self.records[value.save_as] = (value.entity, found[0]["id"])

    def expect_error(self, value: ExpectError) -> None:
        verb, act = value.chosen
        try:
            self.act(verb, act)
        except (WorkflowError, RecordError, ValueError) as error:
            codes = _codes(error)
            message = _describe(error)
            if value.code not in codes:
                raise _Failed(f"refused with `{value.code}`", f"refused: {message}") from None
            if value.message and value.message not in message:
                raise _Failed(f"a message containing “{value.message}”", message) from None
            return
        raise _Failed(f"refused with `{value.code}`", f"`{verb}` succeeded")

    # -- expectations --------------------------------------------------------------------
    def expect(self, value: Expect) -> None:
        for entity, count in (value.count or {}).items():
            found = self.flow.store.count(entity)
            if found != count:
                raise _Failed(f"{count} {entity} record(s)", f"{found}")
        if value.record is None:
            return
        entity, record = self._record(value.record)
        if value.state is not None and record["state"] != value.state:
            raise _Failed(f"{value.record} in state `{value.state}`",
                          f"state `{record['state']}`")
        for name, wanted in (value.fields or {}).items():
            actual = record.get(name)
            if not self._same(actual, wanted):
                raise _Failed(f"{value.record}.{name} = {_show(wanted)}",
                              f"{value.record}.{name} = {self._show(actual)}")
        if value.sla:
            self._expect_sla(entity, record, value)
        if value.transitions is not None:
            found = sorted(t.name for t in self.flow.available_transitions(
                entity, record, self.users[value.as_ or ""]))
            if found != sorted(value.transitions):
                raise _Failed(f"`{value.as_}` may take: {_names(value.transitions)}",
                              f"`{value.as_}` may take: {_names(found)}")
        if value.approvers is not None:
            pending = sorted(self._user_name(t.user_id) for t in self.flow.approvals.tasks_of(
                entity, record["id"]) if t.status == "pending")
            if pending != sorted(value.approvers):
                raise _Failed(f"pending approvers: {_names(value.approvers)}",
                              f"pending approvers: {_names(pending)}")

    def _expect_sla(self, entity: str, record: Mapping[str, Any], value: Expect) -> None:
        with self.engine.connect() as conn:
            statuses = clock_status(conn, self.model, entity, record["id"], now=self.clock())
        by_metric = {s.metric: s for s in reversed(statuses)}
        for metric, wanted in (value.sla or {}).items():
            status = by_metric.get(metric)
            if status is None:
                raise _Failed(f"a `{metric}` SLA clock on {value.record}",
                              "no such clock (its SLA or metric did not start)")
            for key, expected, actual in _sla_pairs(wanted, status):
                if key == "due":
                    same = actual is not None and _instant(expected) == _aware(actual)
                    shown = self.clock.show(actual) if actual is not None else "none"
                else:
                    same, shown = expected == actual, _show(actual)
                if not same:
                    raise _Failed(f"{metric} {key} {_show(expected)}", f"{metric} {key} {shown}")

    # -- values --------------------------------------------------------------------------
    def _record(self, ref: str) -> tuple[str, dict[str, Any]]:
        entity, record_id = self.records[ref[1:]]
        return entity, self.flow.store.get(entity, record_id)

    def _resolve(self, name: str) -> int:
        alias = name[1:]
        if alias in self.records:
            return self.records[alias][1]
        if alias in self.users:
            return int(self.users[alias].id or 0)
        if alias in self.files:
            return self.files[alias]
        return self.departments[alias]

    def _values(self, values: Any) -> Any:
        if isinstance(values, str) and values.startswith("$") and values[1:].isidentifier():
            return self._resolve(values)
        if isinstance(values, list):
            return [self._values(v) for v in values]
        if isinstance(values, dict):
            return {k: self._values(v) for k, v in values.items()}
        return values

    def _same(self, actual: Any, wanted: Any) -> bool:
        wanted = self._values(wanted)
        if wanted is None or actual is None:
            return wanted is None and actual is None
        if isinstance(actual, bool) or isinstance(wanted, bool):
            return actual is wanted
        if isinstance(actual, dict) and isinstance(wanted, dict):
            return all(self._same(actual.get(k), v) for k, v in wanted.items())
        if isinstance(actual, list) and isinstance(wanted, list):
            return len(actual) == len(wanted) and all(
                self._same(a, w) for a, w in zip(actual, wanted, strict=True))
        if isinstance(actual, dt.datetime):
            return _aware(actual) == _instant(str(wanted))
        if isinstance(actual, dt.timedelta):
            return actual == parse_duration(str(wanted))
        if isinstance(actual, int | float | Decimal):
            try:
                return Decimal(str(actual)) == Decimal(str(wanted))
            except InvalidOperation:
                return False
        return str(actual) == str(wanted)

    def _show(self, value: Any) -> str:
        if isinstance(value, dt.datetime):
            return self.clock.show(value)
        return _show(value)

    def _user_name(self, user_id: int | None) -> str:
        return next((n for n, a in self.users.items() if a.id == user_id), f"user {user_id}")


_SETUP_ACTOR = Actor(None, "scenario", roles=("admin",))


# --------------------------------------------------------------------------- helpers


def _sla_pairs(wanted: SlaExpectation, status: Any) -> Iterator[tuple[str, Any, Any]]:
    actual = {"status": status.status, "due": status.due_at, "breached": status.breached,
              "paused": status.paused, "stopped": status.stopped, "attained": status.attained,
              "target": status.target}
    for key in ("target", "status", "due", "breached", "paused", "stopped", "attained"):
        expected = getattr(wanted, key)
        if expected is not None:
            yield key, expected, actual[key]


def _instant(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _aware(value)


def _aware(value: dt.datetime) -> dt.datetime:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _codes(error: Exception) -> set[str]:
    """Codes an `expect_error` may name: the refusal's, or a field error's (or its rule)."""
    codes = {getattr(error, "code", type(error).__name__)}
    codes.add(_kebab(type(error).__name__))
    if isinstance(error, ValidationFailed):
        codes.update(e.code for e in error.errors)
        codes.update(e.rule for e in error.errors if e.rule)
    return {c for c in codes if c}


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


def _describe(error: Exception) -> str:
    """An engine refusal as an analyst reads it: code and message."""
    if isinstance(error, WorkflowError):
        return f"{error.code}: {error.message}"
    if isinstance(error, ValidationFailed):
        return "validation-failed: " + "; ".join(
            f"{e.field or 'record'}: {e.message} ({e.rule or e.code})" for e in error.errors)
    if isinstance(error, RecordError):
        return f"{_kebab(type(error).__name__)}: {error}"
    return f"{type(error).__name__}: {error}"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds() / 3600:g}h"
    return str(value)


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "nothing"


def _text(label: Any) -> str:
    if label is None:
        return ""
    return label if isinstance(label, str) else label.text("en")

