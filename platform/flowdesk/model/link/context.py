"""Shared state of one linking run: the documents by kind and name, the
diagnostics, and the helpers every per-kind checker uses to resolve names
and compile CEL with located errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowdesk.expressions import (
    BOOL,
    CelType,
    CompiledExpression,
    ExpressionError,
    compile_expression,
)

from .._base import Document
from ..diagnostics import Diagnostic, DiagnosticSink, Severity, did_you_mean
from ..loader import SourceDocument, SourceFile
from ..positions import ScalarText

__all__ = ["UNKNOWN_KIND", "UNREADABLE", "LinkContext", "ParsedDocument", "text_offset"]

# Kinds in `LinkContext.broken` that stand for more than one kind: a file that did
# not parse (its name is the file's) may define anything, and a document whose
# `kind:` is misspelt may be meant as any kind.
UNREADABLE = "*"
UNKNOWN_KIND = "?"


@dataclass(frozen=True)
class ParsedDocument:
    model: Document
    source: SourceDocument

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def name(self) -> str:
        return self.model.name


@dataclass
class LinkContext:
    documents: dict[str, dict[str, ParsedDocument]]
    files: Mapping[str, SourceFile]
    sink: DiagnosticSink
    open_world: bool = False
    expressions: dict[tuple[str, str, str], CompiledExpression] = field(default_factory=dict)
    record_types: dict[str, CelType] = field(default_factory=dict)
    required_entities: dict[str, list[str]] = field(default_factory=dict)
    roles: set[str] = field(default_factory=set)
    broken: set[tuple[str, str]] = field(default_factory=set)

    # -- reporting -----------------------------------------------------------------------
    def error(
        self,
        doc: ParsedDocument,
        pointer: str,
        code: str,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
    ) -> None:
        self.sink.add(doc.source.diagnostic(pointer, code, message, hint, key=key))

    def warn(
        self, doc: ParsedDocument, pointer: str, code: str, message: str, hint: str | None = None
    ) -> None:
        self.sink.add(
            doc.source.diagnostic(pointer, code, message, hint, severity=Severity.WARNING)
        )

    @property
    def _unreadable_files(self) -> bool:
        """A file that did not parse may define anything: names are not reported missing."""
        return any(kind == UNREADABLE for kind, _ in self.broken)

    def is_broken(self, kind: str, name: str) -> bool:
        """`name` may be a document of `kind` that failed validation (its errors say why)."""
        return (kind, name) in self.broken or (UNKNOWN_KIND, name) in self.broken

    def any_broken(self, *kinds: str) -> bool:
        """Some document of one of `kinds` (or of a misspelt kind) failed validation."""
        return any(kind in (*kinds, UNKNOWN_KIND) for kind, _ in self.broken)

    # -- lookups -------------------------------------------------------------------------
    def of_kind(self, kind: str) -> dict[str, ParsedDocument]:
        return self.documents.get(kind, {})

    def model(self, kind: str, name: str) -> Any:
        found = self.of_kind(kind).get(name)
        return found.model if found else None

    def resolve(
        self,
        doc: ParsedDocument,
        pointer: str,
        kind: str,
        name: str,
        *,
        extra: tuple[str, ...] = (),
    ) -> Any:
        """The document `name` of `kind`, or None after reporting `unknown-<kind>`."""
        if name in extra or self.is_broken(kind, name) or self._unreadable_files:
            return None
        found = self.of_kind(kind).get(name)
        if found is not None:
            return found.model
        if self.open_world and not (kind == "Entity" and name in self.required_entities):
            return None
        if kind == "Entity" and name in self.required_entities:
            return None  # a pack names what it expects from the app
        noun = _NOUNS.get(kind, kind.lower())
        candidates = [*self.of_kind(kind), *extra]
        hint = did_you_mean(name, candidates) or (
            f"defined {noun}s: " + ", ".join(f"`{c}`" for c in sorted(candidates))
            if candidates
            else f"no {noun} is defined in this app"
        )
        self.error(
            doc, pointer, f"unknown-{noun.replace(' ', '-')}", f"unknown {noun} `{name}`", hint
        )
        return None

    # -- expressions ---------------------------------------------------------------------
    def compile(
        self,
        doc: ParsedDocument,
        pointer: str,
        source: str,
        scope: Mapping[str, CelType],
        expect: CelType | None = BOOL,
    ) -> CompiledExpression | None:
        """Compile CEL written at `pointer`, locating its errors inside the YAML file.

        A value written as `= expr` (see `is_expression`) is compiled without
        its `=`, and positions are shifted back to where the author wrote them.
        """
        text, shift = source, 0
        if source.startswith("="):
            text = source[1:].lstrip()
            shift = len(source) - len(text)
        try:
            compiled = compile_expression(text, scope, expect=expect)
        except ExpressionError as error:
            for issue in error.issues:
                offset = shift + text_offset(text, issue.line, issue.column)
                line, column = self.value_position(doc, pointer, source, offset)
                self.sink.add(
                    Diagnostic(
                        doc.source.file,
                        line,
                        column,
                        issue.code,
                        issue.message,
                        pointer,
                        issue.hint,
                    )
                )
            return None
        self.expressions[(doc.kind, doc.name, pointer)] = compiled
        return compiled

    def value_position(
        self, doc: ParsedDocument, pointer: str, value: str, offset: int
    ) -> tuple[int, int]:
        """File position of `value[offset]`, `value` being the text written at `pointer`:
        through quotes, escapes, block scalar headers and folded lines."""
        start = doc.source.position(pointer)
        file = self.files.get(doc.source.file)
        if file is None:
            return start
        return ScalarText(file.text, start, value).position(offset)


def text_offset(text: str, line: int, column: int) -> int:
    """Offset in `text` of a 1-based (line, column), counting lines by line feeds."""
    starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]
    return starts[min(max(line, 1), len(starts)) - 1] + max(column, 1) - 1


_NOUNS = {
    "Entity": "entity",
    "Form": "form",
    "Workflow": "workflow",
    "Policy": "policy",
    "Calendar": "calendar",
    "SLA": "sla",
    "Automation": "automation",
    "Integration": "integration",
    "Notification": "notification",
    "Report": "report",
    "Dashboard": "dashboard",
}
