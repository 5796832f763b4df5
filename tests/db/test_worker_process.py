"""`flowdesk worker` as a real process, on SQLite and PostgreSQL: killed with SIGKILL in
the middle of a job and restarted, the job's effect happens exactly once; SIGTERM
lets the running job finish, hands back the rest and exits 0; `--once` drains."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_jobs_support import (
    SLEEP_ENV,
    create_test_tables,
    effect_rows,
    worker_command,
    worker_env,
)

from flowdesk.jobs import queue
from flowdesk.jobs.queue import enqueue

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals as on Linux")


@contextmanager
def worker_process(
    database_url: str, log: Path, *options: str, sleep: float = 0
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            worker_command(database_url, *options),
            env=worker_env(**{SLEEP_ENV: str(sleep)}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()}")
        time.sleep(0.05)


def _status(engine: sa.Engine, job_id: int) -> str | None:
    job = queue.get(engine, job_id)
    return None if job is None else job.status


def test_a_worker_killed_mid_job_and_restarted_applies_the_effect_once(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    create_test_tables(engine)
    marker = tmp_path / "started"
    with engine.begin() as connection:
        job_id = enqueue(connection, "test.slow_effect", {"marker": str(marker)})

    first_log = tmp_path / "first.log"
    with worker_process(database_url, first_log, "--lease", "2", sleep=60) as first:
        # The handler wrote its row (uncommitted) and is sleeping in the transaction.
        wait_for(marker.exists, 30, "the job to start", first_log)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert marker.read_text() == f"{job_id}:1\n"
    assert effect_rows(engine) == []  # the killed attempt left nothing
    assert _status(engine, job_id) == "running"  # until its lease runs out

    second_log = tmp_path / "second.log"
    with worker_process(database_url, second_log, "--lease", "2") as second:
        wait_for(lambda: _status(engine, job_id) == "done", 30, "the job to be done", second_log)
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
    assert effect_rows(engine) == [(job_id, 2)]  # exactly once, by the second attempt
    assert marker.read_text() == f"{job_id}:1\n{job_id}:2\n"
    done = queue.get(engine, job_id)
    assert done is not None and done.attempts == 2
    assert f"job {job_id} test.slow_effect done" in second_log.read_text()


def test_sigterm_finishes_the_running_job_and_hands_back_the_rest(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    create_test_tables(engine)
    marker = tmp_path / "started"
    with engine.begin() as connection:
        running = enqueue(connection, "test.slow_effect", {"marker": str(marker)})
        waiting = enqueue(connection, "test.slow_effect", {"marker": str(marker)})

    log = tmp_path / "worker.log"
    with worker_process(database_url, log, "--batch", "5", sleep=1.5) as worker:
        wait_for(marker.exists, 30, "the first job to start", log)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    assert effect_rows(engine) == [(running, 1)]
    assert _status(engine, running) == "done"
    handed_back = queue.get(engine, waiting)
    assert handed_back is not None
    assert (handed_back.status, handed_back.attempts, handed_back.locked_by) == (
        "pending", 0, None)
    text = log.read_text()
    assert "SIGTERM received" in text and "handed back 1 unstarted job" in text


def test_once_runs_the_due_jobs_and_exits(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    create_test_tables(engine)
    with engine.begin() as connection:
        for n in range(3):
            enqueue(connection, "test.effect", {"note": str(n)})
    result = subprocess.run(
        worker_command(database_url, "--once"), env=worker_env(), capture_output=True,
        text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(effect_rows(engine)) == 3
    assert result.stderr.count(" done in ") == 3
    assert "ran 3 job(s), 0 not done" in result.stderr
