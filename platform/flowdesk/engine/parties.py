"""Who a party reference names: `PartyRef` (model/party.py) -> user ids.

One resolver for approvers, notification recipients, assignment targets and
SLA escalations, so `{role: agent}` means the same people everywhere:

* `{user: li.lei}` the active user with that login;
* `{role: r}` active users holding `r` in this app (or in every app, `*`);
* `{field: f}` the user(s) in field `f` of the record;
* `{department_head: f}` the head of the department of the user in field `f`;
* `{manager: N}` the requester's manager N levels up the reporting line;
* `{team: f}` / `team`: members of the team named by field `f` (a team is a
  department with that code, else the holders of a role with that name);
* `{expr: ...}` CEL giving user names (or ids), one or a list;
* keywords: `assignee`, `requester` (the `requester` field, else the creator),
  `supervisor` (the requester's manager), `watchers` (a `watchers` field),
  `customer` (a `customer` field holding a user); `{email: ...}` names no user.

Inactive users are never returned; the order is stable (as named, then by id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, select

from flowdesk.model.party import Party
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor

from ._context import Scope

__all__ = ["PartyResolver", "requester_of"]

_MAX_LEVELS = 10


def requester_of(record: Mapping[str, Any]) -> int | None:
    """Whose request a record is: its `requester` user field, else its creator."""
    value = record.get("requester")
    if isinstance(value, int):
        return value
    return record.get("created_by")


class PartyResolver:
    """Resolves party references for one app; every query runs on the caller's connection."""

    def __init__(self, app: str) -> None:
        self.app = app

    def resolve(
        self,
        connection: Connection,
        party: str | Party,
        record: Mapping[str, Any],
        *,
        scope: Scope | None = None,
        pointer: str = "",
        actor: Actor | None = None,
        now: dt.datetime | None = None,
    ) -> list[int]:
        """User ids `party` names for `record`; `scope`/`pointer` locate an `{expr}`."""
        if isinstance(party, str):
            return self._keyword(connection, party, record)
        key, value = party.chosen
        if key == "user":
            return self.by_usernames(connection, [value])
        if key == "role":
            return self.with_role(connection, value)
        if key == "field":
            return self.active(connection, _ids(record.get(value)))
        if key == "department_head":
            return self._department_heads(connection, _ids(record.get(value)))
        if key == "manager":
            return self.managers(connection, requester_of(record), value)
        if key == "team":
            return self.team(connection, record.get(value))
        if key == "expr":
            if scope is None:
                raise ValueError("an `{expr: ...}` party needs the scope it was written in")
            result = scope.evaluate(
                f"{pointer}/expr", record, actor or Actor(None, "system"),
                now or dt.datetime.now(dt.UTC), connection,
            )
            return self._named(connection, result)
        return []  # {email: ...} names an address, not a user

    def resolve_all(
        self,
        connection: Connection,
        parties: Iterable[str | Party],
        record: Mapping[str, Any],
        *,
        scope: Scope | None = None,
        pointer: str = "",
        actor: Actor | None = None,
        now: dt.datetime | None = None,
    ) -> list[int]:
        """Every user the parties name, once each, in the order first named."""
        found: list[int] = []
        for index, party in enumerate(parties):
            here = f"{pointer}/{index}"
            for user in self.resolve(connection, party, record, scope=scope, pointer=here,
                                     actor=actor, now=now):
                if user not in found:
                    found.append(user)
        return found

    # ------------------------------------------------------------------ building blocks

    def _keyword(self, connection: Connection, word: str, record: Mapping[str, Any]) -> list[int]:
        if word == "assignee":
            return self.active(connection, _ids(record.get("assignee")))
        if word == "requester":
            return self.active(connection, _ids(requester_of(record)))
        if word == "supervisor":
            return self.managers(connection, requester_of(record), 1)
        if word == "watchers":
            return self.active(connection, _ids(record.get("watchers")))
        if word == "customer":
            return self.active(connection, _ids(record.get("customer")))
        if word == "team":
            return self.team(connection, record.get("team"))
        return []

    def active(self, connection: Connection, ids: list[int]) -> list[int]:
        """`ids` that are active users, in the given order."""
        if not ids:
            return []
        users = pt.users
        rows = connection.execute(
            select(users.c.id).where(users.c.id.in_(ids), users.c.active.is_(True))
        )
        alive = {row.id for row in rows}
        return [i for i in dict.fromkeys(ids) if i in alive]

    def by_usernames(self, connection: Connection, names: list[str]) -> list[int]:
        users = pt.users
        rows = connection.execute(
            select(users.c.id, users.c.username).where(
                users.c.username.in_(names), users.c.active.is_(True)
            )
        )
        by_name = {row.username: row.id for row in rows}
        return [by_name[n] for n in names if n in by_name]

    def with_role(self, connection: Connection, role: str) -> list[int]:
        users, roles = pt.users, pt.user_roles
        statement = (
            select(users.c.id)
            .join(roles, roles.c.user_id == users.c.id)
            .where(
                roles.c.role == role,
                roles.c.app.in_([self.app, "*"]),
                users.c.active.is_(True),
            )
            .distinct()
            .order_by(users.c.id)
        )
        return [row.id for row in connection.execute(statement)]

    def in_department(self, connection: Connection, code: str) -> list[int] | None:
        """Active members of the department with `code`; None when there is no such one."""
        departments, users = pt.departments, pt.users
        found = connection.execute(
            select(departments.c.id).where(departments.c.code == code)
        ).first()
        if found is None:
            return None
        rows = connection.execute(
            select(users.c.id)
            .where(users.c.department_id == found.id, users.c.active.is_(True))
            .order_by(users.c.id)
        )
        return [row.id for row in rows]

    def team(self, connection: Connection, team: Any) -> list[int]:
        """Members of a team: a department with that code, else holders of that role."""
        if isinstance(team, Mapping):
            team = team.get("code") or team.get("id")
        if not team:
            return []
        if isinstance(team, str):
            members = self.in_department(connection, team)
            return members if members is not None else self.with_role(connection, team)
        return []

    def managers(self, connection: Connection, user_id: int | None, levels: int) -> list[int]:
        """The manager `levels` up the reporting line of `user_id` ([] if the line ends)."""
        users = pt.users
        current = user_id
        for _ in range(min(levels, _MAX_LEVELS)):
            if current is None:
                return []
            row = connection.execute(
                select(users.c.manager_id).where(users.c.id == current)
            ).first()
            current = row.manager_id if row else None
        return self.active(connection, _ids(current))

    def _department_heads(self, connection: Connection, user_ids: list[int]) -> list[int]:
        users, departments = pt.users, pt.departments
        heads: list[int] = []
        for user_id in user_ids:
            row = connection.execute(
                select(departments.c.head_id)
                .join(users, users.c.department_id == departments.c.id)
                .where(users.c.id == user_id)
            ).first()
            if row is not None and row.head_id is not None:
                heads.append(row.head_id)
        return self.active(connection, heads)

    def _named(self, connection: Connection, result: Any) -> list[int]:
        """An `{expr}` result: user names or ids, one or a list."""
        items = result if isinstance(result, list) else [result]
        names = [i for i in items if isinstance(i, str)]
        ids = [i for i in items if isinstance(i, int) and not isinstance(i, bool)]
        ids += [i["id"] for i in items if isinstance(i, Mapping) and "id" in i]
        return self.active(connection, ids) + [
            i for i in self.by_usernames(connection, names) if i not in ids
        ]


def _ids(value: Any) -> list[int]:
    """A user field's value as ids: one id, a list of ids, or `{"id": ...}` objects."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [i["id"] if isinstance(i, Mapping) else i for i in items if i is not None]
