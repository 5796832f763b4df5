"""Pass three, the linker: resolves every name a document uses, compiles
every CEL expression with the types in scope, checks workflow graphs, and
builds the frozen `AppModel`.

One module per model kind (`entity`, `form`, `workflow` ...), each with a
`check(ctx)` function; they only read the parsed documents and report into
the context, so their order does not matter except that record types are
built first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from types import MappingProxyType

from .._base import Document
from ..app import App, Pack
from ..appmodel import AppModel, content_hash
from ..diagnostics import Diagnostic, DiagnosticSink
from ..kinds import MANIFEST_KINDS
from ..loader import SourceFile
from ..policy import STANDARD_ROLES
from ..sources import MANIFEST_FILES
from . import (
    automation,
    calendar,
    dashboard,
    entity,
    form,
    integration,
    notification,
    policy,
    report,
    scenario,
    sla,
    workflow,
)
from .context import UNKNOWN_KIND, UNREADABLE, LinkContext, ParsedDocument
from .types import build_record_types

__all__ = ["UNKNOWN_KIND", "UNREADABLE", "LinkContext", "ParsedDocument", "link"]

_CHECKERS = (
    entity,
    form,
    workflow,
    policy,
    calendar,
    sla,
    automation,
    integration,
    notification,
    report,
    dashboard,
    scenario,
)


def link(
    parsed: list[ParsedDocument],
    files: Mapping[str, SourceFile],
    sink: DiagnosticSink,
    *,
    open_world: bool = False,
    complete: bool = True,
    broken: set[tuple[str, str]] | None = None,
) -> AppModel | None:
    """Check cross-references of `parsed`; return the AppModel when all is well.

    `broken` names documents that failed the earlier passes: references to
    them are not reported again, so one typo yields one error, not ten.
    """
    documents = _index(parsed, sink)
    ctx = LinkContext(documents, files, sink, open_world=open_world, broken=broken or set())
    manifest = _manifest(ctx, files)
    if isinstance(manifest, Pack):
        ctx.required_entities = {k: list(v) for k, v in manifest.requires.items()}
    ctx.roles = _roles(ctx)
    ctx.record_types.update(build_record_types(ctx))
    for checker in _CHECKERS:
        checker.check(ctx)
    if isinstance(manifest, App) and manifest.calendar:
        app_doc = next(iter(ctx.of_kind("App").values()))
        ctx.resolve(app_doc, "/calendar", "Calendar", manifest.calendar)
    if sink.has_errors or not complete or manifest is None:
        return None
    return AppModel(
        manifest=manifest,
        documents=MappingProxyType(
            {
                kind: MappingProxyType({name: d.model for name, d in docs.items()})
                for kind, docs in documents.items()
            }
        ),
        expressions=MappingProxyType(dict(ctx.expressions)),
        record_types=MappingProxyType(dict(ctx.record_types)),
        content_hash=content_hash({name: f.text for name, f in files.items()}),
    )


def _roles(ctx: LinkContext) -> set[str]:
    roles = set(STANDARD_ROLES)
    for doc in ctx.of_kind("Policy").values():
        roles.update(doc.model.roles)
    return roles


def _index(
    parsed: list[ParsedDocument], sink: DiagnosticSink
) -> dict[str, dict[str, ParsedDocument]]:
    documents: dict[str, dict[str, ParsedDocument]] = {}
    for doc in parsed:
        same_kind = documents.setdefault(doc.kind, {})
        first = same_kind.get(doc.name)
        if first is not None:
            sink.add(
                doc.source.diagnostic(
                    "/name",
                    "duplicate-name",
                    f"{doc.kind} `{doc.name}` is already defined in {first.source.file} "
                    f"(line {first.source.line})",
                    "give each document of a kind its own name",
                )
            )
            continue
        same_kind[doc.name] = doc
    return documents


def _manifest(ctx: LinkContext, files: Mapping[str, SourceFile]) -> App | Pack | None:
    manifests = [*ctx.of_kind("App").values(), *ctx.of_kind("Pack").values()]
    if len(manifests) > 1:
        for extra in manifests[1:]:
            ctx.error(
                extra,
                "/kind",
                "duplicate-manifest",
                f"a folder holds one app or pack; `{manifests[0].name}` is declared in "
                f"{manifests[0].source.file}",
            )
    if manifests:
        model: Document = manifests[0].model
        return model if isinstance(model, App | Pack) else None
    if not ctx.open_world and files and not _manifest_broken(ctx):
        first = sorted(files)[0]
        ctx.sink.add(
            Diagnostic(
                first,
                1,
                1,
                "missing-manifest",
                "this app has no `kind: App` document",
                "",
                "add an `app.yaml` with apiVersion, kind: App, name, version and title",
            )
        )
    return None


def _manifest_broken(ctx: LinkContext) -> bool:
    """The manifest is there but failed validation (or its file did not parse):
    its own errors say what is wrong, so it is not also reported missing."""
    unreadable = (
        PurePosixPath(name.replace("\\", "/")).name
        for kind, name in ctx.broken
        if kind == UNREADABLE
    )
    return ctx.any_broken(*MANIFEST_KINDS) or any(name in MANIFEST_FILES for name in unreadable)
