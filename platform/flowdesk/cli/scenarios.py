"""`flowdesk test APP_DIR` (scenario tests) and `flowdesk diagram APP_DIR WORKFLOW`.

`test` exits 0 when every scenario passed, 1 when one failed, 2 for usage errors
and for an app (or scenario) that does not validate, whose located diagnostics
are printed instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import MANIFEST_FILES, read_app

from .render import render_text

__all__ = ["register"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add `test` and `diagram` to the `flowdesk` parser's subcommands."""
    test = subparsers.add_parser("test", help="run an app's scenario tests (APP_DIR/tests)")
    test.add_argument("app", metavar="APP_DIR")
    test.add_argument("--scenario", action="append", default=[], metavar="NAME",
                      help="run only this scenario (repeatable)")
    test.add_argument("--format", choices=("text", "json"), default="text")
    test.set_defaults(handler=_test)
    diagram = subparsers.add_parser("diagram", help="draw a workflow (Mermaid or SVG)")
    diagram.add_argument("app", metavar="APP_DIR")
    diagram.add_argument("workflow", metavar="WORKFLOW")
    diagram.add_argument("--format", choices=("mermaid", "svg"), default="mermaid")
    diagram.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    diagram.set_defaults(handler=_diagram)


def _app_dir(text: str) -> Path | None:
    root = Path(text)
    if not any((root / name).is_file() for name in MANIFEST_FILES):
        print(f"error: {text} is not an app folder (it has no app.yaml)", file=sys.stderr)
        return None
    return root


def _test(args: argparse.Namespace) -> int:
    from flowdesk.testing.scenarios import run_app_tests

    root = _app_dir(args.app)
    if root is None:
        return EXIT_USAGE
    try:
        report = run_app_tests(root, only=args.scenario)
    except LookupError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(_render(report))
    if not report.valid:
        return EXIT_USAGE
    return EXIT_OK if report.passed else EXIT_FAILED


def _render(report: Any) -> str:
    if not report.valid:
        errors = [d for d in report.diagnostics if d.is_error]
        return (render_text(report.diagnostics, report.files) + "\n\n"
                f"the app or its scenarios do not validate ({len(errors)} error(s)); "
                "nothing was run")
    lines = []
    for result in report.results:
        mark = "PASS" if result.passed else "FAIL"
        lines.append(f"{mark}  {result.name}  ({result.file}:{result.line}, "
                     f"{result.seconds:.2f}s)")
        failure = result.failure
        if failure is not None:
            lines.append(f"      step {failure.step} `{failure.action}` at "
                         f"{failure.file}:{failure.line}")
            lines.append(f"      expected: {failure.expected}")
            lines.append(f"      found:    {failure.found}")
    failed = sum(not r.passed for r in report.results)
    total = len(report.results)
    if total == 0:
        lines.append("no scenarios: add tests/*.yaml documents of `kind: Scenario`")
    else:
        lines.append(f"{total - failed} passed, {failed} failed")
    return "\n".join(lines)


def _diagram(args: argparse.Namespace) -> int:
    from flowdesk.engine.diagram import mermaid, svg

    root = _app_dir(args.app)
    if root is None:
        return EXIT_USAGE
    result = compile_source(read_app(root))
    if result.app is None:
        print(render_text(result.diagnostics, result.files), file=sys.stderr)
        return EXIT_USAGE
    if args.workflow not in result.app.workflows:
        known = ", ".join(sorted(result.app.workflows)) or "none"
        print(f"error: no workflow `{args.workflow}` in {result.app.name} (workflows: {known})",
              file=sys.stderr)
        return EXIT_USAGE
    text = (svg if args.format == "svg" else mermaid)(result.app, args.workflow)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK
