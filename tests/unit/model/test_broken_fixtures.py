"""One broken app per diagnostic code, compiled and compared with its `expected.yaml`.

`tests/fixtures/broken/<code>/` is a small app folder holding one realistic
analyst mistake that makes the compiler report `<code>`; its `expected.yaml`
lists *exactly* the diagnostics expected (file relative to the folder, line,
column, pointer, code, severity, message, hint). Folders named
`<code>--<variant>` are further cases of the same code (another place that
reports it, or a known compiler bug pinned as a strict xfail).

The codes the compiler can emit are listed in `CODES` (taken once from the
source) and re-derived from the source at run time, so adding a code without
a fixture folder fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import MANIFEST_FILES, discover, read_app, read_tests

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "broken"
SOURCE_DIRS = (
    REPO / "platform" / "flowdesk" / "model",
    REPO / "platform" / "flowdesk" / "expressions",
)
EXPECTED = "expected.yaml"
FIELDS = ("file", "line", "column", "pointer", "code", "severity", "message", "hint")

# Every code the compiler can emit, from
#   grep -rhoE '"[a-z]+(-[a-z]+)+"' platform/flowdesk/model platform/flowdesk/expressions
# plus the `unknown-<kind>` codes `LinkContext.resolve` builds from a kind name.
CODES = {
    # loader and sources
    "yaml-syntax",
    "yaml-complex-key",
    "yaml-unsupported-tag",
    "yaml-too-large",
    "duplicate-key",
    "file-encoding",
    "file-unreadable",
    "path-not-found",
    "no-app-found",
    # header and JSON Schema pass
    "not-a-mapping",
    "invalid-api-version",
    "missing-kind",
    "unknown-kind",
    "missing-key",
    "unknown-key",
    "wrong-type",
    "invalid-value",
    "invalid-format",
    "invalid-name",
    "out-of-range",
    "ambiguous-value",
    # pydantic pass (PydanticCustomError: reached only when the JSON Schema pass is clean)
    "empty-label",
    "one-key-expected",
    "approval-mode-param",
    "invalid-mask",
    "invalid-regex",
    "invalid-range",
    "empty-enum",
    "invalid-number-pattern",
    "empty-entity",
    "measure-kind",
    "measure-parameter",
    "thresholds-order",
    "widget-measure",
    "if-without-then",
    "then-without-if",
    # linker: documents and names
    "duplicate-name",
    "duplicate-manifest",
    "missing-manifest",
    "reserved-name",
    "name-too-long",
    "reserved-field",
    "unique-not-supported",
    "mask-not-text",
    "invalid-default",
    "unknown-field",
    "not-searchable",
    # linker: references (`unknown-<kind>` from LinkContext.resolve)
    "unknown-entity",
    "unknown-calendar",
    "unknown-notification",
    "unknown-integration",
    "unknown-workflow",
    "unknown-report",
    # CEL (flowdesk/expressions/errors.py)
    "cel-syntax",
    "cel-unknown-name",
    "cel-unknown-field",
    "cel-type-mismatch",
    "cel-unknown-function",
    "cel-bad-arguments",
    "cel-unknown-enum-value",
    "cel-not-boolean",
    # workflows and actions
    "gateway-no-default",
    "recursive-subprocess",
    "unknown-state",
    "approval-impossible",
    "unknown-operation",
    "timer-conflict",
    "unreachable-state",
    "dead-end-state",
    "unguarded-cycle",
    "unknown-role",
    "not-a-person-field",
    "no-workflow",
    "unknown-transition",
    "deep-nesting",
    "too-deep",
    # automations
    "missing-entity",
    "invalid-cron",
    "trigger-fields",
    "trigger-state",
    "not-a-date",
    "relative-needs-one",
    # calendars
    "unknown-timezone",
    "calendar-cycle",
    "unknown-country",
    "invalid-day-range",
    "duplicate-day",
    "invalid-interval",
    "overlapping-intervals",
    "invalid-date",
    # SLAs
    "metric-never-stops",
    "unknown-metric",
    "sla-no-default",
    "invalid-warnings",
    # integrations and notifications
    "auth-incomplete",
    "invalid-url",
    "unknown-event",
    "value-map-not-reversible",
    "template-syntax",
    "template-unknown-name",
    # policies
    "role-cycle",
    "wildcard-with-details",
    "mask-missing",
    # reports, dashboards and forms
    "unknown-sort",
    "bucket-not-time",
    "level-not-department",
    "not-numeric",
    "unknown-measure",
    "unknown-dimension",
    "filter-unused",
    "widget-mismatch",
    "duplicate-form-field",
    "public-form-incomplete",
    # scenarios (tests/*.yaml)
    "unknown-user",
    "unknown-record",
}

# Strings the source grep matches that are not diagnostic codes.
NOT_CODES: set[str] = set()

# Codes no app folder can produce, with the reason; each is exercised by a test below
# or in test_cli_validate.py.
UNREACHABLE = {
    "ambiguous-value": "reported only for a value valid under two alternatives of a JSON Schema "
    "`oneOf`; the generated schemas' only `oneOf`s (field types, state types) are "
    "discriminated by a required or const `type`, so no value matches two of them; see "
    "test_ambiguous_value",
    "file-unreadable": "needs an OS read error (permissions, a file vanishing mid-read): "
    "neither survives in git, and root ignores permissions; see test_unreadable_file below",
    "path-not-found": "about a command-line path, not an app folder's content; see "
    "test_cli_validate.py::test_missing_path_is_a_located_error",
}

# Fixtures pinning known compiler bugs: `expected.yaml` holds the correct output.
XFAIL: dict[str, str] = {}

SLOW = {"yaml-too-large"}  # expands 2,000,000 values before giving up


def fixture_folders() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.is_dir())


def code_of(folder: Path) -> str:
    return folder.name.split("--", 1)[0]


def _params() -> list[Any]:
    params = []
    for folder in fixture_folders():
        marks = []
        if folder.name in XFAIL:
            marks.append(pytest.mark.xfail(reason=XFAIL[folder.name], strict=True))
        if folder.name in SLOW:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(folder, id=folder.name, marks=marks))
    return params


def load_expected(folder: Path) -> list[dict[str, Any]]:
    data = YAML(typ="safe").load((folder / EXPECTED).read_text(encoding="utf-8"))
    assert isinstance(data, list), f"{folder.name}/{EXPECTED} must be a list"
    for entry in data:
        assert set(entry) == set(FIELDS), f"{folder.name}: entry keys {sorted(entry)}"
    return data


def compile_fixture(folder: Path) -> list[dict[str, Any]]:
    """Compile a fixture folder as `flowdesk validate` would, paths relative to it.

    App folders are read with `read_app` (`discover` does the same for them); a
    folder without a manifest goes through `discover`, which reports `no-app-found`.
    """
    folder = folder.resolve()
    if any((folder / name).is_file() for name in MANIFEST_FILES):
        sources = [read_app(folder)]
        sources[0].texts.update(read_tests(folder).texts)  # scenarios, as `flowdesk test`
    else:
        sources = discover([folder])
    found = []
    for source in sources:
        relative: dict[str, str] = {}
        for name in list(source.texts):
            path = Path(name).resolve()
            if path == folder / EXPECTED:
                del source.texts[name]
            elif path.is_relative_to(folder):
                relative[name] = path.relative_to(folder).as_posix()
        result = compile_source(source)
        for d in result.diagnostics:
            path = Path(d.file).resolve()
            message = d.message
            for name in sorted(relative, key=len, reverse=True):  # paths quoted in messages
                message = message.replace(name, relative[name])
            found.append(
                {
                    "file": path.relative_to(folder).as_posix()
                    if path.is_relative_to(folder)
                    else d.file,
                    "line": d.line,
                    "column": d.column,
                    "pointer": d.pointer,
                    "code": d.code,
                    "severity": d.severity.value,
                    "message": message,
                    "hint": d.hint,
                }
            )
    return found


def _order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda d: (d["file"], d["line"], d["column"], d["code"], d["message"]))


@pytest.mark.parametrize("folder", _params())
def test_fixture_reports_exactly_the_expected_diagnostics(folder: Path) -> None:
    expected = load_expected(folder)
    assert _order(compile_fixture(folder)) == _order(expected)


@pytest.mark.parametrize("folder", fixture_folders(), ids=lambda p: p.name)
def test_fixture_is_well_formed(folder: Path) -> None:
    code = code_of(folder)
    assert code in CODES, f"{folder.name}: `{code}` is not a known diagnostic code"
    assert code not in UNREACHABLE, f"{folder.name}: `{code}` is listed as unreachable"
    assert (folder / EXPECTED).is_file(), f"{folder.name} has no {EXPECTED}"
    codes = {entry["code"] for entry in load_expected(folder)}
    assert code in codes, f"{folder.name}/{EXPECTED} does not expect `{code}`"


def test_every_listed_code_has_a_fixture() -> None:
    folders = {p.name for p in fixture_folders()}
    missing = sorted(c for c in CODES if c not in UNREACHABLE and c not in folders)
    assert not missing, "codes without a fixtures/broken/<code>/ folder: " + ", ".join(missing)
    assert set(UNREACHABLE) <= CODES
    assert set(XFAIL) <= folders, "XFAIL names folders that do not exist"


def source_codes() -> set[str]:
    """Diagnostic codes written in the compiler's source, found as the CI grep finds them."""
    from flowdesk.model.link import context

    literal = re.compile(r'"([a-z]+(?:-[a-z]+)+)"')
    resolve = re.compile(r'ctx\.resolve\(.{0,300}?"([A-Z][A-Za-z]*)"', re.S)
    nouns: dict[str, str] = getattr(context, "_NOUNS", {})
    found: set[str] = set()
    for folder in SOURCE_DIRS:
        for path in folder.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            found.update(literal.findall(text))
            for kind in resolve.findall(text):
                found.add("unknown-" + nouns.get(kind, kind.lower()).replace(" ", "-"))
    return found - NOT_CODES


def test_every_code_in_the_source_has_a_fixture() -> None:
    found = source_codes()
    folders = {p.name for p in fixture_folders()}
    new = sorted(c for c in found if c not in UNREACHABLE and c not in folders)
    assert not new, (
        "diagnostic codes without a fixture: "
        + ", ".join(new)
        + " -- add tests/fixtures/broken/<code>/ (an app plus expected.yaml) and list the code "
        "in CODES, or in UNREACHABLE with the reason (or in NOT_CODES if it is not a code)"
    )


def test_listed_codes_still_exist() -> None:
    gone = sorted(CODES - source_codes())
    assert not gone, "codes listed in CODES but no longer in the source: " + ", ".join(gone)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`file-unreadable` (UNREACHABLE as a fixture) still reaches the diagnostics."""
    app = tmp_path / "app"
    (app / "entities").mkdir(parents=True)
    (app / "app.yaml").write_text(
        "apiVersion: flowdesk/v1\nkind: App\nname: x\nversion: 1.0.0\ntitle: X\n", encoding="utf-8"
    )
    locked = app / "entities" / "ticket.yaml"
    locked.write_text("kind: Entity\n", encoding="utf-8")
    original = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if self == locked:
            raise PermissionError(13, "Permission denied")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    result = compile_source(read_app(app))
    unreadable = [d for d in result.diagnostics if d.code == "file-unreadable"]
    assert len(unreadable) == 1
    assert (unreadable[0].line, unreadable[0].column) == (1, 1)
    assert unreadable[0].message == "cannot read file: Permission denied"
    assert Path(unreadable[0].file).resolve() == locked


def test_ambiguous_value() -> None:
    """`ambiguous-value` (UNREACHABLE with the generated schemas) from a hand-made `oneOf`."""
    from jsonschema import Draft202012Validator

    from flowdesk.model.loader import load_text
    from flowdesk.model.structure import _translate

    [doc], problems = load_text("size: 3\n", "x.yaml")
    assert problems == []
    schema = {"properties": {"size": {"oneOf": [{"type": "integer"}, {"minimum": 1}]}}}
    [error] = Draft202012Validator(schema).iter_errors(doc.data)
    [diagnostic] = _translate(error, doc)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("ambiguous-value", 1, 7)
    assert diagnostic.pointer == "/size"
