"""The worker in-process, on SQLite and PostgreSQL: a handler's effects commit with the
job's completion or not at all, retries with backoff then success, dead after the
last attempt and replay, unknown kinds, and two workers sharing 500 jobs without
ever running one twice."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa
from test_jobs_support import (
    BROKEN_NOTES,
    Clock,
    counter,
    create_test_tables,
    effect_rows,
    unique_effects,
)

from flowdesk.jobs import queue
from flowdesk.jobs.handlers import Registry, import_handler_modules, registry
from flowdesk.jobs.queue import claim, enqueue
from flowdesk.jobs.worker import Outcome, Worker
from flowdesk.store.engine import make_engine


@pytest.fixture
def tables(engine: sa.Engine) -> sa.Engine:
    create_test_tables(engine)
    return engine


def _enqueue(engine: sa.Engine, kind: str, payload: dict, **options: object) -> int:
    with engine.begin() as connection:
        return enqueue(connection, kind, payload, **options)  # type: ignore[arg-type]


def test_a_job_runs_its_handler_and_its_effect_commits_with_it(tables: sa.Engine) -> None:
    job_id = _enqueue(tables, "test.effect", {"note": "hello"})
    (outcome,) = Worker(tables, "w").run_once()
    assert outcome.status == "done" and outcome.job.id == job_id
    assert effect_rows(tables) == [(job_id, 1)]
    done = queue.get(tables, job_id)
    assert done is not None and done.status == "done" and done.finished_at is not None


def test_retries_with_backoff_then_success_keep_only_the_last_effect(tables: sa.Engine) -> None:
    job_id = _enqueue(tables, "test.effect", {"fail_times": 2})
    clock = Clock()
    worker = Worker(tables, "w", clock=clock)
    statuses = []
    for _ in range(3):
        (outcome,) = worker.run_once()
        statuses.append(outcome.status)
        assert worker.run_once() == []  # the retry is not due yet
        clock.advance(3600)  # beyond any backoff of the first attempts
    assert statuses == ["retry", "retry", "done"]
    assert effect_rows(tables) == [(job_id, 3)]  # the failed attempts' rows rolled back
    done = queue.get(tables, job_id)
    assert done is not None and done.attempts == 3
    assert done.last_error == "RuntimeError: planned failure 2"


def test_dead_after_max_attempts_then_replay_after_the_fix(tables: sa.Engine) -> None:
    BROKEN_NOTES.add("smtp")
    try:
        job_id = _enqueue(tables, "test.effect", {"note": "smtp"}, max_attempts=3)
        clock = Clock()
        worker = Worker(tables, "w", clock=clock)
        statuses = []
        for _ in range(4):
            statuses.extend(o.status for o in worker.run_once())
            clock.advance(3600)
        assert statuses == ["retry", "retry", "dead"]
        dead = queue.get(tables, job_id)
        assert dead is not None and dead.status == "dead"
        assert dead.last_error == "RuntimeError: smtp is broken"
        assert effect_rows(tables) == []
    finally:
        BROKEN_NOTES.discard("smtp")
    assert queue.replay(tables, job_id, now=clock.now)
    assert [o.status for o in worker.run_once()] == ["done"]
    assert effect_rows(tables) == [(job_id, 1)]


def test_an_unknown_kind_fails_clearly_and_goes_dead(tables: sa.Engine) -> None:
    job_id = _enqueue(tables, "test.no_such_kind", {}, max_attempts=2)
    clock = Clock()
    worker = Worker(tables, "w", clock=clock)
    outcomes = worker.run_once() + worker.run_once()
    clock.advance(3600)
    outcomes += worker.run_once()
    assert [o.status for o in outcomes] == ["retry", "dead"]
    dead = queue.get(tables, job_id)
    assert dead is not None and dead.status == "dead"
    assert "no handler for job kind `test.no_such_kind`" in (dead.last_error or "")
    assert "FLOWDESK_JOB_HANDLERS" in (dead.last_error or "")


def test_retry_later_from_a_handler_sets_the_next_run(tables: sa.Engine) -> None:
    job_id = _enqueue(tables, "test.retry_after", {"seconds": 90})
    clock = Clock()
    (outcome,) = Worker(tables, "w", clock=clock).run_once()
    assert outcome.status == "retry"
    stored = queue.get(tables, job_id)
    assert stored is not None and stored.run_at == clock.now + dt.timedelta(seconds=90)


def test_a_job_whose_lease_was_taken_over_does_not_run(tables: sa.Engine) -> None:
    job_id = _enqueue(tables, "test.effect", {})
    clock = Clock()
    (stale,) = claim(tables, "slow", limit=1, lease=5, now=clock.now)
    clock.advance(10)
    worker = Worker(tables, "fast", clock=clock)
    (taken,) = claim(tables, "fast", limit=1, lease=60, now=clock.now)
    assert worker.process(stale).status == "lost"
    assert effect_rows(tables) == []
    assert worker.process(taken).status == "done"
    assert effect_rows(tables) == [(job_id, 2)]


def test_drain_runs_every_due_job_and_stops(tables: sa.Engine) -> None:
    with tables.begin() as connection:
        for n in range(25):
            enqueue(connection, "test.effect", {"note": str(n)})
    outcomes = Worker(tables, "w", batch=4).drain()
    assert len(outcomes) == 25 and {o.status for o in outcomes} == {"done"}
    assert queue.stats(tables)["done"] == 25


def test_start_and_stop_in_the_background(tables: sa.Engine) -> None:
    worker = Worker(tables, "embedded", poll_interval=0.05, concurrency=2)
    worker.start()
    try:
        _enqueue(tables, "test.effect", {})
        deadline = time.monotonic() + 20
        while queue.stats(tables)["done"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        assert worker.join(timeout=20)
    assert queue.stats(tables)["done"] == 1


def test_two_workers_never_run_the_same_job(database_url: str, tables: sa.Engine) -> None:
    total = 500
    with tables.begin() as connection:
        ids = {enqueue(connection, "test.unique", {"n": n}) for n in range(total)}
    runs: list[Outcome] = []
    joined = threading.Condition()

    def record(outcome: Outcome) -> None:
        """Hold each worker after its first job until the other has run one too, so
        both take part however the database schedules its locks (SQLite's lock is
        not fair: one busy worker could otherwise take every batch)."""
        with joined:
            runs.append(outcome)
            joined.notify_all()
            joined.wait_for(lambda: len({o.job.locked_by for o in runs}) == 2, timeout=10)

    engines = [make_engine(database_url) for _ in range(2)]
    workers = [Worker(own, f"worker-{n}", poll_interval=0.02, batch=5)
               for n, own in enumerate(engines)]
    for worker in workers:
        worker.on_outcome = record
        worker.start()
    try:
        deadline = time.monotonic() + 45
        while queue.stats(tables)["done"] < total and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.stop()
        for worker in workers:
            assert worker.join(timeout=20)
        for own in engines:
            own.dispose()

    ran = [outcome.job.id for outcome in runs]
    assert len(ran) == len(set(ran)) == total  # no job was even started twice
    assert set(ran) == ids and {o.status for o in runs} == {"done"}
    assert queue.stats(tables) == {"pending": 0, "running": 0, "retry": 0, "done": total,
                                   "dead": 0}
    with tables.connect() as connection:
        rows = connection.execute(sa.select(unique_effects.c.job_id)).scalars().all()
        count = connection.execute(sa.select(counter.c.value)).scalar()
    assert len(rows) == len(set(rows)) == total and count == total
    by_worker = {o.job.locked_by for o in runs}
    assert by_worker == {"worker-0", "worker-1"}  # both took part


def test_registry_refuses_a_second_handler_for_a_kind() -> None:
    own = Registry()

    @own.register("x")
    def first(connection: sa.Connection, job: queue.Job) -> None: ...

    with pytest.raises(ValueError, match="already has a handler"):
        own.register("x")(lambda connection, job: None)
    own.register("x", replace=True)(lambda connection, job: None)
    assert own.kinds() == ["x"] and "x" in own


def test_handler_modules_are_imported_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWDESK_JOB_HANDLERS", " test_jobs_support , ")
    assert import_handler_modules() == ["test_jobs_support"]
    assert {"test.effect", "noop", "cron", "automation_run"} <= set(registry.kinds())
    with pytest.raises(ImportError):
        import_handler_modules("no_such_module_here")
