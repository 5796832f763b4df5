"""Process engine benchmarks; part "due dates": business-time due dates per second.

Every SLA target, warning threshold and business-time timer is a due date, and
`flowdesk plan` re-times every open record when a calendar changes, so due
dates must cost next to nothing (the issue's target: >= 50,000 per second).

Part `due` times `BusinessCalendar.add_business_time` on the shipped service
desk calendar `cn_business` (Mon-Fri 09:00-12:00 + 13:00-18:00 Asia/Shanghai,
Chinese holidays and make-up days from the `holidays` package, company days
off) for random starts across 2026 and random durations of 15 minutes to 5
days (7,200 minutes) of business time, against a baseline in the same run:
plain `start + timedelta` over the same inputs. It also times
`business_time_between` over the resulting (start, due) pairs, the 24x7
calendar, and a cold run (a fresh calendar and an empty holidays cache, so the
lazily built year tables are included). Before timing, it checks
`between(start, due) == duration` on a sample, so a fast wrong answer fails.

It prints a table and exits 0: timings are reported, never asserted. Run from
the repository root:

    python bench/engine_bench.py [--part due] [--count 200000 --rounds 5 --seed 7]

Part `jobs` times the job worker: jobs claimed and completed per second by 1
worker process on SQLite and 1 and 2 on PostgreSQL, against a plain INSERT of
the same number of rows (one transaction each) on the same database; see the
comment above `bench_jobs`:

    python bench/engine_bench.py --part jobs [--jobs 5000 --job-rounds 3] \
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

from flowdesk.engine import calendar as calendar_module  # noqa: E402
from flowdesk.engine.calendar import BusinessCalendar  # noqa: E402
from flowdesk.model.appmodel import AppModel  # noqa: E402
from flowdesk.model.compiler import compile_source  # noqa: E402
from flowdesk.model.sources import read_app  # noqa: E402

DUE_TARGET_PER_S = 50_000
SHORTEST, LONGEST = 15, 5 * 24 * 60  # minutes of business time

# --------------------------------------------------------------------------- due dates


def _service_desk() -> AppModel:
    result = compile_source(read_app(ROOT / "apps" / "service_desk"))
    if result.app is None:
        raise SystemExit(f"apps/service_desk does not compile: {result.diagnostics[:3]}")
    return result.app


def _inputs(count: int, seed: int) -> tuple[list[dt.datetime], list[dt.timedelta]]:
    rng = random.Random(seed)
    zone = ZoneInfo("Asia/Shanghai")
    year_start = dt.datetime(2026, 1, 1, tzinfo=zone)
    span = 365 * 24 * 3600 * 10**6
    starts = [year_start + dt.timedelta(microseconds=rng.randrange(span)) for _ in range(count)]
    durations = [dt.timedelta(minutes=rng.randint(SHORTEST, LONGEST)) for _ in range(count)]
    return starts, durations


def _rate(count: int, rounds: int, run: Callable[[], object]) -> float:
    """Operations per second, the median of `rounds` timed runs."""
    rates = []
    for _ in range(rounds):
        began = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - began))
    return statistics.median(rates)


def _check(calendar: BusinessCalendar, starts: list, durations: list, sample: int) -> None:
    for start, duration in zip(starts[:sample], durations[:sample], strict=True):
        due = calendar.add_business_time(start, duration)
        if calendar.business_time_between(start, due) != duration:
            raise SystemExit(f"wrong due date: {start} + {duration} -> {due}")


def bench_due(args: argparse.Namespace) -> None:
    app = _service_desk()
    business = BusinessCalendar.from_app(app, "cn_business")
    always = BusinessCalendar.from_app(app, "support_24x7")
    starts, durations = _inputs(args.count, args.seed)
    pairs = list(zip(starts, durations, strict=True))

    calendar_module._country_days.cache_clear()
    cold = BusinessCalendar.from_app(app, "cn_business")
    began = time.perf_counter()
    for start, duration in pairs:
        cold.add_business_time(start, duration)
    cold_rate = args.count / (time.perf_counter() - began)

    _check(business, starts, durations, min(args.count, 5_000))
    dues = [business.add_business_time(s, d) for s, d in pairs]
    add, between = business.add_business_time, business.business_time_between
    add_always = always.add_business_time
    ends = list(zip(starts, dues, strict=True))
    timed: dict[str, Callable[[], object]] = {
        "baseline: start + timedelta": lambda: [s + d for s, d in pairs],
        "add_business_time, cn_business": lambda: [add(s, d) for s, d in pairs],
        "add_business_time, support_24x7": lambda: [add_always(s, d) for s, d in pairs],
        "business_time_between, cn_business": lambda: [between(s, e) for s, e in ends],
    }
    rows = [(label, _rate(args.count, args.rounds, run)) for label, run in timed.items()]
    rows.insert(2, ("  ... cold (first pass, empty caches)", cold_rate))
    baseline = rows[0][1]
    print(
        f"due dates: {args.count:,} random starts in 2026, durations {SHORTEST}-{LONGEST} "
        f"business minutes, median of {args.rounds} rounds"
    )
    print(f"{'operation':<40} {'per second':>12} {'cost':>11} {'us each':>8}")
    for label, rate in rows:
        print(f"{label:<40} {rate:>12,.0f} {baseline / rate:>10.1f}x {1e6 / rate:>8.2f}")
    due_rate = rows[1][1]
    verdict = "OK" if due_rate >= DUE_TARGET_PER_S else "MISSED"
    print(f"target >= {DUE_TARGET_PER_S:,} due dates/s on cn_business: {verdict}")
    years = sorted(business._years)
    print(f"year tables built: {years[0]}-{years[-1]}")


# --------------------------------------------------------------------------- jobs
#
# Part `jobs`: jobs claimed and completed per second by `flowdesk.jobs.Worker`
# processes (2 on PostgreSQL, 1 on SQLite, plus 1 on PostgreSQL for scale),
# against a baseline in the same run on the same database: a plain INSERT of
# the same number of rows, one transaction per row (a job costs at least one
# transaction: its completion). Two workloads: `noop` jobs (the queue's own
# cost) and `bench.insert` jobs whose handler inserts one row (the baseline's
# work, done as a job). Workers are separate processes started with `spawn`;
# the clock starts when all are connected and stops when the last one finds
# nothing due. Enqueueing (one transaction per job, with an idempotency key)
# is timed too.

JOB_BATCH = 10


def _bench_rows_table() -> Any:
    from sqlalchemy import Column, Integer, MetaData, String, Table

    return Table(
        "bench_rows",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", Integer),
        Column("note", String(40)),
    )


def _register_bench_handler() -> None:
    from flowdesk.jobs.handlers import registry

    rows = _bench_rows_table()

    def insert_row(connection: Any, job: Any) -> None:
        connection.execute(rows.insert().values(job_id=job.id, note="job"))

    registry.register("bench.insert", replace=True)(insert_row)


def _jobs_worker(url: str, name: str, ready: Any, go: Any, out: Any) -> None:
    """One worker process: connect, wait for the start signal, run until nothing is due."""
    from flowdesk.jobs.worker import Worker
    from flowdesk.store.engine import make_engine

    _register_bench_handler()
    engine = make_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    worker = Worker(engine, name, batch=JOB_BATCH, lease=600)
    ready.put(name)
    go.wait()
    outcomes = worker.drain()
    out.put((name, time.time(), len(outcomes), sum(o.status != "done" for o in outcomes)))
    engine.dispose()


def _time_workers(url: str, workers: int) -> tuple[float, list[int]]:
    """Seconds from the start signal until the last worker found nothing due."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, out, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=_jobs_worker, args=(url, f"bench-{n}", ready, go, out))
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    began = time.time()
    go.set()
    results = [out.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(60)
    failed = sum(r[3] for r in results)
    if failed:
        raise SystemExit(f"{failed} jobs did not complete")
    return max(r[1] for r in results) - began, [r[2] for r in results]


def _jobs_round(url: str, engine: Any, count: int, kind: str, workers: int, tag: str) -> dict:
    from sqlalchemy import delete, func, select

    from flowdesk.jobs.queue import enqueue, stats
    from flowdesk.store import platform_tables as pt

    rows = _bench_rows_table()
    with engine.begin() as connection:
        connection.execute(delete(pt.jobs))
        connection.execute(delete(rows))
    began = time.perf_counter()
    for n in range(count):
        with engine.begin() as connection:
            enqueue(connection, kind, {"n": n}, idempotency_key=f"bench:{tag}:{n}")
    enqueued = count / (time.perf_counter() - began)
    seconds, shares = _time_workers(url, workers)
    done = stats(engine)["done"]
    with engine.connect() as connection:
        effects = connection.execute(select(func.count()).select_from(rows)).scalar_one()
    expected = count if kind == "bench.insert" else 0
    if done != count or effects != expected:
        raise SystemExit(f"{kind}: {done} of {count} jobs done, {effects} effect rows")
    return {"rate": count / seconds, "enqueue": enqueued, "shares": shares}


def _plain_inserts(engine: Any, count: int) -> float:
    from sqlalchemy import delete

    rows = _bench_rows_table()
    with engine.begin() as connection:
        connection.execute(delete(rows))
    insert = rows.insert()
    began = time.perf_counter()
    for n in range(count):
        with engine.begin() as connection:
            connection.execute(insert, {"job_id": n, "note": "plain"})
    return count / (time.perf_counter() - began)


def _bench_database(label: str, url: str, plans: list[tuple[str, int]], args: Any) -> list:
    """Rounds interleave the baseline and every plan, so a change in the machine's
    load (or in the disk's fsync time) during the run hits all rows alike."""
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    _bench_rows_table().metadata.create_all(engine)
    baseline, enqueued = [], []
    rates: dict[tuple[str, int], list[float]] = {plan: [] for plan in plans}
    shares: dict[tuple[str, int], list[int]] = {}
    try:
        for round_ in range(args.job_rounds):
            baseline.append(_plain_inserts(engine, args.jobs))
            for kind, workers in plans:
                tag = f"{kind}{workers}r{round_}"
                result = _jobs_round(url, engine, args.jobs, kind, workers, tag)
                rates[(kind, workers)].append(result["rate"])
                enqueued.append(result["enqueue"])
                shares[(kind, workers)] = result["shares"]
    finally:
        engine.dispose()
    rows = [
        (label, "baseline: INSERT, 1 row per transaction", statistics.median(baseline)),
        (label, "enqueue, 1 job per transaction", statistics.median(enqueued)),
    ]
    for (kind, workers), values in rates.items():
        what = "1 worker" if workers == 1 else f"{workers} workers"
        share = "/".join(map(str, shares[(kind, workers)]))
        detail = "" if workers == 1 else f" (jobs each, last round: {share})"
        rows.append((label, f"{what}, {kind} jobs{detail}", statistics.median(values)))
    return rows


def bench_jobs(args: argparse.Namespace) -> None:
    import os
    import tempfile
    import uuid

    print(
        f"jobs: {args.jobs:,} jobs per run, claimed {JOB_BATCH} at a time, one transaction "
        f"per job, median of {args.job_rounds} round(s)"
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        rows += _bench_database("SQLite", url, [("noop", 1), ("bench.insert", 1)], args)
    base = args.postgres or os.environ.get("FLOWDESK_TEST_POSTGRES_URL")
    if base:
        from flowdesk.store.engine import make_engine

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_engine(base)
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}options=-csearch_path%3D{schema}"
        try:
            plans = [("noop", 1), ("noop", 2), ("bench.insert", 1), ("bench.insert", 2)]
            rows += _bench_database("PostgreSQL", url, plans, args)
        finally:
            with admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
    else:
        print("(PostgreSQL skipped: give --postgres URL or set FLOWDESK_TEST_POSTGRES_URL)")
    print(f"{'database':<11} {'workload':<62} {'per second':>11} {'vs baseline':>12}")
    baseline = 0.0
    for label, workload, rate in rows:
        if workload.startswith("baseline"):
            baseline = rate
        print(f"{label:<11} {workload:<62} {rate:>11,.0f} {rate / baseline:>11.2f}x")


# --------------------------------------------------------------------------- driver

PARTS: dict[str, Callable[[argparse.Namespace], None]] = {"due": bench_due}
PARTS["jobs"] = bench_jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=sorted(PARTS), action="append", help="which part to run (default: all)"
    )
    parser.add_argument("--count", type=int, default=200_000, help="due dates per round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; the median counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=5_000, help="jobs per run (part jobs)")
    parser.add_argument("--job-rounds", type=int, default=3, help="rounds of part jobs")
    parser.add_argument(
        "--postgres", help="PostgreSQL URL for part jobs (default: FLOWDESK_TEST_POSTGRES_URL)"
    )
    args = parser.parse_args(argv)
    for part in args.part or PARTS:
        PARTS[part](args)
    return 0


# --------------------------------------------------------------------------- SLA bookkeeping
# Part `sla`: what SLA clocks add to a record write. On a fresh SQLite file with
# the service desk, 1,000 tickets are updated (their priority alternates p3/p2,
# so every write re-targets two clocks and enqueues new timer jobs: the costly
# case) through RecordStore.update alone (baseline), then with
# SlaClocks.after_update in the same transaction.

SLA_WRITES = 1_000


def _sla_setup(url: str) -> tuple[Any, Any, Any, Any, list[dict]]:
    from flowdesk.engine.sla import SlaClocks
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import upgrade
    from flowdesk.store.records import Actor, RecordStore
    from flowdesk.store.tables import build_tables

    app = _service_desk()
    engine = make_engine(url)
    upgrade(engine)
    tables = build_tables(app)
    next(iter(tables.values())).main.metadata.create_all(engine)
    store = RecordStore(engine, app, tables)
    clocks = SlaClocks(app)
    actor = Actor(None, "bench", roles=("agent",))
    values = {"title": "VPN is down", "contact_email": "a@example.com", "priority": "p3",
              "description": "The VPN drops every few minutes since this morning."}
    records = []
    for _ in range(SLA_WRITES):
        with engine.begin() as connection:
            record = store.create("ticket", values, actor=actor, connection=connection)
            clocks.after_create(connection, "ticket", record, actor)
        records.append(record)
    return engine, store, clocks, actor, records


def _sla_writes(
    engine: Any, store: Any, clocks: Any, actor: Any, records: list, sla: bool
) -> float:
    began = time.perf_counter()
    for index, record in enumerate(records):
        priority = "p2" if record["priority"] == "p3" else "p3"
        with engine.begin() as connection:
            after = store.update("ticket", record["id"], {"priority": priority}, actor=actor,
                                 expected_version=record["row_version"], connection=connection)
            if sla:
                clocks.after_update(connection, "ticket", record, after, actor)
        records[index] = after
    return len(records) / (time.perf_counter() - began)


def bench_sla(args: argparse.Namespace) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        engine, store, clocks, actor, records = _sla_setup(f"sqlite:///{folder}/sla.db")
        plain, with_sla = [], []
        for _ in range(min(args.rounds, 3)):
            plain.append(_sla_writes(engine, store, clocks, actor, records, sla=False))
            with_sla.append(_sla_writes(engine, store, clocks, actor, records, sla=True))
        engine.dispose()
    base, rate = statistics.median(plain), statistics.median(with_sla)
    print(f"\nSLA bookkeeping per write (SQLite, {SLA_WRITES:,} ticket updates, median)")
    print(f"{'workload':<58} {'writes/s':>11} {'vs base':>11}")
    print(f"{'baseline: RecordStore.update (priority p3 <-> p2)':<58} {base:>11,.0f} {1:>11.2f}x")
    print(f"{'update + SlaClocks.after_update (2 clocks re-targeted)':<58} {rate:>11,.0f} "
          f"{rate / base:>11.2f}x")
    print(f"SLA bookkeeping costs {1000 / rate - 1000 / base:.2f} ms per write")


PARTS["sla"] = bench_sla


# --------------------------------------------------------------------------- transitions
# Part `transitions`: workflow transitions per second through WorkflowEngine (guard,
# roles, required fields, actions, audit row, SLA clocks as observer), on a fresh
# SQLite file with the service desk. 200 tickets are accepted, then cycle
# resolve -> reject_resolution -> resume. Baseline: plain one-row insert transactions
# on the same database (the "plain-insert baseline in the same run").

TRANSITION_TICKETS = 200


def bench_transitions(args: argparse.Namespace) -> None:
    import tempfile

    from flowdesk.engine.sla import clocks_for
    from flowdesk.engine.workflow import WorkflowEngine
    from flowdesk.store.engine import make_engine
    from flowdesk.store.migrate import upgrade
    from flowdesk.store.records import Actor, RecordStore
    from flowdesk.store.tables import build_tables

    app = _service_desk()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/transitions.db")
        upgrade(engine)
        tables = build_tables(app)
        next(iter(tables.values())).main.metadata.create_all(engine)
        _bench_rows_table().metadata.create_all(engine)
        store = RecordStore(engine, app, tables)
        flow = WorkflowEngine(store, observers=[clocks_for(app)])
        actor = Actor(None, "bench", roles=("agent",))
        values = {"title": "VPN is down", "contact_email": "a@example.com", "priority": "p3",
                  "description": "The VPN drops every few minutes since this morning."}
        tickets = [flow.create("ticket", values, actor=actor) for _ in range(TRANSITION_TICKETS)]
        steps = [("resolve", {"resolution": "Restarted the concentrator", "category": "network"},
                  None), ("reject_resolution", None, "still broken"), ("resume", None, None)]
        began = time.perf_counter()
        taken = 0
        for index, ticket in enumerate(tickets):
            ticket = flow.transition("ticket", ticket["id"], "accept", actor=actor,
                                     expected_version=ticket["row_version"])
            for _ in range(2):
                for name, given, comment in steps:
                    ticket = flow.transition("ticket", ticket["id"], name, actor=actor,
                                             expected_version=ticket["row_version"],
                                             values=given, comment=comment)
                    taken += 1
            tickets[index] = ticket
            taken += 1
        rate = taken / (time.perf_counter() - began)
        base = _plain_inserts(engine, 2_000)
        engine.dispose()
    print(f"\nWorkflow transitions (SQLite, {taken:,} transitions with audit and SLA clocks)")
    print(f"{'workload':<58} {'per s':>11} {'vs base':>11}")
    print(f"{'baseline: plain one-row insert transactions':<58} {base:>11,.0f} {1:>11.2f}x")
    print(f"{'WorkflowEngine.transition (service desk ticket)':<58} {rate:>11,.0f} "
          f"{rate / base:>11.2f}x")
    print(f"target >= 300 transitions/s: {'met' if rate >= 300 else 'missed'}")


PARTS["transitions"] = bench_transitions

if __name__ == "__main__":
    sys.exit(main())
