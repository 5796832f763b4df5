"""Importing an organisation (departments, positions, people, roles) from a file.

`import_org(engine, paths)` reads an XLSX workbook (the shipped template, see
`org_template`), CSV files (one sheet each) or a JSON object of arrays, checks the
WHOLE file first and reports every problem with its sheet, row and column, and only
then synchronises the organisation tables with it in one transaction:

* nothing is written when anything is wrong, unless `partial=True`: then the rows with
  problems (and rows that depend on them) are left out and the rest is written;
* re-importing is a sync keyed by department / position codes and employee ids: new
  entries are added, changed ones updated, people no longer listed are deactivated
  (never deleted, so records, approvals and audit rows keep pointing at them);
* `dry_run=True` checks and counts what would change, and writes nothing.

Roles are checked against the deployed apps (their Policy roles plus the standard
roles); `app:role` pairs, several separated by `;`. See docs/onboarding.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from flowdesk.model.policy import STANDARD_ROLES
from flowdesk.store import platform_tables as pt
from flowdesk.store.deploy import load_active

from ._org_check import check_org, known_names
from ._org_read import SHEETS, OrgProblem, OrgSource, read_org_files
from ._org_sync import KindSummary, apply_sync, load_database, plan_sync

__all__ = ["OrgImportReport", "OrgProblem", "deployed_catalogue", "import_org"]

_STRUCTURAL = {"unreadable", "unknown-sheet", "unknown-column", "missing-column",
               "duplicate-column", "duplicate-sheet"}  # fmt: skip
_KEYS = {"departments": "code", "positions": "code", "people": "employee_id"}


@dataclass
class OrgImportReport:
    """What an import found and did.

    `problems` are every problem of the file (and the few the sync finds, such as a
    username that is taken). `summary` counts per kind what was (or, in a dry run, would
    be) added, updated, deactivated and left unchanged, with the keys of each change.
    `written` says whether the database was changed.
    """

    problems: list[OrgProblem]
    summary: dict[str, KindSummary] = field(default_factory=dict)
    written: bool = False
    dry_run: bool = False
    partial: bool = False
    rows: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The JSON report (`flowdesk import org --format json`)."""
        return {
            "ok": self.ok, "written": self.written, "dry_run": self.dry_run,
            "partial": self.partial, "rows": self.rows, "skipped": self.skipped,
            "problems": [p.as_dict() for p in self.problems],
            "summary": {kind: {**s.counts(), "changes": {"added": s.added, "updated": s.updated,
                                                        "deactivated": s.deactivated}}
                        for kind, s in self.summary.items()},
        }  # fmt: skip


def import_org(
    engine: Engine,
    paths: Iterable[Path],
    *,
    dry_run: bool = False,
    partial: bool = False,
    now: dt.datetime | None = None,
    roles: Mapping[str, set[str]] | None = None,
    calendars: set[str] | None = None,
) -> OrgImportReport:
    """Check the organisation file(s) and synchronise the organisation tables with them.

    Args:
        engine: a migrated Flowdesk database.
        paths: one .xlsx or .json file, or one or more .csv files (one sheet each:
            departments, positions, people, told apart by file name or header).
        dry_run: check and count, write nothing.
        partial: write the good rows even when some rows have problems (problems with
            the file's structure, such as an unknown column, still stop everything).
        now: the time stamped on changed rows (tests).
        roles / calendars: app -> role names and the calendar names to check against;
            default: those of the apps deployed in `engine`.

    Returns:
        The report; never raises for a bad file.
    """
    source = read_org_files([Path(p) for p in paths])
    report = OrgImportReport(problems=list(source.problems), dry_run=dry_run, partial=partial)
    if any(p.code in _STRUCTURAL for p in source.problems) or not source.rows:
        if not source.rows and not source.problems:
            report.problems.append(OrgProblem("", 0, "", "the file holds no sheet to import",
                                              "empty"))  # fmt: skip
        return report
    moment = now or dt.datetime.now(dt.UTC)
    with engine.connect() as connection:
        if roles is None or calendars is None:
            found_roles, found_calendars = deployed_catalogue(connection)
            roles = found_roles if roles is None else roles
            calendars = found_calendars if calendars is None else calendars
        _run(connection, source, report, roles, calendars, moment)
        if report.written:
            connection.commit()
        else:
            connection.rollback()
    return report


def _run(connection: Connection, source: OrgSource, report: OrgImportReport,
         roles: Mapping[str, set[str]], calendars: set[str], now: dt.datetime) -> None:  # fmt: skip
    database = load_database(connection)
    checked = check_org(source, database.context(roles, calendars), partial=report.partial)
    report.problems, report.rows, report.skipped = checked.problems, checked.rows, checked.dropped
    if report.problems and not report.partial:
        return
    present = {sheet: known_names(source.rows.get(sheet, []), _KEYS[sheet]) for sheet in SHEETS}
    plan = plan_sync(checked, database, sheets=set(source.rows), headers=source.headers,
                     present=present)  # fmt: skip
    report.problems += plan.problems
    report.summary = plan.summary
    if (plan.problems and not report.partial) or report.dry_run:
        return
    apply_sync(connection, plan, database, now)
    report.written = True


def deployed_catalogue(connection: Connection) -> tuple[dict[str, set[str]], set[str]]:
    """The role names (standard roles + Policy roles) of each active app, and the
    calendar names of all of them: what an organisation file may refer to."""
    names = connection.execute(
        select(pt.app_versions.c.app).where(pt.app_versions.c.active.is_(True)).distinct()
    ).scalars().all()
    roles: dict[str, set[str]] = {}
    calendars: set[str] = set()
    for name in names:
        app = load_active(connection, name)
        if app is None:
            continue
        known = set(STANDARD_ROLES)
        for policy in app.documents.get("Policy", {}).values():
            known.update(policy.roles)
        roles[name] = known
        calendars.update(app.documents.get("Calendar", {}))
    return roles, calendars
