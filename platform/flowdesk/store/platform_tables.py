"""The platform's own tables (users, org chart, deployed app versions, audit,
number sequences, jobs, attachments), migrated by Alembic.

Prefixed `fd_` so they never collide with app tables, which are named
`<app>__<entity>`. This metadata is what the Alembic revisions in
`migrations/versions/` must produce; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "ID",
    "JOBS_READY",
    "app_versions",
    "attachments",
    "audit",
    "departments",
    "jobs",
    "metadata",
    "positions",
    "sequences",
    "user_roles",
    "users",
]

# SQLite only auto-increments an `INTEGER PRIMARY KEY` (the rowid alias).
ID = BigInteger().with_variant(Integer, "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

JOBS_READY = "status IN ('pending', 'retry')"
"""The predicate of the partial index `ix_fd_jobs_ready`: queries that should use it
repeat it literally (a bound parameter would not prove that the index applies)."""


def _timestamps() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    ]


departments = Table(
    "fd_departments",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", BigInteger, ForeignKey("fd_departments.id", ondelete="RESTRICT")),
    Column("head_id", BigInteger, ForeignKey("fd_users.id", ondelete="SET NULL", use_alter=True)),
    Column("region", String(64)),
    Column("active", Boolean, nullable=False, default=True),
    *_timestamps(),
)

positions = Table(
    "fd_positions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
)

users = Table(
    "fd_users",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("username", String(120), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("email", String(255), unique=True),
    Column("phone", String(64)),
    Column("employee_id", String(64), unique=True),
    Column("department_id", BigInteger, ForeignKey("fd_departments.id", ondelete="SET NULL")),
    Column("position_id", BigInteger, ForeignKey("fd_positions.id", ondelete="SET NULL")),
    Column("manager_id", BigInteger, ForeignKey("fd_users.id", ondelete="SET NULL")),
    Column("region", String(64)),
    Column("skills", JSON),
    Column("locale", String(8)),
    Column("timezone", String(64)),
    Column("password_hash", String(255)),
    Column("active", Boolean, nullable=False, default=True),
    *_timestamps(),
)

user_roles = Table(
    "fd_user_roles",
    metadata,
    Column("user_id", BigInteger, ForeignKey("fd_users.id", ondelete="CASCADE"), nullable=False),
    Column("app", String(64), nullable=False),
    Column("role", String(64), nullable=False),
    PrimaryKeyConstraint("user_id", "app", "role"),
)

app_versions = Table(
    "fd_app_versions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("snapshot", JSON, nullable=False),
    Column("plan", JSON),
    Column("active", Boolean, nullable=False, default=False),
    Column("deployed_at", DateTime(timezone=True), nullable=False),
    Column("deployed_by", String(120), nullable=False),
    UniqueConstraint("app", "version"),
)

audit = Table(
    "fd_audit",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor_id", BigInteger),
    Column("actor", String(120)),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("changes", JSON),
    Column("comment", Text),
    Index("ix_fd_audit_record", "app", "entity", "record_id", "id"),
)

sequences = Table(
    "fd_sequences",
    metadata,
    Column("app", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("period", String(16), nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("app", "entity", "period"),
)

jobs = Table(
    "fd_jobs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("run_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=8),
    Column("last_error", Text),
    Column("idempotency_key", String(200), unique=True),
    Column("locked_by", String(120)),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_fd_jobs_due", "status", "run_at"),
    # Claiming reads the first due jobs in run_at order; a partial index over the
    # waiting jobs only keeps that a short index walk however many done jobs
    # accumulate and however long the backlog (flowdesk.jobs.queue.claim).
    Index(
        "ix_fd_jobs_ready",
        "run_at",
        "id",
        postgresql_where=text(JOBS_READY),
        sqlite_where=text(JOBS_READY),
    ),
)

attachments = Table(
    "fd_attachments",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("record_id", BigInteger),
    Column("field", String(64)),
    Column("name", String(255), nullable=False),
    Column("media_type", String(127), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_key", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", BigInteger),
)
