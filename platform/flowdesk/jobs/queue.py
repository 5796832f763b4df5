"""The job queue over `fd_jobs`: enqueue, claim, complete, fail, release, replay, stats.

A job's life: `pending` -> (claimed) `running` -> `done`; a failure goes to
`retry` with a later `run_at` (exponential backoff, full jitter) and, after
`max_attempts`, to `dead` (the dead-letter state, kept for `replay`). A worker
that dies leaves its jobs `running` with a `locked_until` in the past; `claim`
takes those again (lease expiry).

Why the statements look the way they do:

* **Claim** is `UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING`, once
  for expired leases and once for waiting jobs, in one transaction. On
  PostgreSQL the inner select is `FOR UPDATE SKIP LOCKED`, so concurrent
  workers take disjoint jobs without waiting on each other; on SQLite the
  engine's `BEGIN IMMEDIATE` runs the transaction under the single write lock.
  Waiting jobs are read from the partial index `ix_fd_jobs_ready`, so a claim
  costs the same with ten or a million done or waiting jobs. `attempts` is
  counted at claim time, so a job that kills its worker every time still
  reaches `dead` instead of looping forever.
* **Fencing.** `complete`, `fail` and `release` only touch a job that is still
  `running`, locked by the same worker and at the same attempt. A worker
  whose lease ran out (and whose job another worker took) cannot complete or
  fail it: `complete` raises `LeaseLost` and the caller's transaction, with
  the handler's effects, rolls back.
* **Time** comes from the caller's clock (UTC), not the database's, so tests
  can move it and both databases compare the same values. Workers on several
  machines need clocks in step to within a small part of the lease.
* SQLite stores instants without an offset; every instant is converted to UTC
  before it is written and read back as UTC.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from flowdesk.store import platform_tables as pt

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "STATUSES",
    "Backoff",
    "Job",
    "LeaseLost",
    "claim",
    "complete",
    "enqueue",
    "fail",
    "get",
    "release",
    "replay",
    "stats",
    "utc_now",
]

STATUSES = ("pending", "running", "retry", "done", "dead")
DEFAULT_MAX_ATTEMPTS = 8
_ERROR_LIMIT = 4000  # characters of an error kept in last_error

jobs = pt.jobs

def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC instant; SQLite hands back naive UTC values."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (with a timezone), got {value!r}")
    return value.astimezone(dt.UTC)


class LeaseLost(Exception):
    """The job is no longer this worker's: its lease ran out and another worker took
    it, or it was released. Whatever the handler did must roll back."""


@dataclass(frozen=True)
class Job:
    """One row of `fd_jobs` as a worker sees it right after claiming it.

    `attempts` counts this attempt (it is incremented by `claim`) and, with
    `locked_by`, is the fencing token that `complete` / `fail` check.
    """

    id: int
    kind: str
    payload: Mapping[str, Any]
    run_at: dt.datetime
    status: str
    attempts: int
    max_attempts: int
    idempotency_key: str | None = None
    locked_by: str | None = None
    locked_until: dt.datetime | None = None
    last_error: str | None = None
    created_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(
            id=row.id,
            kind=row.kind,
            payload=row.payload if row.payload is not None else {},
            run_at=_utc(row.run_at),  # type: ignore[arg-type]
            status=row.status,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            idempotency_key=row.idempotency_key,
            locked_by=row.locked_by,
            locked_until=_utc(row.locked_until),
            last_error=row.last_error,
            created_at=_utc(row.created_at),
            finished_at=_utc(row.finished_at),
        )


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits a uniformly random time in
    [0, min(cap, base * 2**(n-1))] seconds. Full jitter spreads the retries of many jobs
    that failed together (an SMTP server that was down) instead of sending them back
    in waves."""

    base: float = 5.0
    cap: float = 3600.0

    def ceiling(self, attempts: int) -> float:
        return min(self.cap, self.base * 2 ** max(0, attempts - 1))

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0.0, self.ceiling(attempts))


# Statements are built once: building a SQLAlchemy expression costs about as much
# as a SQLite round trip, and a worker runs these for every job. Bind parameter
# names start with `j_` (names of columns are reserved in UPDATE ... SET).
_OWNED = and_(  # the fencing condition: still running, still ours, still the same attempt
    jobs.c.id == bindparam("j_id"),
    jobs.c.status == "running",
    jobs.c.locked_by == bindparam("j_worker"),
    jobs.c.attempts == bindparam("j_attempts"),
)
_COMPLETE = update(jobs).where(_OWNED).values(
    status="done", locked_until=None, finished_at=bindparam("j_at")
)
_RETRY = update(jobs).where(_OWNED).values(
    status="retry",
    run_at=bindparam("j_run_at"),
    last_error=bindparam("j_error"),
    locked_by=None,
    locked_until=None,
)
_DEAD = update(jobs).where(_OWNED).values(
    status="dead",
    finished_at=bindparam("j_at"),
    last_error=bindparam("j_error"),
    locked_by=None,
    locked_until=None,
)
_RELEASE = update(jobs).where(_OWNED).values(
    status=case((jobs.c.attempts <= 1, "pending"), else_="retry"),
    attempts=jobs.c.attempts - 1,
    locked_by=None,
    locked_until=None,
)
_EXISTING = select(jobs.c.id).where(jobs.c.idempotency_key == bindparam("j_key"))
_INSERT = jobs.insert().returning(jobs.c.id)
_INSERT_ONCE = {
    name: dialect.insert(jobs)
    .on_conflict_do_nothing(index_elements=[jobs.c.idempotency_key])
    .returning(jobs.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


@cache
def _claim_statement(dialect: str, limit: int, expired: bool) -> Any:
    """UPDATE ... WHERE id IN (the first `limit` due jobs) RETURNING *.

    Two kinds of due job, two statements: waiting jobs (`pending` / `retry`), read
    in run_at order from the partial index `ix_fd_jobs_ready` (its predicate is
    repeated literally so the planners can use it: a short index walk, whatever
    the backlog), and `running` jobs whose lease expired (few: at most what the
    workers hold).
    """
    at = bindparam("j_now")
    if expired:
        due = and_(jobs.c.status == "running", jobs.c.locked_until < at)
        order = (jobs.c.locked_until, jobs.c.id)
    else:
        due = and_(text(pt.JOBS_READY), jobs.c.run_at <= at)
        order = (jobs.c.run_at, jobs.c.id)
    chosen = select(jobs.c.id).where(due).order_by(*order).limit(limit)
    if dialect == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    return (
        update(jobs)
        .where(jobs.c.id.in_(chosen))
        .values(
            status="running",
            locked_by=bindparam("j_worker"),
            locked_until=bindparam("j_until"),
            attempts=jobs.c.attempts + 1,
        )
        .returning(*jobs.c)
    )


# --------------------------------------------------------------------------- enqueue


def enqueue(
    connection: Connection,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    run_at: dt.datetime | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    now: dt.datetime | None = None,
) -> int:
    """Add a job inside the caller's transaction and return its id.

    Enqueueing on the caller's connection is the point: an effect and the job that
    follows it up (an SLA breach check after a ticket is created, the next run of a
    cron rule) commit together or not at all. A second job with the same
    `idempotency_key` is a no-op that returns the first job's id, whatever its
    status; this holds under concurrency (`ON CONFLICT DO NOTHING` on both
    databases: PostgreSQL waits for a concurrent insert of the key to commit or
    roll back, SQLite runs one writer at a time).
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    if idempotency_key is not None and len(idempotency_key) > 200:
        raise ValueError(f"idempotency_key is longer than 200 characters: {idempotency_key!r}")
    created = _aware(now, "now") if now is not None else utc_now()
    values = {
        "kind": kind,
        "payload": dict(payload or {}),
        "run_at": _aware(run_at, "run_at") if run_at is not None else created,
        "status": "pending",
        "attempts": 0,
        "max_attempts": max_attempts,
        "idempotency_key": idempotency_key,
        "created_at": created,
    }
    if idempotency_key is None:
        return int(connection.execute(_INSERT, values).scalar_one())
    statement = _INSERT_ONCE.get(connection.dialect.name)
    if statement is None:
        raise NotImplementedError(f"jobs need SQLite or PostgreSQL, not {connection.dialect.name}")
    inserted = connection.execute(statement, values).scalar_one_or_none()
    if inserted is not None:
        return int(inserted)
    return int(connection.execute(_EXISTING, {"j_key": idempotency_key}).scalar_one())


# --------------------------------------------------------------------------- claim


def claim(
    engine: Engine,
    worker_id: str,
    *,
    limit: int = 1,
    lease: float = 300.0,
    now: dt.datetime | None = None,
) -> list[Job]:
    """Take up to `limit` due jobs for `worker_id`, in `run_at` order, for `lease` seconds.

    Due means `pending` or `retry` with `run_at <= now`, or `running` with an
    expired lease (its worker died). Each claimed job's `attempts` goes up by one;
    one whose worker died on its last attempt goes to `dead` instead of running
    again. Commits before returning, so other workers see the claim at once.
    """
    if limit < 1:
        return []
    at = _aware(now, "now") if now is not None else utc_now()
    dialect = engine.dialect.name
    params = {"j_now": at, "j_worker": worker_id, "j_until": at + dt.timedelta(seconds=lease)}
    with engine.begin() as connection:
        statement = _claim_statement(dialect, limit, True)
        claimed = [Job.from_row(row) for row in connection.execute(statement, params)]
        if len(claimed) < limit:
            statement = _claim_statement(dialect, limit - len(claimed), False)
            claimed += [Job.from_row(row) for row in connection.execute(statement, params)]
        over = [job for job in claimed if job.attempts > job.max_attempts]
        for job in over:
            _finish_dead(
                connection,
                job,
                f"the worker running attempt {job.max_attempts} stopped before finishing "
                f"(lease expired); last error: {job.last_error or 'none'}",
                at,
            )
    alive = [job for job in claimed if job.attempts <= job.max_attempts]
    return sorted(alive, key=lambda job: (job.run_at, job.id))


def _owned(job: Job) -> dict[str, Any]:
    """Bind values of the fencing condition `_OWNED` for `job`."""
    return {"j_id": job.id, "j_worker": job.locked_by, "j_attempts": job.attempts}


def _finish_dead(connection: Connection, job: Job, error: str, at: dt.datetime) -> None:
    connection.execute(
        update(jobs)
        .where(jobs.c.id == job.id)
        .values(
            status="dead",
            attempts=min(job.attempts, job.max_attempts),
            last_error=error[:_ERROR_LIMIT],
            locked_until=None,
            finished_at=at,
        )
    )


# --------------------------------------------------------------------------- outcomes


def complete(connection: Connection, job: Job, *, now: dt.datetime | None = None) -> None:
    """Mark `job` done inside the caller's transaction (the one running its handler).

    Call it *before* the handler: on PostgreSQL the update locks the job's row for
    the rest of the transaction, so no other worker can claim the job while its
    handler runs, even past the lease. Raises `LeaseLost` when the job is no longer
    this worker's; the caller must then roll back.
    """
    at = _aware(now, "now") if now is not None else utc_now()
    result = connection.execute(_COMPLETE, {**_owned(job), "j_at": at})
    if result.rowcount != 1:
        raise LeaseLost(f"job {job.id} ({job.kind}) is no longer held by {job.locked_by}")


def fail(
    engine: Engine,
    job: Job,
    error: str,
    *,
    retry_after: float | None = None,
    backoff: Backoff | None = None,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> str | None:
    """Record a failed attempt in a transaction of its own (the handler's rolled back).

    Returns the job's new status: `retry` (run again after `retry_after` seconds if
    the handler asked for a time, else after a backoff delay), `dead` (that was the
    last attempt), or None when the job was no longer this worker's (nothing
    changed: the worker now holding it decides).
    """
    at = _aware(now, "now") if now is not None else utc_now()
    params = {**_owned(job), "j_error": error[:_ERROR_LIMIT]}
    if job.attempts >= job.max_attempts:
        statement, status = _DEAD, "dead"
        params["j_at"] = at
    else:
        if retry_after is None:
            retry_after = (backoff or Backoff()).delay(job.attempts, rng)
        statement, status = _RETRY, "retry"
        params["j_run_at"] = at + dt.timedelta(seconds=max(0.0, retry_after))
    with engine.begin() as connection:
        result = connection.execute(statement, params)
    return status if result.rowcount == 1 else None


def release(engine: Engine, claimed: list[Job]) -> int:
    """Hand back claimed jobs that were never started (a worker stopping mid-batch):
    due again at once, the attempt not counted. Returns how many were released."""
    if not claimed:
        return 0
    with engine.begin() as connection:
        return sum(connection.execute(_RELEASE, _owned(job)).rowcount for job in claimed)


def replay(engine: Engine, job_id: int, *, now: dt.datetime | None = None) -> bool:
    """Send a dead job back to the queue with a fresh set of attempts (after the cause
    was fixed). `last_error` is kept until the next failure. False if it is not dead."""
    at = _aware(now, "now") if now is not None else utc_now()
    with engine.begin() as connection:
        result = connection.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "dead")
            .values(
                status="pending",
                attempts=0,
                run_at=at,
                locked_by=None,
                locked_until=None,
                finished_at=None,
            )
        )
    return result.rowcount == 1


def _reading(engine: Engine) -> Engine:
    """`engine` for reads only: on SQLite they then begin DEFERRED and take no write
    lock, so a status page never waits for (or holds up) a job's transaction
    (`flowdesk.store.engine.READ_ONLY`; other databases ignore the option)."""
    return engine.execution_options(flowdesk_read_only=True)


def get(engine_or_connection: Engine | Connection, job_id: int) -> Job | None:
    """The job as stored now (for tests, `replay` tooling and status pages)."""
    statement = select(jobs).where(jobs.c.id == job_id)
    if isinstance(engine_or_connection, Connection):
        row = engine_or_connection.execute(statement).first()
    else:
        with _reading(engine_or_connection).connect() as connection:
            row = connection.execute(statement).first()
    return None if row is None else Job.from_row(row)


def stats(engine: Engine) -> dict[str, int]:
    """Number of jobs per status, every status present (zero when none)."""
    counts = dict.fromkeys(STATUSES, 0)
    with _reading(engine).connect() as connection:
        rows = connection.execute(
            select(jobs.c.status, func.count()).group_by(jobs.c.status)
        ).all()
    for status, count in rows:
        counts[status] = int(count)
    return counts
