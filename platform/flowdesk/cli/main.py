"""The `flowdesk` command line: argument parsing and printing only."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from . import commands, deploy, identity, importing, onboarding, scenarios, serve, sla, worker
from .render import render_github, render_json, render_text, summary

__all__ = ["main"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _validate(args: argparse.Namespace) -> int:
    report = commands.validate([Path(p) for p in args.paths])
    diagnostics = report.diagnostics
    if args.format == "json":
        print(render_json(diagnostics))
    elif args.format == "github":
        if diagnostics:
            print(render_github(diagnostics))
        print(summary(diagnostics, len(report.results)), file=sys.stderr)
    else:
        if diagnostics:
            print(render_text(diagnostics, report.files))
            print()
        print(summary(diagnostics, len(report.results)))
    return EXIT_OK if report.ok else EXIT_ERRORS


def _schemas(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if args.action == "export":
        written = commands.export_schemas(folder)
        print(f"wrote {len(written)} schemas to {folder}")
        return EXIT_OK
    stale = commands.check_schemas(folder)
    if stale:
        print(f"schemas in {folder} are stale: " + ", ".join(stale), file=sys.stderr)
        print("run `flowdesk schemas export` and commit the result", file=sys.stderr)
        return EXIT_ERRORS
    print(f"schemas in {folder} are current")
    return EXIT_OK


def _docs(args: argparse.Namespace) -> int:
    folder = Path(args.out)
    if args.check:
        stale = commands.check_docs(folder)
        if stale:
            print(f"model reference in {folder} is stale: " + ", ".join(stale), file=sys.stderr)
            print("run `flowdesk docs` and commit the result", file=sys.stderr)
            return EXIT_ERRORS
        print(f"model reference in {folder} is current")
        return EXIT_OK
    written = commands.write_docs(folder)
    print(f"wrote {len(written)} reference pages to {folder}")
    return EXIT_OK


def _expr(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as error:
        print(
            f"--data is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not isinstance(data, dict):
        print("--data must be a JSON object of names, e.g. '{\"record\": {...}}'", file=sys.stderr)
        return EXIT_USAGE
    report = commands.eval_expression(args.expression, data)
    if report.issues:
        print(_render_issues(args.expression, report.issues), file=sys.stderr)
        return EXIT_ERRORS
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return EXIT_ERRORS
    print(commands.to_json(report.value))
    return EXIT_OK


def _render_issues(source: str, issues: list) -> str:  # type: ignore[type-arg]
    lines = source.splitlines() or [""]
    out = []
    for issue in issues:
        out.append(f"<expression>:{issue.line}:{issue.column}: error[{issue.code}] {issue.message}")
        text = lines[issue.line - 1] if issue.line <= len(lines) else ""
        out.append("    " + text)
        out.append("    " + " " * (issue.column - 1) + "^")
        if issue.hint:
            out.append(f"    hint: {issue.hint}")
    return "\n".join(out)


def _new(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", args.name):
        print(
            f"`{args.name}` is not a valid app name: use snake_case, e.g. `it_helpdesk`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        written = commands.new_app(args.name, Path(args.dir))
    except FileExistsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    print(
        f"created {Path(args.dir) / args.name} ({len(written)} files); "
        f"check it with `flowdesk validate {Path(args.dir) / args.name}`"
    )
    return EXIT_OK


def _db(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from flowdesk.settings import load_settings

    url = args.database_url or load_settings().database_url
    try:
        before, after = commands.db_upgrade(url)
    except SQLAlchemyError as error:
        print(f"error: cannot migrate {url}: {error.__class__.__name__}: "
              f"{str(error.orig if hasattr(error, 'orig') else error).strip()}", file=sys.stderr)
        return EXIT_ERRORS
    if before == after:
        print(f"database is current (revision {after})")
    else:
        print(f"migrated the platform tables from {before or 'empty'} to {after}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowdesk", description="Flowdesk low-code platform")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = sub.add_parser("validate", help="validate apps, packs or model files")
    validate.add_argument("paths", nargs="+", help="app folders, folders of apps, or files")
    validate.add_argument("--format", choices=("text", "json", "github"), default="text")
    validate.set_defaults(handler=_validate)

    schemas = sub.add_parser("schemas", help="export or check the JSON Schemas")
    schemas.add_argument("action", choices=("export", "check"))
    schemas.add_argument("--dir", default="schemas", help="schema folder (default: schemas)")
    schemas.set_defaults(handler=_schemas)

    docs = sub.add_parser("docs", help="generate the model reference from the schemas")
    docs.add_argument("--out", default="docs/reference")
    docs.add_argument("--check", action="store_true", help="fail when the pages are stale")
    docs.set_defaults(handler=_docs)

    expr = sub.add_parser("expr", help="work with CEL expressions")
    expr_sub = expr.add_subparsers(dest="expr_command", required=True, metavar="ACTION")
    evaluate = expr_sub.add_parser("eval", help="evaluate an expression over JSON data")
    evaluate.add_argument("expression")
    evaluate.add_argument("--data", default="{}", help="names in scope, e.g. '{\"record\": {}}'")
    evaluate.set_defaults(handler=_expr)

    db = sub.add_parser("db", help="manage the platform database")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_up = db_sub.add_parser("upgrade", help="migrate the platform tables (Alembic)")
    db_up.add_argument("--database-url", help="default: FLOWDESK_DATABASE_URL or .flowdesk/")
    db_up.set_defaults(handler=_db)

    new = sub.add_parser("new", help="scaffold a new app")
    new_sub = new.add_subparsers(dest="new_command", required=True, metavar="WHAT")
    app = new_sub.add_parser("app", help="a new app folder that validates as it is")
    app.add_argument("name")
    app.add_argument("--dir", default="apps", help="parent folder (default: apps)")
    app.set_defaults(handler=_new)
    for module in (deploy, identity, onboarding, importing, scenarios, serve, sla, worker):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code not in (0, None) else EXIT_OK
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
