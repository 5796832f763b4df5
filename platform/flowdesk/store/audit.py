"""The audit timeline: who changed what on a record, when, from which value to which.

Rows go to the platform table `fd_audit` in the same transaction as the change
they describe, so a change without its audit row (or the reverse) cannot be
committed. The log is append-only: this module writes and reads rows and
offers nothing that updates or deletes them.

`changes` is JSON: `{"field": {"old": ..., "new": ...}}`, values in their
JSON form (`values.json_value`: decimals as text, instants as ISO 8601).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from . import platform_tables as pt
from .values import json_value, load_datetime

__all__ = ["ACTIONS", "PROCESS_KEYS", "AuditEntry", "AuditLog", "diff"]

ACTIONS = ("create", "update", "delete", "restore", "purge", "transition", "comment",
           "approval", "sla_warning", "sla_breach", "sla_escalation", "automation")
"""`purge` is a hard delete; `transition` a workflow state change; `comment`, `approval`
and the `sla_*` rows are written by the process engine; `automation` by automation rules."""

PROCESS_KEYS = frozenset({"transition", "decision", "level", "delegate_to", "sla", "metric",
                          "target", "sla_status", "rule", "outcome"})
"""Keys of `changes` that describe the process (which transition, which decision, which
SLA), not a field's value. Readers show them to whoever may read the record, unless the
entity has a field of the same name, whose read rule then applies."""


@dataclass(frozen=True)
class AuditEntry:
    """One row of a record's timeline."""

    id: int
    action: str
    actor_id: int | None
    actor: str | None
    at: dt.datetime
    changes: Mapping[str, Mapping[str, Any]]
    comment: str | None


def diff(
    old: Mapping[str, Any], new: Mapping[str, Any], names: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The fields among `names` whose value differs, with old and new JSON values."""
    changes: dict[str, dict[str, Any]] = {}
    for name in names:
        before, after = old.get(name), new.get(name)
        if before != after:
            changes[name] = {"old": json_value(before), "new": json_value(after)}
    return changes


class AuditLog:
    """Writes and reads the audit rows of one app; statements are built once."""

    def __init__(self, app: str) -> None:
        self.app = app
        table = pt.audit
        self._insert = table.insert()
        self._timeline = (
            select(
                table.c.id,
                table.c.action,
                table.c.actor_id,
                table.c.actor,
                table.c.at,
                table.c.changes,
                table.c.comment,
            )
            .where(
                table.c.app == app,
                table.c.entity == bindparam("entity"),
                table.c.record_id == bindparam("record_id"),
            )
            .order_by(table.c.id)
        )

    def row(
        self,
        entity: str,
        record_id: int,
        action: str,
        *,
        actor_id: int | None,
        actor: str | None,
        at: dt.datetime,
        changes: Mapping[str, Any] | None,
        comment: str | None,
    ) -> dict[str, Any]:
        """The parameters of one audit row, for `write`."""
        return {
            "app": self.app,
            "entity": entity,
            "record_id": record_id,
            "action": action,
            "actor_id": actor_id,
            "actor": actor,
            "at": at,
            "changes": dict(changes) if changes else None,
            "comment": comment,
        }

    def write(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` in one statement (executemany for several)."""
        if rows:
            connection.execute(self._insert, list(rows) if len(rows) > 1 else rows[0])

    def timeline(self, connection: Connection, entity: str, record_id: int) -> list[AuditEntry]:
        """Every audit row of one record, oldest first, in one query."""
        result = connection.execute(self._timeline, {"entity": entity, "record_id": record_id})
        return [
            AuditEntry(
                id=row.id,
                action=row.action,
                actor_id=row.actor_id,
                actor=row.actor,
                at=load_datetime(row.at),  # type: ignore[arg-type]
                changes=row.changes or {},
                comment=row.comment,
            )
            for row in result
        ]
