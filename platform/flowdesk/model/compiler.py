"""The compile pipeline: text in, a frozen `AppModel` or located errors out.

    load (YAML + positions) -> header -> JSON Schema -> pydantic -> link

Pure: no database, network or global state, so validate, plan, deploy and
serve all gate on exactly the same function and nothing can skip it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ._base import Document
from .appmodel import AppModel
from .diagnostics import Diagnostic, DiagnosticSink
from .kinds import KINDS
from .link import UNKNOWN_KIND, UNREADABLE, ParsedDocument, link
from .loader import SourceDocument, SourceFile, load_text
from .sources import AppSource
from .structure import check_header, check_structure, parse_document

__all__ = ["CompileResult", "compile_source", "compile_texts"]

# Problems after which a file's documents are unknown (so may define anything).
_UNREADABLE_CODES = frozenset({"yaml-syntax", "yaml-too-large", "file-encoding", "file-unreadable"})


@dataclass
class CompileResult:
    app: AppModel | None
    diagnostics: list[Diagnostic]
    files: dict[str, SourceFile] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def compile_texts(
    texts: Mapping[str, str], *, open_world: bool = False, unreadable: Iterable[str] = ()
) -> CompileResult:
    """Compile the documents of one app given as {file name: YAML text}.

    `open_world` is for loose files outside any app: references to documents
    that are not among them are not errors. `unreadable` names files of the app
    that could not be read (already reported): they may define anything.
    """
    sink = DiagnosticSink()
    files = {name: SourceFile(name, text) for name, text in texts.items()}
    parsed: list[ParsedDocument] = []
    broken: set[tuple[str, str]] = {(UNREADABLE, name) for name in unreadable}
    for name, text in texts.items():
        documents, problems = load_text(text, name)
        sink.extend(problems)
        if any(p.code in _UNREADABLE_CODES for p in problems):
            broken.add((UNREADABLE, name))  # its documents are unknown: don't report them missing
        for doc in documents:
            model = _validate_document(doc, sink)
            if model is not None:
                parsed.append(ParsedDocument(model, doc))
            else:
                broken.update(_broken_name(doc))
    structurally_ok = not sink.has_errors
    app = link(parsed, files, sink, open_world=open_world, complete=structurally_ok, broken=broken)
    return CompileResult(app if not sink.has_errors else None, sink.sorted(), files)


def _validate_document(doc: SourceDocument, sink: DiagnosticSink) -> Document | None:
    """Passes one and two for one document.

    pydantic (strict, so `"yes"` is not a boolean) runs first because it is
    fast; the JSON Schema pass, which gives the better messages, runs only for
    documents pydantic rejects. Both derive from the same models, so a document
    pydantic accepts also satisfies its schema (checked by a test).
    """
    header = check_header(doc)
    sink.extend(header)
    if any(d.code in ("not-a-mapping", "missing-kind", "unknown-kind") for d in header):
        return None
    if doc.complex_keys:
        return None  # its data holds placeholder keys; `yaml-complex-key` says why
    model, problems = parse_document(doc)
    if not problems and not header:
        return model
    structure = check_structure(doc)
    if structure:
        sink.extend(structure)
        return None
    sink.extend(problems)
    return model


def _broken_name(doc: SourceDocument) -> list[tuple[str, str]]:
    """(kind, name) of a document that failed passes one or two, so the linker is quiet
    about what it would have defined. The kind is `?` when it is the typo itself
    (`kind: Entiy`): the document may be meant as any kind; the name is empty when
    missing, which still tells that e.g. the manifest is there but broken."""
    data = doc.data
    if not isinstance(data, dict):
        return []
    kind, name = data.get("kind"), data.get("name")
    known = isinstance(kind, str) and kind in KINDS
    return [(kind if known else UNKNOWN_KIND, name if isinstance(name, str) else "")]


def compile_source(source: AppSource) -> CompileResult:
    """Compile an app read from disk, keeping only the diagnostics asked for."""
    unreadable = [d.file for d in source.diagnostics if d.code in _UNREADABLE_CODES]
    result = compile_texts(source.texts, open_world=source.root is None, unreadable=unreadable)
    diagnostics = sorted([*source.diagnostics, *result.diagnostics])
    if source.only is not None:
        diagnostics = [d for d in diagnostics if d.file in source.only]
    return CompileResult(result.app, diagnostics, result.files)
