"""How close is the generated REST API to a hand-written one, over real HTTP?

Issue #4, section "Benchmark". For SQLite and PostgreSQL: a database with the
service desk deployed, the demo organisation and `--rows` tickets; two servers,
each one uvicorn worker in its own process, on that database:

* **generated**: `flowdesk.api.app:create_app` (the product), called as the demo
  `agent` with a bearer token -- authentication, the Casbin-derived permission
  check, field policy (read-only fields, redaction) and the data scope all run,
  and a create runs the ticket's workflow, SLA clocks, rules and audit row;
* **hand-written**: `bench/_handwritten_api.py`, a minimal Litestar + SQLAlchemy
  Core app serving the same three endpoints on the same table, without any of that.

Each endpoint is driven over loopback HTTP by `bench/_loadgen.py` (a closed loop of
`--concurrency` keep-alive connections, 1 s warm-up, `--seconds` measured),
alternating the two servers `--rounds` times; the median round is reported.
Targets: generated >= 0.75x hand-written on every endpoint; >= 200 creates/s on
SQLite. A missed target is a result (exit 0); any non-2xx response, a server that
does not start or a broken connection is an error (exit 1).

    python bench/api_bench.py                          # 100k rows, SQLite and PostgreSQL
    python bench/api_bench.py --quick --sqlite-only    # smoke run, < 60 s
    python bench/api_bench.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
for _path in (ROOT / "platform", BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import sqlalchemy as sa  # noqa: E402

from _loadgen import LoadResult, RequestMaker, http_request, run_load  # noqa: E402
from flowdesk.engine.sla import clocks_for  # noqa: E402
from flowdesk.engine.workflow import WorkflowEngine  # noqa: E402
from flowdesk.model.appmodel import AppModel  # noqa: E402
from flowdesk.model.sources import read_app  # noqa: E402
from flowdesk.onboarding.demo import DEMO_USERS, seed_org  # noqa: E402
from flowdesk.security import load_principal  # noqa: E402
from flowdesk.security.identity.passwords import set_password  # noqa: E402
from flowdesk.security.identity.tokens import issue_token  # noqa: E402
from flowdesk.security.scopes import scope_clause  # noqa: E402
from flowdesk.store import platform_tables as pt  # noqa: E402
from flowdesk.store.deploy import deploy  # noqa: E402
from flowdesk.store.engine import make_engine  # noqa: E402
from flowdesk.store.migrate import upgrade  # noqa: E402
from flowdesk.store.records import Actor, RecordStore  # noqa: E402
from flowdesk.store.snapshots import load_active  # noqa: E402

APP = "service_desk"
SECRET = "api-bench-secret-key-long-enough-for-hs256-signing"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_DATABASE = "flowdesk_api_bench"
RATIO_TARGET = 0.75
SQLITE_CREATES_TARGET = 200.0
ENDPOINTS = ("get", "list", "create")
_CHUNK = 5_000
_P2_FILTER = 'record.priority == "p2"'


class BenchError(RuntimeError):
    """The run cannot give a measurement (a server failed, a response was not 2xx)."""


# =========================================================================== database


@dataclass(frozen=True)
class Prepared:
    """What the load needs to know about a seeded database."""

    url: str
    agent_id: int
    readable_ids: list[int]  # ticket ids the agent may read
    customers: list[int]


def _app_texts() -> dict[str, str]:
    folder = ROOT / "apps" / APP
    return {str(Path(p).resolve().relative_to(folder)): text
            for p, text in read_app(folder).texts.items()}  # fmt: skip


def _actor(users: dict[str, int], username: str) -> Actor:
    user = next(u for u in DEMO_USERS if u.username == username)
    roles = (*user.roles.get("*", ()), *user.roles.get(APP, ()))
    return Actor(
        users[username],
        username,
        roles=roles,
        locale=user.locale,
        attributes={"name": user.name, "email": user.email, "region": user.region},
    )


def prepare(url: str, rows: int) -> Prepared:
    """Migrate, deploy the service desk, add the demo org and `rows` tickets."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        deploy(engine, _app_texts(), actor="api-bench")
        app = load_active(engine, APP)
        assert app is not None
        with engine.begin() as connection:
            users = seed_org(connection)
            for username, user_id in users.items():
                set_password(connection, user_id, username, policy=False)
        store = RecordStore(engine, app)
        customers = _seed_customers(store, users)
        _seed_tickets(store, app, users, customers, rows)
        with engine.begin() as connection:  # planner statistics after the bulk load
            connection.exec_driver_sql("ANALYZE")
        return Prepared(url, users["agent"], _readable_ids(store, app, users["agent"]),
                        [c["id"] for c in customers])  # fmt: skip
    finally:
        engine.dispose()


_REGIONS = ("east", "north", "south", "central", "west")


def _seed_customers(store: RecordStore, users: dict[str, int]) -> list[dict[str, Any]]:
    """Twenty customers through the records service (references need real rows)."""
    actor = _actor(users, "supervisor")
    return [
        store.create(
            "customer",
            {
                "code": f"C{900000 + n}",
                "name": f"Bench customer {n}",
                "level": "vip" if n % 4 == 0 else "normal",
                "region": _REGIONS[n % 5],
                "email": f"it{n}@customer{n}.example.com",
                "account_manager": users["supervisor"] if n % 4 == 0 else None,
            },
            actor=actor,
        )
        for n in range(20)
    ]


_WORDS = ("printer", "network", "vpn", "laptop", "mail", "password", "screen", "slow",
          "broken", "login", "invoice", "portal", "monitor", "server", "backup")  # fmt: skip
_CATEGORIES = ("hardware", "software", "network", "account", "billing", "other")
_PRIORITIES = ("p2", "p3", "p3", "p4", "p4")
_STATES = ("new", "new", "in_progress", "in_progress", "pending_customer")


def _seed_tickets(
    store: RecordStore,
    app: AppModel,
    users: dict[str, int],
    customers: list[dict[str, Any]],
    rows: int,
) -> None:
    """A few tickets through the workflow engine (as the API makes them), the rest in bulk.

    The bulk rows copy a created row's system columns (workflow version, SLA status,
    defaults) and vary priority, category, customer, state and text; numbers continue
    the sequence, which is then set past the last one. On SQLite the FTS triggers index
    each inserted row.
    """
    workflow = WorkflowEngine(store, observers=[clocks_for(app)])
    agent = _actor(users, "agent")
    first = min(rows, 5)
    for n in range(first):
        workflow.create("ticket", _ticket_body(n, customers), actor=agent)
    table = store.table("ticket")
    with store.engine.connect() as connection:
        template = dict(
            connection.execute(sa.select(table).order_by(table.c.id.desc()).limit(1))
            .mappings()
            .one()
        )
    rng = random.Random(4)
    made = first
    while made < rows:
        batch = [_bulk_row(template, made + i + 1, rng, customers, users)
                 for i in range(min(_CHUNK, rows - made))]  # fmt: skip
        with store.transaction() as connection:
            connection.execute(table.insert(), batch)
        made += len(batch)
    with store.transaction() as connection:
        connection.execute(
            sa.update(pt.sequences)
            .where(pt.sequences.c.app == APP, pt.sequences.c.entity == "ticket",
                   pt.sequences.c.period == "")
            .values(value=rows))  # fmt: skip


def _ticket_body(n: int, customers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A valid create body for the agent: p2/p3 with a long enough description."""
    customer = customers[n % len(customers)]
    return {
        "title": f"Bench ticket {n}: printer prints blank pages",
        "description": f"Since Monday the printer on floor {n % 9} prints blank pages only.",
        "priority": "p2" if n % 2 else "p3",
        "category": _CATEGORIES[n % len(_CATEGORIES)],
        "customer": customer["id"],
        "contact_email": customer["email"],
    }


def _bulk_row(
    template: dict[str, Any],
    number: int,
    rng: random.Random,
    customers: Sequence[dict[str, Any]],
    users: dict[str, int],
) -> dict[str, Any]:
    customer = rng.choice(customers)
    state = rng.choice(_STATES)
    created = template["created_at"] - dt.timedelta(minutes=number)
    row = {k: v for k, v in template.items() if k != "id"}
    row.update(
        number=f"TCK-{number:06d}", title=" ".join(rng.sample(_WORDS, 3)).capitalize(),
        description=" ".join(rng.choices(_WORDS, k=14)), priority=rng.choice(_PRIORITIES),
        category=rng.choice(_CATEGORIES), customer=customer["id"],
        contact_email=customer["email"], is_vip=customer["level"] == "vip",
        customer_region=customer["region"], state=state, created_at=created,
        updated_at=created, row_version=1,
        assignee=users["agent"] if state != "new" else None,
        resolution="Restarted the spooler." if state == "pending_customer" else None,
    )  # fmt: skip
    return row


def _readable_ids(store: RecordStore, app: AppModel, agent_id: int) -> list[int]:
    """The ids of the tickets the agent may read (its data scope, as the guard applies it)."""
    table = store.table("ticket")
    with store.engine.connect() as connection:
        principal = load_principal(connection, agent_id, app)
        where = scope_clause(principal, "ticket", table, store.resolver("ticket"), app)
        query = sa.select(table.c.id).where(table.c.deleted_at.is_(None))
        if where is not None:
            query = query.where(where)
        ids = list(connection.execute(query).scalars())
    if not ids:
        raise BenchError("the agent may read no ticket: the policy changed?")
    return ids


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="api_bench_") as folder:
        yield f"sqlite:///{folder}/flowdesk.db"


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database `flowdesk_api_bench` next to `admin_url`'s, dropped afterwards."""
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = POSTGRES_DATABASE
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        raise BenchError(f"cannot create the PostgreSQL database: {error.orig}") from None
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# =========================================================================== servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One uvicorn process (one worker) serving an app factory."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def serve(
    name: str, factory: str, url: str, health: str, logs: Path, app_dir: Path | None = None
) -> Iterator[Server]:
    """Start `factory` under uvicorn, wait until `health` answers 200, stop it after."""
    port = _free_port()
    env = dict(os.environ, FLOWDESK_DATABASE_URL=url, FLOWDESK_SECRET_KEY=SECRET,
               PYTHONPATH=os.pathsep.join([str(ROOT / "platform"), os.environ.get(
                   "PYTHONPATH", "")]).rstrip(os.pathsep))  # fmt: skip
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--log-level", "warning",
               "--no-access-log"]  # fmt: skip
    if app_dir is not None:
        command += ["--app-dir", str(app_dir)]
    log = logs / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   cwd=ROOT)  # fmt: skip
    server = Server(name, port, process, log)
    try:
        _wait_healthy(server, health)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"the {server.name} server exited ({server.process.returncode}):\n"
                + server.log.read_text(errors="replace")[-2000:]
            )
        try:
            with urllib.request.urlopen(f"http://{server.host}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise BenchError(f"the {server.name} server did not answer {path} within {timeout:.0f} s")


# =========================================================================== load


@dataclass(frozen=True)
class Side:
    """How one server is asked for the three endpoints."""

    name: str
    makers: dict[str, RequestMaker]


def generated_side(host: str, token: str, prepared: Prepared, seed: int) -> Side:
    headers = [("Authorization", f"Bearer {token}"), ("Accept", "application/json")]
    base = f"/api/v1/{APP}/ticket"
    listing = f"{base}?filter={quote(_P2_FILTER)}&limit=20"
    return Side("generated", _makers(host, headers, prepared, seed,
                                     get=lambda i: f"{base}/{i}", listing=listing,
                                     create=base))  # fmt: skip


def handwritten_side(host: str, prepared: Prepared, seed: int) -> Side:
    headers = [("Accept", "application/json")]
    return Side("hand-written", _makers(host, headers, prepared, seed,
                                        get=lambda i: f"/tickets/{i}",
                                        listing="/tickets?priority=p2&limit=20",
                                        create="/tickets"))  # fmt: skip


def _makers(
    host: str,
    headers: list[tuple[str, str]],
    prepared: Prepared,
    seed: int,
    *,
    get: Callable[[int], str],
    listing: str,
    create: str,
) -> dict[str, RequestMaker]:
    rng = random.Random(seed)
    ids = prepared.readable_ids
    customers = [{"id": c, "email": f"bench{c}@example.com"} for c in prepared.customers]
    bodies = [json.dumps(_ticket_body(n, customers)).encode() for n in range(64)]
    list_request = http_request("GET", listing, host, headers=headers)
    post_headers = [*headers, ("Content-Type", "application/json")]
    return {
        "get": lambda _n: http_request("GET", get(rng.choice(ids)), host, headers=headers),
        "list": lambda _n: list_request,
        "create": lambda n: http_request(
            "POST", create, host, headers=post_headers, body=bodies[n % len(bodies)]
        ),
    }


def check_endpoints(side: Side, port: int) -> None:
    """One request per endpoint before timing, so a broken endpoint fails fast and loud."""
    for endpoint, maker in side.makers.items():
        result = asyncio.run(run_load("127.0.0.1", port, maker, concurrency=1, seconds=0.2,
                                      warmup=0))  # fmt: skip
        _require_ok(side.name, endpoint, result)


def _require_ok(side: str, endpoint: str, result: LoadResult) -> None:
    if not result.ok:
        reason = result.failure or result.example_error or "no request completed"
        raise BenchError(f"{side} {endpoint}: {reason} (statuses {result.statuses})")


@dataclass
class Figures:
    rps: float
    p50: float
    p99: float


def drive(
    sides: Sequence[tuple[Side, int]], args: argparse.Namespace
) -> dict[str, dict[str, Figures]]:
    """Endpoint -> side -> median round; sides alternate per round so load hits both."""
    runs: dict[str, dict[str, list[LoadResult]]] = {e: {} for e in ENDPOINTS}
    for endpoint in ENDPOINTS:
        for round_ in range(args.rounds):
            order = sides if round_ % 2 == 0 else list(reversed(sides))
            for side, port in order:
                result = asyncio.run(run_load(
                    "127.0.0.1", port, side.makers[endpoint], concurrency=args.concurrency,
                    seconds=args.seconds, warmup=args.warmup))  # fmt: skip
                _require_ok(side.name, endpoint, result)
                runs[endpoint].setdefault(side.name, []).append(result)
    return {e: {name: _median(results) for name, results in by_side.items()}
            for e, by_side in runs.items()}  # fmt: skip


def _median(results: list[LoadResult]) -> Figures:
    chosen = sorted(results, key=lambda r: r.rps)[(len(results) - 1) // 2]
    return Figures(chosen.rps, chosen.percentile(0.5), chosen.percentile(0.99))


def bench_database(kind: str, url: str, args: argparse.Namespace) -> dict[str, dict[str, Figures]]:
    began = time.perf_counter()
    prepared = prepare(url, args.rows)
    print(f"  {kind}: {args.rows:,} tickets seeded in {time.perf_counter() - began:.1f} s; "
          f"the agent may read {len(prepared.readable_ids):,}", flush=True)  # fmt: skip
    token = issue_token(SECRET, prepared.agent_id).token
    with tempfile.TemporaryDirectory(prefix="api_bench_logs_") as folder:
        logs = Path(folder)
        with serve("generated", "flowdesk.api.app:create_app", url, "/healthz", logs) as gen, \
             serve("hand-written", "_handwritten_api:create_app", url, "/healthz", logs,
                   app_dir=BENCH) as hand:  # fmt: skip
            sides = [(generated_side(gen.host, token, prepared, 1), gen.port),
                     (handwritten_side(hand.host, prepared, 2), hand.port)]  # fmt: skip
            try:
                for side, port in sides:
                    check_endpoints(side, port)
                return drive(sides, args)
            except BenchError as error:
                raise BenchError(f"{error}{_log_tail(gen)}{_log_tail(hand)}") from None


def _log_tail(server: Server, size: int = 3000) -> str:
    text = server.log.read_text(errors="replace").strip()
    return f"\n--- {server.name} server log (end) ---\n{text[-size:]}" if text else ""


# =========================================================================== report


def report(
    kind: str, figures: dict[str, dict[str, Figures]], args: argparse.Namespace
) -> list[str]:
    """Print the table of one database; return the targets it missed."""
    print(f"\n{kind}: {args.rows:,} rows, concurrency {args.concurrency}, {args.seconds:g} s "
          f"per run, median of {args.rounds} round(s)")  # fmt: skip
    print(
        "| endpoint | generated req/s | p50 ms | p99 ms | hand-written req/s | p50 ms "
        "| p99 ms | ratio | target |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    missed = []
    for endpoint in ENDPOINTS:
        gen, hand = figures[endpoint]["generated"], figures[endpoint]["hand-written"]
        ratio = gen.rps / hand.rps
        met = ratio >= RATIO_TARGET
        if not met:
            missed.append(f"{kind} {endpoint} ratio {ratio:.2f}x < {RATIO_TARGET}x")
        print(f"| {endpoint} | {gen.rps:,.0f} | {gen.p50:.2f} | {gen.p99:.2f} | {hand.rps:,.0f} "
              f"| {hand.p50:.2f} | {hand.p99:.2f} | {ratio:.2f}x | >= {RATIO_TARGET}x "
              f"{'met' if met else 'MISSED'} |")  # fmt: skip
    if kind == "sqlite":
        creates = figures["create"]["generated"].rps
        met = creates >= SQLITE_CREATES_TARGET
        if not met:
            missed.append(f"sqlite creates {creates:,.1f}/s < {SQLITE_CREATES_TARGET:.0f}/s")
        print(
            f"\nSQLite creates through the generated API: {creates:,.1f}/s "
            f"(target >= {SQLITE_CREATES_TARGET:.0f}/s: {'met' if met else 'MISSED'})"
        )
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="tickets seeded (>= 5)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side; median reported")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 5,000 rows, 2 s per run, 1 round"
    )
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN,
        metavar="URL",
        help=f"a PostgreSQL database to connect to while creating and "
        f"dropping `{POSTGRES_DATABASE}` (default {POSTGRES_ADMIN})",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.seconds, args.rounds = 5_000, 2.0, 1
    if args.rows < 5 or args.concurrency < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--rows must be >= 5, --concurrency and --rounds >= 1, --seconds > 0")
    if args.sqlite_only and args.postgres_only:
        parser.error("--sqlite-only and --postgres-only exclude each other")
    kinds = [k for k in ("sqlite", "postgresql")
             if not (k == "sqlite" and args.postgres_only)
             and not (k == "postgresql" and args.sqlite_only)]  # fmt: skip
    print("The generated API is called as the demo `agent` (bearer token): it pays for "
          "authentication,\npermission checks, field policy and data scopes, and a create "
          "runs the workflow, SLA clocks,\nrules and audit row. The hand-written baseline "
          "has no authentication and does none of that.", flush=True)  # fmt: skip
    missed: list[str] = []
    try:
        for kind in kinds:
            databases = (sqlite_database() if kind == "sqlite"
                         else postgres_database(args.postgres))  # fmt: skip
            with databases as url:
                missed += report(kind, bench_database(kind, url, args), args)
    except BenchError as error:
        print(f"\nERROR: {error}", file=sys.stderr)
        return 1
    print("\nTargets: " + ("all met" if not missed else "missed: " + "; ".join(missed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
