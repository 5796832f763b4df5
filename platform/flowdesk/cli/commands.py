"""One plain function per CLI verb, returning a report object; the CLI parses
arguments and prints, tests and the API call these directly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowdesk.expressions import (
    DYN,
    ExpressionError,
    ExpressionEvalError,
    ExpressionIssue,
    compile_expression,
)
from flowdesk.model import schema
from flowdesk.model.compiler import CompileResult, compile_source
from flowdesk.model.diagnostics import Diagnostic
from flowdesk.model.loader import SourceFile
from flowdesk.model.sources import discover

from .scaffold import scaffold_app

__all__ = [
    "ExpressionReport",
    "ValidationReport",
    "check_schemas",
    "db_upgrade",
    "eval_expression",
    "export_schemas",
    "new_app",
    "validate",
]


@dataclass
class ValidationReport:
    results: list[CompileResult] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for r in self.results for d in r.diagnostics]

    @property
    def files(self) -> dict[str, SourceFile]:
        return {name: f for r in self.results for name, f in r.files.items()}

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def validate(paths: list[Path]) -> ValidationReport:
    """Validate apps, folders of apps, packs, or single files."""
    return ValidationReport([compile_source(source) for source in discover(paths)])


def export_schemas(folder: Path) -> list[Path]:
    """Regenerate `schemas/` from the pydantic models."""
    return schema.export_schemas(folder)


def check_schemas(folder: Path) -> list[str]:
    """Schema files that differ from what the models generate (empty when current)."""
    return schema.stale_schemas(folder)


def write_docs(folder: Path) -> list[Path]:
    """Regenerate the model reference pages from the schemas."""
    from flowdesk.model.reference import write_reference

    return write_reference(folder)


def check_docs(folder: Path) -> list[str]:
    from flowdesk.model.reference import stale_reference

    return stale_reference(folder)


@dataclass
class ExpressionReport:
    value: Any = None
    issues: list[ExpressionIssue] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.issues and self.error is None


def eval_expression(source: str, data: dict[str, Any]) -> ExpressionReport:
    """Compile `source` with the top-level keys of `data` in scope, then evaluate it."""
    scope = {name: DYN for name in data}
    try:
        compiled = compile_expression(source, scope)
    except ExpressionError as error:
        return ExpressionReport(issues=list(error.issues))
    try:
        return ExpressionReport(value=compiled.evaluate(data))
    except ExpressionEvalError as error:
        return ExpressionReport(error=str(error))


def db_upgrade(database_url: str) -> tuple[str | None, str | None]:
    """Migrate the platform tables to the newest revision; returns (before, after)."""
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import current_revision, upgrade

    engine = make_engine(database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    finally:
        engine.dispose()


def new_app(name: str, parent: Path) -> list[Path]:
    return scaffold_app(name, parent)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
