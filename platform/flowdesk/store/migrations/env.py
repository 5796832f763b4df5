"""Alembic environment for the platform's own tables.

Run through `flowdesk db upgrade` (or `flowdesk.store.migrate.upgrade`), which
passes an open connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context

from flowdesk.store.platform_tables import metadata

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table="fd_alembic_version",
    include_name=lambda name, type_, _parent: type_ != "table" or name.startswith("fd_"),
)
with context.begin_transaction():
    context.run_migrations()
