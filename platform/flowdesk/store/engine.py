"""Database engines for SQLite (embedded, WAL) and PostgreSQL (production).

SQLite gets WAL, enforced foreign keys and a busy timeout on every
connection; writes queue on its single write lock, so the records service
keeps SQLite write transactions short (ARCHITECTURE: measured costs).

Every SQLite transaction begins IMMEDIATE (it takes the write lock at once),
except on a connection marked read-only with the execution option
`READ_ONLY` -- `read_only(engine)`, or
`connection.execution_options(flowdesk_read_only=True)` before its first
statement -- which begins DEFERRED: in WAL mode its reads take no write lock,
so they neither wait for writers nor hold them up. PostgreSQL ignores the
option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

from flowdesk.settings import normalise_database_url

__all__ = ["READ_ONLY", "is_postgres", "is_sqlite", "make_engine", "read_only"]

READ_ONLY = "flowdesk_read_only"
"""Execution option of connections that only read: SQLite begins them DEFERRED."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def read_only(engine: Engine) -> Engine:
    """`engine` for work that only reads (same pool): on SQLite it takes no write lock.

    A write on such a connection is a mistake: it would need the write lock
    mid-transaction, which WAL refuses (SQLITE_BUSY) when another writer came first.
    """
    return engine.execution_options(**{READ_ONLY: True})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is disabled so SQLAlchemy can
    # send BEGIN IMMEDIATE, or BEGIN when read-only (see `_sqlite_begin`).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: two writers never both
    # read then fail to upgrade their lock (SQLITE_BUSY mid-transaction).
    # Read-only work never upgrades, so it begins deferred and takes no lock.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False, **options: Any) -> Engine:
    """An engine configured for Flowdesk's needs on either database."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    options.setdefault("pool_pre_ping", True)
    return create_engine(url, echo=echo, **options)
