"""Checking and writing a batch of imported rows in bulk, as the records service would.

`BatchChecker.check` runs, for a batch of converted rows, what
`RecordStore.create` runs for one record, but with one query per batch where
the store runs one per record: references looked up by natural key and loaded
for expressions, existence of referred records, duplicates of the key and of
unique fields (in the file so far and in the table). Per row it runs the
store's own steps: value coercion, defaults, required fields, deprecated
values, computed fields and rules (`ValidationFailed`'s field errors become row
problems). `write_batch` then inserts the good rows with one `executemany`
(ids returned in order), allocates or advances the human-number sequence once
per batch and writes the `create` audit rows with one `executemany`, each with
the comment `imported from <file> row N`. No workflow, automation or
notification runs: those hang off the workflow engine, which an import skips.

The store decides everything per entity once (`EntityPlan`); this module uses
that plan and the store's reference loader rather than deciding again
(`_plan_of`), so imports and single creates cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, any_, bindparam, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from flowdesk.store import platform_tables as pt
from flowdesk.store._derived import evaluate
from flowdesk.store._entity_plan import EntityPlan
from flowdesk.store._write_steps import deprecated_values, error_paths
from flowdesk.store.audit import AuditLog, diff
from flowdesk.store.errors import FieldError
from flowdesk.store.records import Actor, RecordStore
from flowdesk.store.tables import SYSTEM_COLUMNS
from flowdesk.store.values import DefaultContext, Invalid

from ._data_memo import memoized_plan
from ._data_rows import Converted, RowConverter, RowProblem

__all__ = ["BatchChecker", "Prepared", "write_batch"]

_PLATFORM = {"user": pt.users, "department": pt.departments, "position": pt.positions}
_CHUNK = 500  # values per IN (...) list


@dataclass
class Prepared:
    """A row that passed every check: the record to insert and what was given, with
    what the check read from the database (to see later whether it still holds)."""

    row: int
    record: dict[str, Any]
    given: list[str]
    converted: Converted
    seen: dict[str, Any] = field(default_factory=dict)  # referred records expressions read


def _plan_of(store: RecordStore, entity: str) -> EntityPlan:
    """The store's decided plan of `entity` (imports reuse it rather than decide again)."""
    return store._plan(entity)


class BatchChecker:
    """The checks of one import, with what it has seen of the file so far."""

    def __init__(self, store: RecordStore, converter: RowConverter, actor: Actor) -> None:
        self.store = store
        self.converter = converter
        self.actor = actor
        self.user = actor.cel_user()
        self.plan = _plan_of(store, converter.entity_name)
        self.table = self.plan.table
        self.evaluated = memoized_plan(self.plan)  # same steps, distinct inputs once
        expressions = [*self.plan.computed, *self.plan.rules,
                       *(e for exprs in self.plan.line_computed.values() for e in exprs)]
        self.reads_now = any(p[0] == "now" for e in expressions for p in e.expression.names)
        self.key = converter.key
        self.uniques = [s[0] for s in self.plan.uniques if len(s) == 1 and s != self.key]
        if self.key != ("number",) and "number" in converter.mapped:
            self.uniques.append("number")  # a kept number must stay unique
        self.seen: dict[Any, int] = {}  # key value -> row that first had it
        self.seen_unique: dict[str, dict[Any, int]] = {name: {} for name in self.uniques}
        self.zone = ZoneInfo(getattr(store.app.manifest, "timezone", None) or "UTC")
        workflow = next((w for w in store.app.workflows.values()
                         if w.entity == converter.entity_name), None)
        self.initial = workflow.initial if workflow else None
        self.states = frozenset(workflow.states) if workflow else frozenset()
        self.workflow_version = store.app.version if workflow else None

    # ------------------------------------------------------------------ a batch

    def check(
        self, conn: Connection, rows: Sequence[Converted], now: dt.datetime
    ) -> tuple[list[Prepared], list[RowProblem]]:
        """The good rows of `rows` as records, and every problem of the others."""
        problems: list[RowProblem] = []
        ids = self._lookups(conn, rows)
        candidates: list[tuple[Converted, dict[str, Any], list[FieldError]]] = []
        for item in rows:
            if item.problems:
                problems.extend(item.problems)
                continue
            candidates.append(self._record(item, ids, now))
        loaded = self._load(conn, [record for _item, record, _errors in candidates])
        existing = self._existing(conn, [record for _item, record, _errors in candidates])
        good: list[Prepared] = []
        for item, record, errors in candidates:
            found, seen = self._row_problems(item, record, errors, loaded, existing, now)
            if found:
                problems.extend(found)
                continue
            self._remember(item.row, record)
            given = [n for n in self.plan.fields if record[n] not in (None, [])]
            good.append(Prepared(item.row, record, given, item, seen))
        return good, problems

    def recheck(
        self, conn: Connection, rows: Sequence[Prepared], now: dt.datetime
    ) -> tuple[list[Prepared], list[RowProblem]]:
        """Rows that passed `check` earlier, checked against the database as it is now.

        What a row's checks read from the database is read again in bulk: the ids
        its natural keys look up, the referred records its expressions read (and
        their existence), and the keys and unique values already in the table. A
        row whose reads are unchanged keeps its computed values and rule verdicts
        (CEL is pure); any other row is checked again from the start. Entities
        whose expressions read `now` are always checked again.
        """
        if self.reads_now:
            return self.check(conn, [row.converted for row in rows], now)
        ids = self._lookups(conn, [row.converted for row in rows])
        loaded = self._load(conn, [row.record for row in rows])
        existing = self._existing(conn, [row.record for row in rows])
        good: list[Prepared] = []
        problems: list[RowProblem] = []
        for row in rows:
            if not self._unchanged(row, ids, loaded):
                again, found = self.check(conn, [row.converted], now)
                good.extend(again)
                problems.extend(found)
                continue
            duplicate = self._duplicates(row.converted, row.record, existing)
            if duplicate:
                problems.extend(duplicate)
                continue
            self._remember(row.row, row.record)
            good.append(row)
        return good, problems

    def _unchanged(self, row: Prepared, ids: dict[str, dict], loaded: dict[str, dict]) -> bool:
        record = row.record
        if any(ids.get(n, {}).get(k) != record[n] for n, k in row.converted.lookups.items()):
            return False
        return not self._missing(record, loaded) and self._seen(record, loaded) == row.seen

    def _seen(self, record: dict[str, Any], loaded: dict[str, dict]) -> dict[str, Any]:
        """The referred records the expressions of `record` read, by field."""
        seen = {name: loaded[name].get(record[name]) for name in self.plan.tree
                if name in loaded and record.get(name) is not None}
        return {k: v for k, v in seen.items() if v is not None}

    def _record(
        self, item: Converted, ids: dict[str, dict[str, Any]], now: dt.datetime
    ) -> tuple[Converted, dict[str, Any], list[FieldError]]:
        """The record `RecordStore.create` would build from the row, and its value errors."""
        plan = self.plan
        given, errors = plan.shape.coerce(item.values)
        for name, key in item.lookups.items():
            found = ids.get(name, {}).get(key)
            if isinstance(found, int):
                given[name] = found
            else:
                errors.append(FieldError(name, "not-found", found or f"{name}: no match for "
                                         f"`{key}`"))
        context = DefaultContext(self.actor.id, now, self.zone)
        record = plan.shape.defaults(context)
        record.update(given)
        system = self._system(item, errors)
        record.update(
            id=None, number=system.get("number"), deleted_at=None, row_version=1,
            state=system.get("state") or self.initial, workflow_version=self.workflow_version,
            created_at=system.get("created_at") or now,
            updated_at=system.get("updated_at") or system.get("created_at") or now,
            created_by=self.actor.id, updated_by=self.actor.id, assignee=given.get("assignee"),
        )  # fmt: skip
        errors.extend(plan.shape.check_required(record, skip=error_paths(errors)))
        errors.extend(deprecated_values(plan, record, None))
        return item, record, errors

    def _system(self, item: Converted, errors: list[FieldError]) -> dict[str, Any]:
        system = dict(item.system)
        for name in ("created_at", "updated_at"):
            if system.get(name) is not None:
                try:
                    system[name] = self.plan.system[name].coerce(system[name])
                except Invalid as problem:
                    errors.append(FieldError(name, problem.code, problem.message))
        state = system.get("state")
        if state is not None and state not in self.states:
            known = ", ".join(sorted(self.states)) or "none: the entity has no workflow"
            errors.append(FieldError("state", "not-allowed", f"state: `{state}` is not a "
                                     f"state of the workflow (states: {known})"))
        number = system.get("number")
        if number is not None:
            system["number"] = str(number)
            if self.plan.number is None:
                errors.append(FieldError("number", "not-allowed", f"{self.plan.name} has no "
                                         "number pattern"))
        return system

    def _row_problems(self, item, record, errors, loaded, existing, now):  # type: ignore[no-untyped-def]
        """Reference, rule, computed-field and duplicate problems of one candidate row,
        and the referred records its expressions read."""
        errors = list(errors)
        errors.extend(self._missing(record, loaded))
        seen = self._seen(record, loaded)
        if not errors:
            evaluate(self.evaluated, record, seen, self.user, now, errors,
                     self.actor.locale or "en")
        problems = [self._problem(item, error) for error in errors]
        if not problems:
            problems.extend(self._duplicates(item, record, existing))
        return problems, seen

    def _problem(self, item: Converted, error: FieldError) -> RowProblem:
        name = (error.field or "").split("[", 1)[0].split(".", 1)[0] or None
        column = item.columns.get(name or "")
        value = item.values.get(name or "", item.lookups.get(name or "", item.system.get(name)))
        return RowProblem(item.row, column, name, error.code, error.message, value)

    # ------------------------------------------------------------------ bulk lookups

    def _lookups(self, conn: Connection, rows: Sequence[Converted]) -> dict[str, dict[str, Any]]:
        """Natural key -> id per looked-up field; an error message for a missing or
        ambiguous key (live records only)."""
        found: dict[str, dict[str, Any]] = {}
        for name, lookup in self.converter.lookups.items():
            keys = sorted({row.lookups[name] for row in rows if name in row.lookups})
            if not keys:
                continue
            column, id_column, live = self._lookup_columns(lookup.target, lookup.key)
            result: dict[str, Any] = {}
            for chunk in _chunks(keys):
                statement = select(column, id_column).where(self._in(column, chunk))
                if live is not None:
                    statement = statement.where(live)
                for key, record_id in conn.execute(statement):
                    key = str(key)
                    result[key] = (f"{name}: more than one {lookup.target} has {lookup.key} "
                                   f"`{key}`") if key in result else record_id
            for key in keys:
                result.setdefault(key, f"{name}: there is no {lookup.target} with "
                                       f"{lookup.key} `{key}`")
            found[name] = result
        return found

    def _in(self, column: Any, values: list[Any]) -> Any:
        """`column IN (...)`; on PostgreSQL `= ANY(array)`, one parameter instead of
        hundreds (psycopg re-parses a statement with hundreds of placeholders per call)."""
        if self.store.dialect == "postgresql":
            return column == any_(bindparam("values", values, type_=ARRAY(column.type)))
        return column.in_(values)

    def _lookup_columns(self, target: str, key: str) -> tuple[Any, Any, Any]:
        if target in _PLATFORM:
            table = _PLATFORM[target]
            return table.c[key], table.c.id, None
        table = self.store.table(target)
        return table.c[key], table.c.id, table.c.deleted_at.is_(None)

    def _load(self, conn: Connection, records: list[dict[str, Any]]) -> dict[str, dict]:
        """Referred records by field and id: what expressions read, and whether they exist."""
        references = self.store._references
        loaded: dict[str, dict[int, Any]] = {}
        for name, codec in self.plan.checked_ids.items():
            if codec.multiple:
                continue
            ids = sorted({r[name] for r in records if r.get(name) is not None})
            if not ids:
                continue
            subtree = self.plan.tree.get(name) or {"id": {}}
            views: dict[int, Any] = {}
            for chunk in _chunks(ids):
                views.update(references.load(conn, codec.target or "", chunk, subtree))
            loaded[name] = views
        return loaded

    def _missing(self, record: dict[str, Any], loaded: dict[str, dict]) -> list[FieldError]:
        errors = []
        for name, codec in self.plan.checked_ids.items():
            value = record.get(name)
            if codec.multiple or value is None:
                continue
            view = loaded.get(name, {}).get(value)
            if view is None or view.get("deleted_at") is not None:
                errors.append(FieldError(name, "not-found", f"{name}: there is no "
                                         f"{codec.target} with id {value}"))
        return errors

    def _existing(self, conn: Connection, records: list[dict[str, Any]]) -> dict[str, set]:
        """Key values and unique values of `records` already in the table (deleted too)."""
        existing: dict[str, set] = {}
        if self.key:
            first = self.key[0]
            values = sorted({r[first] for r in records if r.get(first) is not None}, key=str)
            columns = [self.table.c[n] for n in self.key]
            hits: set = set()
            for chunk in _chunks(self._db(first, values)):
                for row in conn.execute(select(*columns).where(self._in(columns[0], chunk))):
                    hits.add(tuple(row))
            existing["\0key"] = hits
        for name in self.uniques:
            values = sorted({r[name] for r in records if r.get(name) is not None}, key=str)
            column = self.table.c[name]
            found: set = set()
            for chunk in _chunks(self._db(name, values)):
                found.update(conn.execute(select(column).where(self._in(column, chunk))).scalars())
            existing[name] = found
        return existing

    def _db(self, name: str, values: list[Any]) -> list[Any]:
        dump = dict(self.plan.dumps).get(name)
        return [dump(v) for v in values] if dump else values

    def _key_of(self, record: dict[str, Any]) -> tuple | None:
        values = tuple(self._db(n, [record.get(n)])[0] for n in self.key)
        return None if not self.key or any(v is None for v in values) else values

    def _duplicates(self, item: Converted, record: dict, existing: dict) -> list[RowProblem]:
        key = self._key_of(record)
        names = ", ".join(self.key)
        shown = key[0] if key and len(key) == 1 else key
        column = item.columns.get(self.key[0]) if self.key else None
        if key is not None and key in self.seen:
            message = f"duplicate of row {self.seen[key]}: same {names} `{shown}`"
            return [RowProblem(item.row, column, names, "duplicate", message, shown)]
        if key is not None and key in existing.get("\0key", ()):
            message = f"a {self.plan.name} with {names} `{shown}` already exists"
            return [RowProblem(item.row, column, names, "exists", message, shown)]
        for name in self.uniques:
            value = self._db(name, [record.get(name)])[0]
            if value is None:
                continue
            if value in self.seen_unique[name] or value in existing.get(name, ()):
                where = self.seen_unique[name].get(value)
                message = (f"{name} `{value}` is also in row {where}" if where else
                           f"{name} `{value}` is already used by another {self.plan.name}")
                return [RowProblem(item.row, item.columns.get(name), name, "unique", message,
                                   value)]
        return []

    def _remember(self, row: int, record: dict[str, Any]) -> None:
        key = self._key_of(record)
        if key is not None:
            self.seen[key] = row
        for name in self.uniques:
            value = self._db(name, [record.get(name)])[0]
            if value is not None:
                self.seen_unique[name][value] = row


# --------------------------------------------------------------------------- writing


def write_batch(
    conn: Connection,
    store: RecordStore,
    entity: str,
    prepared: Sequence[Prepared],
    *,
    source: str,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """Insert `prepared` records, their numbers and audit rows in bulk, in `conn`."""
    if not prepared:
        return
    plan = _plan_of(store, entity)
    records = [item.record for item in prepared]
    _number(conn, store, plan, records, now)
    rows = [
        plan.db_values(r, plan.scalars) | {k: r[k] for k in SYSTEM_COLUMNS if k != "id"}
        for r in records
    ]
    ids = _new_ids(conn, store.dialect, plan.table, len(rows))
    for row, record, record_id in zip(rows, records, ids, strict=True):
        row["id"] = record["id"] = record_id
    conn.execute(plan.table.insert(), rows)  # executemany: no RETURNING to parse per batch
    for record in records:
        record_id = record["id"]
        for name, child in plan.children.items():
            if record.get(name):
                child.write(conn, record_id, record[name], None)
    if plan.entity.audit:
        log = AuditLog(store.app.name)
        audit = [
            log.row(entity, item.record["id"], "create", actor_id=actor.id, actor=actor.username,
                    at=now, changes=diff({}, item.record, item.given),
                    comment=f"imported from {source} row {item.row}")
            for item in prepared
        ]
        log.write(conn, audit)


def _new_ids(conn: Connection, dialect: str, table: Any, n: int) -> list[int]:
    """Ids for `n` new rows, taken before inserting them with a plain executemany.

    PostgreSQL: `n` values of the table's own sequence (safe with concurrent
    writers). SQLite: the ids after the highest one, which is what SQLite would
    choose itself; the write transaction holds the database's only write lock.
    """
    if dialect == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        statement = select(func.nextval(sequence)).select_from(func.generate_series(1, n))
        return sorted(int(v) for v in conn.execute(statement).scalars())
    highest = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(int(highest) + 1, int(highest) + n + 1))


def _number(
    conn: Connection, store: RecordStore, plan: EntityPlan, records: list[dict], now: dt.datetime
) -> None:
    """Numbers for records without one (one statement); kept numbers advance the sequence."""
    if plan.number is None:
        return
    zone = ZoneInfo(getattr(store.app.manifest, "timezone", None) or "UTC")
    day = now.astimezone(zone).date()
    kept = [r for r in records if r["number"] is not None]
    missing = [r for r in records if r["number"] is None]
    if missing:
        period = plan.number.period(day)
        last = _advance(conn, store, plan.name, period, len(missing), add=True)
        for offset, record in enumerate(missing):
            record["number"] = plan.number.format(last - len(missing) + 1 + offset, day)
    highest: dict[str, int] = {}
    parse = _number_parser(plan.number.pattern)
    for record in kept:
        found = parse(record["number"])
        if found is not None:
            period, seq = found
            highest[period] = max(seq, highest.get(period, 0))
    for period, seq in highest.items():
        _advance(conn, store, plan.name, period, seq, add=False)


def _advance(conn: Connection, store: RecordStore, entity: str, period: str, n: int,
             *, add: bool) -> int:
    """Add `n` to a sequence (allocating n numbers), or raise it to at least `n`."""
    module = postgresql if store.dialect == "postgresql" else sqlite
    table = pt.sequences
    statement = module.insert(table).values(app=store.app.name, entity=entity, period=period,
                                            value=n)
    grown = table.c.value + n if add else case((table.c.value < n, n), else_=table.c.value)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.app, table.c.entity, table.c.period], set_={"value": grown}
    ).returning(table.c.value)
    return int(conn.execute(statement).scalar_one())


def _number_parser(pattern: str) -> Any:
    """`TCK-{seq:06}` -> a function reading ("", 42) out of `TCK-000042` (None: no match)."""
    parts, date_groups = [], []
    position = 0
    for match in re.finditer(r"\{(seq(?::0?\d+)?|yyyy|yy|mm|dd)\}", pattern):
        parts.append(re.escape(pattern[position:match.start()]))
        token = match.group(1)
        if token.startswith("seq"):
            parts.append(r"(?P<seq>\d+)")
        else:
            name = f"d{len(date_groups)}"
            date_groups.append(name)
            parts.append(f"(?P<{name}>\\d{{{4 if token == 'yyyy' else 2}}})")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    regex = re.compile("".join(parts))

    def parse(number: str) -> tuple[str, int] | None:
        found = regex.fullmatch(number or "")
        if found is None:
            return None
        return "".join(found.group(g) for g in date_groups), int(found.group("seq"))

    return parse


def _chunks(values: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start:start + _CHUNK])
