"""The platform tables are created by Alembic and match their SQLAlchemy metadata,
on SQLite and PostgreSQL; app tables build from the shipped apps."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import read_app
from flowdesk.store import platform_tables
from flowdesk.store.migrate import current_revision, head_revision
from flowdesk.store.tables import build_tables

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "platform/flowdesk/store/migrations/versions"


def test_upgrade_reaches_head(engine: sa.Engine) -> None:
    revisions = sorted(p.stem.split("_")[0] for p in VERSIONS.glob("[0-9]*_*.py"))
    assert current_revision(engine) == head_revision() == revisions[-1]  # one linear chain


def test_migrations_match_the_metadata(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_name": lambda name, kind, _p: kind != "table" or name.startswith("fd_"),
        })
        diff = compare_metadata(context, platform_tables.metadata)
    drift = [d for d in diff if not (isinstance(d, tuple) and d[0] == "remove_table"
                                     and d[1].name == "fd_alembic_version")]
    assert drift == []


def test_shipped_apps_create_their_tables(engine: sa.Engine) -> None:
    app = compile_source(read_app(ROOT / "apps" / "procurement")).app
    assert app is not None
    tables = build_tables(app)
    tables["purchase_request"].main.metadata.create_all(engine)
    names = set(sa.inspect(engine).get_table_names())
    assert {"procurement__purchase_request", "procurement__purchase_request__items",
            "procurement__budget", "procurement__supplier"} <= names
    columns = {c["name"] for c in sa.inspect(engine).get_columns("procurement__purchase_request")}
    assert {"id", "number", "state", "row_version", "total", "requester"} <= columns
