"""`flowdesk import org ...`, `flowdesk import org-template ...` and `flowdesk pack ...`.

The work is done by `flowdesk.onboarding.org`, `.org_template` and `.packs`; these
handlers parse, print and choose the exit status: 0 done, 1 problems found (the file or
the pack import was refused, or written with `--partial` but with rows left out), 2 bad
arguments. Errors are one line each, never a traceback.

`import` is shared with other importers (`flowdesk import data`): `import_actions`
finds the `import` command another module registered, or adds it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["import_actions", "register"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def import_actions(subparsers: Any) -> Any:
    """The sub-commands of `flowdesk import`, created on first use by any module."""
    parser = subparsers.choices.get("import")
    if parser is None:
        parser = subparsers.add_parser("import", help="import organisations or record data")
        return parser.add_subparsers(dest="import_command", required=True, metavar="WHAT")
    for action in parser._actions:  # argparse keeps the sub-commands action here
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="import_command", required=True, metavar="WHAT")


def register(subparsers: Any) -> None:
    """Add `import org`, `import org-template` and `pack` to the `flowdesk` parser."""
    actions = import_actions(subparsers)
    org = actions.add_parser("org", help="import departments, positions and people")
    org.add_argument("files", nargs="+", metavar="FILE",
                     help="an .xlsx or .json file, or .csv files (departments, positions, "
                     "people)")  # fmt: skip
    org.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    org.add_argument("--partial", action="store_true",
                     help="write the good rows even when some rows have problems")
    org.add_argument("--format", choices=("text", "json"), default="text")
    org.add_argument("--database-url", help="default: FLOWDESK_DATABASE_URL or .flowdesk/")
    org.set_defaults(handler=lambda args: _guarded(_import_org, args))

    template = actions.add_parser("org-template", help="write the Excel template to fill in")
    template.add_argument("out", metavar="OUT.xlsx")
    template.set_defaults(handler=lambda args: _guarded(_org_template, args))

    pack = subparsers.add_parser("pack", help="list, show and import template packs")
    pack_sub = pack.add_subparsers(dest="pack_command", required=True, metavar="ACTION")
    listing = _pack_command(pack_sub, "list", "the packs in the templates folder", _pack_list)
    listing.add_argument("--format", choices=("text", "json"), default="text")
    show = _pack_command(pack_sub, "show", "a pack's manifest and documents", _pack_show)
    show.add_argument("name", metavar="NAME")
    show.add_argument("--format", choices=("text", "json"), default="text")
    use = _pack_command(pack_sub, "import", "copy a pack's documents into an app", _pack_import)
    use.add_argument("name", metavar="NAME")
    use.add_argument("--into", required=True, metavar="APP_DIR", help="the app folder")
    use.add_argument("--set", dest="settings", action="append", default=[],
                     metavar="KEY=VALUE", help="a pack parameter (repeatable)")  # fmt: skip
    use.add_argument("--skip-existing", action="store_true",
                     help="copy the documents that do not conflict, skip the others")
    use.add_argument("--dry-run", action="store_true", help="report, write nothing")


def _pack_command(sub: Any, name: str, help_: str,
                  handler: Callable[[argparse.Namespace], int]) -> Any:  # fmt: skip
    parser = sub.add_parser(name, help=help_)
    parser.add_argument("--templates", type=Path, default=None,
                        help="the packs folder (default: ./templates)")  # fmt: skip
    parser.set_defaults(handler=lambda args: _guarded(handler, args))
    return parser


def _guarded(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Refusals and database errors as one line, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from flowdesk.onboarding.packs import PackError, ParameterError

    try:
        return handler(args)
    except BrokenPipeError:
        raise  # `main` ends quietly when the reader of our output went away
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (PackError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    except SQLAlchemyError as error:
        cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(f"error: database: {type(error).__name__}: {cause}", file=sys.stderr)
        return EXIT_ERRORS


# =========================================================================== import org


def _import_org(args: argparse.Namespace) -> int:
    from flowdesk.onboarding.org import import_org
    from flowdesk.settings import load_settings
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import upgrade

    engine = make_engine(args.database_url or load_settings().database_url)
    try:
        upgrade(engine)
        report = import_org(engine, [Path(f) for f in args.files], dry_run=args.dry_run,
                            partial=args.partial)  # fmt: skip
    finally:
        engine.dispose()
    if args.format == "json":
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_org(report)
    return EXIT_OK if report.ok else EXIT_ERRORS


def _print_org(report: Any) -> None:
    for problem in report.problems:
        print(f"{problem.location()}: {problem.message}")
    if report.problems:
        print(f"{len(report.problems)} problem(s) in {report.rows} row(s)")
    if not report.summary:
        print("nothing written")
        return
    verb = "would" if report.dry_run or not report.written else "did"
    for kind, summary in report.summary.items():
        counts = summary.counts()
        print(f"{kind}: {counts['added']} added, {counts['updated']} updated, "
              f"{counts['deactivated']} deactivated, {counts['unchanged']} unchanged")
    if report.written:
        skipped = f"; {report.skipped} row(s) with problems left out" if report.skipped else ""
        print(f"written{skipped}")
    else:
        print(f"nothing written ({'dry run' if report.dry_run else 'problems found'}; "
              f"the counts are what an import {verb} change)")


def _org_template(args: argparse.Namespace) -> int:
    from flowdesk.onboarding.org_template import write_org_template

    out = Path(args.out)
    if out.suffix.lower() != ".xlsx":
        print("flowdesk import org-template: error: the file name must end in .xlsx",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    write_org_template(out)
    print(f"wrote {out}: fill in Departments, Positions and People, then run "
          f"`flowdesk import org {out} --dry-run`")
    return EXIT_OK


# =========================================================================== packs


def _templates(args: argparse.Namespace) -> Path:
    from flowdesk.onboarding.packs import default_templates

    return args.templates or default_templates()


def _label(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(getattr(value, "en", None) or getattr(value, "zh", None) or value)


def _pack_list(args: argparse.Namespace) -> int:
    from flowdesk.onboarding.packs import list_packs

    templates = _templates(args)
    if not templates.is_dir():
        print(f"error: no templates folder {templates}", file=sys.stderr)
        return EXIT_ERRORS
    packs = list_packs(templates)
    if args.format == "json":
        print(json.dumps([{"name": p.name, "version": p.version,
                           "title": _label(p.manifest.title),
                           "provides": list(p.manifest.provides)} for p in packs], indent=2,
                         ensure_ascii=False))  # fmt: skip
        return EXIT_OK
    for pack in packs:
        print(f"{pack.name:<16} {pack.version:<10} {_label(pack.manifest.title)}"
              f"  ({', '.join(pack.manifest.provides)})")
    if not packs:
        print(f"no packs in {templates}")
    return EXIT_OK


def _pack_show(args: argparse.Namespace) -> int:
    from flowdesk.onboarding.packs import load_pack

    info, problems = load_pack(_templates(args), args.name)
    manifest = info.manifest
    if args.format == "json":
        print(json.dumps({
            "name": info.name, "version": info.version, "title": _label(manifest.title),
            "provides": list(manifest.provides), "requires": manifest.requires,
            "parameters": {k: {"type": v.type, "default": v.default, "label": _label(v.label)}
                           for k, v in manifest.parameters.items()},
            "documents": [{"kind": d.kind, "name": d.name, "file": d.file}
                          for d in info.documents],
            "valid": not problems,
        }, indent=2, ensure_ascii=False))  # fmt: skip
        return EXIT_OK if not problems else EXIT_ERRORS
    print(f"{info.name} {info.version}: {_label(manifest.title)}")
    print(f"  folder:   {info.folder}")
    print(f"  provides: {', '.join(manifest.provides) or '-'}")
    for entity, fields in manifest.requires.items():
        print(f"  requires: entity {entity} with {', '.join(fields)}")
    for name, spec in manifest.parameters.items():
        print(f"  parameter {name} ({spec.type}, default {spec.default!r}): {_label(spec.label)}")
    for doc in info.documents:
        print(f"  {doc.kind:<13} {doc.name:<24} {doc.file}")
    if problems:
        print(f"  INVALID: {len(problems)} error(s); run `flowdesk validate {info.folder}`")
        return EXIT_ERRORS
    return EXIT_OK


def _pack_import(args: argparse.Namespace) -> int:
    from flowdesk.cli.render import render_text
    from flowdesk.onboarding.packs import import_pack, parse_settings

    app_dir = Path(args.into)
    report = import_pack(_templates(args), args.name, app_dir,
                         settings=parse_settings(args.settings),
                         skip_existing=args.skip_existing, dry_run=args.dry_run)  # fmt: skip
    for line in report.missing:
        print(f"missing: the pack needs {line}")
    for conflict in report.conflicts:
        print(f"conflict: {conflict.kind} `{conflict.name}` of {conflict.pack_file} is already "
              f"in {app_dir / conflict.app_file}; not overwritten")
    if report.unused:
        print(f"note: no document of the pack uses the parameter(s) {', '.join(report.unused)}")
    if report.missing or (report.conflicts and not args.skip_existing):
        print(f"nothing written: {_why(report)}")
        return EXIT_ERRORS
    for path in report.written:
        print(f"wrote {path}")
    if args.dry_run:
        print("dry run: nothing written")
        return EXIT_OK
    errors = [d for d in report.diagnostics if d.is_error]
    if report.diagnostics:
        print(render_text(report.diagnostics, {}))
    print(f"{app_dir}: " + (f"{len(errors)} error(s) after the import" if errors else "valid"))
    return EXIT_OK if report.ok else EXIT_ERRORS


def _why(report: Any) -> str:
    if report.missing:
        return "add the entities and fields the pack requires first"
    return "rename or remove the conflicting documents, or use --skip-existing"
