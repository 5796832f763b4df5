"""`flowdesk serve`: run the API (and, on SQLite, the job worker) for the deployed apps.

`--app DIR` (repeatable) deploys those app folders first (refusing destructive
changes, as `flowdesk deploy` does). `--demo` deploys the three shipped apps, creates the
demo users `admin`, `agent`, `supervisor` and `customer` (password = user name, printed
on start) and demo records, all idempotently; it is for trying Flowdesk, never for
production. The embedded mode (a SQLite database) runs one job worker inside the
server process; with PostgreSQL run `flowdesk worker` processes beside the servers.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
SHIPPED_APPS = ("service_desk", "field_service", "procurement")


def register(subparsers: Any) -> None:
    """Add `serve` to the `flowdesk` parser's subcommands."""
    serve = subparsers.add_parser("serve", help="run the REST API for the deployed apps")
    serve.add_argument("--app", action="append", default=[], metavar="DIR",
                       help="deploy this app folder first (repeatable)")
    serve.add_argument("--demo", action="store_true",
                       help="deploy the shipped apps with demo users and data (not for production)")
    serve.add_argument("--apps-dir", default="apps",
                       help="where the shipped apps are, for --demo (default: apps)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database-url", help="default: FLOWDESK_DATABASE_URL or .flowdesk/")
    serve.add_argument("--no-worker", action="store_true",
                       help="do not run the job worker inside the server (SQLite only)")
    serve.add_argument("--log-level", default="INFO",
                       choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    serve.set_defaults(handler=_serve)


def _deploy_folders(engine: Any, folders: list[Path]) -> list[str]:
    from flowdesk.cli.deploy import _texts
    from flowdesk.store.deploy import deploy

    lines = []
    for folder in folders:
        result = deploy(engine, _texts(str(folder)), actor="flowdesk serve")
        lines.append(f"{result.app} {result.version}: {result.status}")
    return lines


def _demo(engine: Any, apps_dir: Path) -> list[str]:
    """Deploy the shipped apps, then create the demo users and records (idempotent)."""
    from flowdesk.onboarding.demo import seed_org, seed_records
    from flowdesk.security.identity.passwords import set_password
    from flowdesk.store.snapshots import load_active

    lines = _deploy_folders(engine, [apps_dir / name for name in SHIPPED_APPS])
    with engine.begin() as connection:
        users = seed_org(connection)
        for username, user_id in users.items():
            set_password(connection, user_id, username, policy=False)
    apps = {name: load_active(engine, name) for name in SHIPPED_APPS}
    created = seed_records(engine, {n: a for n, a in apps.items() if a is not None}, users)
    total = sum(created.values())
    lines.append(f"demo data: {total} records created" if total else "demo data: present")
    lines.append("demo users (password = user name): " + ", ".join(sorted(users)))
    return lines


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from flowdesk.api.app import create_app
    from flowdesk.settings import load_settings
    from flowdesk.store.deploy import DeployError
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import upgrade

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = load_settings()
    url = args.database_url or settings.database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade(engine)
        lines = _deploy_folders(engine, [Path(folder) for folder in args.app])
        if args.demo:
            apps_dir = Path(args.apps_dir)
            if not all((apps_dir / name / "app.yaml").is_file() for name in SHIPPED_APPS):
                print(f"error: --demo needs the shipped apps in {apps_dir}/ "
                      "(run it from the Flowdesk checkout or pass --apps-dir)", file=sys.stderr)
                return EXIT_USAGE
            lines += _demo(engine, apps_dir)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        for diagnostic in getattr(error, "diagnostics", [])[:20]:
            print(f"  {diagnostic.file}:{diagnostic.line}: {diagnostic.message}", file=sys.stderr)
        return EXIT_ERRORS
    except SQLAlchemyError as error:
        print(f"error: cannot prepare {url}: {getattr(error, 'orig', error)}", file=sys.stderr)
        return EXIT_ERRORS
    for line in lines:
        print(line, flush=True)
    startup, shutdown = _embedded_worker(engine, enabled=not args.no_worker)
    app = create_app(engine, settings=settings, on_startup=startup, on_shutdown=shutdown)
    print(f"Flowdesk is serving on http://{args.host}:{args.port}/  "
          f"(API: /api/v1/apps)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(),
                workers=1)
    return EXIT_OK


def _embedded_worker(engine: Any, *, enabled: bool) -> tuple[list, list]:
    """On SQLite, one worker inside the server (the embedded mode); elsewhere none."""
    if not enabled or engine.dialect.name != "sqlite":
        return [], []
    from flowdesk.jobs.handlers import import_handler_modules
    from flowdesk.jobs.worker import Worker

    import_handler_modules(None)
    worker = Worker(engine, "embedded", schedule_every=60.0)
    return [worker.start], [lambda: (worker.stop(), worker.join(timeout=10))]
