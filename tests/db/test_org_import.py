"""Organisation import (issue 8, item 1) on SQLite and PostgreSQL: the shipped Excel
template filled in and imported, whole-file checks located by sheet / row / column,
cycles, dry runs, partial imports, and re-imports as a sync that touches exactly what
changed."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from openpyxl import load_workbook

from flowdesk.cli.main import main
from flowdesk.onboarding.org import import_org
from flowdesk.store import platform_tables as pt

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "templates" / "org_import_template.xlsx"
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
ROLES = {"service_desk": {"admin", "agent", "supervisor", "customer", "service_manager"}}

DEPARTMENTS = [
    ["HQ", "Head office", None, "E001", "north"],
    ["IT", "IT", "HQ", "E002", "east"],
    ["FIN", "Finance", "HQ", "E005", "north"],
    ["NET", "Network team", "IT", "E003", "east"],
    ["DESK", "Service desk", "IT", None, "east"],
]
POSITIONS = [["CEO", "Chief executive"], ["MGR", "Manager"], ["ENG", "Engineer"]]
# Employee ID, Name, Email, Username, Department, Position, Manager, Roles, Skills, Region,
# Calendar, Phone, Locale, Timezone
PEOPLE = [
    ["E001", "Wang Jing", "wang@example.com", None, "HQ", "CEO", None, "*:admin", None,
     "north", None, "+86 10 1", "zh", "Asia/Shanghai"],
    ["E002", "Chen Hui", "chen@example.com", "chenhui", "IT", "MGR", "E001",
     "service_desk:supervisor;service_desk:service_manager", None, "east", None, None, "zh",
     None],
    ["E003", "Li Lei", "li@example.com", None, "NET", "ENG", "E002", "service_desk:agent",
     "network;hardware", "east", None, None, "en", None],
    ["E004", "Zhao Min", "zhao@example.com", None, "DESK", "ENG", "E002", "service_desk:agent",
     "phone", "east", None, None, None, None],
    ["E005", "Sun Li", "sun@example.com", None, "FIN", "MGR", "E001", None, None, "north",
     None, None, None, None],
    ["E006", "Zhou Yu", "zhou@example.com", None, "NET", "ENG", "E003", "service_desk:agent",
     None, "east", None, None, None, None],
]  # fmt: skip


def filled_template(path: Path, *, departments: list[list[Any]] = DEPARTMENTS,
                    positions: list[list[Any]] = POSITIONS,
                    people: list[list[Any]] = PEOPLE) -> Path:  # fmt: skip
    """The shipped template with its example rows replaced by these rows."""
    workbook = load_workbook(TEMPLATE)
    for title, rows in (("Departments", departments), ("Positions", positions),
                        ("People", people)):  # fmt: skip
        sheet = workbook[title]
        sheet.delete_rows(2, sheet.max_row)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def copy_rows(rows: list[list[Any]]) -> list[list[Any]]:
    return [list(row) for row in rows]


def table(engine: sa.Engine, t: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(sa.select(t).order_by(*t.primary_key))]


def org_state(engine: sa.Engine) -> dict[str, Any]:
    """The organisation on the file's terms: codes and employee ids instead of ids."""
    departments = table(engine, pt.departments)
    users = table(engine, pt.users)
    positions = table(engine, pt.positions)
    dep = {d["id"]: d["code"] for d in departments}
    pos = {p["id"]: p["code"] for p in positions}
    emp = {u["id"]: u["employee_id"] for u in users}
    roles: dict[str, set[str]] = {}
    for r in table(engine, pt.user_roles):
        roles.setdefault(emp[r["user_id"]], set()).add(f"{r['app']}:{r['role']}")
    return {
        "departments": {d["code"]: (d["name"], dep.get(d["parent_id"]), emp.get(d["head_id"]),
                                    d["region"], d["active"]) for d in departments},
        "positions": {p["code"]: p["name"] for p in positions},
        "people": {u["employee_id"]: (u["name"], u["email"], u["username"],
                                      dep.get(u["department_id"]), pos.get(u["position_id"]),
                                      emp.get(u["manager_id"]), u["skills"], u["region"],
                                      u["phone"], u["locale"], u["timezone"], u["active"])
                   for u in users},
        "roles": roles,
    }  # fmt: skip


def expected_state(people: list[list[Any]] = PEOPLE) -> dict[str, Any]:
    return {
        "departments": {d[0]: (d[1], d[2], d[3], d[4], True) for d in DEPARTMENTS},
        "positions": dict(POSITIONS),  # type: ignore[arg-type]
        "people": {p[0]: (p[1], p[2], p[3] or p[2], p[4], p[5], p[6],
                          p[8].split(";") if p[8] else None, p[9], p[11], p[12], p[13], True)
                   for p in people},
        "roles": {p[0]: set(p[7].split(";")) for p in people if p[7]},
    }  # fmt: skip


def run(engine: sa.Engine, path: Path, **options: Any) -> Any:
    options.setdefault("roles", ROLES)
    options.setdefault("calendars", set())
    return import_org(engine, [path], **options)


def located(report: Any) -> set[tuple[str, int, str]]:
    return {(p.sheet, p.row, p.column) for p in report.problems}


# --------------------------------------------------------------------------- round trip


def test_shipped_template_filled_with_three_levels_round_trips(engine, tmp_path):
    path = filled_template(tmp_path / "org.xlsx")
    report = run(engine, path, now=T0)
    assert report.problems == []
    assert report.written
    assert {k: s.counts() for k, s in report.summary.items()} == {
        "departments": {"added": 5, "updated": 0, "deactivated": 0, "unchanged": 0},
        "positions": {"added": 3, "updated": 0, "deactivated": 0, "unchanged": 0},
        "people": {"added": 6, "updated": 0, "deactivated": 0, "unchanged": 0},
    }
    assert org_state(engine) == expected_state()
    again = run(engine, path, now=T1)
    assert {k: s.counts()["unchanged"] for k, s in again.summary.items()} == {
        "departments": 5, "positions": 3, "people": 6}
    assert all(not s.added and not s.updated and not s.deactivated
               for s in again.summary.values())  # fmt: skip
    assert {u["updated_at"].replace(tzinfo=None) for u in table(engine, pt.users)} == {
        T0.replace(tzinfo=None)}


def test_csv_and_json_files_import_the_same_organisation(engine, tmp_path):
    workbook = load_workbook(filled_template(tmp_path / "org.xlsx"), read_only=True)
    csv_paths, data = [], {}
    for title in ("Departments", "Positions", "People"):
        rows = [list(r) for r in workbook[title].iter_rows(values_only=True)]
        path = tmp_path / f"{title.lower()}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([["" if v is None else v for v in r] for r in rows])
        csv_paths.append(path)
        data[title.lower()] = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    report = import_org(engine, csv_paths, roles=ROLES, calendars=set())
    assert report.problems == [] and report.written
    assert org_state(engine) == expected_state()
    for person in data["people"]:  # JSON may give lists for roles and skills
        person["Roles"] = (person["Roles"] or "").split(";") if person["Roles"] else None
    (tmp_path / "org.json").write_text(json.dumps(data), encoding="utf-8")
    again = import_org(engine, [tmp_path / "org.json"], roles=ROLES, calendars=set())
    assert again.problems == []
    assert sum(s.counts()["unchanged"] for s in again.summary.values()) == 14


# --------------------------------------------------------------------------- problems


def test_cycle_in_reporting_lines_is_reported_with_both_rows(engine, tmp_path):
    people = copy_rows(PEOPLE)
    people[2][6] = "E004"  # E003 reports to E004, who reports to E002 ...
    people[3][6] = "E003"  # ... now to E003: rows 4 and 5 form a loop
    report = run(engine, filled_template(tmp_path / "org.xlsx", people=people))
    cycles = [p for p in report.problems if p.code == "cycle"]
    assert {(p.sheet, p.row, p.column) for p in cycles} == {
        ("People", 4, "Manager employee ID"), ("People", 5, "Manager employee ID")}
    assert "E003 -> E004 -> E003" in cycles[0].message or "E004 -> E003 -> E004" in \
        cycles[0].message  # fmt: skip
    assert "with row 5" in next(p.message for p in cycles if p.row == 4)
    assert not report.written
    assert table(engine, pt.users) == []


def test_cycle_in_the_department_tree_is_reported_on_every_row_of_it(engine, tmp_path):
    departments = copy_rows(DEPARTMENTS)
    departments[0][2] = "NET"  # HQ under NET under IT under HQ
    report = run(engine, filled_template(tmp_path / "org.xlsx", departments=departments))
    assert {(p.sheet, p.row, p.column) for p in report.problems if p.code == "cycle"} == {
        ("Departments", 2, "Parent code"), ("Departments", 3, "Parent code"),
        ("Departments", 5, "Parent code")}
    assert table(engine, pt.departments) == []


def test_every_problem_is_located_by_sheet_row_and_column(engine, tmp_path):
    departments = [*copy_rows(DEPARTMENTS), ["OPS", "Operations", "NOPE", None, None],
                   ["IT", "IT again", "HQ", None, None]]
    positions = [*copy_rows(POSITIONS), ["ENG", "Duplicate"]]
    people = copy_rows(PEOPLE)
    people[1][2] = "not-an-email"  # row 3
    people[2][7] = "service_desk:wizard;helpdesk:agent"  # row 4: unknown role, unknown app
    people[3][0] = "E003"  # row 5: duplicate employee id of row 4
    people[4][4] = "MARS"  # row 6: unknown department
    people[5][2] = "WANG@example.com"  # row 7: duplicate email (case-insensitive) of row 2
    people[5][12] = "fr"  # row 7: not a locale
    people.append([None, "Nobody", None, None, None, None, None, None, None, None, None, None,
                   None, None])  # row 8: no employee id  # fmt: skip
    path = filled_template(tmp_path / "org.xlsx", departments=departments,
                           positions=positions, people=people)  # fmt: skip
    report = run(engine, path)
    assert located(report) == {
        ("Departments", 7, "Parent code"),
        ("Departments", 3, "Code"), ("Departments", 8, "Code"),
        ("Positions", 4, "Code"), ("Positions", 5, "Code"),
        ("People", 3, "Email"),
        ("People", 4, "Roles"), ("People", 4, "Employee ID"), ("People", 5, "Employee ID"),
        ("People", 6, "Department code"),
        ("People", 2, "Email"), ("People", 7, "Email"), ("People", 7, "Locale"),
        ("People", 8, "Employee ID"),
    }
    roles = sorted(p.message for p in report.problems if p.column == "Roles")
    assert any("has no role `wizard`" in m for m in roles)
    assert any("unknown app `helpdesk`" in m for m in roles)
    assert not report.written and table(engine, pt.users) == []


def test_unknown_columns_and_sheets_stop_the_import_before_the_rows(engine, tmp_path):
    path = filled_template(tmp_path / "org.xlsx")
    workbook = load_workbook(path)
    workbook["People"]["O1"] = "Shoe size"
    workbook.create_sheet("Budget")
    workbook.save(path)
    report = run(engine, path)
    assert located(report) == {("People", 1, "Shoe size"), ("Budget", 0, "")}
    assert report.summary == {} and table(engine, pt.departments) == []


def test_roles_are_checked_against_the_deployed_apps(engine, tmp_path):
    from flowdesk.cli.scaffold import scaffold_app
    from flowdesk.model.sources import read_app
    from flowdesk.store.deploy import deploy

    folder = scaffold_app("helpdesk", tmp_path)[0].parent
    texts = {str(Path(p).resolve().relative_to(folder.resolve())): t
             for p, t in read_app(folder).texts.items()}  # fmt: skip
    deploy(engine, texts, actor="test")
    people = [["E1", "Ann", "ann@example.com", None, None, None, None,
               "helpdesk:agent;*:admin", None, None, "office_hours", None, None, None],
              ["E2", "Bob", "bob@example.com", None, None, None, None,
               "helpdesk:cfo;service_desk:agent", None, None, "moon_time", None, None, None]]
    path = filled_template(tmp_path / "org.xlsx", departments=[], positions=[], people=people)
    report = import_org(engine, [path])  # roles and calendars of the deployed apps
    messages = {(p.row, p.column): p.message for p in report.problems}
    assert set(messages) == {(3, "Roles"), (3, "Calendar")}
    assert "unknown app `service_desk`" in messages[(3, "Roles")]
    assert "moon_time" in messages[(3, "Calendar")]


# --------------------------------------------------------------------------- writing


def test_dry_run_writes_nothing(engine, tmp_path):
    report = run(engine, filled_template(tmp_path / "org.xlsx"), dry_run=True)
    assert report.problems == [] and not report.written
    assert report.summary["people"].counts()["added"] == 6
    for t in (pt.departments, pt.positions, pt.users, pt.user_roles):
        assert table(engine, t) == []


def test_reimport_with_five_changes_touches_exactly_those(engine, tmp_path):
    run(engine, filled_template(tmp_path / "first.xlsx"), now=T0)
    departments, people = copy_rows(DEPARTMENTS), copy_rows(PEOPLE)
    departments[4][1] = "Service desk (24x7)"  # 1: DESK renamed
    people[3][6] = "E003"  # 2: E004 now reports to E003
    people[2][7] = "service_desk:agent;service_desk:supervisor"  # 3: E003 gains a role
    del people[5]  # 4: E006 left the company
    people.append(["E007", "Qian Wei", "qian@example.com", None, "DESK", "ENG", "E004",
                   "service_desk:agent", None, "east", None, None, None, None])  # 5: joins
    path = filled_template(tmp_path / "second.xlsx", departments=departments, people=people)
    report = run(engine, path, now=T1)
    assert report.problems == []
    changes = {kind: (s.added, s.updated, s.deactivated) for kind, s in report.summary.items()}
    assert changes == {"departments": ([], ["DESK"], []), "positions": ([], [], []),
                       "people": (["E007"], ["E003", "E004"], ["E006"])}  # fmt: skip
    touched = {u["employee_id"] for u in table(engine, pt.users)
               if u["updated_at"].replace(tzinfo=None) == T1.replace(tzinfo=None)}
    assert touched == {"E003", "E004", "E006", "E007"}
    state = org_state(engine)
    assert state["people"]["E006"][-1] is False  # deactivated, never deleted
    assert state["people"]["E004"][5] == "E003"
    assert state["roles"]["E003"] == {"service_desk:agent", "service_desk:supervisor"}
    assert state["departments"]["DESK"][0] == "Service desk (24x7)"
    back = run(engine, filled_template(tmp_path / "first.xlsx"), now=T1)  # E006 returns
    assert "E006" in back.summary["people"].updated
    assert org_state(engine)["people"]["E006"][-1] is True


def test_partial_import_writes_the_good_rows_and_leaves_out_their_dependants(engine, tmp_path):
    people = copy_rows(PEOPLE)
    people[2][2] = "broken@"  # E003: bad email; E006 reports to E003; E003 heads NET
    path = filled_template(tmp_path / "org.xlsx", people=people)
    report = run(engine, path, partial=True)
    assert report.written and report.skipped == 3  # E003, NET (its head), E006 (in NET)
    assert {("People", 4, "Email"), ("People", 7, "Manager employee ID"),
            ("Departments", 5, "Head employee ID")} <= located(report)
    assert "left out because its row has problems" in next(
        p.message for p in report.problems if p.row == 7 and p.column == "Manager employee ID")
    state = org_state(engine)
    assert set(state["people"]) == {"E001", "E002", "E004", "E005"}
    assert set(state["departments"]) == {"HQ", "IT", "FIN", "DESK"}
    assert report.ok is False


def test_a_login_made_by_hand_is_adopted_by_its_email(engine, tmp_path):
    from flowdesk.security.identity.users import create_user

    with engine.begin() as connection:
        user_id = create_user(connection, "wj", name="W. J.", email="wang@example.com")
    report = run(engine, filled_template(tmp_path / "org.xlsx"))
    assert report.problems == [] and report.summary["people"].updated == ["E001"]
    users = {u["employee_id"]: u for u in table(engine, pt.users)}
    assert users["E001"]["id"] == user_id and users["E001"]["username"] == "wj"


# --------------------------------------------------------------------------- CLI


def test_cli_reports_problems_with_exit_1_and_json(database_url, engine, tmp_path, capsys):
    people = [[*row[:7], None, *row[8:]] for row in PEOPLE]  # no app is deployed here
    people[0][7] = "nonsense"
    path = filled_template(tmp_path / "org.xlsx", people=people)
    code = main(["import", "org", str(path), "--database-url", database_url,
                 "--format", "json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["written"] is False
    assert [(p["sheet"], p["row"], p["column"]) for p in out["problems"]] == [
        ("People", 2, "Roles")]
    assert main(["import", "org", str(tmp_path / "missing.xlsx"),
                 "--database-url", database_url]) == 1  # fmt: skip
    assert "no such file" in capsys.readouterr().out


def test_cli_dry_run_then_import(database_url, engine, tmp_path, capsys):
    path = filled_template(tmp_path / "org.xlsx", people=[
        [*row[:7], None, *row[8:]] for row in PEOPLE])  # fmt: skip
    assert main(["import", "org", str(path), "--dry-run", "--database-url", database_url]) == 0
    assert "people: 6 added" in capsys.readouterr().out
    assert table(engine, pt.users) == []
    assert main(["import", "org", str(path), "--database-url", database_url]) == 0
    assert capsys.readouterr().out.strip().endswith("written")
    assert len(table(engine, pt.users)) == 6
