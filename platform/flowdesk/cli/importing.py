"""`flowdesk import data APP ENTITY FILE --mapping MAP`: historical records from a file.

The work is done by `flowdesk.onboarding.data.import_data`; this handler parses,
prints a progress line per batch (on a terminal) and the summary, and chooses the
exit status: 0 every row imported (or valid, with `--dry-run`), 1 some rows were
refused or the import could not run (mapping, file, database; one line each, never
a traceback), 2 bad arguments. An interrupted import prints nothing more, but its
run id was printed when it started: `--resume RUN_ID` continues it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._common import database_error, migrated_engine
from .onboarding import import_actions

__all__ = ["register"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add `import data` to the `flowdesk` parser (sharing `import` with `import org`)."""
    data = import_actions(subparsers).add_parser(
        "data", help="import historical records of one entity from CSV, XLSX or JSON Lines"
    )
    data.add_argument("app", help="a deployed app's name, e.g. service_desk")
    data.add_argument("entity", help="the entity the rows become, e.g. ticket")
    data.add_argument("file", type=Path, help="a .csv, .xlsx or .jsonl file")
    data.add_argument("--mapping", type=Path, required=True, metavar="MAP.yaml",
                      help="column mapping document (docs/data-import.md)")
    data.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    data.add_argument("--batch-size", type=_positive_int, default=500, metavar="N",
                      help="rows per transaction (default 500)")
    data.add_argument("--resume", type=_positive_int, metavar="RUN_ID",
                      help="continue an interrupted run after its last committed batch")
    data.add_argument("--report", type=Path, metavar="OUT.csv|OUT.json",
                      help="write every problem (row, column, message) to this file")
    data.add_argument("--format", choices=("text", "json"), default="text",
                      help="how the summary is printed")
    data.add_argument("--database-url", help="default: FLOWDESK_DATABASE_URL or .flowdesk/")
    data.set_defaults(handler=_import_data)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number of at least 1")
    return value


def _import_data(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from flowdesk.onboarding.data import DataImportError, MappingError, SourceError, load_mapping

    try:
        mapping = load_mapping(args.mapping)
        with migrated_engine(args.database_url) as engine:
            return _run(engine, args, mapping)
    except MappingError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
    except (SourceError, DataImportError) as error:
        print(f"error: {error}", file=sys.stderr)
    except SQLAlchemyError as error:
        print(database_error(error), file=sys.stderr)
    except OSError as error:
        print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
    return EXIT_ERRORS


def _run(engine: Any, args: argparse.Namespace, mapping: Any) -> int:
    from flowdesk.onboarding.data import DataImportError, import_data
    from flowdesk.store.deploy import load_active

    app = load_active(engine, args.app)
    if app is None:
        raise DataImportError(f"no app `{args.app}` is deployed; run `flowdesk deploy` first")
    if not args.file.is_file():
        raise DataImportError(f"{args.file}: no such file")
    summary = import_data(
        engine, app, args.entity, args.file, mapping, dry_run=args.dry_run,
        batch_size=args.batch_size, resume=args.resume, report=args.report,
        progress=_progress,
    )  # fmt: skip
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.format == "json":
        print(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(_text(summary, args.report))
    return EXIT_ERRORS if summary.bad else EXIT_OK


def _progress(phase: str, rows: int, imported: int) -> None:
    if phase == "run":
        print(f"import run {rows} started; if it stops, continue it with --resume {rows}",
              file=sys.stderr, flush=True)
        return
    if not sys.stderr.isatty():
        return
    done = f"{rows} rows checked" if phase == "validate" else f"{imported} records imported"
    print(f"\r{phase}: {done}", end="", file=sys.stderr, flush=True)


def _text(summary: Any, report: Path | None) -> str:
    lines = [f"{summary.app} {summary.entity} from {summary.source}: {summary.rows} rows, "
             f"{summary.good} good, {summary.bad} with problems"
             + (f" ({summary.skipped} rows before the resume point skipped)"
                if summary.skipped else "")]
    if summary.codes:
        lines.append("problems: " + ", ".join(f"{code} {n}" for code, n in
                                              sorted(summary.codes.items())))
        shown = ", ".join(str(r) for r in summary.bad_rows[:20])
        more = " ..." if summary.bad > 20 else ""
        lines.append(f"rows with problems: {shown}{more}"
                     + (f" (all in {report})" if report else " (--report FILE lists them)"))
    if summary.dry_run:
        lines.append("dry run: nothing was written")
    else:
        lines.append(f"import run {summary.run_id}: {summary.imported} records imported, "
                     f"{summary.status}")
    return "\n".join(lines)
