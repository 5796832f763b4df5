"""Concurrent writers, each thread with its own RecordStore and connection, on
SQLite and PostgreSQL: optimistic locking loses nothing and human numbers are
gapless and unique."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from test_records_support import actor, lab_app, store_for

from flowdesk.store.engine import make_engine
from flowdesk.store.errors import Conflict
from flowdesk.store.records import RecordStore


def run_together(
    count: int, database_url: str, store: RecordStore, work: Callable[[RecordStore, int], Any]
) -> list[Any]:
    """Run `work(store, index)` in `count` threads released at once, each with its own
    engine, connection and store, as separate processes would: SQLite writers meet on
    the database's lock, not on a store's in-process one."""
    engines = [make_engine(database_url, pool_size=1, max_overflow=0) for _ in range(count)]
    barrier = threading.Barrier(count)

    def one(index: int) -> Any:
        own = RecordStore(engines[index], store.app, store.tables)
        barrier.wait(timeout=60)
        return work(own, index)

    try:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))
    finally:
        for engine in engines:
            engine.dispose()


def test_20_concurrent_updates_with_stale_versions(engine: sa.Engine, database_url: str) -> None:
    store = store_for(engine, lab_app())
    who = actor(None, "setup")
    record = store.create("item", {"name": "Shared", "count": 0}, actor=who)
    for version in (1, 2):
        store.update(
            "item", record["id"], {"count": version}, expected_version=version, actor=who
        )  # now at version 3

    def update(own: RecordStore, index: int) -> tuple[str, int, int | None]:
        expected = 1 + index % 3  # versions 1 and 2 are stale, 3 is current
        try:
            own.update(
                "item",
                record["id"],
                {"count": 10 + index},
                expected_version=expected,
                actor=actor(None, f"writer{index}"),
            )
            return ("won", index, expected)
        except Conflict as conflict:
            return ("conflict", index, conflict.current_version)

    results = run_together(20, database_url, store, update)
    winners = [r for r in results if r[0] == "won"]
    assert len(winners) == 1, results
    ((_won, index, expected),) = winners
    assert expected == 3
    losers = [r for r in results if r[0] == "conflict"]
    assert len(losers) == 19 and {r[2] for r in losers} <= {3, 4}
    final = store.get("item", record["id"])
    assert (final["count"], final["row_version"]) == (10 + index, 4)
    updates = [e for e in store.timeline("item", record["id"]) if e.action == "update"]
    assert len(updates) == 3 and updates[-1].actor == f"writer{index}"
    assert updates[-1].changes["count"] == {"old": 2, "new": 10 + index}


def test_50_concurrent_creates_get_50_consecutive_numbers(
    engine: sa.Engine, database_url: str
) -> None:
    store = store_for(engine, lab_app())

    def create(own: RecordStore, index: int) -> str:
        return own.create("item", {"name": "Racer"}, actor=actor(None, f"c{index}"))["number"]

    numbers = run_together(50, database_url, store, create)
    year = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).year
    assert sorted(numbers) == [f"IT-{year}-{n:04d}" for n in range(1, 51)]
    page = store.list("item", limit=100)
    assert len(page.items) == 50
