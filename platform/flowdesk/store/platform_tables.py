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
    Float,
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
    "api_keys",
    "app_versions",
    "approval_decisions",
    "approval_tasks",
    "attachments",
    "audit",
    "automation_runs",
    "departments",
    "import_runs",
    "jobs",
    "login_failures",
    "metadata",
    "notifications",
    "positions",
    "sequences",
    "sessions",
    "sla_clocks",
    "user_roles",
    "users",
    "webhook_deliveries",
    "workflow_tokens",
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


# --- SLA clocks (flowdesk.engine.sla; migration 0005) ---------------------------------------

sla_clocks = Table(
    "fd_sla_clocks",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("sla", String(64), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("target", String(64), nullable=False),
    Column("goal_seconds", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("resumed_at", DateTime(timezone=True)),  # start of the current run; null: not running
    Column("paused_at", DateTime(timezone=True)),
    Column("elapsed_seconds", Float, nullable=False, default=0.0),  # business time before the run
    Column("due_at", DateTime(timezone=True)),
    Column("stopped_at", DateTime(timezone=True)),
    Column("run", Integer, nullable=False, default=0),  # bumped by every (re)start/resume/re-target
    Column("status", String(8), nullable=False, default="green"),
    Column("breached", Boolean, nullable=False, default=False),
    Column("breached_at", DateTime(timezone=True)),
    Column("warned", JSON, nullable=False),  # warning percentages already fired
    Column("attained", Boolean),  # set when the clock stops: met its goal or not
    Column("definition_version", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("app", "entity", "record_id", "sla", "metric"),
    Index("ix_fd_sla_clocks_open", "app", "entity", "stopped_at"),
)

# --- end of SLA clocks -----------------------------------------------------------------------


# --- Workflow engine: approvals and tokens (flowdesk.engine; migration 0004) ----------------

approval_tasks = Table(
    "fd_approval_tasks",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("state", String(64), nullable=False),  # the approval state of the workflow
    Column("round", Integer, nullable=False),  # the record's row version when the state began
    Column("level", String(64), nullable=False),
    Column("level_index", Integer, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    # pending -> approved | rejected | returned | delegated | escalated | skipped
    Column("status", String(16), nullable=False),
    Column("delegated_from", BigInteger),
    Column("due_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    UniqueConstraint("app", "entity", "record_id", "state", "round", "level", "user_id"),
    Index("ix_fd_approval_tasks_user", "user_id", "status"),
    Index("ix_fd_approval_tasks_record", "app", "entity", "record_id", "status"),
)

approval_decisions = Table(
    "fd_approval_decisions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("task_id", BigInteger, ForeignKey("fd_approval_tasks.id", ondelete="CASCADE"),
           nullable=False, unique=True),  # one decision per task, even under a race
    Column("app", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("decision", String(16), nullable=False),  # approve | reject | return | delegate
    Column("comment", Text),
    Column("delegate_to", BigInteger),
    Column("at", DateTime(timezone=True), nullable=False),
)

workflow_tokens = Table(
    "fd_workflow_tokens",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # branch | subprocess
    Column("state", String(64), nullable=False),  # the parallel or subprocess state
    Column("round", Integer, nullable=False),  # the record's row version when it began
    Column("branch", String(64)),  # branch: the state the branch is in now
    Column("child_entity", String(64)),  # subprocess: the child record
    Column("child_id", BigInteger),
    Column("workflow", String(64)),  # subprocess: the workflow the child runs
    Column("status", String(16), nullable=False),  # active | done
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_fd_workflow_tokens_record", "app", "entity", "record_id", "status"),
    Index("ix_fd_workflow_tokens_child", "app", "child_entity", "child_id"),
)

# --- end of workflow engine --------------------------------------------------------------------


# --- Identity: logins, sessions, API keys (flowdesk.security.identity; migration 0003) --------

login_failures = Table(
    # Keyed by the username as typed, not by user id: unknown names lock exactly like real
    # ones, so "account locked" never tells a caller that a user exists.
    "fd_login_failures",
    metadata,
    Column("username", String(120), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
)

sessions = Table(
    "fd_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the cookie's token, never the token
    Column("user_id", BigInteger, ForeignKey("fd_users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("csrf_secret", String(64), nullable=False),
    Column("user_agent", String(255)),
    Column("client", String(64)),
    Index("ix_fd_sessions_user_id", "user_id"),
    Index("ix_fd_sessions_expires_at", "expires_at"),
)

api_keys = Table(
    "fd_api_keys",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False, unique=True),  # shown to humans: fdk_3f9a1c
    Column("secret_hash", String(64), nullable=False),  # sha256 of the whole key text
    Column("user_id", BigInteger, ForeignKey("fd_users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(120), nullable=False),
    Column("roles", JSON),  # ["app:role", ...] restricting the user's roles; null: all of them
    Column("app", String(64)),  # the only app the key may act in; null: every app
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_fd_api_keys_user_id", "user_id"),
)

# --- end of identity --------------------------------------------------------------------------


# --- Automation runs (flowdesk.engine.automations; migration 0006) ---------------------------

automation_runs = Table(
    "fd_automation_runs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("entity", String(64)),  # null: a cron rule without an entity
    Column("record_id", BigInteger),
    Column("trigger", String(32), nullable=False),  # the event, `cron` or `relative`
    Column("trigger_key", String(64)),  # relative: the date's value; cron: the occurrence
    Column("at", DateTime(timezone=True), nullable=False),
    Column("depth", Integer, nullable=False),  # 1: run by a user's write; n: by rule n-1
    Column("outcome", String(16), nullable=False),  # done stopped failed depth max-runs cooldown
    Column("conditions", JSON, nullable=False),  # [{"at": pointer, "holds": bool}, ...]
    Column("actions", JSON, nullable=False),  # ["/do/0/set", ...] in the order they ran
    Column("duration_ms", Float, nullable=False),
    Column("error", Text),
    Index("ix_fd_automation_runs_record", "app", "rule", "entity", "record_id", "at"),
)

# --- end of automation runs ------------------------------------------------------------------


# --- Notifications and webhook deliveries (flowdesk.integrations; migration 0007) -------------

notifications = Table(  # in-app notifications: one row per recipient and message
    "fd_notifications",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("fd_users.id", ondelete="CASCADE"), nullable=False),
    Column("app", String(64), nullable=False),
    Column("entity", String(64)),
    Column("record_id", BigInteger),
    Column("notification", String(64), nullable=False),  # the Notification document's name
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("read_at", DateTime(timezone=True)),
    Index("ix_fd_notifications_user", "user_id", "read_at", "id"),
)

webhook_deliveries = Table(  # one row per delivery attempt of a `webhook.deliver` job
    "fd_webhook_deliveries",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("app", String(64), nullable=False),
    Column("integration", String(64), nullable=False),
    Column("webhook", String(64), nullable=False),
    Column("event", String(128), nullable=False),
    Column("url", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),  # null: no answer (timeout, refused connection)
    Column("error", Text),  # null: delivered (2xx)
    Column("request_body", Text, nullable=False),
    Column("response_body", Text),  # truncated
    Column("duration_ms", Float, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_fd_webhook_deliveries_job", "job_id", "attempt"),
)

# --- end of notifications and webhook deliveries ---------------------------------------------


# --- Data imports (flowdesk.onboarding.data; migration 0008) --------------------------------

import_runs = Table(  # one row per `flowdesk import data` run; resumed runs continue it
    "fd_import_runs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("source", Text, nullable=False),  # the file's name, as in the audit comments
    Column("file_hash", String(64), nullable=False),  # sha256: a resume must read the same file
    Column("mapping_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # running done failed
    Column("batch_size", Integer, nullable=False),
    Column("last_row", Integer, nullable=False),  # source row of the last committed batch's end
    Column("imported", Integer, nullable=False),  # records written so far
    Column("rejected", Integer, nullable=False),  # rows refused when written (import pass)
    Column("actor", String(120)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("error", Text),
    Index("ix_fd_import_runs_app", "app", "entity", "id"),
)

# --- end of data imports ---------------------------------------------------------------------
