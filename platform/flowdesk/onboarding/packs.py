"""Template packs: list them, show one, import one into an app folder.

A pack is a folder under `templates/` with a `pack.yaml` manifest (`kind: Pack`:
name, semver version, what it provides, the entities and fields it requires, its
parameters) and ordinary model documents. `flowdesk validate templates` checks packs
like apps.

`import_pack(templates, name, app_dir)` copies the pack's documents into an app:

1. the pack must validate, the `--set` values must fit its parameters, and the app
   must have every entity and field the pack `requires` -- otherwise nothing is
   written and the report says what is missing;
2. a document whose kind and name the app already has is a conflict: reported, never
   overwritten (nothing is written, unless `skip_existing` copies the rest);
3. files are copied to the same relative path (`sla/support_sla.yaml`), or
   `<pack>_<file>` beside it when a file of that name exists; files without
   placeholders are copied as text, files with `${param}` placeholders go through
   ruamel's round-trip loader, so comments survive either way; the
   `# yaml-language-server: $schema=` line is re-pointed at the same schema file;
4. the app manifest records the use (`packs: [{name, version: ^X.Y.Z, with: {...}}]`);
5. the app is validated and the diagnostics returned with the report.

See `_pack_params` for the substitution rules and docs/onboarding.md for examples.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowdesk.model.app import Pack, PackParameter
from flowdesk.model.compiler import compile_source
from flowdesk.model.diagnostics import Diagnostic
from flowdesk.model.loader import iter_yaml_files, load_text
from flowdesk.model.sources import MANIFEST_FILES, AppSource, read_app

from ._pack_params import (
    PLACEHOLDER,
    ParameterError,
    resolve_parameters,
    substitute,
    uses,
)

__all__ = [
    "PackDocument",
    "PackError",
    "PackImportReport",
    "PackInfo",
    "ParameterError",
    "default_templates",
    "import_pack",
    "list_packs",
    "load_pack",
    "parse_settings",
]

_SCHEMA_LINE = re.compile(r"^(# yaml-language-server: \$schema=)(\S+)[ \t]*$", re.MULTILINE)


class PackError(ValueError):
    """The pack cannot be used as asked: unknown, invalid, or the app folder is not an app."""


@dataclass(frozen=True)
class PackDocument:
    kind: str
    name: str
    file: str  # relative to the pack folder


@dataclass(frozen=True)
class PackInfo:
    """A pack's manifest and the documents it would copy."""

    manifest: Pack
    folder: Path
    documents: tuple[PackDocument, ...]

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def parameters(self) -> Mapping[str, PackParameter]:
        return self.manifest.parameters


@dataclass(frozen=True)
class Conflict:
    """A pack document whose kind and name the app already has."""

    kind: str
    name: str
    pack_file: str
    app_file: str


@dataclass
class PackImportReport:
    """What an import did or would do. `written` are paths inside the app folder."""

    pack: str
    version: str
    parameters: dict[str, Any] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    skipped: list[PackDocument] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # unmet `requires`
    unused: list[str] = field(default_factory=list)  # parameters no document refers to
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        blocked = bool(self.missing) or (bool(self.conflicts) and not self.skipped)
        return not blocked and not any(d.is_error for d in self.diagnostics)


def default_templates() -> Path:
    """`./templates` when it exists, else the repository's templates folder."""
    here = Path("templates")
    return here if here.is_dir() else Path(__file__).resolve().parents[3] / "templates"


def parse_settings(items: list[str]) -> dict[str, str]:
    """`["country=US", "response_p1=15m"]` -> a dict.

    Raises:
        ParameterError: an item without `=` or with an empty name.
    """
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"`{item}` is not KEY=VALUE, e.g. country=US")
        settings[key.strip()] = value.strip()
    return settings


def list_packs(templates: Path) -> list[PackInfo]:
    """Every folder of `templates` holding a pack manifest, by name (invalid ones too:
    `show` and `validate` say what is wrong with them)."""
    found = []
    for folder in sorted(p for p in templates.iterdir() if (p / "pack.yaml").is_file()):
        info = _read_pack(folder)
        if info is not None:
            found.append(info)
    return found


def load_pack(templates: Path, name: str) -> tuple[PackInfo, list[Diagnostic]]:
    """The pack `name` and its validation diagnostics.

    Raises:
        PackError: no such pack, or its manifest cannot be read.
    """
    folder = templates / name
    info = _read_pack(folder) if (folder / "pack.yaml").is_file() else None
    if info is None:
        known = ", ".join(p.name for p in list_packs(templates)) if templates.is_dir() else ""
        raise PackError(f"no pack `{name}` in {templates} (packs: {known or 'none'})")
    return info, [d for d in _compile_with_defaults(info).diagnostics if d.is_error]


def _compile_with_defaults(info: PackInfo) -> Any:
    """Compile the pack with each `${param}` replaced by its default, in the text (so
    line numbers stay right): a placeholder may stand where a format is checked
    (`country: ${country}`), and the pack must validate as its defaults make it."""
    source = read_app(info.folder)
    defaults = {name: spec.default for name, spec in info.parameters.items()}

    def fill(match: re.Match[str]) -> str:
        if match.group(0) == "$${" or match.group(1) not in defaults:
            return match.group(0)  # unknown names are reported by the import itself
        value = defaults[match.group(1)]
        return str(value).lower() if isinstance(value, bool) else str(value)

    texts = {name: PLACEHOLDER.sub(fill, text) for name, text in source.texts.items()}
    return compile_source(AppSource(source.root, texts, source.diagnostics))


def _read_pack(folder: Path) -> PackInfo | None:
    manifest: Pack | None = None
    documents: list[PackDocument] = []
    for path in iter_yaml_files(folder):
        relative = path.relative_to(folder).as_posix()
        parsed, _ = load_text(path.read_text(encoding="utf-8"), relative)
        for doc in parsed:
            data = doc.data if isinstance(doc.data, dict) else {}
            kind, name = data.get("kind"), data.get("name")
            if kind == "Pack" and relative in MANIFEST_FILES:
                try:
                    manifest = Pack.model_validate(data)
                except ValueError:
                    return None
            elif isinstance(kind, str) and isinstance(name, str):
                documents.append(PackDocument(kind, name, relative))
    return None if manifest is None else PackInfo(manifest, folder, tuple(documents))


# =========================================================================== import


def import_pack(
    templates: Path,
    name: str,
    app_dir: Path,
    *,
    settings: Mapping[str, str] | None = None,
    skip_existing: bool = False,
    dry_run: bool = False,
) -> PackImportReport:
    """Copy pack `name` into `app_dir`; see the module docstring.

    Raises:
        PackError: unknown or invalid pack, `app_dir` without an `app.yaml`.
        ParameterError: a `--set` name the pack does not declare, or a bad value.
    """
    info, problems = load_pack(templates, name)
    if problems:
        first = problems[0]
        raise PackError(f"pack `{name}` does not validate ({len(problems)} errors; first: "
                        f"{first.file}:{first.line}: {first.message}); run "
                        f"`flowdesk validate {info.folder}`")  # fmt: skip
    if not (app_dir / "app.yaml").is_file():
        raise PackError(f"{app_dir} is not an app folder (no app.yaml); create one with "
                        "`flowdesk new app NAME`")  # fmt: skip
    report = PackImportReport(info.name, info.version)
    report.parameters = resolve_parameters(info.parameters, settings or {})
    existing, entities = _app_documents(app_dir)
    report.missing = _unmet(info.manifest.requires, entities)
    copies = _plan_copies(info, existing, app_dir, report, skip_existing)
    if report.missing or (report.conflicts and not skip_existing):
        return report
    texts = {target: _render(info.folder / file, target, report.parameters)
             for file, target in copies.items()}  # fmt: skip
    report.unused = sorted(set(info.parameters) - _used(info))
    if dry_run:
        return report
    for target, text in texts.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        report.written.append(target)
    _record_use(app_dir / "app.yaml", info, settings or {})
    report.diagnostics = compile_source(read_app(app_dir)).diagnostics
    return report


def _app_documents(app_dir: Path) -> tuple[dict[tuple[str, str], str], dict[str, set[str]]]:
    """(kind, name) -> file of every document of the app; entity -> its field names."""
    existing: dict[tuple[str, str], str] = {}
    entities: dict[str, set[str]] = {}
    for path in iter_yaml_files(app_dir, exclude=("tests",)):
        relative = path.relative_to(app_dir).as_posix()
        parsed, _ = load_text(path.read_text(encoding="utf-8"), relative)
        for doc in parsed:
            data = doc.data if isinstance(doc.data, dict) else {}
            kind, name = data.get("kind"), data.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                existing[(kind, name)] = relative
            if kind == "Entity" and isinstance(name, str):
                fields = data.get("fields")
                entities[name] = set(fields) if isinstance(fields, dict) else set()
    return existing, entities


def _unmet(requires: Mapping[str, list[str]], entities: Mapping[str, set[str]]) -> list[str]:
    missing = []
    for entity, fields in requires.items():
        if entity not in entities:
            missing.append(f"entity `{entity}` with fields {', '.join(fields)}")
            continue
        absent = [f for f in fields if f not in entities[entity]]
        if absent:
            missing.append(f"fields of entity `{entity}`: {', '.join(absent)}")
    return missing


def _plan_copies(info: PackInfo, existing: Mapping[tuple[str, str], str], app_dir: Path,
                 report: PackImportReport, skip_existing: bool) -> dict[str, Path]:  # fmt: skip
    """Pack file -> target path, for the files that hold no conflicting document."""
    blocked: set[str] = set()
    for doc in info.documents:
        app_file = existing.get((doc.kind, doc.name))
        if app_file is not None:
            report.conflicts.append(Conflict(doc.kind, doc.name, doc.file, app_file))
            blocked.add(doc.file)
    files = sorted({doc.file for doc in info.documents})
    if skip_existing:
        report.skipped = [d for d in info.documents if d.file in blocked]
    copies: dict[str, Path] = {}
    for file in files:
        if file in blocked:
            continue
        target = app_dir / file
        if target.exists():
            target = target.with_name(f"{info.name}_{target.name}")
        if target.exists():
            report.conflicts.append(Conflict("file", target.name, file,
                                             target.relative_to(app_dir).as_posix()))
            continue
        copies[file] = target
    return copies


def _used(info: PackInfo) -> set[str]:
    names: set[str] = set()
    for file in {doc.file for doc in info.documents}:
        parsed, _ = load_text((info.folder / file).read_text(encoding="utf-8"), file)
        for doc in parsed:
            names |= uses(doc.data)
    return names


def _render(source: Path, target: Path, parameters: Mapping[str, Any]) -> str:
    """The file's text for the app: placeholders substituted, the schema line re-pointed."""
    text = source.read_text(encoding="utf-8")
    if "${" in text:
        text = _substitute_file(text, source, parameters)

    def repoint(match: re.Match[str]) -> str:
        schema = (source.parent / match.group(2)).resolve()
        relative = os.path.relpath(schema, target.parent.resolve())
        return match.group(1) + Path(relative).as_posix()

    return _SCHEMA_LINE.sub(repoint, text)


def _substitute_file(text: str, source: Path, parameters: Mapping[str, Any]) -> str:
    yaml = _round_trip()
    documents = list(yaml.load_all(text))
    for index, document in enumerate(documents):
        try:
            _substitute_node(document, parameters)
        except KeyError as error:
            raise PackError(f"{source}: document {index + 1} uses `${{{error.args[0]}}}`, "
                            "which the pack does not declare as a parameter") from None
    out = io.StringIO()
    yaml.dump_all(documents, out)
    return out.getvalue()


def _substitute_node(node: Any, parameters: Mapping[str, Any]) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()  # fmt: skip
    for key, value in list(items):
        if isinstance(value, str):
            node[key] = substitute(value, parameters)
        else:
            _substitute_node(value, parameters)


def _round_trip() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _record_use(manifest: Path, info: PackInfo, settings: Mapping[str, str]) -> None:
    """Add (or refresh) `packs: - {name, version, with}` in the app manifest."""
    yaml = _round_trip()
    text = manifest.read_text(encoding="utf-8")
    data = yaml.load(text)
    if not isinstance(data, dict):
        return
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    use = CommentedMap(name=info.name, version=f"^{info.version}")
    if settings:
        use["with"] = CommentedMap(_given(info, settings).items())
    use.fa.set_flow_style()
    packs = data.get("packs")
    if not isinstance(packs, list):
        packs = data["packs"] = CommentedSeq()
    for index, item in enumerate(packs):
        if isinstance(item, dict) and item.get("name") == info.name:
            packs[index] = use
            break
    else:
        packs.append(use)
    out = io.StringIO()
    yaml.dump(data, out)
    manifest.write_text(out.getvalue(), encoding="utf-8")


def _given(info: PackInfo, settings: Mapping[str, str]) -> dict[str, Any]:
    values = resolve_parameters(info.parameters, settings)
    return {name: values[name] for name in sorted(settings)}
