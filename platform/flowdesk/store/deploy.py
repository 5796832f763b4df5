"""Versioned deploys: apply a plan, record the version, roll back, migrate instances.

`deploy()` compiles the app (nothing that fails validation reaches the
database), enforces the version rules, plans against the deployed snapshot,
refuses what needs consent, then applies the plan and records the version in
one transaction:

* PostgreSQL runs DDL inside transactions, so a deploy that fails half way
  (say, a unique index over duplicated values after a column was added)
  leaves the database exactly as it was.
* SQLite runs DDL inside transactions too, including Alembic's batch
  "move and copy" of a table; foreign keys are switched off for the
  connection first (a table copy would otherwise cascade deletes into its
  children) and checked with `PRAGMA foreign_key_check` before commit. A
  failed deploy is rolled back the same way; on top of that the file is
  copied first with SQLite's online backup API, to `<db>.bak-<version>-<time>`.

Version rows are immutable. A rollback does not write a new version: it moves
the `active` pointer to the earlier row, after applying the plan from the
active model to that row's model under the same safety rules, and the event
(who, when, which plan) goes to `fd_audit` like every deploy.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    column,
    func,
    table,
    text,
    update,
)

from flowdesk.model._base import parse_duration
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_texts

from . import ops as p
from . import platform_tables as pt
from .plan import plan as make_plan
from .snapshots import (
    AUDIT_ENTITY,
    DeployError,
    SnapshotError,
    VersionInfo,
    compile_snapshot,
    load_active,
    load_version,
    migrate_instances,
    semver_key,
    version_rows,
    versions,
)
from .tables import build_tables, table_name

__all__ = [
    "DeployError",
    "DeployResult",
    "VersionInfo",
    "deploy",
    "execute_plan",
    "load_active",
    "load_version",
    "migrate_instances",
    "rollback",
    "versions",
]


@dataclass(frozen=True)
class DeployResult:
    """What a deploy or rollback did. `status`: deployed, rolled_back, unchanged or planned."""

    app: str
    version: str
    status: str
    previous: str | None = None
    plan: p.Plan | None = None
    backup: Path | None = None  # SQLite: the copy taken before applying


def deploy(
    engine: Engine,
    source_texts: Mapping[str, str],
    *,
    actor: str,
    allow_destructive: bool = False,
    dry_run: bool = False,
) -> DeployResult:
    """Deploy an app given as `{file: YAML text}`; identical content redeploys as a no-op."""
    result = compile_texts(source_texts)
    if result.app is None:
        errors = [d for d in result.diagnostics if d.is_error]
        raise DeployError(
            f"the app does not validate ({len(errors)} error{'s' * (len(errors) != 1)}); "
            "nothing was deployed",
            diagnostics=result.diagnostics,
            files=result.files,
        )
    if result.app.is_pack:
        raise DeployError("a pack is not deployed on its own: deploy the app that uses it")
    target = _Target(result.app, "deploy", texts=dict(source_texts))
    return _run(engine, target, actor=actor, allow_destructive=allow_destructive, dry_run=dry_run)


def rollback(
    engine: Engine,
    app: str,
    version: str,
    *,
    actor: str,
    allow_destructive: bool = False,
    dry_run: bool = False,
) -> DeployResult:
    """Make an earlier (or any deployed) version active again, through plan and safety rules."""
    with engine.connect() as connection:
        rows = version_rows(connection, app)
    row = next((r for r in rows if r.version == version), None)
    if row is None:
        known = ", ".join(r.version for r in rows) or "none"
        raise DeployError(f"version {version} of `{app}` was never deployed (deployed: {known})")
    try:
        model = compile_snapshot(row.snapshot, row.content_hash)
    except SnapshotError as error:
        raise DeployError(str(error)) from None
    target = _Target(model, "rollback", row_id=row.id)
    return _run(engine, target, actor=actor, allow_destructive=allow_destructive, dry_run=dry_run)


@dataclass(frozen=True)
class _Target:
    """The version to make active: new texts (deploy) or an existing row (rollback)."""

    app: AppModel
    action: str
    texts: dict[str, str] | None = None
    row_id: int | None = None


def _run(
    engine: Engine, target: _Target, *, actor: str, allow_destructive: bool, dry_run: bool
) -> DeployResult:
    # Plan and refuse on a plain connection first, so a refused deploy leaves no
    # backup file behind; then again inside the write transaction, where the
    # counts cannot change any more under the plan (SQLite holds the write
    # lock; PostgreSQL holds an advisory lock per app).
    with engine.connect() as connection:
        previous, unchanged = _check_version(connection, target)
        if unchanged:
            return DeployResult(target.app.name, target.app.version, "unchanged", previous)
        plan_ = _plan(connection, target, allow_destructive)
    if dry_run:
        return DeployResult(target.app.name, target.app.version, "planned", previous, plan_)
    backup = _backup(engine, target.app) if engine.dialect.name == "sqlite" else None
    try:
        with _transaction(engine, target.app.name) as connection:
            previous, unchanged = _check_version(connection, target)
            if not unchanged:  # else a concurrent deploy did the same meanwhile
                plan_ = _plan(connection, target, allow_destructive)
                current = load_active(connection, target.app.name)
                execute_plan(connection, plan_, target.app, current)
                _record(connection, target, plan_, previous, actor)
    except DeployError as error:
        if backup is not None:
            error.args = (f"{error.args[0]} (a backup from before the deploy is at {backup})",)
        raise
    status = "deployed" if target.action == "deploy" else "rolled_back"
    if unchanged:
        status = "unchanged"
    return DeployResult(target.app.name, target.app.version, status, previous, plan_, backup)


def _check_version(connection: Connection, target: _Target) -> tuple[str | None, bool]:
    """(active version, whether the target is already it); refuses what breaks the rules."""
    app = target.app
    rows = version_rows(connection, app.name)
    active = next((r for r in rows if r.active), None)
    previous = active.version if active else None
    if target.action == "rollback":
        return previous, active is not None and active.id == target.row_id
    same = next((r for r in rows if r.version == app.version), None)
    if same is not None:
        if same.content_hash != app.content_hash:
            raise DeployError(
                f"version {app.version} of `{app.name}` is already deployed with different "
                "content: give the changed app a new version number"
            )
        if same.active:
            return previous, True
        raise DeployError(
            f"version {app.version} of `{app.name}` is deployed but not active ({previous} is): "
            f"run `flowdesk rollback {app.name} {app.version}` to activate it again"
        )
    if rows:
        highest = max(rows, key=lambda r: semver_key(r.version))
        if semver_key(app.version) <= semver_key(highest.version):
            raise DeployError(
                f"version {app.version} of `{app.name}` does not increase: {highest.version} "
                "is already deployed; versions only go up (roll back with `flowdesk rollback`)"
            )
    return previous, False


def _plan(connection: Connection, target: _Target, allow_destructive: bool) -> p.Plan:
    try:
        current = load_active(connection, target.app.name)
    except SnapshotError as error:
        raise DeployError(f"the active version cannot be loaded: {error}") from None
    plan_ = make_plan(connection, target.app, current)
    if plan_.problems:
        raise DeployError("the plan cannot be applied: " + "; ".join(plan_.problems), plan=plan_)
    if plan_.destructive and not allow_destructive:
        changes = "; ".join(op.describe() for op in plan_.destructive)
        raise DeployError(
            f"refusing {len(plan_.destructive)} destructive change"
            f"{'s' * (len(plan_.destructive) != 1)} without --allow-destructive: {changes}",
            plan=plan_,
        )
    return plan_


@contextmanager
def _transaction(engine: Engine, app: str) -> Iterator[Connection]:
    with engine.connect() as connection:
        if engine.dialect.name != "sqlite":
            with connection.begin():
                key = zlib.crc32(f"flowdesk-deploy:{app}".encode())
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                connection.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
                yield connection
            return
        # PRAGMA foreign_keys is ignored inside a transaction: switch it first.
        raw = connection.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                yield connection
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    tables = sorted({row[0] for row in broken})
                    raise DeployError(
                        f"the migration would break {len(broken)} references (in {tables}); "
                        "nothing was changed"
                    )
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def _backup(engine: Engine, app: AppModel) -> Path | None:
    """Copy the SQLite file with the online backup API (consistent, WAL included)."""
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = Path(f"{database}.bak-{app.version}-{stamp}")
    raw = engine.raw_connection()
    try:
        copy = sqlite3.connect(target)
        try:
            raw.driver_connection.backup(copy)  # type: ignore[union-attr]
        finally:
            copy.close()
    finally:
        raw.close()
    return target


def _record(
    connection: Connection, target: _Target, plan_: p.Plan, previous: str | None, actor: str
) -> None:
    now = datetime.now(UTC)
    versions_ = pt.app_versions
    connection.execute(
        update(versions_)
        .where(versions_.c.app == target.app.name, versions_.c.active.is_(True))
        .values(active=False)
    )
    if target.texts is not None:
        result = connection.execute(
            versions_.insert().values(
                app=target.app.name,
                version=target.app.version,
                content_hash=target.app.content_hash,
                snapshot=target.texts,
                plan=plan_.as_dict(),
                active=True,
                deployed_at=now,
                deployed_by=actor,
            )
        )
        row_id = result.inserted_primary_key[0]  # type: ignore[index]
    else:
        row_id = target.row_id
        connection.execute(update(versions_).where(versions_.c.id == row_id).values(active=True))
    connection.execute(
        pt.audit.insert().values(
            app=target.app.name,
            entity=AUDIT_ENTITY,
            record_id=row_id,
            action=target.action,
            actor=actor,
            at=now,
            changes={
                "version": {"old": previous, "new": target.app.version},
                "plan": [op.as_dict() for op in plan_.ops],
            },
            comment=p.render_text(plan_),
        )
    )


# --- executing ops: one function per op type -----------------------------------------------


@dataclass
class _Runner:
    connection: Connection
    operations: Operations
    new: AppModel
    old: AppModel | None
    new_tables: dict[str, Table]
    plan: p.Plan
    created: set[str] = field(default_factory=set)

    @property
    def sqlite(self) -> bool:
        return self.connection.dialect.name == "sqlite"

    def batch(self, name: str, *, recreate: str = "auto") -> Any:
        """ALTERs on PostgreSQL; on SQLite, a table copy when SQLite cannot ALTER."""
        return self.operations.batch_alter_table(name, recreate=recreate)


def execute_plan(
    connection: Connection, plan_: p.Plan, new: AppModel, old: AppModel | None
) -> None:
    """Apply every op of `plan_` on `connection` (inside the caller's transaction)."""
    tables = {t.name: t for et in build_tables(new).values() for t in et.all}
    operations = Operations(MigrationContext.configure(connection))
    runner = _Runner(connection, operations, new, old, tables, plan_)
    for number, op in enumerate(plan_.ops, 1):
        try:
            _EXECUTE.get(type(op), _nothing)(runner, op)
        except Exception as error:  # the database's or Alembic's refusal, named in the message
            raise DeployError(
                f"step {number} of {len(plan_.ops)} failed ({op.describe()}): {_cause(error)}; "
                "the transaction was rolled back and the database is as it was",
                plan=plan_,
            ) from None


def _cause(error: Exception) -> str:
    original = getattr(error, "orig", None) or error
    lines = [" ".join(line.split()) for line in str(original).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return " ".join([lines[0], *(line for line in lines[1:] if line.startswith("DETAIL"))])


def _nothing(_runner: _Runner, _op: p.Op) -> None:
    """Reports (enum values, states, pinned records) change no schema."""


def _create_table(r: _Runner, op: p.CreateTable) -> None:
    """The first CreateTable creates every new table of the plan at once: new entities
    may refer to each other in a cycle, which only `create_all` resolves (foreign keys
    added by ALTER afterwards on PostgreSQL, inline on SQLite)."""
    if op.table in r.created:
        return
    tables = [r.new_tables[o.table] for o in r.plan.ops if isinstance(o, p.CreateTable)]
    tables[0].metadata.create_all(r.connection, tables=tables, checkfirst=False)
    r.created.update(t.name for t in tables)


def _drop_table(r: _Runner, op: p.DropTable) -> None:
    for name in r.old.entities if r.old else ():
        if table_name(r.old.name, name) == op.table:  # type: ignore[union-attr]
            drop = _search_function("drop_search_index")
            if drop is not None:
                drop(r.connection, r.old, name)
    if r.sqlite:
        r.operations.drop_table(op.table)
    else:  # CASCADE: foreign keys between dropped tables may form a cycle
        r.connection.exec_driver_sql(f'DROP TABLE "{op.table}" CASCADE')


def _rename_table(r: _Runner, op: p.RenameTable) -> None:
    r.operations.rename_table(op.table, op.new_name)


def _rename_column(r: _Runner, op: p.RenameColumn) -> None:
    with r.batch(op.table) as batch:
        batch.alter_column(op.column, new_column_name=op.new_name)


def _drop_index(r: _Runner, op: p.DropIndex) -> None:
    r.operations.drop_index(op.name, table_name=op.table)


def _drop_unique(r: _Runner, op: p.DropUnique) -> None:
    with r.batch(op.table) as batch:
        batch.drop_constraint(op.name, type_="unique")


def _add_column(r: _Runner, op: p.AddColumn) -> None:
    model = r.new_tables[op.table].c[op.column]
    keys = [
        ForeignKey(fk.target_fullname, ondelete=fk.ondelete, name=fk.constraint.name)  # type: ignore[union-attr]
        for fk in model.foreign_keys
    ]
    # SQLite's ALTER TABLE cannot add a foreign key constraint: copy the table then.
    recreate = "always" if keys and r.sqlite else "auto"
    with r.batch(op.table, recreate=recreate) as batch:
        batch.add_column(Column(op.column, model.type, *keys, nullable=True))


def _alter_type(r: _Runner, op: p.AlterColumnType) -> None:
    new_type = r.new_tables[op.table].c[op.column].type
    length = getattr(new_type, "length", None)
    if op.change == "narrow" and isinstance(new_type, String) and length:
        target = table(op.table, column(op.column))
        r.connection.execute(
            update(target)
            .where(func.length(target.c[op.column]) > length)
            .values({op.column: func.substr(target.c[op.column], 1, length)})
        )
    using = None
    if not r.sqlite and op.change != "widen":
        compiled = new_type.compile(dialect=r.connection.dialect)
        using = f'"{op.column}"::{compiled}'
    with r.batch(op.table) as batch:
        batch.alter_column(op.column, type_=new_type, postgresql_using=using)


def _drop_not_null(r: _Runner, op: p.DropNotNull) -> None:
    existing = r.new_tables[op.table].c[op.column].type
    with r.batch(op.table) as batch:
        batch.alter_column(op.column, nullable=True, existing_type=existing)


def _set_not_null(r: _Runner, op: p.SetNotNull) -> None:
    existing = r.new_tables[op.table].c[op.column].type
    if op.has_default:
        target = table(op.table, column(op.column, existing))
        r.connection.execute(
            update(target)
            .where(target.c[op.column].is_(None))
            .values({op.column: _backfill_value(existing, op.default)})
        )
    with r.batch(op.table) as batch:
        batch.alter_column(op.column, nullable=False, existing_type=existing)


def _backfill_value(type_: Any, default: Any) -> Any:
    """A field's default as a value of its column (`today`, `now` and durations resolved)."""
    if isinstance(type_, DateTime):
        if default == "now":
            return datetime.now(UTC)
        return datetime.fromisoformat(str(default).replace("Z", "+00:00"))
    if isinstance(type_, Date):
        return date.today() if default == "today" else date.fromisoformat(str(default))
    if isinstance(type_, Integer) and isinstance(default, str):
        return int(parse_duration(default).total_seconds())
    if isinstance(type_, Numeric):
        return Decimal(str(default))
    if isinstance(type_, JSON) and isinstance(default, str):
        return [default]  # a multiple enum's default value
    return default


def _create_index(r: _Runner, op: p.CreateIndex) -> None:
    r.operations.create_index(op.name, op.table, list(op.columns), unique=op.unique)


def _add_unique(r: _Runner, op: p.AddUnique) -> None:
    with r.batch(op.table) as batch:
        batch.create_unique_constraint(op.name, list(op.columns))


def _drop_column(r: _Runner, op: p.DropColumn) -> None:
    with r.batch(op.table) as batch:
        batch.drop_column(op.column)


def _search_index(r: _Runner, op: p.CreateSearchIndex) -> None:
    create = _search_function("create_search_index")
    if create is not None:
        create(r.connection, r.new, op.entity)


def _search_function(name: str) -> Callable[..., None] | None:
    """Full-text objects belong to the records service's search module, when present."""
    try:
        from . import search
    except ImportError:
        return None
    return getattr(search, name, None)


_EXECUTE: dict[type[p.Op], Callable[[_Runner, Any], None]] = {
    p.CreateTable: _create_table,
    p.DropTable: _drop_table,
    p.RenameTable: _rename_table,
    p.RenameColumn: _rename_column,
    p.DropIndex: _drop_index,
    p.DropUnique: _drop_unique,
    p.AddColumn: _add_column,
    p.AlterColumnType: _alter_type,
    p.DropNotNull: _drop_not_null,
    p.SetNotNull: _set_not_null,
    p.CreateIndex: _create_index,
    p.AddUnique: _add_unique,
    p.DropColumn: _drop_column,
    p.CreateSearchIndex: _search_index,
}
