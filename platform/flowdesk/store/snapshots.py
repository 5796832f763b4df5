"""Deployed app versions: their snapshots, their order, loading them back, and the
records pinned to them.

Every deploy stores the app's source texts (`{file: text}`) in `fd_app_versions`,
so any version can be compiled again: the planner diffs against the deployed
model, not against whatever is on an analyst's disk, and records pinned to an
older workflow version can be served by that version's model. Version rows are
immutable; only the `active` flag moves (on deploy and rollback).

Records keep the workflow version they started on (`workflow_version`);
`migrate_instances` is the explicit step that moves them to another version.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, DateTime, Engine, column, func, select, table, update

from flowdesk.model.app import SEMVER_PATTERN
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_texts
from flowdesk.model.diagnostics import Diagnostic
from flowdesk.model.loader import SourceFile

from . import platform_tables as pt
from .tables import table_name

if TYPE_CHECKING:
    from .ops import Plan

__all__ = [
    "AUDIT_ENTITY",
    "DeployError",
    "SnapshotError",
    "VersionInfo",
    "active_row",
    "compile_snapshot",
    "declared_renames",
    "load_active",
    "load_version",
    "migrate_instances",
    "semver_key",
    "version_rows",
    "versions",
]

AUDIT_ENTITY = "@version"  # fd_audit.entity of deploy / rollback events (never an identifier)
_SEMVER = re.compile(SEMVER_PATTERN)
_CACHE_SIZE = 32
_cache: OrderedDict[str, AppModel] = OrderedDict()


class DeployError(Exception):
    """A deploy, rollback or instance migration was refused or failed; nothing changed."""

    def __init__(
        self,
        message: str,
        *,
        plan: Plan | None = None,
        diagnostics: list[Diagnostic] | None = None,
        files: Mapping[str, SourceFile] | None = None,
    ) -> None:
        super().__init__(message)
        self.plan = plan
        self.diagnostics = diagnostics or []
        self.files = dict(files or {})


class SnapshotError(Exception):
    """A stored version is missing or no longer compiles."""


def semver_key(version: str) -> tuple[Any, ...]:
    """Sort key giving Semantic Versioning 2.0 precedence.

    A pre-release sorts before its release (`1.0.0-rc.1 < 1.0.0`); numeric
    identifiers compare as numbers and before alphanumeric ones; build
    metadata (`+...`) is ignored, so `1.0.0+a` and `1.0.0+b` are equal.
    """
    match = _SEMVER.match(version)
    if match is None:
        raise ValueError(f"`{version}` is not a semantic version such as 1.4.0")
    major, minor, patch, pre = match.group(1), match.group(2), match.group(3), match.group(4)
    core = (int(major), int(minor), int(patch))
    if not pre:
        return (*core, (1,))
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre[1:].split(".")
    )
    return (*core, (0, identifiers))


def declared_renames(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, str]:
    """`{new name: old name}` for renames declared with `renamed_from` between two versions.

    Works on fields, line collections and workflow states alike. Renames the
    version being left declared count backwards, so rolling back a rename
    takes the data back to the old name instead of dropping it.
    """
    found: dict[str, str] = {}
    for name, spec in new.items():
        source = getattr(spec, "renamed_from", None)
        if source in old and source not in new and name not in old:
            found[name] = source
    for name, spec in old.items():
        source = getattr(spec, "renamed_from", None)
        if source in new and source not in old and name not in new and source not in found:
            found[source] = name
    return found


@dataclass(frozen=True)
class VersionInfo:
    """One deployed version of an app, as `flowdesk versions` lists it."""

    app: str
    version: str
    content_hash: str
    active: bool
    deployed_at: datetime
    deployed_by: str
    changes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "content_hash": self.content_hash,
            "active": self.active,
            "deployed_at": self.deployed_at.isoformat(),
            "deployed_by": self.deployed_by,
            "changes": self.changes,
        }


def version_rows(connection: Connection, app: str) -> list[Any]:
    """Every stored version row of `app`, oldest version first (semver order)."""
    rows = connection.execute(select(pt.app_versions).where(pt.app_versions.c.app == app)).all()
    return sorted(rows, key=lambda row: semver_key(row.version))


def active_row(connection: Connection, app: str) -> Any | None:
    return connection.execute(
        select(pt.app_versions).where(
            pt.app_versions.c.app == app, pt.app_versions.c.active.is_(True)
        )
    ).first()


def versions(engine: Engine, app: str) -> list[VersionInfo]:
    """The deployed versions of `app`, oldest first, with the active one marked."""
    with engine.connect() as connection:
        rows = version_rows(connection, app)
    return [
        VersionInfo(
            app=row.app,
            version=row.version,
            content_hash=row.content_hash,
            active=bool(row.active),
            deployed_at=row.deployed_at,
            deployed_by=row.deployed_by,
            changes=len((row.plan or {}).get("ops", [])) if isinstance(row.plan, dict) else 0,
        )
        for row in rows
    ]


def compile_snapshot(texts: Mapping[str, str], content_hash: str | None = None) -> AppModel:
    """Compile stored texts, once per content hash (snapshots never change)."""
    key = content_hash
    if key is not None and key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    result = compile_texts(texts)
    if result.app is None:
        first = next((d for d in result.diagnostics if d.is_error), None)
        where = f"{first.file}:{first.line}: {first.message}" if first else "unknown error"
        raise SnapshotError(f"a stored snapshot no longer compiles ({where})")
    _cache[result.app.content_hash] = result.app
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return result.app


def _load(row: Any | None, what: str) -> AppModel:
    if row is None:
        raise SnapshotError(what)
    return compile_snapshot(row.snapshot, row.content_hash)


def load_active(engine_or_connection: Engine | Connection, app: str) -> AppModel | None:
    """The model of the active version of `app`, or None before its first deploy."""
    with _connect(engine_or_connection) as connection:
        row = active_row(connection, app)
    return None if row is None else _load(row, "")


def load_version(engine_or_connection: Engine | Connection, app: str, version: str) -> AppModel:
    """The model of any deployed version, e.g. for records pinned to it."""
    with _connect(engine_or_connection) as connection:
        row = connection.execute(
            select(pt.app_versions).where(
                pt.app_versions.c.app == app, pt.app_versions.c.version == version
            )
        ).first()
    return _load(row, f"version {version} of `{app}` was never deployed")


class _Borrowed:
    """Context manager yielding a connection the caller already holds (left open)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def __enter__(self) -> Connection:
        return self.connection

    def __exit__(self, *_exc: object) -> None:
        return None


def _connect(engine_or_connection: Engine | Connection) -> Any:
    if isinstance(engine_or_connection, Connection):
        return _Borrowed(engine_or_connection)
    return engine_or_connection.connect()


# --- migrating instances between workflow versions -----------------------------------------


def migrate_instances(
    engine: Engine,
    app: str,
    from_version: str,
    to_version: str,
    state_map: Mapping[str, str],
    *,
    actor: str = "system",
) -> int:
    """Move records pinned to `from_version` onto `to_version`, remapping their states.

    States renamed with `renamed_from` in `to_version` map by default; every
    state still in use must land on a state of the new workflow, or nothing
    moves. One audit row per record, all in one transaction.
    """
    if from_version == to_version:
        raise DeployError("--from and --to are the same version")
    try:
        target = load_version(engine, app, to_version)
        source = _maybe_version(engine, app, from_version)
    except SnapshotError as error:
        raise DeployError(str(error)) from None
    known = {state for workflow in target.workflows.values() for state in workflow.states}
    unknown = sorted(f"{old}={new}" for old, new in state_map.items() if new not in known)
    if unknown:
        raise DeployError(f"--map {' '.join(unknown)}: no such state in version {to_version}")
    moved = 0
    with engine.begin() as connection:
        plans = [
            _state_plan(connection, target, source, e, from_version, state_map)
            for e in target.entities
            if target.workflow_for(e)
        ]
        errors = [error for _e, _m, error in plans if error]
        if errors:
            raise DeployError("; ".join(errors) + "; nothing was migrated")
        now = datetime.now(UTC)
        for entity, mapping, _error in plans:
            moved += _move(connection, app, entity, from_version, to_version, mapping, actor, now)
    return moved


def _maybe_version(engine: Engine, app: str, version: str) -> AppModel | None:
    """The model of `version` if it was deployed (records may name any version)."""
    with engine.connect() as connection:
        rows = version_rows(connection, app)
    row = next((r for r in rows if r.version == version), None)
    return None if row is None else compile_snapshot(row.snapshot, row.content_hash)


def _state_plan(
    connection: Connection,
    model: AppModel,
    source: AppModel | None,
    entity: str,
    from_version: str,
    state_map: Mapping[str, str],
) -> tuple[str, dict[str, str], str | None]:
    """The old -> new state of each state in use among `entity`'s pinned records."""
    workflow = model.workflow_for(entity)
    assert workflow is not None
    old = source.workflow_for(entity) if source else None
    if old is not None:
        renames = declared_renames(workflow.states, old.states)
    else:
        renames = {name: s.renamed_from for name, s in workflow.states.items() if s.renamed_from}
    defaults = {previous: name for name, previous in renames.items()}
    t = table(table_name(model.name, entity), column("state"), column("workflow_version"))
    used = connection.execute(
        select(t.c.state, func.count())
        .where(t.c.workflow_version == from_version)
        .group_by(t.c.state)
    ).all()
    mapping, missing = {}, []
    for state, count in used:
        new = state_map.get(state, defaults.get(state, state))
        if state is not None and new not in workflow.states:
            missing.append(
                f"{count} `{entity}` records are in state `{state}`, which "
                f"{model.version} does not have: add --map {state}=STATE"
            )
        mapping[state] = new
    return entity, mapping, "; ".join(missing) or None


def _move(
    connection: Connection,
    app: str,
    entity: str,
    from_version: str,
    to_version: str,
    mapping: Mapping[str | None, str | None],
    actor: str,
    now: datetime,
) -> int:
    t = table(
        table_name(app, entity),
        column("id"),
        column("state"),
        column("workflow_version"),
        column("row_version"),
        column("updated_at", DateTime(timezone=True)),
    )
    records = connection.execute(
        select(t.c.id, t.c.state).where(t.c.workflow_version == from_version).order_by(t.c.id)
    ).all()
    for old_state, new_state in mapping.items():
        condition = t.c.state.is_(None) if old_state is None else t.c.state == old_state
        connection.execute(
            update(t)
            .where(t.c.workflow_version == from_version, condition)
            .values(
                state=new_state,
                workflow_version=to_version,
                row_version=t.c.row_version + 1,
                updated_at=now,
            )
        )
    rows = [
        {
            "app": app,
            "entity": entity,
            "record_id": record.id,
            "action": "migrate",
            "actor": actor,
            "at": now,
            "comment": None,
            "changes": {
                "state": {"old": record.state, "new": mapping.get(record.state, record.state)},
                "workflow_version": {"old": from_version, "new": to_version},
            },
        }
        for record in records
    ]
    if rows:
        connection.execute(pt.audit.insert(), rows)
    return len(rows)
