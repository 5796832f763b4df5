"""Shared test set-up: make the source root importable without an install,
so `pytest` works from a checkout as well as after `pip install -e .`."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from pg_support import postgres_schema  # noqa: E402


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """Every database test runs on SQLite and, when FLOWDESK_TEST_POSTGRES_URL is set
    (it is in CI), on PostgreSQL in a schema of its own that is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/flowdesk.db"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[object]:
    """A migrated database: the platform's tables at the Alembic head."""
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import upgrade

    db = make_engine(database_url)
    upgrade(db)
    try:
        yield db
    finally:
        db.dispose()
