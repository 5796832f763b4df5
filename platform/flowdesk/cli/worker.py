"""`flowdesk worker`: run background jobs until SIGTERM (or, with `--once`, until none is due).

Logs one line per job at INFO on stderr (`job 42 cron done in 3.1 ms (attempt
1/8)`); failures at WARNING, dead jobs at ERROR. SIGTERM or SIGINT lets the
running jobs finish, hands back the unstarted ones and exits 0. Handler modules
named in FLOWDESK_JOB_HANDLERS (comma-separated) or `--handlers` are imported
first; a module that fails to import stops the worker (exit 1) rather than
letting its jobs die as "unknown kind". The database must be migrated
(`flowdesk db upgrade`, or any `flowdesk deploy`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

__all__ = ["register"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add `worker` to the `flowdesk` parser's subcommands."""
    worker = subparsers.add_parser("worker", help="run background jobs (timers, cron, deliveries)")
    worker.add_argument("--database-url", help="default: FLOWDESK_DATABASE_URL or .flowdesk/")
    worker.add_argument("--once", action="store_true", help="run the due jobs, then exit")
    worker.add_argument("--concurrency", type=_positive_int, default=1, metavar="N",
                        help="claim loops in this process (default 1; on SQLite keep 1)")
    worker.add_argument("--batch", type=_positive_int, default=10, metavar="N",
                        help="jobs claimed per round trip (default 10)")
    worker.add_argument("--lease", type=_positive_float, default=300.0, metavar="SECONDS",
                        help="how long a claimed job is ours; a crashed worker's jobs wait "
                             "this long (default 300)")
    worker.add_argument("--poll-interval", type=_positive_float, default=1.0, metavar="SECONDS",
                        help="wait when nothing is due (default 1)")
    worker.add_argument("--id", dest="worker_id", help="name in fd_jobs.locked_by "
                        "(default host:pid)")
    worker.add_argument("--handlers", metavar="MODULES",
                        help="comma-separated modules registering job handlers "
                             "(default: FLOWDESK_JOB_HANDLERS)")
    worker.add_argument("--no-cron", action="store_true",
                        help="do not schedule the cron rules of deployed apps")
    worker.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    worker.set_defaults(handler=_worker)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number of at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"`{text}` is not a positive number of seconds")
    return value


def _logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.getLogger("flowdesk")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _worker(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from flowdesk.jobs.handlers import import_handler_modules
    from flowdesk.jobs.worker import Worker
    from flowdesk.settings import load_settings
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import current_revision, head_revision

    _logging(args.log_level)
    try:
        import_handler_modules(args.handlers)
    except ImportError as error:
        print(f"error: cannot import a job handler module: {error}", file=sys.stderr)
        return EXIT_ERRORS
    url = args.database_url or load_settings().database_url
    engine = make_engine(url)
    try:
        current, head = current_revision(engine), head_revision()
    except SQLAlchemyError as error:
        print(f"error: cannot open {url}: {getattr(error, 'orig', error)}", file=sys.stderr)
        return EXIT_ERRORS
    if current != head:
        print(f"error: the database is at revision {current or 'empty'}, not {head}; "
              "run `flowdesk db upgrade` first", file=sys.stderr)
        return EXIT_ERRORS
    if engine.dialect.name == "sqlite" and args.concurrency > 1:
        logging.getLogger("flowdesk.jobs").warning(
            "SQLite runs one writer at a time: --concurrency %d adds waiting, not speed",
            args.concurrency,
        )
    worker = Worker(
        engine,
        args.worker_id,
        concurrency=args.concurrency,
        poll_interval=args.poll_interval,
        lease=args.lease,
        batch=args.batch,
        schedule_every=None if args.no_cron or args.once else 60.0,
    )
    try:
        if args.once:
            if not args.no_cron:
                from flowdesk.jobs.schedule import schedule_deployed_apps

                schedule_deployed_apps(engine)
            outcomes = worker.drain()
            failed = sum(1 for outcome in outcomes if outcome.status != "done")
            print(f"ran {len(outcomes)} job(s), {failed} not done", file=sys.stderr)
        else:
            worker.run()
    finally:
        engine.dispose()
    return EXIT_OK
