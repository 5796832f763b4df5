"""Jobs: a partial index over the waiting jobs, for claiming in run_at order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

READY = "status IN ('pending', 'retry')"  # platform_tables.JOBS_READY, frozen here


def upgrade() -> None:
    op.create_index(
        "ix_fd_jobs_ready",
        "fd_jobs",
        ["run_at", "id"],
        unique=False,
        postgresql_where=sa.text(READY),
        sqlite_where=sa.text(READY),
    )


def downgrade() -> None:
    op.drop_index("ix_fd_jobs_ready", table_name="fd_jobs")
