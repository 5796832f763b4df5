"""Checking an organisation file as a whole before anything is written.

`check_org(source, context)` turns the located rows of `_org_read` into typed
`Department`, `Position` and `Person` entries and reports every problem with its
sheet, row and column: missing or malformed values, duplicate codes, employee ids,
emails and usernames (in the file and against other users of the database), references
to departments, positions and managers that do not exist, cycles in the department tree
and in the reporting lines (every row of the cycle is reported), and roles of apps or
names that the deployed apps do not know.

With `partial`, rows with problems are dropped and the rest checked again, until what
is left refers only to good rows; the dropped rows stay in the problem list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flowdesk.model.policy import STANDARD_ROLES

from ._org_read import OrgProblem, OrgSource, SourceRow

__all__ = ["Checked", "Department", "OrgContext", "Person", "Position", "check_org"]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,119}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_LIMITS = {"code": 64, "name": 200, "employee_id": 64, "email": 255, "region": 64,
           "phone": 64, "username": 120, "calendar": 64}  # fmt: skip
_LOCALES = ("en", "zh")


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    parent: str | None
    head: str | None  # an employee id
    region: str | None
    row: SourceRow


@dataclass(frozen=True)
class Position:
    code: str
    name: str
    row: SourceRow


@dataclass(frozen=True)
class Person:
    employee_id: str
    name: str
    email: str | None
    username: str | None
    department: str | None
    position: str | None
    manager: str | None  # an employee id
    roles: frozenset[tuple[str, str]] | None  # None: the file has no roles column
    skills: tuple[str, ...]
    region: str | None
    calendar: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    row: SourceRow


@dataclass
class OrgContext:
    """What the database already holds that the check needs.

    `roles`: app -> role names the deployed apps know (standard roles included); the
    app `*` accepts a role known to any app. `calendars`: calendar names of the deployed
    apps (empty: not checked). `departments` / `positions` / `people`: the codes and
    employee ids already in the database, used when the file has no such sheet.
    `emails` / `usernames`: value (lower-cased email) -> the employee id of the user
    holding it ("" for a user without one), for uniqueness against other users.
    """

    roles: Mapping[str, set[str]] = field(default_factory=dict)
    calendars: set[str] = field(default_factory=set)
    departments: set[str] = field(default_factory=set)
    positions: set[str] = field(default_factory=set)
    people: set[str] = field(default_factory=set)
    emails: Mapping[str, str] = field(default_factory=dict)
    usernames: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Checked:
    """The typed entries that passed, the problems, and how many rows were dropped."""

    departments: dict[str, Department] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    problems: list[OrgProblem] = field(default_factory=list)
    rows: int = 0
    dropped: int = 0


class _Sink:
    """Problems of one pass, remembering which rows have any."""

    def __init__(self) -> None:
        self.problems: list[OrgProblem] = []
        self.bad: set[tuple[str, int]] = set()

    def add(self, row: SourceRow, column: str, message: str, code: str = "invalid") -> None:
        self.problems.append(OrgProblem(row.sheet, row.row, row.where(column) if column else "",
                                        message, code))  # fmt: skip
        self.bad.add((row.sheet, row.row))


def check_org(source: OrgSource, context: OrgContext, *, partial: bool = False) -> Checked:
    """Check the whole file; see the module docstring."""
    all_rows = [row for sheet in source.rows.values() for row in sheet]
    excluded: set[tuple[str, int]] = set()
    reported: dict[tuple[str, int, str, str], OrgProblem] = {}
    while True:
        sink = _Sink()
        checked = _check_pass(source, context, excluded, sink)
        for problem in sink.problems:
            reported.setdefault((problem.sheet, problem.row, problem.column, problem.message),
                                problem)  # fmt: skip
        if not partial or not sink.bad:
            break
        excluded |= sink.bad
    checked.problems = [*source.problems, *reported.values()]
    checked.rows = len(all_rows)
    checked.dropped = len(excluded | sink.bad) if partial else 0
    return checked


def _check_pass(
    source: OrgSource, context: OrgContext, excluded: set[tuple[str, int]], sink: _Sink
) -> Checked:
    def rows(sheet: str) -> list[SourceRow]:
        return [r for r in source.rows.get(sheet, []) if (r.sheet, r.row) not in excluded]

    def keys(sheet: str, column: str, known: set[str]) -> _Keys:
        if not source.has(sheet):
            return _Keys(known, set())
        dropped = known_names(source.rows[sheet], column) - known_names(rows(sheet), column)
        return _Keys(known_names(rows(sheet), column), dropped)

    checked = Checked()
    checked.positions = _positions(rows("positions"), sink)
    checked.departments = _departments(rows("departments"), sink)
    checked.people = _people(rows("people"), context, sink)
    departments = keys("departments", "code", context.departments)
    positions = keys("positions", "code", context.positions)
    people = keys("people", "employee_id", context.people)
    _department_links(checked.departments, departments, people, sink)
    _person_links(checked.people, departments, positions, people, sink)
    _cycles(checked.departments, lambda d: d.parent, "parent_code", "department tree", sink)
    _cycles(checked.people, lambda p: p.manager, "manager_employee_id", "reporting lines", sink)
    return checked


@dataclass(frozen=True)
class _Keys:
    """The keys a reference may name, and those of rows a partial import left out."""

    known: set[str]
    dropped: set[str]

    def missing(self, key: str | None, what: str) -> str | None:
        if key is None or key in self.known:
            return None
        if key in self.dropped:
            return f"{what} `{key}` is left out because its row has problems"
        return f"unknown {what} `{key}`"


def _required(row: SourceRow, column: str, sink: _Sink) -> str | None:
    value = row.get(column)
    if value is None:
        sink.add(row, column, f"`{column}` is required", "required")
    return value


def _lengths(row: SourceRow, sink: _Sink) -> None:
    for column, value in row.values.items():
        limit = _LIMITS.get(column)
        if value is not None and limit is not None and len(value) > limit:
            sink.add(row, column, f"longer than {limit} characters", "too-long")


def _unique(
    row: SourceRow, column: str, key: str, seen: dict[str, SourceRow], sink: _Sink, what: str
) -> bool:
    first = seen.get(key)
    if first is not None:
        sink.add(row, column, f"duplicate {what} `{row.get(column)}`: also in row {first.row}",
                 "duplicate")  # fmt: skip
        sink.add(first, column, f"duplicate {what} `{first.get(column)}`: also in row {row.row}",
                 "duplicate")  # fmt: skip
        return False
    seen[key] = row
    return True


def _positions(rows: list[SourceRow], sink: _Sink) -> dict[str, Position]:
    found: dict[str, Position] = {}
    seen: dict[str, SourceRow] = {}
    for row in rows:
        _lengths(row, sink)
        code, name = _required(row, "code", sink), _required(row, "name", sink)
        if code and _unique(row, "code", code, seen, sink, "position code") and name:
            found[code] = Position(code, name, row)
    return found


def _departments(rows: list[SourceRow], sink: _Sink) -> dict[str, Department]:
    found: dict[str, Department] = {}
    seen: dict[str, SourceRow] = {}
    for row in rows:
        _lengths(row, sink)
        code, name = _required(row, "code", sink), _required(row, "name", sink)
        if code and _unique(row, "code", code, seen, sink, "department code") and name:
            found[code] = Department(code, name, row.get("parent_code"),
                                     row.get("head_employee_id"), row.get("region"), row)
    return found


def _people(rows: list[SourceRow], context: OrgContext, sink: _Sink) -> dict[str, Person]:
    found: dict[str, Person] = {}
    ids: dict[str, SourceRow] = {}
    emails: dict[str, SourceRow] = {}
    usernames: dict[str, SourceRow] = {}
    for row in rows:
        _lengths(row, sink)
        employee_id, name = _required(row, "employee_id", sink), _required(row, "name", sink)
        ok = bool(employee_id) and _unique(row, "employee_id", employee_id or "", ids, sink,
                                           "employee id")  # fmt: skip
        _email(row, employee_id, emails, context, sink)
        _username(row, employee_id, usernames, context, sink)
        roles = _roles(row, context, sink)
        _optional_formats(row, context, sink)
        if ok and employee_id and name:
            # Entries are kept even when other cells have problems, so references and
            # cycles are checked against every row; nothing is written unless no row has
            # any problem (a partial import checks again without the bad rows).
            found[employee_id] = _person(row, employee_id, name,
                                         roles if isinstance(roles, frozenset) else None)
    return found


def _person(row: SourceRow, employee_id: str, name: str,
            roles: frozenset[tuple[str, str]] | None) -> Person:  # fmt: skip
    skills = tuple(s.strip() for s in re.split(r"[;,\n]", row.get("skills") or "") if s.strip())
    email = row.get("email")
    return Person(
        employee_id=employee_id, name=name, email=email.lower() if email else None,
        username=row.get("username"), department=row.get("department_code"),
        position=row.get("position_code"), manager=row.get("manager_employee_id"),
        roles=roles if "roles" in row.columns else None, skills=skills,
        region=row.get("region"), calendar=row.get("calendar"), phone=row.get("phone"),
        locale=row.get("locale"), timezone=row.get("timezone"), row=row,
    )  # fmt: skip


def _email(row: SourceRow, employee_id: str | None, seen: dict[str, SourceRow],
           context: OrgContext, sink: _Sink) -> bool:  # fmt: skip
    email = row.get("email")
    if email is None:
        return True
    if not _EMAIL.fullmatch(email):
        sink.add(row, "email", f"`{email}` is not an email address", "bad-email")
        return False
    key = email.lower()
    holder = context.emails.get(key)
    if holder is not None and holder != employee_id and holder != "":
        # The holder may change their email in this very file; a swap is not supported.
        sink.add(row, "email", f"`{email}` belongs to another user (employee id {holder})",
                 "duplicate")  # fmt: skip
        return False
    return _unique(row, "email", key, seen, sink, "email")


def _username(row: SourceRow, employee_id: str | None, seen: dict[str, SourceRow],
              context: OrgContext, sink: _Sink) -> bool:  # fmt: skip
    username = row.get("username")
    if username is None:
        return True
    if not _USERNAME.fullmatch(username):
        sink.add(row, "username", f"`{username}` is not a valid username: letters, digits or "
                 ". _ @ + -, starting with a letter or digit", "invalid")  # fmt: skip
        return False
    holder = context.usernames.get(username)
    if holder is not None and holder != employee_id:
        sink.add(row, "username", f"username `{username}` is taken by another user",
                 "duplicate")  # fmt: skip
        return False
    return _unique(row, "username", username, seen, sink, "username")


def _roles(row: SourceRow, context: OrgContext,
           sink: _Sink) -> frozenset[tuple[str, str]] | bool:  # fmt: skip
    """The `app:role` pairs of the cell, or False after reporting a problem."""
    text = row.get("roles")
    if text is None:
        return frozenset()
    pairs: set[tuple[str, str]] = set()
    ok = True
    for item in (t.strip() for t in re.split(r"[;\n]", text)):
        if not item:
            continue
        app, sep, role = item.partition(":")
        app, role = app.strip(), role.strip()
        if not sep or not (app == "*" or _NAME.fullmatch(app)) or not _NAME.fullmatch(role):
            sink.add(row, "roles", f"`{item}` is not a role: write app:role, e.g. "
                     "service_desk:agent, several separated by `;`", "bad-role")  # fmt: skip
            ok = False
        elif problem := _unknown_role(app, role, context):
            sink.add(row, "roles", problem, "unknown-role")
            ok = False
        else:
            pairs.add((app, role))
    return frozenset(pairs) if ok else False


def _unknown_role(app: str, role: str, context: OrgContext) -> str | None:
    if app == "*":
        known = set(STANDARD_ROLES).union(*context.roles.values())
        return None if role in known else f"no deployed app knows the role `{role}`"
    if app not in context.roles:
        apps = ", ".join(sorted(context.roles)) or "none"
        return f"unknown app `{app}` (deployed apps: {apps})"
    if role not in context.roles[app]:
        return f"app `{app}` has no role `{role}`; its roles: " + ", ".join(
            sorted(context.roles[app]))
    return None


def _optional_formats(row: SourceRow, context: OrgContext, sink: _Sink) -> bool:
    ok = True
    locale, zone, calendar = row.get("locale"), row.get("timezone"), row.get("calendar")
    if locale is not None and locale not in _LOCALES:
        sink.add(row, "locale", f"`{locale}` is not a locale: en or zh", "invalid")
        ok = False
    if zone is not None and not _valid_zone(zone):
        sink.add(row, "timezone", f"`{zone}` is not an IANA time zone such as Asia/Shanghai",
                 "invalid")  # fmt: skip
        ok = False
    if calendar is not None and context.calendars and calendar not in context.calendars:
        sink.add(row, "calendar", f"no deployed app has a calendar `{calendar}`; known: "
                 + ", ".join(sorted(context.calendars)), "unknown-calendar")  # fmt: skip
        ok = False
    return ok


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _department_links(departments: dict[str, Department], codes: _Keys, people: _Keys,
                      sink: _Sink) -> None:  # fmt: skip
    for department in departments.values():
        row = department.row
        if problem := codes.missing(department.parent, "parent department"):
            sink.add(row, "parent_code", problem, "missing-parent")
        if problem := people.missing(department.head, "head (employee id)"):
            sink.add(row, "head_employee_id", problem, "missing-reference")


def _person_links(people: dict[str, Person], departments: _Keys, positions: _Keys,
                  employees: _Keys, sink: _Sink) -> None:  # fmt: skip
    for person in people.values():
        checks = (("department_code", departments.missing(person.department, "department")),
                  ("position_code", positions.missing(person.position, "position")),
                  ("manager_employee_id",
                   employees.missing(person.manager, "manager (employee id)")))  # fmt: skip
        for column, problem in checks:
            if problem:
                sink.add(person.row, column, problem, "missing-reference")


def _cycles(entries: Mapping[str, Any], link: Callable[[Any], str | None], column: str,
            what: str, sink: _Sink) -> None:  # fmt: skip
    """Report every entry on a cycle of `link` (entry -> the key it points at), each
    naming the whole loop and the other rows on it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in entries:
        path: list[str] = []
        key: str | None = start
        while key is not None and key in entries and state.get(key) is None:
            state[key] = 1
            path.append(key)
            key = link(entries[key])
        if key is not None and state.get(key) == 1:
            loop = path[path.index(key):]
            _report_cycle(entries, loop, column, what, sink)
        for visited in path:
            state[visited] = 2


def _report_cycle(entries: Mapping[str, Department] | Mapping[str, Person], loop: list[str],
                  column: str, what: str, sink: _Sink) -> None:  # fmt: skip
    rows = [entries[key].row for key in loop]
    chain = " -> ".join([*loop, loop[0]])
    for row in rows:
        others = ", ".join(str(r.row) for r in rows if r is not row)
        also = f" (with row {others})" if others else " (points at itself)"
        sink.add(row, column, f"cycle in the {what}: {chain}{also}", "cycle")


def known_names(rows: Iterable[SourceRow], column: str) -> set[str]:
    """Every value of `column` in `rows` (bad rows included): who is present in the file."""
    return {value for row in rows if (value := row.get(column)) is not None}
