"""Identity: login failures (lockout), web sessions, API keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["fd_users.id"], name=op.f(f"fk_{table}_user_id_fd_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "fd_login_failures",
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_fd_login_failures")),
    )
    op.create_table(
        "fd_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("csrf_secret", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.Column("client", sa.String(length=64), nullable=True),
        _user_fk("fd_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_sessions")),
    )
    op.create_index("ix_fd_sessions_user_id", "fd_sessions", ["user_id"], unique=False)
    op.create_index("ix_fd_sessions_expires_at", "fd_sessions", ["expires_at"], unique=False)
    op.create_table(
        "fd_api_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=True),
        sa.Column("app", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _user_fk("fd_api_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_fd_api_keys_prefix")),
    )
    op.create_index("ix_fd_api_keys_user_id", "fd_api_keys", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_fd_api_keys_user_id", table_name="fd_api_keys")
    op.drop_table("fd_api_keys")
    op.drop_index("ix_fd_sessions_expires_at", table_name="fd_sessions")
    op.drop_index("ix_fd_sessions_user_id", table_name="fd_sessions")
    op.drop_table("fd_sessions")
    op.drop_table("fd_login_failures")
