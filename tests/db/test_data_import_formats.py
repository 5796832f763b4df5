"""`flowdesk import data`: mapping errors with their lines, XLSX and JSON Lines sources,
unique fields and natural keys, resume refusals and the CLI's exit codes and messages."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from test_data_import_support import CUSTOMERS, ROOT, deployed_desk

from flowdesk.cli.main import main
from flowdesk.onboarding._mapping import MappingError, parse_mapping
from flowdesk.onboarding.data import DataImportError, import_data
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import RecordStore

CUSTOMER_MAPPING = """\
entity: customer
columns:
  编号: code
  名称: name
  等级: {field: level, values: {普通: normal, 重要: vip}}
  区域: {field: region, values: {华北: north, 华东: east}}
  CRM: crm_id
  同步时间: synced_at
"""


@pytest.fixture
def desk(engine: sa.Engine) -> tuple[sa.Engine, Any]:
    return deployed_desk(engine)


def mapping_of(text: str) -> Any:
    return parse_mapping(text, "map.yaml")


# ------------------------------------------------------------------ the mapping document


def test_mapping_errors_are_all_reported_with_their_lines() -> None:
    text = "columns:\n  标题: title\n  优先级: {field: priority, colour: red}\n  x: 3\nextra: 1\n"
    with pytest.raises(MappingError) as caught:
        mapping_of(text)
    found = [(p.pointer, p.line, p.column) for p in caught.value.problems]
    assert found == [("/columns/优先级/colour", 3, 26), ("/columns/x", 4, 3), ("/extra", 5, 1)]
    assert "a map such as {field: priority" in caught.value.problems[1].message


def test_mapping_fields_are_checked_against_the_entity(desk: Any, tmp_path: Path) -> None:
    engine, app = desk
    source = tmp_path / "t.csv"
    source.write_text("标题,客户,时间\nVPN down,C000001,2024-01-01\n", encoding="utf-8")
    text = ("columns:\n  标题: titel\n  客户: {field: customer, lookup: nickname}\n"
            "  时间: {field: channel, format: '%Y'}\n  不存在: description\n")
    with pytest.raises(MappingError) as caught:
        import_data(engine, app, "ticket", source, mapping_of(text), dry_run=True)
    messages = {(p.line, p.message) for p in caught.value.problems}
    assert any(line == 2 and "`titel` is not a field of ticket" in m for line, m in messages)
    assert any(line == 3 and "customer has no field `nickname`" in m for line, m in messages)
    assert any("`format` is for dates" in m for _line, m in messages)
    assert any(line == 5 and "no column `不存在`" in m for line, m in messages)


# ------------------------------------------------------------------ other sources


def test_xlsx_with_native_dates_and_numeric_codes(desk: Any, tmp_path: Path) -> None:
    engine, app = desk
    book = Workbook()
    sheet = book.active
    sheet.append(["编号", "名称", "等级", "区域", "CRM", "同步时间"])
    sheet.append(["C100001", "甲公司", "普通", "华北", 1024, dt.datetime(2024, 3, 1, 9, 30)])
    sheet.append(["C100002", "乙公司", "普通", "华东", 2048.0, dt.datetime(2024, 3, 2, 9, 30)])
    sheet.append(["C100003", "丙公司", "不存在", "华东", None, None])
    source = tmp_path / "customers.xlsx"
    book.save(source)
    summary = import_data(engine, app, "customer", source, mapping_of(CUSTOMER_MAPPING))
    assert (summary.imported, summary.bad, summary.bad_rows) == (2, 1, [4])
    store = RecordStore(engine, app)
    first = store.list("customer", filter='record.code == "C100001"').items[0]
    assert first["crm_id"] == "1024" and first["region"] == "north"
    assert first["synced_at"] == dt.datetime(2024, 3, 1, 1, 30, tzinfo=dt.UTC)  # Asia/Shanghai
    second = store.list("customer", filter='record.code == "C100002"').items[0]
    assert second["crm_id"] == "2048"  # a whole number in a text field, as Excel shows it


def test_jsonl_unique_fields_and_natural_keys(desk: Any, tmp_path: Path) -> None:
    engine, app = desk
    lines = [
        {"编号": "C200001", "名称": "甲", "等级": "普通", "区域": "华北", "CRM": "X1"},
        {"编号": "C200002", "名称": "乙", "等级": "普通", "区域": "华北", "CRM": "X1"},
        {"编号": "C200001", "名称": "甲2", "等级": "普通", "区域": "华北", "CRM": "X3"},
        {"编号": CUSTOMERS[0], "名称": "旧", "等级": "普通", "区域": "华北"},
        "not an object",
        {"编号": "C200005", "名称": "戊", "等级": "重要", "区域": "华北"},
    ]
    source = tmp_path / "customers.jsonl"
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    source.write_text(text + "\n{broken\n", encoding="utf-8")
    summary = import_data(engine, app, "customer", source, mapping_of(CUSTOMER_MAPPING),
                          report=tmp_path / "r.json")  # fmt: skip
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    by_row = {p["row"]: p for p in report["problems"]}
    assert summary.imported == 1 and set(by_row) == {2, 3, 4, 5, 6, 7}
    assert by_row[2]["code"] == "unique" and "also in row 1" in by_row[2]["message"]
    assert by_row[3]["code"] == "duplicate" and "row 1" in by_row[3]["message"]
    assert by_row[4]["code"] == "exists"
    assert by_row[5]["code"] == "bad-line" and by_row[7]["code"] == "bad-line"
    assert by_row[6]["code"] == "rule" and by_row[6]["field"] == "account_manager"


# ------------------------------------------------------------------ runs and the CLI


def test_resume_refuses_another_file_or_an_unknown_run(desk: Any, tmp_path: Path) -> None:
    engine, app = desk
    source = tmp_path / "c.csv"
    source.write_text("编号,名称,等级,区域\nC300001,甲,普通,华北\n", encoding="utf-8")
    mapping = mapping_of(CUSTOMER_MAPPING.replace("  CRM: crm_id\n  同步时间: synced_at\n", ""))
    with engine.begin() as conn:
        run = conn.execute(pt.import_runs.insert(), {
            "app": "service_desk", "entity": "customer", "source": "c.csv", "file_hash": "0" * 64,
            "mapping_hash": "0" * 64, "status": "running", "batch_size": 10, "last_row": 0,
            "imported": 0, "rejected": 0, "started_at": dt.datetime.now(dt.UTC),
            "updated_at": dt.datetime.now(dt.UTC)}).inserted_primary_key[0]  # fmt: skip
    with pytest.raises(DataImportError, match="read another file"):
        import_data(engine, app, "customer", source, mapping, resume=run)
    with pytest.raises(DataImportError, match="no import run 999"):
        import_data(engine, app, "customer", source, mapping, resume=999)
    with pytest.raises(DataImportError, match="no entity `tickets`"):
        import_data(engine, app, "tickets", source, mapping)


def test_cli_exit_codes_and_one_line_errors(desk: Any, database_url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    engine, _app = desk
    source = tmp_path / "c.csv"
    source.write_text("编号,名称,等级,区域\nC400001,甲,普通,华北\nC4,乙,普通,华北\n",
                      encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(CUSTOMER_MAPPING.replace("  CRM: crm_id\n  同步时间: synced_at\n", ""),
                       encoding="utf-8")
    base = ["import", "data", "service_desk", "customer", str(source), "--mapping", str(mapping),
            "--database-url", database_url]
    assert main([*base, "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "2 rows, 1 good, 1 with problems" in out and "dry run" in out
    assert main([*base, "--batch-size", "0"]) == 2
    bad_map = tmp_path / "bad.yaml"
    bad_map.write_text("columns: {编号: nope}\n", encoding="utf-8")
    assert main([*base[:5], "--mapping", str(bad_map), *base[7:]]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml:1:" in err and "`nope` is not a field of customer" in err
    assert main([*base[:2], "no_such_app", *base[3:]]) == 1
    assert "no app `no_such_app` is deployed" in capsys.readouterr().err
    assert main([*base, "--format", "json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["imported"], summary["bad"], summary["status"]) == (1, 1, "done")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pt.import_runs)).scalar() == 1


def test_cli_unreadable_file_has_no_traceback(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns: {a: title}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "import", "data", "service_desk", "ticket",
         str(tmp_path / "missing.csv"), "--mapping", str(mapping),
         "--database-url", f"sqlite:///{tmp_path}/x.db"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")
