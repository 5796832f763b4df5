"""How close is the generic records service to hand-written SQLAlchemy Core?

Measures create, get by id, filtered list (limit 20) and update of the service
desk's `ticket` through `RecordStore` and through a hand-written service doing
the same business work with SQLAlchemy Core on the same database and table
(ARCHITECTURE: "a generic runtime can be close to hand-written numbers only if
per-request work is decided once"). Targets: >= 0.8x for reads, >= 0.7x for
writes.

The hand-written side validates the title and enums, allocates the human
number, computes `is_vip` / `customer_region` / `resolution_hours` (loading
the customer) and checks the four ticket rules in plain Python, and for an
update reads the row first and writes with the same optimistic-locking
UPDATE. It writes no audit row; the records service does (one more INSERT per
write), so the write ratios include the audit's cost.

Two variants of the ticket are measured:

* `full`: the shipped entity (3 computed fields, 4 rules evaluated in CEL);
* `plain`: the same fields without computed fields and rules, isolating the
  storage path from the expression evaluator.

Run from the repository root (SQLite always; PostgreSQL when a URL is given
or FLOWDESK_TEST_POSTGRES_URL is set, in a schema dropped afterwards):

    python bench/records_bench.py --rows 100000 --ops 1000
    python bench/records_bench.py --rows 20000 --postgres postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

import sqlalchemy as sa  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from flowdesk.model.appmodel import AppModel  # noqa: E402
from flowdesk.model.compiler import compile_source, compile_texts  # noqa: E402
from flowdesk.model.sources import read_app  # noqa: E402
from flowdesk.store import platform_tables as pt  # noqa: E402
from flowdesk.store.engine import make_engine  # noqa: E402
from flowdesk.store.migrate import upgrade  # noqa: E402
from flowdesk.store.numbers import SequenceAllocator  # noqa: E402
from flowdesk.store.records import Actor, RecordStore  # noqa: E402
from flowdesk.store.search import create_search_index  # noqa: E402
from flowdesk.store.tables import build_tables  # noqa: E402

TARGETS = {"create": 0.7, "get": 0.8, "list": 0.8, "update": 0.7}
ROLES = ("agent",)
_EMAIL = re.compile(r"^[^@\s]+@([^@\s.]+\.)+[^@\s.]+$")


# --------------------------------------------------------------------------- apps


def full_app() -> AppModel:
    app = compile_source(read_app(ROOT / "apps" / "service_desk")).app
    assert app is not None
    return app


def plain_app() -> AppModel:
    """The service desk's entities without computed fields and rules."""
    yaml = YAML(typ="safe", pure=False)
    folder = ROOT / "apps" / "service_desk"
    manifest = yaml.load((folder / "app.yaml").read_text())
    manifest.pop("calendar", None)
    manifest.pop("packs", None)
    texts = {"app.yaml": _dump(yaml, manifest)}
    for path in sorted((folder / "entities").glob("*.yaml")):
        document = yaml.load(path.read_text())
        document.pop("rules", None)
        document["fields"] = {
            name: spec for name, spec in document["fields"].items() if "computed" not in spec
        }
        texts[path.name] = _dump(yaml, document)
    result = compile_texts(texts)
    assert result.app is not None, [str(d) for d in result.diagnostics][:5]
    return result.app


def _dump(yaml: YAML, document: Any) -> str:
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


# --------------------------------------------------------------------------- hand-written


class HandWritten:
    """What a developer would write for the ticket by hand with SQLAlchemy Core."""

    def __init__(self, engine: sa.Engine, tables: dict, full: bool) -> None:
        self.engine = engine
        self.full = full
        self.t = tables["ticket"].main
        self.customer = tables["customer"].main
        self.numbers = SequenceAllocator(engine.dialect.name)
        self.insert = self.t.insert()
        self.get_stmt = sa.select(self.t).where(self.t.c.id == sa.bindparam("id"))
        self.customer_stmt = sa.select(self.customer.c.level, self.customer.c.region).where(
            self.customer.c.id == sa.bindparam("id")
        )
        self.list_stmt = (
            sa.select(self.t)
            .where(self.t.c.priority == sa.bindparam("priority"), self.t.c.deleted_at.is_(None))
            .order_by(self.t.c.id.desc())
            .limit(20)
        )
        self.update_stmt = sa.update(self.t).where(
            self.t.c.id == sa.bindparam("_id"), self.t.c.row_version == sa.bindparam("_v")
        )

    def _check(self, row: dict[str, Any], conn: sa.Connection, roles: tuple[str, ...]) -> None:
        title = row.get("title")
        if not isinstance(title, str) or not 4 <= len(title) <= 200:
            raise ValueError("title")
        if row["priority"] not in ("p1", "p2", "p3", "p4"):
            raise ValueError("priority")
        if row.get("contact_email") and not _EMAIL.match(row["contact_email"]):
            raise ValueError("contact_email")
        if not self.full:
            return
        customer = None
        if row.get("customer") is not None:
            customer = conn.execute(self.customer_stmt, {"id": row["customer"]}).first()
            if customer is None:
                raise ValueError("customer")
        row["is_vip"] = customer is not None and customer.level == "vip"
        row["customer_region"] = customer.region if customer is not None else ""
        resolved = row.get("resolved_at")
        hours = (resolved - row["created_at"]).total_seconds() // 60 / 60 if resolved else 0.0
        row["resolution_hours"] = Decimal(repr(hours)).quantize(Decimal("0.1"))
        supervisor = any(r in ("supervisor", "regional_manager", "service_manager") for r in roles)
        description = row.get("description")
        if row["priority"] == "p1" and not row["is_vip"] and not supervisor:
            raise ValueError("p1_reserved_for_vip")
        if row["priority"] in ("p1", "p2") and (description is None or len(description) < 20):
            raise ValueError("p1_needs_description")
        if row.get("customer") is None and not row.get("contact_email"):
            raise ValueError("customer_or_contact")
        if resolved is not None and not row.get("resolution"):
            raise ValueError("resolution_when_resolved")

    def create(self, values: dict[str, Any], user_id: int) -> int:
        now = dt.datetime.now(dt.UTC)
        row = {"channel": "web", "category": "other", "priority": "p3", "sla_status": "green",
               "escalated": False, "first_contact_resolved": False, "reopen_count": 0,
               **values, "created_at": now, "updated_at": now, "created_by": user_id,
               "updated_by": user_id, "row_version": 1}  # fmt: skip
        with self.engine.begin() as conn:
            self._check(row, conn, ROLES)
            seq = self.numbers.next(conn, "service_desk", "ticket", "")
            row["number"] = f"TCK-{seq:06d}"
            return int(conn.execute(self.insert, row).inserted_primary_key[0])

    def get(self, record_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(self.get_stmt, {"id": record_id}).first()
        if row is None:
            raise KeyError(record_id)
        return dict(row._mapping)

    def list(self, priority: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(self.list_stmt, {"priority": priority})]

    def update(self, record_id: int, changes: dict[str, Any], version: int, user_id: int) -> None:
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            current = conn.execute(self.get_stmt, {"id": record_id}).first()
            if current is None or current.row_version != version:
                raise RuntimeError("conflict")
            row = {**current._mapping, **changes}
            self._check(row, conn, ROLES)
            values = {k: row[k] for k in changes} | {
                "updated_at": now,
                "updated_by": user_id,
                "row_version": version + 1,
            }
            if self.full:
                values |= {k: row[k] for k in ("is_vip", "customer_region", "resolution_hours")}
            result = conn.execute(self.update_stmt, {**values, "_id": record_id, "_v": version})
            if result.rowcount != 1:
                raise RuntimeError("conflict")


# --------------------------------------------------------------------------- set-up


def seed(engine: sa.Engine, app: AppModel, tables: dict, rows: int, user_id: int) -> list[int]:
    """Customers and `rows` tickets inserted in bulk; returns the customer ids."""
    rng = random.Random(1)
    now = dt.datetime.now(dt.UTC)
    system = {"created_at": now, "updated_at": now, "created_by": user_id,
              "updated_by": user_id, "row_version": 1}  # fmt: skip
    customer, ticket = tables["customer"].main, tables["ticket"].main
    words = [
        "printer",
        "network",
        "vpn",
        "laptop",
        "mail",
        "password",
        "screen",
        "slow",
        "broken",
        "login",
    ]
    with engine.begin() as conn:
        conn.execute(
            customer.insert(),
            [
                {
                    "name": f"Customer {n}",
                    "code": f"C{n:06d}",
                    "level": "vip" if n % 5 else "normal",
                    "region": "east",
                    "account_manager": user_id,
                    **system,
                }
                for n in range(200)
            ],
        )
        customers = list(conn.execute(sa.select(customer.c.id)).scalars())
        batch = []
        for n in range(rows):
            batch.append({
                "number": f"TCK-{n + 1:06d}", "title": " ".join(rng.sample(words, 3)),
                "description": " ".join(rng.choices(words, k=12)), "channel": "web",
                "category": "other", "priority": rng.choice(["p2", "p3", "p3", "p4"]),
                "customer": rng.choice(customers), "is_vip": False, "customer_region": "east",
                "sla_status": "green", "escalated": False, "first_contact_resolved": False,
                "reopen_count": 0, "state": "new", **system})  # fmt: skip
            if len(batch) == 5000:
                conn.execute(ticket.insert(), batch)
                batch = []
        if batch:
            conn.execute(ticket.insert(), batch)
        conn.execute(
            pt.sequences.insert().values(app="service_desk", entity="ticket", period="", value=rows)
        )
        create_search_index(conn, app, "ticket")
    with engine.begin() as conn:  # planner statistics after the bulk load, as in production
        conn.exec_driver_sql("ANALYZE")
    return customers


@contextmanager
def database(kind: str, url: str | None) -> Iterator[sa.Engine]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{folder}/bench.db")
            try:
                yield engine
            finally:
                engine.dispose()
        return
    assert url is not None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    engine = make_engine(f"{url}{separator}options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


# --------------------------------------------------------------------------- measuring


def compare(
    hand: Callable[[int], Any], store: Callable[[int], Any], count: int, block: int = 25
) -> tuple[float, float]:
    """ops/s of both sides, run in alternating blocks so both see the same machine load."""
    spent = [0.0, 0.0]
    for start in range(0, count, block):
        for side, operation in enumerate((hand, store)):
            began = time.perf_counter()
            for index in range(start, min(start + block, count)):
                operation(index)
            spent[side] += time.perf_counter() - began
    return count / spent[0], count / spent[1]


def measure(
    engine: sa.Engine, app: AppModel, full: bool, rows: int, ops: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Median over `rounds` of each operation's ops/s: (hand-written, records service)."""
    upgrade(engine)
    tables = build_tables(app)
    tables["ticket"].main.metadata.create_all(engine)
    user_id = _user(engine)
    customers = seed(engine, app, tables, rows, user_id)
    bench = _Round(
        RecordStore(engine, app, tables),
        HandWritten(engine, tables, full),
        Actor(user_id, "bench", roles=ROLES),
        customers,
        rows,
        ops,
    )
    samples = [bench.run(seed) for seed in range(rounds)]
    return {
        name: (
            statistics.median(s[name][0] for s in samples),
            statistics.median(s[name][1] for s in samples),
        )
        for name in TARGETS
    }


class _Round:
    """One round: creates, gets, lists, then updates of the records just created."""

    def __init__(
        self,
        store: RecordStore,
        hand: HandWritten,
        who: Actor,
        customers: list[int],
        rows: int,
        ops: int,
    ) -> None:
        self.store, self.hand, self.who = store, hand, who
        self.customers, self.rows, self.ops = customers, rows, ops

    def values(self, index: int) -> dict[str, Any]:
        return {
            "title": f"Bench ticket {index}",
            "priority": "p2" if index % 2 else "p3",
            "description": f"The printer on floor {index} prints blank pages since Monday.",
            "contact_email": "someone@example.com",
            "customer": self.customers[index % len(self.customers)],
        }

    def run(self, seed: int) -> dict[str, tuple[float, float]]:
        hand, store, who, user_id = self.hand, self.store, self.who, self.who.id or 0
        hand_ids: list[int] = []
        store_ids: list[int] = []
        rng = random.Random(seed)
        # each side reads its own random rows: a row just read by one side would be
        # in the cache for the other
        hand_reads = [rng.randrange(1, self.rows + 1) for _ in range(self.ops)]
        store_reads = [rng.randrange(1, self.rows + 1) for _ in range(self.ops)]
        result = {
            "create": compare(
                lambda i: hand_ids.append(hand.create(self.values(i), user_id)),
                lambda i: store_ids.append(store.create("ticket", self.values(i), actor=who)["id"]),
                self.ops,
            )
        }
        result["get"] = compare(
            lambda i: hand.get(hand_reads[i]),
            lambda i: store.get("ticket", store_reads[i]),
            self.ops,
        )
        result["list"] = compare(
            lambda i: hand.list(("p2", "p3", "p4")[i % 3]),
            lambda i: store.list("ticket", filter=_FILTERS[i % 3], limit=20),
            self.ops,
        )
        result["update"] = compare(
            lambda i: hand.update(hand_ids[i], {"priority": "p3" if i % 2 else "p2"}, 1, user_id),
            lambda i: store.update(
                "ticket",
                store_ids[i],
                {"priority": "p3" if i % 2 else "p2"},
                expected_version=1,
                actor=who,
            ),
            self.ops,
        )
        return result


_FILTERS = ['record.priority == "p2"', 'record.priority == "p3"', 'record.priority == "p4"']


def _user(engine: sa.Engine) -> int:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        row = {
            "username": "bench",
            "name": "Bench",
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        return int(conn.execute(pt.users.insert().values(**row)).inserted_primary_key[0])


def report(title: str, results: dict[str, tuple[float, float]]) -> None:
    print(f"\n{title}")
    print("| operation | hand-written ops/s | records service ops/s | ratio | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, (hand, store) in results.items():
        ratio = store / hand
        verdict = "OK" if ratio >= TARGETS[name] else "below"
        print(
            f"| {name} | {hand:,.0f} | {store:,.0f} | {ratio:.2f}x | "
            f">= {TARGETS[name]}x {verdict} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="tickets in the table")
    parser.add_argument("--ops", type=int, default=1000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median counts")
    parser.add_argument("--postgres", default=os.environ.get("FLOWDESK_TEST_POSTGRES_URL"))
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--variant", choices=["full", "plain", "both"], default="both")
    args = parser.parse_args(argv)
    kinds = [k for k in ("sqlite", "postgresql") if args.only in (None, k)]
    if "postgresql" in kinds and not args.postgres:
        kinds.remove("postgresql")
        print("PostgreSQL skipped: give --postgres URL or set FLOWDESK_TEST_POSTGRES_URL")
    variants = ["full", "plain"] if args.variant == "both" else [args.variant]
    apps = {"full": full_app(), "plain": plain_app()}
    print(f"rows={args.rows:,} ops={args.ops} rounds={args.rounds} (median round reported)")
    for kind in kinds:
        for variant in variants:
            with database(kind, args.postgres) as engine:
                results = measure(
                    engine, apps[variant], variant == "full", args.rows, args.ops, args.rounds
                )
            report(f"{kind}, {variant} ticket", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
