"""Platform tables: org chart, users and roles, app versions, audit, sequences, jobs,
attachments.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _head_fk(sqlite: bool) -> list[sa.ForeignKeyConstraint]:
    """Departments and users refer to each other: SQLite takes the constraint inline
    (it checks references lazily), PostgreSQL gets it once both tables exist."""
    if not sqlite:
        return []
    return [
        sa.ForeignKeyConstraint(
            ["head_id"],
            ["fd_users.id"],
            name=op.f("fk_fd_departments_head_id_fd_users"),
            ondelete="SET NULL",
        )
    ]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "fd_app_versions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deployed_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_app_versions")),
        sa.UniqueConstraint("app", "version", name=op.f("uq_fd_app_versions_app_version")),
    )
    op.create_table(
        "fd_attachments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=127), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_attachments")),
    )
    op.create_table(
        "fd_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_audit")),
    )
    op.create_index(
        "ix_fd_audit_record", "fd_audit", ["app", "entity", "record_id", "id"], unique=False
    )
    op.create_table(
        "fd_departments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("head_id", sa.BigInteger(), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *_head_fk(sqlite),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["fd_departments.id"],
            name=op.f("fk_fd_departments_parent_id_fd_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_departments")),
        sa.UniqueConstraint("code", name=op.f("uq_fd_departments_code")),
    )
    op.create_table(
        "fd_jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("locked_by", sa.String(length=120), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_jobs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_fd_jobs_idempotency_key")),
    )
    op.create_index("ix_fd_jobs_due", "fd_jobs", ["status", "run_at"], unique=False)
    op.create_table(
        "fd_positions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_positions")),
        sa.UniqueConstraint("code", name=op.f("uq_fd_positions_code")),
    )
    op.create_table(
        "fd_sequences",
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app", "entity", "period", name=op.f("pk_fd_sequences")),
    )
    op.create_table(
        "fd_users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("employee_id", sa.String(length=64), nullable=True),
        sa.Column("department_id", sa.BigInteger(), nullable=True),
        sa.Column("position_id", sa.BigInteger(), nullable=True),
        sa.Column("manager_id", sa.BigInteger(), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["fd_departments.id"],
            name=op.f("fk_fd_users_department_id_fd_departments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["manager_id"],
            ["fd_users.id"],
            name=op.f("fk_fd_users_manager_id_fd_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["fd_positions.id"],
            name=op.f("fk_fd_users_position_id_fd_positions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_users")),
        sa.UniqueConstraint("email", name=op.f("uq_fd_users_email")),
        sa.UniqueConstraint("employee_id", name=op.f("uq_fd_users_employee_id")),
        sa.UniqueConstraint("username", name=op.f("uq_fd_users_username")),
    )
    op.create_table(
        "fd_user_roles",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["fd_users.id"],
            name=op.f("fk_fd_user_roles_user_id_fd_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "app", "role", name=op.f("pk_fd_user_roles")),
    )
    if not sqlite:
        op.create_foreign_key(
            op.f("fk_fd_departments_head_id_fd_users"),
            "fd_departments",
            "fd_users",
            ["head_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("fk_fd_departments_head_id_fd_users"), "fd_departments")
    op.drop_table("fd_user_roles")
    op.drop_table("fd_users")
    op.drop_table("fd_sequences")
    op.drop_table("fd_positions")
    op.drop_index("ix_fd_jobs_due", table_name="fd_jobs")
    op.drop_table("fd_jobs")
    op.drop_table("fd_departments")
    op.drop_index("ix_fd_audit_record", table_name="fd_audit")
    op.drop_table("fd_audit")
    op.drop_table("fd_attachments")
    op.drop_table("fd_app_versions")
