"""Rendering diagnostics for people (text with the source line and a caret),
for programs (JSON) and for CI systems (GitHub annotations)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from flowdesk.model.diagnostics import Diagnostic
from flowdesk.model.loader import SourceFile

__all__ = ["render_github", "render_json", "render_text", "summary"]


def render_text(diagnostics: Iterable[Diagnostic], files: Mapping[str, SourceFile]) -> str:
    blocks = []
    for d in diagnostics:
        head = f"{d.file}:{d.line}:{d.column}: {d.severity.value}[{d.code}] {d.message}"
        lines = [head]
        source = files.get(d.file)
        text = source.line(d.line) if source else ""
        if text:
            gutter = f"{d.line:>5} | "
            lines.append(gutter + text)
            lines.append(" " * (len(gutter) + _width(text[: d.column - 1])) + "^")
        if d.pointer:
            lines.append(f"      at {d.pointer}")
        if d.hint:
            lines.append(f"      hint: {d.hint}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _width(prefix: str) -> int:
    """Display width, so the caret lines up under wide (CJK) characters too."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in prefix)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.as_dict() for d in diagnostics], ensure_ascii=False, indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: Iterable[Diagnostic]) -> str:
    """Workflow commands GitHub Actions turns into inline annotations."""
    lines = []
    for d in diagnostics:
        message = d.message + (f" ({d.hint})" if d.hint else "")
        lines.append(
            f"::{d.severity.value} file={_escape_property(d.file)},line={d.line},col={d.column},"
            f"title={_escape_property(d.code)}::{_escape_data(message)}"
        )
    return "\n".join(lines)


def summary(diagnostics: list[Diagnostic], apps: int) -> str:
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    noun = "app" if apps == 1 else "apps"
    if not diagnostics:
        return f"{apps} {noun} valid"
    return (
        f"{apps} {noun} checked: {errors} error{'s' * (errors != 1)}, "
        f"{warnings} warning{'s' * (warnings != 1)}"
    )
