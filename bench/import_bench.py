"""How close is `flowdesk import data` to a plain `executemany` of the same rows?

A ticket history of `--rows` rows (1% bad rows, 0.5% duplicates; the generator of
`flowdesk.onboarding._data_sample`) is imported into the service desk's `ticket`
table by `import_data`: the validation pass and the import pass, batches of
`--batch-size`, every row checked as `RecordStore.create` checks it (coercion,
required fields, 3 computed fields and 4 rules in CEL, customer looked up by
code, duplicates in the file and the table) and written with its audit row.
Then the very rows it wrote are read back, deleted, and inserted again into the
same table by a plain `executemany` in batches of the same size, one transaction
per batch, no checks and no audit. Target (issue 8): import rows/s >= 0.5x of
the plain insert's rows/s, on SQLite and PostgreSQL.

Also shown: the import pass alone (the validation pass is a second full read
and check of the file) and the rate of `RecordStore.create` per row in one
transaction per batch (the "floor" the bulk path replaces), on a sample.

Each database is the benchmark's own: a temporary SQLite file, and a PostgreSQL
database created from `--postgres` (default FLOWDESK_TEST_POSTGRES_URL) and
dropped afterwards. Run from the repository root:

    python bench/import_bench.py --rows 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

import sqlalchemy as sa  # noqa: E402

from flowdesk.model.sources import read_app  # noqa: E402
from flowdesk.onboarding._data_sample import TICKET_MAPPING, write_ticket_history  # noqa: E402
from flowdesk.onboarding._mapping import parse_mapping  # noqa: E402
from flowdesk.onboarding.data import import_data  # noqa: E402
from flowdesk.store import platform_tables as pt  # noqa: E402
from flowdesk.store.deploy import deploy, load_active  # noqa: E402
from flowdesk.store.engine import make_engine  # noqa: E402
from flowdesk.store.migrate import upgrade  # noqa: E402
from flowdesk.store.records import Actor, RecordStore  # noqa: E402

TARGET = 0.5
CUSTOMERS = [f"C{n:06d}" for n in range(1, 201)]


@contextmanager
def database(kind: str, postgres: str | None) -> Iterator[sa.Engine]:
    """A fresh, migrated database of the benchmark's own, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{folder}/bench.db")
            upgrade(engine)
            try:
                yield engine
            finally:
                engine.dispose()
        return
    name = f"fd_import_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(make_engine(postgres or "").url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(str(make_engine(postgres or "").url.set(database=name)
                             .render_as_string(hide_password=False)))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def prepare(engine: sa.Engine) -> Any:
    root = ROOT / "apps" / "service_desk"
    texts = {str(Path(p).resolve().relative_to(root)): t for p, t in read_app(root).texts.items()}
    deploy(engine, texts, actor="bench")
    app = load_active(engine, "service_desk")
    store = RecordStore(engine, app)
    for index, code in enumerate(CUSTOMERS):
        store.create("customer", {"name": f"客户 {code}", "code": code,
                                  "region": ("north", "east", "south")[index % 3]},
                     actor=Actor(None, "bench"))  # fmt: skip
    return app


def plain_insert(engine: sa.Engine, table: sa.Table, rows: list[dict], batch: int) -> float:
    """Seconds to insert `rows` with executemany, one transaction per batch."""
    insert = table.insert()
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        with engine.begin() as conn:
            conn.execute(insert, rows[start:start + batch])
    return time.perf_counter() - started


def store_floor(engine: sa.Engine, app: Any, sample: list[dict], batch: int) -> float:
    """Rows/s of `RecordStore.create` per row, one transaction per batch (a sample)."""
    store = RecordStore(engine, app)
    actor = Actor(None, "bench")
    started = time.perf_counter()
    for start in range(0, len(sample), batch):
        with store.transaction() as conn:
            for values in sample[start:start + batch]:
                store.create("ticket", values, actor=actor, connection=conn)
    return len(sample) / (time.perf_counter() - started)


def run(kind: str, postgres: str | None, rows: int, batch: int, folder: Path) -> dict[str, Any]:
    source = folder / "tickets.csv"
    write_ticket_history(source, rows, CUSTOMERS)
    mapping = parse_mapping(TICKET_MAPPING, "tickets.mapping.yaml")
    with database(kind, postgres) as engine:
        app = prepare(engine)
        table = RecordStore(engine, app).table("ticket")
        started = time.perf_counter()
        validated = import_data(engine, app, "ticket", source, mapping, dry_run=True,
                                batch_size=batch)  # fmt: skip
        validate_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = import_data(engine, app, "ticket", source, mapping, batch_size=batch)
        import_s = time.perf_counter() - started
        with engine.connect() as conn:
            result = conn.execute(sa.select(table).order_by(table.c.id))
            written = [dict(r._mapping) for r in result]
        for row in written:
            row.pop("id")
        with engine.begin() as conn:
            conn.execute(table.delete())
            conn.execute(pt.audit.delete().where(pt.audit.c.entity == "ticket"))
        plain_s = plain_insert(engine, table, written, batch)
        with engine.begin() as conn:
            conn.execute(table.delete())
        sample = [{"title": f"Sample ticket {n}", "description": "x" * 30, "priority": "p3",
                   "customer": 1 + n % len(CUSTOMERS)} for n in range(min(rows, 5000))]
        floor = store_floor(engine, app, sample, batch)
    good = summary.imported
    return {
        "kind": kind, "rows": rows, "good": good, "bad": validated.bad,
        "import_rps": good / import_s, "validate_s": validate_s, "import_s": import_s,
        "plain_rps": len(written) / plain_s, "floor_rps": floor,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--postgres", default=os.environ.get("FLOWDESK_TEST_POSTGRES_URL"))
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    kinds = [k for k in ("sqlite", "postgresql") if args.only in (None, k)]
    if "postgresql" in kinds and not args.postgres:
        kinds.remove("postgresql")
        print("PostgreSQL skipped: give --postgres URL or set FLOWDESK_TEST_POSTGRES_URL")
    print(f"{'database':<11} {'rows':>7} {'good':>7} {'bad':>5} {'dry run s':>9} "
          f"{'import s':>8} {'import r/s':>10} {'plain r/s':>10} {'ratio':>6} "
          f"{'create()/s':>10}")
    missed = False
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            r = run(kind, args.postgres, args.rows, args.batch_size, Path(folder))
            ratio = r["import_rps"] / r["plain_rps"]
            missed |= ratio < TARGET
            print(f"{kind:<11} {r['rows']:>7} {r['good']:>7} {r['bad']:>5} "
                  f"{r['validate_s']:>9.1f} {r['import_s']:>8.1f} {r['import_rps']:>10,.0f} "
                  f"{r['plain_rps']:>10,.0f} {ratio:>5.2f}x {r['floor_rps']:>10,.0f}",
                  flush=True)  # fmt: skip
    print(f"target: import >= {TARGET}x of the plain executemany's rows/s"
          + (" -- MISSED" if missed else " -- met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
