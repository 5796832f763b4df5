"""Settings from `FLOWDESK_*` environment variables; no setting is needed to start.

The default database is a SQLite file in `.flowdesk/` of the working
directory, so `flowdesk serve` works on a fresh machine with nothing set up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "load_settings", "normalise_database_url"]

DEFAULT_DATABASE_URL = "sqlite:///.flowdesk/flowdesk.db"


def normalise_database_url(url: str) -> str:
    """`postgresql://...` means psycopg 3 here; SQLAlchemy would pick psycopg2."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    echo_sql: bool = False

    @property
    def sqlite_path(self) -> Path | None:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    source = os.environ if env is None else env
    url = source.get("FLOWDESK_DATABASE_URL", DEFAULT_DATABASE_URL)
    return Settings(
        database_url=normalise_database_url(url),
        echo_sql=source.get("FLOWDESK_ECHO_SQL", "") in ("1", "true", "yes"),
    )
