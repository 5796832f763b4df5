"""The job queue on SQLite and PostgreSQL: idempotent enqueue (also under concurrency),
claim order and due times, lease expiry, fencing, backoff, dead and replay, stats."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from test_jobs_support import Clock

from flowdesk.jobs import queue
from flowdesk.jobs.queue import Backoff, LeaseLost, claim, complete, enqueue, fail
from flowdesk.store import platform_tables as pt
from flowdesk.store.engine import make_engine


def _add(engine: sa.Engine, count: int = 1, **options: object) -> list[int]:
    with engine.begin() as connection:
        return [enqueue(connection, "noop", {"n": n}, **options) for n in range(count)]  # type: ignore[arg-type]


def test_enqueue_returns_the_existing_job_for_a_repeated_key(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        first = enqueue(connection, "noop", {"a": 1}, idempotency_key="ticket:1:breach")
        again = enqueue(connection, "noop", {"a": 2}, idempotency_key="ticket:1:breach")
        other = enqueue(connection, "noop", {"a": 3}, idempotency_key="ticket:2:breach")
    assert first == again != other
    job = queue.get(engine, first)
    assert job is not None and job.payload == {"a": 1} and job.status == "pending"
    assert queue.stats(engine)["pending"] == 2


def test_enqueue_commits_with_the_callers_transaction(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as connection:
        enqueue(connection, "noop", {}, idempotency_key="follow-up")
        raise RuntimeError("the effect failed")
    assert queue.stats(engine)["pending"] == 0
    _add(engine, idempotency_key="follow-up")  # the key is free again
    assert queue.stats(engine)["pending"] == 1


def test_enqueue_refuses_naive_times_and_bad_limits(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        with pytest.raises(ValueError, match="aware"):
            enqueue(connection, "noop", {}, run_at=dt.datetime(2026, 1, 1, 9))
        with pytest.raises(ValueError, match="max_attempts"):
            enqueue(connection, "noop", {}, max_attempts=0)


def test_concurrent_enqueues_of_one_key_make_one_job(database_url: str, engine: sa.Engine) -> None:
    count = 8
    engines = [make_engine(database_url, pool_size=1, max_overflow=0) for _ in range(count)]
    barrier = threading.Barrier(count)

    def one(index: int) -> int:
        barrier.wait(timeout=30)
        with engines[index].begin() as connection:
            job_id = enqueue(connection, "noop", {"by": index}, idempotency_key="once")
            time.sleep(0.05)  # keep the transaction open while the others try
            return job_id

    try:
        with ThreadPoolExecutor(count) as pool:
            ids = list(pool.map(one, range(count)))
    finally:
        for own in engines:
            own.dispose()
    assert len(set(ids)) == 1
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(pt.jobs)).scalar() == 1


def test_claim_takes_due_jobs_in_run_at_order(engine: sa.Engine) -> None:
    clock = Clock()
    later, soon, due = (clock.now + dt.timedelta(minutes=m) for m in (10, 1, -1))
    with engine.begin() as connection:
        late_id = enqueue(connection, "noop", {}, run_at=later)
        soon_id = enqueue(connection, "noop", {}, run_at=soon)
        due_id = enqueue(connection, "noop", {}, run_at=due)
    assert [j.id for j in claim(engine, "w", limit=5, lease=7200, now=clock.now)] == [due_id]
    claimed = claim(engine, "w", limit=5, now=clock.advance(3600))
    assert [j.id for j in claimed] == [soon_id, late_id]  # the first is still leased
    assert all(j.status == "running" and j.attempts == 1 and j.locked_by == "w" for j in claimed)
    assert claimed[0].locked_until == clock.now + dt.timedelta(seconds=300)
    assert claim(engine, "w", limit=5, now=clock.now) == []


def test_an_expired_lease_makes_the_job_claimable_and_fences_the_old_worker(
    engine: sa.Engine,
) -> None:
    (job_id,) = _add(engine)
    clock = Clock()
    (held,) = claim(engine, "dead-worker", limit=1, lease=10, now=clock.now)
    assert claim(engine, "other", limit=1, lease=10, now=clock.advance(5)) == []
    (taken,) = claim(engine, "other", limit=1, lease=10, now=clock.advance(6))
    assert taken.id == job_id and taken.attempts == 2 and taken.locked_by == "other"

    with pytest.raises(LeaseLost), engine.begin() as connection:
        complete(connection, held, now=clock.now)
    assert fail(engine, held, "late", now=clock.now) is None
    with engine.begin() as connection:
        complete(connection, taken, now=clock.now)
    done = queue.get(engine, job_id)
    assert done is not None and (done.status, done.attempts, done.locked_by) == (
        "done", 2, "other")
    assert done.finished_at == clock.now


def test_a_job_whose_worker_dies_on_every_attempt_goes_dead(engine: sa.Engine) -> None:
    (job_id,) = _add(engine, max_attempts=2)
    clock = Clock()
    for attempt in (1, 2):
        (job,) = claim(engine, f"crashing-{attempt}", limit=1, lease=10, now=clock.now)
        assert job.attempts == attempt
        clock.advance(11)  # the worker died: nobody completes or fails the job
    assert claim(engine, "next", limit=1, lease=10, now=clock.now) == []
    dead = queue.get(engine, job_id)
    assert dead is not None and dead.status == "dead" and dead.attempts == 2
    assert "lease expired" in (dead.last_error or "")


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    backoff = Backoff(base=5, cap=60)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    rng = random.Random(3)
    delays = [backoff.delay(4, rng) for _ in range(2000)]
    assert 0 <= min(delays) < 2 and 38 < max(delays) <= 40
    assert 15 < sum(delays) / len(delays) < 25  # uniform over [0, 40]


def test_fail_schedules_a_retry_within_the_backoff_then_dead(engine: sa.Engine) -> None:
    backoff = Backoff(base=10, cap=1000)
    (job_id,) = _add(engine, max_attempts=3)
    clock = Clock()
    for attempt in (1, 2):
        (job,) = claim(engine, "w", limit=1, now=clock.now)
        assert fail(engine, job, f"boom {attempt}", backoff=backoff, now=clock.now) == "retry"
        stored = queue.get(engine, job_id)
        assert stored is not None and stored.status == "retry" and stored.locked_by is None
        assert stored.last_error == f"boom {attempt}"
        wait = (stored.run_at - clock.now).total_seconds()
        assert 0 <= wait <= backoff.ceiling(attempt) + 0.001
        clock.advance(backoff.ceiling(attempt) + 1)
    (job,) = claim(engine, "w", limit=1, now=clock.now)
    assert fail(engine, job, "boom 3", backoff=backoff, now=clock.now) == "dead"
    dead = queue.get(engine, job_id)
    assert dead is not None and (dead.status, dead.attempts, dead.last_error) == (
        "dead", 3, "boom 3")
    assert claim(engine, "w", limit=1, now=clock.advance(10**6)) == []


def test_retry_after_given_by_the_handler_is_honoured(engine: sa.Engine) -> None:
    (job_id,) = _add(engine)
    clock = Clock()
    (job,) = claim(engine, "w", limit=1, now=clock.now)
    fail(engine, job, "429 Too Many Requests", retry_after=120, now=clock.now)
    stored = queue.get(engine, job_id)
    assert stored is not None and stored.run_at == clock.now + dt.timedelta(seconds=120)


def test_replay_sends_a_dead_job_back_with_fresh_attempts(engine: sa.Engine) -> None:
    (job_id,) = _add(engine, max_attempts=1)
    clock = Clock()
    (job,) = claim(engine, "w", limit=1, now=clock.now)
    assert fail(engine, job, "smtp down", now=clock.now) == "dead"
    assert queue.replay(engine, job_id, now=clock.now) is True
    replayed = queue.get(engine, job_id)
    assert replayed is not None
    assert (replayed.status, replayed.attempts, replayed.finished_at) == ("pending", 0, None)
    assert replayed.last_error == "smtp down"
    assert queue.replay(engine, job_id) is False  # only dead jobs
    (again,) = claim(engine, "w", limit=1, now=clock.now)
    assert again.id == job_id and again.attempts == 1


def test_release_hands_back_unstarted_jobs(engine: sa.Engine) -> None:
    ids = _add(engine, 3)
    clock = Clock()
    claimed = claim(engine, "stopping", limit=3, now=clock.now)
    assert queue.release(engine, claimed[1:]) == 2
    assert queue.stats(engine) == {"pending": 2, "running": 1, "retry": 0, "done": 0, "dead": 0}
    retaken = claim(engine, "next", limit=3, now=clock.now)
    assert sorted(j.id for j in retaken) == ids[1:]
    assert all(j.attempts == 1 for j in retaken)


def test_stats_count_every_status(engine: sa.Engine) -> None:
    assert queue.stats(engine) == dict.fromkeys(queue.STATUSES, 0)
    _add(engine, 4)
    clock = Clock()
    first, second, *_ = claim(engine, "w", limit=2, now=clock.now)
    with engine.begin() as connection:
        complete(connection, first, now=clock.now)
    fail(engine, second, "x", now=clock.now)
    assert queue.stats(engine) == {"pending": 2, "running": 0, "retry": 1, "done": 1, "dead": 0}
