"""Human record numbers such as `TCK-000042` or `PR-2026-00017`.

Numbers come from `fd_sequences`, one row per (app, entity, period), where
the period is the date part of the pattern (`2026` for `PR-{yyyy}-{seq:05}`,
empty for `TCK-{seq:06}`), so a yearly pattern restarts at 1 each year.

Allocation is one statement in the creating transaction:
`INSERT ... ON CONFLICT DO UPDATE SET value = value + 1 RETURNING value`.
It creates a missing row and increments an existing one atomically on both
databases, and the row stays locked until the transaction ends: a rollback
gives the number back (no gaps) and a concurrent creator waits for the commit
(no duplicates). Callers allocate as late as possible in the transaction to
keep that lock short.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from . import platform_tables as pt

__all__ = ["NumberPattern", "SequenceAllocator"]

_TOKEN = re.compile(r"\{(seq(?::0?(\d+))?|yyyy|yy|mm|dd)\}")
_DATE_PARTS = {"yyyy": "%Y", "yy": "%y", "mm": "%m", "dd": "%d"}


@dataclass(frozen=True)
class NumberPattern:
    """A parsed number pattern: literal text, date parts and one sequence part."""

    pattern: str

    def period(self, day: dt.date) -> str:
        """The sequence's period for a record created on `day` ('' when it never restarts)."""
        return "".join(
            day.strftime(_DATE_PARTS[match.group(1)])
            for match in _TOKEN.finditer(self.pattern)
            if match.group(1) in _DATE_PARTS
        )

    def format(self, seq: int, day: dt.date) -> str:
        """The number shown to people: `format(42, day)` -> `TCK-000042`."""

        def part(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in _DATE_PARTS:
                return day.strftime(_DATE_PARTS[token])
            width = int(match.group(2) or 0)
            return str(seq).zfill(width)

        return _TOKEN.sub(part, self.pattern)


class SequenceAllocator:
    """Allocates the next value of a sequence inside the caller's transaction."""

    def __init__(self, dialect: str) -> None:
        module = postgresql if dialect == "postgresql" else sqlite
        table = pt.sequences
        statement = module.insert(table).values(
            app=bindparam("app"), entity=bindparam("entity"), period=bindparam("period"), value=1
        )
        self._statement = statement.on_conflict_do_update(
            index_elements=[table.c.app, table.c.entity, table.c.period],
            set_={"value": table.c.value + 1},
        ).returning(table.c.value)

    def next(self, connection: Connection, app: str, entity: str, period: str) -> int:
        """Allocate and return the next value (1 for a new period)."""
        parameters = {"app": app, "entity": entity, "period": period}
        return int(connection.execute(self._statement, parameters).scalar_one())
