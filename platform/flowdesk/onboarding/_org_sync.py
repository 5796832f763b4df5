"""Synchronising the checked organisation with the organisation tables, in bulk.

The file is the source of truth for what it contains, keyed by department and position
codes and employee ids: entries missing from the database are added, entries that
differ are updated, people (and departments) of the database that the file no longer
lists are deactivated, never deleted, so their history keeps pointing at them. Only
the columns the file has are compared and written; a file without a `phone` column
leaves phone numbers alone. Users without an employee id (logins made by hand,
customers) are never touched, except that a person whose email matches such a user
adopts it (sets its employee id) instead of failing on the unique email.

The plan is computed on codes and employee ids (`plan_sync`), so a dry run can count
what would change; `apply_sync` then writes it with a handful of executemany
statements whatever the number of people: inserts first (new rows without their links),
one query to learn the new ids, then updates that set every link.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, select, update

from flowdesk.store import platform_tables as pt

from ._org_check import Checked, Department, OrgContext, Person
from ._org_read import OrgProblem

__all__ = ["Database", "KindSummary", "SyncPlan", "apply_sync", "load_database", "plan_sync"]

_PERSON_COLUMNS = ("name", "email", "username", "department_code", "position_code",
                   "manager_employee_id", "skills", "region", "calendar", "phone", "locale",
                   "timezone")  # fmt: skip
_DEPARTMENT_COLUMNS = ("name", "parent_code", "head_employee_id", "region")


@dataclass
class KindSummary:
    """What a sync does to one kind; the lists name the keys (codes, employee ids)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    unchanged: int = 0

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "updated": len(self.updated),
                "deactivated": len(self.deactivated), "unchanged": self.unchanged}  # fmt: skip


@dataclass
class Database:
    """The organisation tables as they are, keyed the way the file is."""

    departments: dict[str, dict[str, Any]]  # code -> row with parent_code, head_employee_id
    positions: dict[str, dict[str, Any]]  # code -> row
    people: dict[str, dict[str, Any]]  # employee id -> row with the *_code / manager keys
    unkeyed_emails: dict[str, dict[str, Any]]  # lower email -> user row without employee id
    usernames: dict[str, str]  # username -> employee id ("" without one)
    roles: dict[int, set[tuple[str, str]]]  # user id -> (app, role)

    def context(self, roles: Mapping[str, set[str]], calendars: set[str]) -> OrgContext:
        emails = {k: "" for k in self.unkeyed_emails}
        emails.update({row["email"].lower(): key for key, row in self.people.items()
                       if row["email"]})  # fmt: skip
        return OrgContext(
            roles=roles, calendars=calendars, departments=set(self.departments),
            positions=set(self.positions), people=set(self.people), emails=emails,
            usernames=self.usernames,
        )  # fmt: skip


@dataclass
class SyncPlan:
    """Rows to write, by logical key; see `apply_sync`."""

    managed: set[str]  # person columns the file has
    department_columns: set[str]
    new_departments: list[Department] = field(default_factory=list)
    changed_departments: list[Department] = field(default_factory=list)
    new_positions: list[tuple[str, str]] = field(default_factory=list)
    changed_positions: list[tuple[str, str]] = field(default_factory=list)
    new_people: list[tuple[Person, str]] = field(default_factory=list)  # with the username
    changed_people: list[tuple[Person, int]] = field(default_factory=list)  # with the user id
    deactivate_departments: list[int] = field(default_factory=list)
    deactivate_people: list[int] = field(default_factory=list)
    summary: dict[str, KindSummary] = field(default_factory=dict)
    problems: list[OrgProblem] = field(default_factory=list)


def load_database(connection: Connection) -> Database:
    """Read the organisation tables in four queries."""
    departments_rows = [dict(r._mapping) for r in connection.execute(select(pt.departments))]
    positions = {r.code: dict(r._mapping) for r in connection.execute(select(pt.positions))}
    users = [dict(r._mapping) for r in connection.execute(select(pt.users))]
    roles: dict[int, set[tuple[str, str]]] = {}
    for user_id, app, role in connection.execute(
        select(pt.user_roles.c.user_id, pt.user_roles.c.app, pt.user_roles.c.role)
    ):
        roles.setdefault(user_id, set()).add((app, role))
    department_code = {r["id"]: r["code"] for r in departments_rows}
    position_code = {r["id"]: r["code"] for r in positions.values()}
    employee_of = {u["id"]: u["employee_id"] for u in users}
    for row in departments_rows:
        row["parent_code"] = department_code.get(row["parent_id"])
        row["head_employee_id"] = employee_of.get(row["head_id"])
    people: dict[str, dict[str, Any]] = {}
    unkeyed: dict[str, dict[str, Any]] = {}
    for user in users:
        user["department_code"] = department_code.get(user["department_id"])
        user["position_code"] = position_code.get(user["position_id"])
        user["manager_employee_id"] = employee_of.get(user["manager_id"])
        if user["employee_id"] is not None:
            people[user["employee_id"]] = user
        elif user["email"]:
            unkeyed[user["email"].lower()] = user
    return Database(
        departments={r["code"]: r for r in departments_rows}, positions=positions,
        people=people, unkeyed_emails=unkeyed,
        usernames={u["username"]: u["employee_id"] or "" for u in users}, roles=roles,
    )  # fmt: skip


def plan_sync(
    checked: Checked,
    database: Database,
    *,
    sheets: set[str],
    headers: Mapping[str, set[str]],
    present: Mapping[str, set[str]],
) -> SyncPlan:
    """Compare the checked file with the database: what to add, update and deactivate.

    `present`: per sheet, every key the file lists, bad rows included (a person whose
    row has a problem is still present and is not deactivated by a partial import).
    """
    plan = SyncPlan(managed=headers.get("people", set()) & set(_PERSON_COLUMNS),
                    department_columns=headers.get("departments", set()) & set(
                        _DEPARTMENT_COLUMNS))  # fmt: skip
    plan.summary = {kind: KindSummary() for kind in ("departments", "positions", "people")}
    _plan_departments(plan, checked, database, "departments" in sheets, present)
    _plan_positions(plan, checked, database)
    _plan_people(plan, checked, database, "people" in sheets, present)
    return plan


def _plan_departments(plan: SyncPlan, checked: Checked, database: Database, complete: bool,
                      present: Mapping[str, set[str]]) -> None:  # fmt: skip
    summary = plan.summary["departments"]
    for code, department in checked.departments.items():
        row = database.departments.get(code)
        if row is None:
            plan.new_departments.append(department)
            summary.added.append(code)
        elif not row["active"] or _department_differs(department, row, plan.department_columns):
            plan.changed_departments.append(department)
            summary.updated.append(code)
        else:
            summary.unchanged += 1
    if complete:
        for code, row in database.departments.items():
            if row["active"] and code not in present.get("departments", set()):
                plan.deactivate_departments.append(row["id"])
                summary.deactivated.append(code)


def _department_differs(department: Department, row: Mapping[str, Any], columns: set[str]) -> bool:
    values = {"name": department.name, "parent_code": department.parent,
              "head_employee_id": department.head, "region": department.region}  # fmt: skip
    return any(values[c] != row[c] for c in columns)


def _plan_positions(plan: SyncPlan, checked: Checked, database: Database) -> None:
    summary = plan.summary["positions"]
    for code, position in checked.positions.items():
        row = database.positions.get(code)
        if row is None:
            plan.new_positions.append((code, position.name))
            summary.added.append(code)
        elif row["name"] != position.name:
            plan.changed_positions.append((code, position.name))
            summary.updated.append(code)
        else:
            summary.unchanged += 1


def _plan_people(plan: SyncPlan, checked: Checked, database: Database, complete: bool,
                 present: Mapping[str, set[str]]) -> None:  # fmt: skip
    summary = plan.summary["people"]
    taken = dict(database.usernames)
    taken.update({p.username: key for key, p in checked.people.items() if p.username})
    for key, person in checked.people.items():
        row = database.people.get(key)
        if row is None and person.email and person.email in database.unkeyed_emails:
            row = database.unkeyed_emails[person.email]  # adopt a login made by hand
        if row is None:
            username = _new_username(person, taken)
            if username is None:
                plan.problems.append(OrgProblem(
                    person.row.sheet, person.row.row, person.row.where("username"),
                    "no free username: both the email and the employee id are taken as "
                    "usernames; give a `username` column", "duplicate"))  # fmt: skip
                continue
            taken[username] = key
            plan.new_people.append((person, username))
            summary.added.append(key)
        elif _person_differs(person, row, plan.managed, database.roles.get(row["id"], set())):
            plan.changed_people.append((person, row["id"]))
            summary.updated.append(key)
        else:
            summary.unchanged += 1
    if complete:
        for key, row in database.people.items():
            if row["active"] and key not in present.get("people", set()):
                plan.deactivate_people.append(row["id"])
                summary.deactivated.append(key)


def _new_username(person: Person, taken: Mapping[str, str]) -> str | None:
    for candidate in (person.username, person.email, person.employee_id):
        if candidate and (candidate not in taken or taken[candidate] == person.employee_id):
            return candidate
    return None


def person_values(person: Person) -> dict[str, Any]:
    """The person's managed values on the file's terms (codes, employee ids)."""
    return {
        "name": person.name, "email": person.email, "username": person.username,
        "department_code": person.department, "position_code": person.position,
        "manager_employee_id": person.manager, "skills": list(person.skills) or None,
        "region": person.region, "calendar": person.calendar, "phone": person.phone,
        "locale": person.locale, "timezone": person.timezone,
    }  # fmt: skip


def _person_differs(person: Person, row: Mapping[str, Any], managed: set[str],
                    roles: set[tuple[str, str]]) -> bool:  # fmt: skip
    if not row["active"] or row["employee_id"] != person.employee_id:
        return True
    if person.roles is not None and set(person.roles) != roles:
        return True
    values = person_values(person)
    for column in managed:
        old = row.get(column)
        if column == "email" and old:
            old = old.lower()
        if (column == "calendar" and column not in pt.users.c) or (
            column == "username" and person.username is None  # keep the login name
        ):
            continue
        if values[column] != (old or None):
            return True
    return False


# =========================================================================== writing


def apply_sync(connection: Connection, plan: SyncPlan, database: Database,
               now: dt.datetime) -> None:  # fmt: skip
    """Write the plan in bulk, on the caller's transaction."""
    _insert_departments(connection, plan, now)
    _write_positions(connection, plan)
    departments = dict(connection.execute(select(pt.departments.c.code, pt.departments.c.id)).all())
    positions = dict(connection.execute(select(pt.positions.c.code, pt.positions.c.id)).all())
    _insert_people(connection, plan, departments, positions, now)
    people = dict(connection.execute(
        select(pt.users.c.employee_id, pt.users.c.id).where(pt.users.c.employee_id.is_not(None))
    ).all())
    people.update({p.employee_id: user_id for p, user_id in plan.changed_people})  # adopted
    _update_people(connection, plan, departments, positions, people, now)
    _update_departments(connection, plan, departments, people, now)
    _deactivate(connection, pt.departments, plan.deactivate_departments, now)
    _deactivate(connection, pt.users, plan.deactivate_people, now)
    _sync_roles(connection, plan, database, people)


def _insert_departments(connection: Connection, plan: SyncPlan, now: dt.datetime) -> None:
    rows = [{"code": d.code, "name": d.name, "region": d.region, "active": True,
             "created_at": now, "updated_at": now} for d in plan.new_departments]  # fmt: skip
    if rows:
        connection.execute(pt.departments.insert(), rows)


def _write_positions(connection: Connection, plan: SyncPlan) -> None:
    if plan.new_positions:
        connection.execute(pt.positions.insert(),
                           [{"code": c, "name": n} for c, n in plan.new_positions])  # fmt: skip
    if plan.changed_positions:
        statement = update(pt.positions).where(pt.positions.c.code == bindparam("_code"))
        connection.execute(statement.values(name=bindparam("_name")),
                           [{"_code": c, "_name": n} for c, n in plan.changed_positions])


def _user_columns(person: Person, managed: set[str], departments: Mapping[str, int],
                  positions: Mapping[str, int], people: Mapping[str, int] | None,
                  ) -> dict[str, Any]:  # fmt: skip
    """The fd_users values for the managed columns; links resolved to ids (the manager
    only when `people` is given: new people get theirs in the update pass)."""
    values = person_values(person)
    row: dict[str, Any] = {"employee_id": person.employee_id, "active": True}
    for column in managed:
        if column == "department_code":
            row["department_id"] = departments.get(person.department or "")
        elif column == "position_code":
            row["position_id"] = positions.get(person.position or "")
        elif column == "manager_employee_id":
            if people is not None:
                row["manager_id"] = people.get(person.manager or "")
        elif column in pt.users.c:
            row[column] = values[column]
    return row


def _insert_people(connection: Connection, plan: SyncPlan, departments: Mapping[str, int],
                   positions: Mapping[str, int], now: dt.datetime) -> None:  # fmt: skip
    rows = []
    for person, username in plan.new_people:
        row = _user_columns(person, plan.managed, departments, positions, None)
        row.update(username=username, name=person.name, created_at=now, updated_at=now)
        rows.append(row)
    if rows:
        connection.execute(pt.users.insert(), _uniform(rows))


def _update_people(connection: Connection, plan: SyncPlan, departments: Mapping[str, int],
                   positions: Mapping[str, int], people: Mapping[str, int],
                   now: dt.datetime) -> None:  # fmt: skip
    rows = []
    for person, user_id in plan.changed_people:
        row = _user_columns(person, plan.managed, departments, positions, people)
        if person.username is None:
            row.pop("username", None)
        rows.append({**row, "_id": user_id, "updated_at": now})
    if "manager_employee_id" in plan.managed:
        rows += [{"_id": people[p.employee_id], "manager_id": people[p.manager]}
                 for p, _ in plan.new_people if p.manager]  # fmt: skip
    _update_by_id(connection, pt.users, rows)


def _update_departments(connection: Connection, plan: SyncPlan, departments: Mapping[str, int],
                        people: Mapping[str, int], now: dt.datetime) -> None:  # fmt: skip
    columns = plan.department_columns
    rows = []
    for department, is_new in [*((d, False) for d in plan.changed_departments),
                               *((d, True) for d in plan.new_departments)]:  # fmt: skip
        row: dict[str, Any] = {"_id": departments[department.code]}
        if not is_new:
            row.update(name=department.name, active=True, updated_at=now)
            if "region" in columns:
                row["region"] = department.region
        if "parent_code" in columns and (department.parent or not is_new):
            row["parent_id"] = departments.get(department.parent or "")
        if "head_employee_id" in columns and (department.head or not is_new):
            row["head_id"] = people.get(department.head or "")
        if len(row) > 1:
            rows.append(row)
    _update_by_id(connection, pt.departments, rows)


def _update_by_id(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany per distinct set of columns (usually one or two)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for keys, group in groups.items():
        # Bound names must differ from the column names SQLAlchemy binds in SET itself.
        values = {key: bindparam(f"v_{key}") for key in keys if key != "_id"}
        statement = update(table).where(table.c.id == bindparam("_id")).values(values)
        connection.execute(statement, [{k if k == "_id" else f"v_{k}": v for k, v in row.items()}
                                       for row in group])


def _uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = set().union(*rows)
    return [{key: row.get(key) for key in keys} for row in rows]


def _deactivate(connection: Connection, table: Any, ids: list[int], now: dt.datetime) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        connection.execute(update(table).where(table.c.id.in_(chunk))
                           .values(active=False, updated_at=now))  # fmt: skip


def _sync_roles(connection: Connection, plan: SyncPlan, database: Database,
                people: Mapping[str, int]) -> None:  # fmt: skip
    """The file's roles become each listed person's exact roles (when it has the column)."""
    table = pt.user_roles
    inserts, deletes = [], []
    listed = [p for p, _ in plan.new_people] + [p for p, _ in plan.changed_people]
    for person in listed:
        if person.roles is None:
            continue
        user_id = people[person.employee_id]
        held = database.roles.get(user_id, set())
        inserts += [{"user_id": user_id, "app": a, "role": r} for a, r in person.roles - held]
        deletes += [{"_u": user_id, "_a": a, "_r": r} for a, r in held - person.roles]
    if deletes:
        connection.execute(delete(table).where(and_(
            table.c.user_id == bindparam("_u"), table.c.app == bindparam("_a"),
            table.c.role == bindparam("_r"))), deletes)  # fmt: skip
    if inserts:
        connection.execute(table.insert(), inserts)
