"""What several commands share: a migrated engine for the configured database, and a
one-line description of a database error (users see that line, never a traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["database_error", "migrated_engine"]


@contextmanager
def migrated_engine(database_url: str | None) -> Iterator[Any]:
    """An engine on `database_url` (default: the settings'), its platform tables
    migrated to the head first, disposed afterwards."""
    from flowdesk.settings import load_settings
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import upgrade

    engine = make_engine(database_url or load_settings().database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def database_error(error: Exception) -> str:
    """`error: database: OperationalError: <the driver's first line>`."""
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    return f"error: database: {type(error).__name__}: {cause}"
