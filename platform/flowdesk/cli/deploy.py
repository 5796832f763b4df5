"""`flowdesk plan | deploy | versions | rollback | migrate-instances`: parsing and printing.

The work is done by `flowdesk.store.deploy`; these handlers read the app
folder, open the database (migrating the platform tables first, so a fresh
database works), print, and turn refusals into one line on stderr with exit
status 1. Usage errors exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import database_error, migrated_engine

__all__ = ["register"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Usage(Exception):
    """Bad arguments found after parsing (exit 2)."""


def register(subparsers: Any) -> None:
    """Add the deploy verbs to the `flowdesk` parser's subcommands."""

    def command(name: str, help_: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        parser = subparsers.add_parser(name, help=help_)
        parser.add_argument("--database-url", help="default: FLOWDESK_DATABASE_URL or .flowdesk/")
        parser.set_defaults(handler=lambda args: _guarded(handler, args))
        return parser

    def consent(parser: Any) -> None:
        parser.add_argument(
            "--allow-destructive",
            action="store_true",
            help="apply changes that can lose data (drops, narrowing ...)",
        )
        parser.add_argument("--yes", action="store_true", help="apply without asking")
        parser.add_argument("--dry-run", action="store_true", help="show the plan only")
        parser.add_argument("--actor", help="who deploys (default: FLOWDESK_ACTOR or the user)")

    plan = command("plan", "show what deploying an app would change", _plan)
    plan.add_argument("app_dir", metavar="APP_DIR")
    plan.add_argument("--format", choices=("text", "json"), default="text")

    deploy = command("deploy", "apply an app version to the database", _deploy)
    deploy.add_argument("app_dir", metavar="APP_DIR")
    consent(deploy)

    versions = command("versions", "list the deployed versions of an app", _versions)
    versions.add_argument("app", metavar="APP")
    versions.add_argument("--format", choices=("text", "json"), default="text")

    rollback = command("rollback", "make an earlier deployed version active again", _rollback)
    rollback.add_argument("app", metavar="APP")
    rollback.add_argument("version", metavar="VERSION")
    consent(rollback)

    migrate = command(
        "migrate-instances", "move records pinned to one version onto another", _migrate
    )
    migrate.add_argument("app", metavar="APP")
    migrate.add_argument("--from", dest="from_version", required=True, metavar="V1")
    migrate.add_argument("--to", dest="to_version", required=True, metavar="V2")
    migrate.add_argument(
        "--map",
        nargs="+",
        action="extend",
        default=[],
        metavar="OLD=NEW",
        help="state renames, e.g. --map triage=open pending=waiting",
    )
    migrate.add_argument("--actor", help="recorded on the audit rows")


def _guarded(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Refusals and database errors as one line, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from flowdesk.store.deploy import DeployError
    from flowdesk.store.snapshots import SnapshotError

    try:
        return handler(args)
    except _Usage as error:
        print(f"flowdesk {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DeployError as error:
        if error.diagnostics:
            from .render import render_text

            print(render_text(error.diagnostics, error.files), file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    except SnapshotError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    except SQLAlchemyError as error:
        print(database_error(error), file=sys.stderr)
        return EXIT_ERRORS


def _engine(args: argparse.Namespace) -> Any:
    return migrated_engine(args.database_url)


def _texts(app_dir: str) -> dict[str, str]:
    """The app's files keyed by their path inside the app folder (stable across machines)."""
    from flowdesk.model.sources import MANIFEST_FILES, read_app
    from flowdesk.store.deploy import DeployError

    root = Path(app_dir)
    if not root.is_dir() or not any((root / name).is_file() for name in MANIFEST_FILES):
        raise _Usage(f"{app_dir} is not an app folder (it needs an app.yaml)")
    source = read_app(root)
    if source.diagnostics:
        raise DeployError(f"cannot read the app in {app_dir}", diagnostics=source.diagnostics)
    base = root.resolve()
    return {
        Path(name).resolve().relative_to(base).as_posix(): text
        for name, text in source.texts.items()
    }


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return os.environ.get("FLOWDESK_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _plan(args: argparse.Namespace) -> int:
    from flowdesk.store.ops import render_text

    texts = _texts(args.app_dir)
    with _engine(args) as engine:
        result, refusal = _dry_run(engine, texts)
        retiming = _sla_retiming(engine, texts)
    if args.format == "json":
        document = {**result.as_dict(), "refusal": refusal, "sla_retiming": retiming}
        print(json.dumps(document, ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    print(render_text(result))
    for entity, (retimed, breaching) in sorted(retiming.items()):
        print(f"SLA: {retimed} open clock(s) of `{entity}` would be re-timed, "
              f"{breaching} of them would become breached")
    if refusal:
        print(f"deploy would refuse: {refusal}")
    elif result.destructive:
        print("deploy needs --allow-destructive for the destructive changes")
    return EXIT_OK


def _sla_retiming(engine: Any, texts: dict[str, str]) -> dict[str, list[int]]:
    """Open SLA clocks the new version would re-time (closed ones never are)."""
    from flowdesk.engine.sla import retiming_impact
    from flowdesk.model.compiler import compile_texts
    from flowdesk.store.deploy import load_active

    app = compile_texts(texts).app
    if app is None:
        return {}
    with engine.connect() as connection:
        impact = retiming_impact(connection, load_active(connection, app.name), app)
    return {entity: list(counts) for entity, counts in impact.items()}


def _dry_run(engine: Any, texts: dict[str, str]) -> tuple[Any, str | None]:
    """The plan, and why `deploy` would refuse it on version grounds (None if it would not)."""
    from flowdesk.model.compiler import compile_texts
    from flowdesk.store.deploy import DeployError, deploy, load_active
    from flowdesk.store.plan import plan

    try:
        checked = deploy(engine, texts, actor="plan", allow_destructive=True, dry_run=True)
        refusal = None
    except DeployError as error:
        if error.diagnostics:
            raise
        if error.plan is not None:  # its problems are part of the plan's text
            return error.plan, None
        checked, refusal = None, str(error)
    if checked is not None and checked.plan is not None:
        return checked.plan, refusal
    app = compile_texts(texts).app
    assert app is not None  # deploy() refused invalid apps with diagnostics
    return plan(engine, app, load_active(engine, app.name)), refusal


def _apply(args: argparse.Namespace, run: Callable[..., Any]) -> int:
    """Plan (dry run), show, ask, then apply: shared by `deploy` and `rollback`."""
    from flowdesk.store.ops import render_text

    with _engine(args) as engine:
        actor = _actor(args)
        dry = run(engine, actor=actor, allow_destructive=args.allow_destructive, dry_run=True)
        if dry.status == "unchanged":
            print(f"{dry.app} {dry.version} is already active: nothing to do")
            return EXIT_OK
        print(render_text(dry.plan))
        if args.dry_run:
            return EXIT_OK
        if not args.yes:
            if not sys.stdin.isatty():
                print("error: not applied: pass --yes to apply without a terminal", file=sys.stderr)
                return EXIT_ERRORS
            if input("apply this plan? [y/N] ").strip().lower() not in ("y", "yes"):
                print("not applied")
                return EXIT_ERRORS
        result = run(engine, actor=actor, allow_destructive=args.allow_destructive)
    verb = "rolled back" if result.status == "rolled_back" else "deployed"
    print(f"{verb} {result.app} to {result.version} (was {result.previous or 'nothing'})")
    if result.backup:
        print(f"backup of the database before the deploy: {result.backup}")
    return EXIT_OK


def _deploy(args: argparse.Namespace) -> int:
    from flowdesk.store.deploy import deploy

    texts = _texts(args.app_dir)
    return _apply(args, lambda engine, **options: deploy(engine, texts, **options))


def _rollback(args: argparse.Namespace) -> int:
    from flowdesk.store.deploy import rollback

    return _apply(
        args, lambda engine, **options: rollback(engine, args.app, args.version, **options)
    )


def _versions(args: argparse.Namespace) -> int:
    from flowdesk.store.deploy import versions

    with _engine(args) as engine:
        found = versions(engine, args.app)
    if args.format == "json":
        print(json.dumps([v.as_dict() for v in found], indent=2))
        return EXIT_OK
    if not found:
        print(f"no version of `{args.app}` has been deployed")
        return EXIT_OK
    width = max(len(v.version) for v in found)
    for v in found:
        mark = "*" if v.active else " "
        when = v.deployed_at.strftime("%Y-%m-%d %H:%M")
        print(
            f"{mark} {v.version:<{width}}  {when}  {v.deployed_by:<12}  "
            f"{v.content_hash[:12]}  {v.changes} change{'s' * (v.changes != 1)}"
        )
    return EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    from flowdesk.store.deploy import migrate_instances

    state_map = {}
    for item in args.map:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise _Usage(f"--map takes OLD=NEW state pairs, not `{item}`")
        state_map[old] = new
    with _engine(args) as engine:
        moved = migrate_instances(
            engine, args.app, args.from_version, args.to_version, state_map, actor=_actor(args)
        )
    print(f"moved {moved} records of `{args.app}` from {args.from_version} to {args.to_version}")
    return EXIT_OK
