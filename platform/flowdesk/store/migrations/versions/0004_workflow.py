"""Workflow engine: approval tasks and decisions, workflow tokens (parallel branches,
sub-process links).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fd_approval_tasks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(64), nullable=False),
        sa.Column("level_index", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("delegated_from", sa.BigInteger()),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_approval_tasks")),
        sa.UniqueConstraint(
            "app", "entity", "record_id", "state", "round", "level", "user_id",
            name=op.f("uq_fd_approval_tasks_app_entity_record_id_state_round_level_user_id"),
        ),
    )
    op.create_index("ix_fd_approval_tasks_user", "fd_approval_tasks", ["user_id", "status"])
    op.create_index(
        "ix_fd_approval_tasks_record",
        "fd_approval_tasks",
        ["app", "entity", "record_id", "status"],
    )
    op.create_table(
        "fd_approval_decisions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("delegate_to", sa.BigInteger()),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["fd_approval_tasks.id"],
            name=op.f("fk_fd_approval_decisions_task_id_fd_approval_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_approval_decisions")),
        sa.UniqueConstraint("task_id", name=op.f("uq_fd_approval_decisions_task_id")),
    )
    op.create_table(
        "fd_workflow_tokens",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(64)),
        sa.Column("child_entity", sa.String(64)),
        sa.Column("child_id", sa.BigInteger()),
        sa.Column("workflow", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fd_workflow_tokens")),
    )
    op.create_index(
        "ix_fd_workflow_tokens_record",
        "fd_workflow_tokens",
        ["app", "entity", "record_id", "status"],
    )
    op.create_index(
        "ix_fd_workflow_tokens_child", "fd_workflow_tokens", ["app", "child_entity", "child_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_fd_workflow_tokens_child", table_name="fd_workflow_tokens")
    op.drop_index("ix_fd_workflow_tokens_record", table_name="fd_workflow_tokens")
    op.drop_table("fd_workflow_tokens")
    op.drop_table("fd_approval_decisions")
    op.drop_index("ix_fd_approval_tasks_record", table_name="fd_approval_tasks")
    op.drop_index("ix_fd_approval_tasks_user", table_name="fd_approval_tasks")
    op.drop_table("fd_approval_tasks")
