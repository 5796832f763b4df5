"""The worker: claims due jobs and runs their handlers, one transaction per job.

For each claimed job the worker opens a transaction, marks the job `done`
(`queue.complete`, which also locks its row on PostgreSQL), runs the handler on
the same connection, and commits. Any exception rolls back the handler's
effects together with the completion and records the failure (`queue.fail`)
in a transaction of its own. So a job's database effects and its completion
are one atomic unit: killed before the commit, the job is claimed again after
its lease and nothing of the first attempt remains; killed after, the job is
done and is not run again.

`run()` is the `flowdesk worker` process: `concurrency` threads, each with its
own claim loop, until SIGTERM or SIGINT, after which each thread finishes the
job it is running, hands back the rest of its batch (`queue.release`) and
stops. `start()` / `stop()` run the same threads in the background, for the
embedded mode (one worker inside `flowdesk serve` on SQLite). `run_once()` and
`drain()` run due jobs in the calling thread, for tests and `--once`.

On SQLite each job's transaction holds the database's single write lock while
its handler runs, so more than one worker (or thread) adds waiting, not speed;
PostgreSQL workers claim with `SKIP LOCKED` and scale with processes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import schedule
from .handlers import Registry, RetryLater, UnknownKind, registry
from .queue import Backoff, Job, LeaseLost, claim, complete, fail, release, utc_now

__all__ = ["Outcome", "Worker", "default_worker_id"]

_log = logging.getLogger("flowdesk.jobs")


def default_worker_id() -> str:
    """`host:pid`: tells an operator which process holds a job (`fd_jobs.locked_by`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Outcome:
    """What became of one job in this worker: `done`, `retry`, `dead` or `lost`
    (the lease was no longer ours: another worker holds the job)."""

    job: Job
    status: str
    seconds: float
    error: str | None = None


class Worker:
    """Runs jobs from `fd_jobs` with the handlers of `registry`.

    Args:
        engine: the database, shared with the rest of the process if embedded.
        worker_id: written to `locked_by`; threads add `#n` when concurrency > 1.
        concurrency: claim loops (threads). Use processes to scale on PostgreSQL.
        poll_interval: seconds to wait when nothing is due.
        lease: seconds a claimed job stays ours before another worker may take it,
            i.e. how long after a crash its jobs wait. Longer than any batch takes.
        batch: jobs claimed per round trip.
        backoff: retry delays (exponential, full jitter).
        registry: kinds and handlers (the process-wide one by default).
        clock: the current UTC time; tests move it to make retries due.
        schedule_every: seconds between `schedule.schedule_deployed_apps` calls
            (cron rules of deployed apps), first at start; None: never.
    """

    def __init__(
        self,
        engine: Engine,
        worker_id: str | None = None,
        *,
        concurrency: int = 1,
        poll_interval: float = 1.0,
        lease: float = 300.0,
        batch: int = 10,
        backoff: Backoff | None = None,
        registry: Registry = registry,
        clock: Callable[[], dt.datetime] = utc_now,
        schedule_every: float | None = None,
    ) -> None:
        if concurrency < 1 or batch < 1:
            raise ValueError("concurrency and batch must be at least 1")
        self.engine = engine
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease = lease
        self.batch = batch
        self.backoff = backoff or Backoff()
        self.registry = registry
        self.clock = clock
        self.schedule_every = schedule_every
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.on_outcome: Callable[[Outcome], None] | None = None

    # ------------------------------------------------------------------ one job

    def process(self, job: Job) -> Outcome:
        """Run one claimed job: handler and completion in one transaction, or a
        recorded failure. Never raises for a handler's error."""
        began = time.perf_counter()
        retry_after: float | None = None
        try:
            handler = self.registry.get(job.kind)
            with self.engine.begin() as connection:
                complete(connection, job, now=self.clock())
                handler(connection, job)
        except LeaseLost as lost:
            return self._report(Outcome(job, "lost", time.perf_counter() - began, str(lost)))
        except Exception as error:  # a handler may raise anything; all of it is a failure
            if isinstance(error, RetryLater):
                retry_after = error.retry_after
            text = _describe(error)
            if not isinstance(error, UnknownKind | RetryLater):
                _log.debug("job %s %s raised", job.id, job.kind, exc_info=True)
            try:
                status = fail(self.engine, job, text, retry_after=retry_after,
                              backoff=self.backoff, now=self.clock())
            except SQLAlchemyError:
                _log.exception("job %s %s: cannot record its failure; its lease will expire",
                               job.id, job.kind)
                status = None
            return self._report(
                Outcome(job, status or "lost", time.perf_counter() - began, text)
            )
        return self._report(Outcome(job, "done", time.perf_counter() - began))

    def _report(self, outcome: Outcome) -> Outcome:
        job, took = outcome.job, outcome.seconds * 1000
        attempt = f"attempt {job.attempts}/{job.max_attempts}"
        if outcome.status == "done":
            _log.info("job %s %s done in %.1f ms (%s)", job.id, job.kind, took, attempt)
        elif outcome.status == "retry":
            _log.warning("job %s %s failed (%s), will retry: %s", job.id, job.kind, attempt,
                         outcome.error)
        elif outcome.status == "dead":
            _log.error("job %s %s is dead after %s: %s", job.id, job.kind, attempt, outcome.error)
        else:
            _log.warning("job %s %s: no longer ours, left to the worker holding it (%s)",
                         job.id, job.kind, outcome.error)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    # ------------------------------------------------------------------ in the caller's thread

    def run_once(self, worker_id: str | None = None) -> list[Outcome]:
        """Claim one batch of due jobs and run it here; the outcomes (empty: nothing due)."""
        claimed = claim(self.engine, worker_id or self.worker_id, limit=self.batch,
                        lease=self.lease, now=self.clock())
        return [self.process(job) for job in claimed]

    def drain(self, max_jobs: int | None = None) -> list[Outcome]:
        """Run batches until nothing is due (or `max_jobs` ran): `flowdesk worker --once`.
        Jobs that fail become due later, so this ends."""
        outcomes: list[Outcome] = []
        while max_jobs is None or len(outcomes) < max_jobs:
            done = self.run_once()
            if not done:
                break
            outcomes.extend(done)
        return outcomes

    # ------------------------------------------------------------------ threads

    def start(self) -> None:
        """Start the claim loops (and the cron scheduler) in background threads."""
        if self._threads:
            raise RuntimeError("this worker is already running")
        self._stop.clear()
        for index in range(self.concurrency):
            name = self.worker_id if self.concurrency == 1 else f"{self.worker_id}#{index + 1}"
            self._threads.append(
                threading.Thread(target=self._loop, args=(name,), name=f"flowdesk-worker-{name}")
            )
        if self.schedule_every is not None:
            self._threads.append(
                threading.Thread(target=self._schedule_loop, name="flowdesk-worker-cron")
            )
        for thread in self._threads:
            thread.start()
        _log.info("worker %s started: %d claim loop(s), lease %ss, kinds: %s", self.worker_id,
                  self.concurrency, self.lease, ", ".join(self.registry.kinds()))

    def stop(self) -> None:
        """Ask the loops to stop after the job each is running; returns at once."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the loops to end; True when they all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        alive = any(thread.is_alive() for thread in self._threads)
        if not alive:
            self._threads = []
        return not alive

    def run(self, *, install_signals: bool = True) -> None:
        """Run until SIGTERM / SIGINT (or `stop()`), then finish current jobs and return."""
        previous: dict[int, Any] = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        try:
            self.start()
            while not self.join(timeout=0.5):
                pass
        finally:
            self.stop()
            self.join()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        _log.info("worker %s stopped", self.worker_id)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if not self._stop.is_set():
            _log.info("worker %s: %s received, finishing current jobs", self.worker_id,
                      signal.Signals(signum).name)
        self._stop.set()

    def _loop(self, name: str) -> None:
        while not self._stop.is_set():
            try:
                claimed = claim(self.engine, name, limit=self.batch, lease=self.lease,
                                now=self.clock())
            except Exception as error:  # the database is away: wait, do not die
                _log.error("worker %s: cannot claim jobs: %s", name, _describe(error))
                self._stop.wait(max(self.poll_interval, 1.0))
                continue
            if not claimed:
                self._stop.wait(self.poll_interval)
                continue
            for index, job in enumerate(claimed):
                if self._stop.is_set():
                    self._release(claimed[index:])
                    break
                self.process(job)

    def _release(self, jobs: list[Job]) -> None:
        try:
            count = release(self.engine, jobs)
            _log.info("worker %s: handed back %d unstarted job(s)", self.worker_id, count)
        except SQLAlchemyError:
            _log.exception("worker %s: cannot hand back jobs; their lease will expire",
                           self.worker_id)

    def _schedule_loop(self) -> None:
        assert self.schedule_every is not None
        while True:
            try:
                for item in schedule.schedule_deployed_apps(self.engine, self.clock()):
                    _log.debug("cron %s.%s next at %s (job %s)", item.app, item.rule,
                               item.run_at.isoformat(), item.job_id)
            except Exception:  # a broken app must not stop the worker's cron loop
                _log.exception("worker %s: scheduling cron rules failed", self.worker_id)
            if self._stop.wait(self.schedule_every):
                return


def _describe(error: BaseException) -> str:
    """`Type: message` for `last_error` and the log; the message of a database
    error without SQLAlchemy's statement dump."""
    orig = getattr(error, "orig", None)
    if orig is not None:
        return f"{type(orig).__name__}: {str(orig).strip()}"
    return "".join(traceback.format_exception_only(error)).strip()
