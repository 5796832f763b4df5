"""`flowdesk import data`: a ticket history into the service desk app, on SQLite and PostgreSQL.

2,000 rows with 1% bad rows and 0.5% duplicates: the dry run reports exactly
those rows and writes nothing; the import writes every other row exactly once,
keeping the original numbers, times and states, with an audit row saying where
each record came from; a SIGKILL in the middle of a real CLI run and `--resume`
end with every good row exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from test_data_import_support import ROOT, ROWS, deployed_desk, ticket_history

from flowdesk.model.appmodel import AppModel
from flowdesk.onboarding._data_sample import Sample
from flowdesk.onboarding._mapping import parse_mapping
from flowdesk.onboarding.data import DataImportError, import_data
from flowdesk.store import platform_tables as pt
from flowdesk.store.engine import read_only
from flowdesk.store.records import Actor, RecordStore


@pytest.fixture
def desk(engine: sa.Engine) -> tuple[sa.Engine, AppModel]:
    return deployed_desk(engine)


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, Path, Sample]:
    return ticket_history(tmp_path)


def tickets(engine: sa.Engine, app: AppModel) -> list[Any]:
    table = RecordStore(engine, app).table("ticket")
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)))


def good_numbers(sample: Sample) -> set[str]:
    """Row r holds ticket TCK-(r-1), except the duplicates, which copy an earlier row."""
    return {f"TCK-{r - 1:06d}" for r in range(2, ROWS + 2) if r not in sample.rejected}


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_dry_run_reports_exactly_the_bad_and_duplicate_rows(desk: Any, history: Any,
                                                            tmp_path: Path) -> None:
    engine, app = desk
    source, mapping_file, sample = history
    report = tmp_path / "problems.csv"
    mapping = parse_mapping(mapping_file.read_text(encoding="utf-8"), str(mapping_file))
    summary = import_data(engine, app, "ticket", source, mapping, dry_run=True, report=report)
    problems = report_rows(report)
    assert {int(p["row"]) for p in problems} == sample.rejected
    assert len(sample.bad) == 20 and len(sample.duplicates) == 10
    assert summary.rows == ROWS and summary.bad == 30 and summary.good == ROWS - 30
    by_row = {int(p["row"]): p for p in problems}
    for row, original in sample.duplicates.items():
        assert by_row[row]["code"] == "duplicate"
        assert f"duplicate of row {original}" in by_row[row]["message"]
    codes = {kind: {by_row[row]["code"] for row, k in sample.bad.items() if k == kind}
             for kind in set(sample.bad.values())}  # fmt: skip
    assert codes == {"bad-date": {"bad-format"}, "bad-priority": {"not-allowed"},
                     "no-title": {"required"}, "unknown-customer": {"not-found"},
                     "short-title": {"too-short"}}  # fmt: skip
    bad_date = next(by_row[r] for r, k in sample.bad.items() if k == "bad-date")
    assert bad_date["column"] == "创建时间" and "2023/13/45 25:61" in bad_date["message"]
    assert tickets(engine, app) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pt.import_runs)).scalar() == 0


def test_import_writes_every_good_row_once_keeping_history(desk: Any, history: Any,
                                                           tmp_path: Path) -> None:
    engine, app = desk
    source, mapping_file, sample = history
    mapping = parse_mapping(mapping_file.read_text(encoding="utf-8"), str(mapping_file))
    report = tmp_path / "problems.json"
    summary = import_data(engine, app, "ticket", source, mapping, batch_size=300, report=report)
    assert summary.status == "done" and summary.imported == ROWS - 30
    rows = tickets(engine, app)
    numbers = [row.number for row in rows]
    expected = good_numbers(sample)
    assert len(numbers) == len(set(numbers)) == len(expected) and set(numbers) == expected
    first = next(r for r in rows if r.number == "TCK-000001")
    with source.open(encoding="utf-8") as handle:
        line = next(r for r in csv.DictReader(handle) if r["工单号"] == "TCK-000001")
    assert first.title == line["标题"]
    store = RecordStore(engine, app)
    record = store.get("ticket", first.id)
    local = record["created_at"].astimezone(ZoneInfo("Asia/Shanghai"))  # the app's zone
    assert local.strftime("%Y/%m/%d %H:%M") == line["创建时间"]
    states = {"已关闭": "closed", "处理中": "in_progress", "新建": "new"}
    assert record["state"] == states[line["状态"]]
    code = line["客户编号"]
    customer = store.list("customer", filter=f'record.code == "{code}"').items[0]
    assert record["customer"] == customer["id"]  # looked up by its natural key
    assert record["customer_region"] == customer["region"]  # computed through the reference
    entry = store.timeline("ticket", first.id)[0]
    assert entry.action == "create" and entry.comment == "imported from tickets.csv row 2"
    # new tickets are numbered after the imported ones
    fresh = store.create("ticket", {"title": "A new ticket", "contact_email": "a@example.com"},
                         actor=Actor(None, "test"))
    highest = max(int(number[4:]) for number in expected)
    assert fresh["number"] == f"TCK-{highest + 1:06d}"
    document = json.loads(report.read_text(encoding="utf-8"))
    assert {p["row"] for p in document["problems"]} == sample.rejected
    assert document["summary"]["imported"] == ROWS - 30
    with engine.connect() as conn:
        run = conn.execute(sa.select(pt.import_runs)).one()
    assert (run.status, run.imported, run.last_row) == ("done", ROWS - 30, ROWS + 1)
    with pytest.raises(DataImportError, match="already done"):
        import_data(engine, app, "ticket", source, mapping, resume=run.id)
    again = import_data(engine, app, "ticket", source, mapping, dry_run=True)
    assert again.bad == ROWS and again.codes.get("exists") == ROWS - 20  # good rows + copies


def test_no_workflow_automation_or_notification_runs(desk: Any, history: Any) -> None:
    engine, app = desk
    source, mapping_file, _sample = history
    mapping = parse_mapping(mapping_file.read_text(encoding="utf-8"), str(mapping_file))
    import_data(engine, app, "ticket", source, mapping)
    with engine.connect() as conn:
        for table in (pt.jobs, pt.workflow_tokens, pt.sla_clocks, pt.notifications,
                      pt.automation_runs):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def _cli(database_url: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), "import", "data", "service_desk", "ticket",
            *args, "--database-url", database_url]


def test_sigkill_mid_import_then_resume_writes_every_good_row_once(
    desk: Any, history: Any, database_url: str, tmp_path: Path
) -> None:
    engine, app = desk
    source, mapping_file, sample = history
    command = _cli(database_url, str(source), "--mapping", str(mapping_file), "--batch-size", "5")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT / "platform")})
    run = _wait_for_progress(engine, process, minimum=100)
    process.send_signal(signal.SIGSTOP)  # freeze it at once; reading the run takes time
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with engine.connect() as conn:
        killed = conn.execute(sa.select(pt.import_runs).where(pt.import_runs.c.id == run)).one()
    assert killed.status == "running" and 100 <= killed.imported < ROWS - 30
    assert len(tickets(engine, app)) == killed.imported  # the batch in flight rolled back
    done = subprocess.run([*command, "--resume", str(run)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "platform")})
    assert done.returncode == 1, done.stderr  # 1: some rows were refused
    assert "Traceback" not in done.stderr
    assert f"import run {run}:" in done.stdout and "done" in done.stdout
    numbers = [row.number for row in tickets(engine, app)]
    expected = good_numbers(sample)
    assert len(numbers) == len(set(numbers)) and set(numbers) == expected
    with engine.connect() as conn:
        final = conn.execute(sa.select(pt.import_runs).where(pt.import_runs.c.id == run)).one()
    assert (final.status, final.imported) == ("done", ROWS - 30)


def _wait_for_progress(engine: sa.Engine, process: subprocess.Popen, minimum: int) -> int:
    """The run id, once the CLI committed `minimum` records (read without a write lock)."""
    reader = read_only(engine) if engine.dialect.name == "sqlite" else engine
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with reader.connect() as conn:
            row = conn.execute(sa.select(pt.import_runs.c.id, pt.import_runs.c.imported)).first()
        if row is not None and row.imported >= minimum:
            return int(row.id)
        time.sleep(0.02)
    raise AssertionError("the import made no progress")


def test_changes_between_the_passes_are_seen_by_the_import_pass(desk: Any, history: Any,
                                                                tmp_path: Path) -> None:
    """The import pass reuses the validation pass's checked rows only while what they
    read is unchanged: a customer deleted or moved in between is seen."""
    engine, app = desk
    source, mapping_file, sample = history
    mapping = parse_mapping(mapping_file.read_text(encoding="utf-8"), str(mapping_file))
    store = RecordStore(engine, app)
    customers = {c["code"]: c for c in store.list("customer", limit=100).items}
    gone, moved = customers["C000001"], customers["C000002"]
    admin = Actor(None, "test")

    def between(phase: str, _rows: int, _imported: int) -> None:
        if phase == "run":  # after the validation pass, before the first batch
            store.delete("customer", gone["id"], actor=admin)
            store.update("customer", moved["id"], {"region": "west"},
                         expected_version=moved["row_version"], actor=admin)

    report = tmp_path / "problems.csv"
    summary = import_data(engine, app, "ticket", source, mapping, report=report,
                          progress=between)  # fmt: skip
    late = [p for p in report_rows(report) if p["phase"] == "import"]
    with source.open(encoding="utf-8") as handle:
        rows = {n: r for n, r in enumerate(csv.DictReader(handle), start=2)}
    expected = {n for n, r in rows.items() if r["客户编号"] == "C000001"} - sample.rejected
    assert {int(p["row"]) for p in late} == expected and expected
    assert all(p["code"] == "not-found" for p in late)
    assert summary.imported == ROWS - 30 - len(expected)
    table = store.table("ticket")
    with engine.connect() as conn:
        regions = set(conn.execute(sa.select(table.c.customer_region)
                                   .where(table.c.customer == moved["id"])).scalars())
    assert regions == {"west"}  # computed again from the customer as it is now
