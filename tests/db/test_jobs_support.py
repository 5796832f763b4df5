"""Shared set-up of the job and worker tests (no tests here).

Registers the test-only job kinds (`test.*`) when imported, in the test
process and in worker subprocesses, which import it through
FLOWDESK_JOB_HANDLERS=test_jobs_support with this folder on PYTHONPATH
(`worker_command` / `worker_env`). The handlers write into tables that only the
tests create (`create_test_tables`), so "the effect happened exactly once" is
a row count.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from flowdesk.jobs.handlers import RetryLater, register
from flowdesk.jobs.queue import Job, utc_now

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SLEEP_ENV = "FLOWDESK_TEST_JOB_SLEEP"

metadata = sa.MetaData()
effects = sa.Table(  # no unique constraint: a duplicate effect shows as a second row
    "test_job_effects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("note", sa.String(100)),
)
unique_effects = sa.Table(
    "test_job_unique",
    metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("worker", sa.String(120), nullable=False),
)
counter = sa.Table(
    "test_job_counter",
    metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)

BROKEN_NOTES: set[str] = set()  # `test.effect` jobs with these notes fail (in-process tests)


def create_test_tables(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(counter.insert().values(name="runs", value=0))


def effect_rows(engine: sa.Engine) -> list[tuple[int, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(effects.c.job_id, effects.c.attempt).order_by(effects.c.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


class Clock:
    """A settable UTC clock for `Worker(clock=...)` and the queue's `now=`."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or utc_now()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a `flowdesk worker` subprocess that knows the test kinds."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "FLOWDESK_JOB_HANDLERS": "test_jobs_support",
            **extra}


def worker_command(database_url: str, *options: str) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), "worker", "--database-url", database_url,
            "--no-cron", "--poll-interval", "0.1", *options]


# --------------------------------------------------------------------------- test kinds


@register("test.effect")
def write_effect(connection: sa.Connection, job: Job) -> None:
    """Writes a row, then fails while `job.attempts <= payload.fail_times` or its note is
    in BROKEN_NOTES: the row of a failed attempt must be rolled back with it."""
    note = job.payload.get("note")
    connection.execute(effects.insert().values(job_id=job.id, attempt=job.attempts, note=note))
    if job.attempts <= int(job.payload.get("fail_times", 0)):
        raise RuntimeError(f"planned failure {job.attempts}")
    if note in BROKEN_NOTES:
        raise RuntimeError(f"{note} is broken")


@register("test.slow_effect")
def write_effect_slowly(connection: sa.Connection, job: Job) -> None:
    """Writes a row, says so in the marker file (outside the transaction), then sleeps
    FLOWDESK_TEST_JOB_SLEEP seconds before returning: a kill during the sleep lands
    after the effect was written and before it was committed."""
    connection.execute(effects.insert().values(job_id=job.id, attempt=job.attempts))
    marker = Path(job.payload["marker"])
    with marker.open("a") as out:
        out.write(f"{job.id}:{job.attempts}\n")
    time.sleep(float(os.environ.get(SLEEP_ENV, "0")))


@register("test.unique")
def write_unique(connection: sa.Connection, job: Job) -> None:
    """One row per job id (a second run would hit the primary key) and a counter."""
    connection.execute(unique_effects.insert().values(job_id=job.id, worker=job.locked_by))
    connection.execute(
        sa.update(counter).where(counter.c.name == "runs").values(value=counter.c.value + 1)
    )


@register("test.retry_after")
def ask_for_later(connection: sa.Connection, job: Job) -> None:
    raise RetryLater("rate limited", retry_after=float(job.payload["seconds"]))
