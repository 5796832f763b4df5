"""Deploy plans: `plan()` compares the new `AppModel` with the deployed one and
the live database, and returns a `Plan` of operations (see `ops`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    column,
    func,
    inspect,
    select,
    table,
)
from sqlalchemy.schema import sort_tables_and_constraints

from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import Entity

from .ops import (
    AddColumn,
    AddUnique,
    AlterColumnType,
    CreateIndex,
    CreateSearchIndex,
    CreateTable,
    DropColumn,
    DropIndex,
    DropNotNull,
    DropTable,
    DropUnique,
    EnumValuesAdded,
    EnumValuesRemoved,
    Op,
    PinnedRecords,
    Plan,
    RenameColumn,
    RenameTable,
    SetNotNull,
    StateRenamed,
    StatesRemoved,
)
from .snapshots import _connect, declared_renames, semver_key
from .tables import build_tables

__all__ = ["plan", "type_change"]


def plan(
    engine_or_connection: Engine | Connection, new: AppModel, current: AppModel | None
) -> Plan:
    """Diff `new` against the deployed `current` (None: nothing deployed yet).

    Counts come from the live database, which is also checked against
    `current`: a table or column the deployed version has but the database
    lacks (or a table in the way of a new one) is reported as drift.
    """
    with _connect(engine_or_connection) as connection:
        return _Planner(connection, new, current).run()


# --- diffing ------------------------------------------------------------------------------


@dataclass
class _Pair:
    """The same logical table in the deployed and in the new version."""

    entity: str
    new: Table
    old: Table | None
    new_fields: Mapping[str, Any]
    old_fields: Mapping[str, Any]
    renames: dict[str, str]  # new column name -> old column name
    main: bool = False  # the entity's own table (not a lines or link table)


def _scalar_fields(entity: Entity) -> dict[str, Any]:
    return {n: s for n, s in entity.fields.items() if s.type not in ("lines", "references")}


def _type_label(type_: Any) -> str:
    if isinstance(type_, Text):
        return "text"
    if isinstance(type_, String):
        return f"string({type_.length})"
    if isinstance(type_, BigInteger):
        return "bigint"
    if isinstance(type_, Integer):
        return "integer"
    if isinstance(type_, Numeric):
        return f"decimal({type_.precision},{type_.scale})"
    if isinstance(type_, DateTime):
        return "datetime"
    if isinstance(type_, Date):
        return "date"
    if isinstance(type_, Boolean):
        return "boolean"
    if isinstance(type_, JSON):
        return "json"
    return type(type_).__name__.lower()


def type_change(old: Any, new: Any) -> str | None:
    """None when the types are the same, else `widen`, `narrow` or `convert`."""
    a, b = _type_label(old), _type_label(new)
    if a == b:
        return None
    if isinstance(old, String) and isinstance(new, String):
        if isinstance(new, Text):
            return "widen"
        if isinstance(old, Text):
            return "narrow"
        return "widen" if (new.length or 0) >= (old.length or 0) else "narrow"
    if a == "integer" and b == "bigint":
        return "widen"
    if isinstance(old, Numeric) and isinstance(new, Numeric):
        p1, s1, p2, s2 = old.precision or 0, old.scale or 0, new.precision or 0, new.scale or 0
        return "widen" if s2 >= s1 and p2 - s2 >= p1 - s1 else "narrow"
    return "convert"


_NO_BACKFILL = {"current_user"}


def _backfill(spec: Any) -> tuple[bool, Any]:
    """Whether a field's default can fill existing rows, and that default as JSON."""
    default = getattr(spec, "default", None)
    if default is None or default in _NO_BACKFILL:
        return False, None
    return True, default


def _noun(entity: Entity) -> tuple[str, str]:
    def text(label: Any) -> str | None:
        if label is None:
            return None
        return label if isinstance(label, str) else label.text("en")

    one = text(entity.label) or entity.name.replace("_", " ")
    many = text(entity.plural) or f"{one}s"
    return one.lower(), many.lower()


class _Planner:
    """One diff: pairs the tables of both versions, then compares them op by op."""

    def __init__(self, connection: Connection, new: AppModel, current: AppModel | None) -> None:
        self.connection = connection
        self.new = new
        self.current = current
        self.inspector = inspect(connection)
        self.live = set(self.inspector.get_table_names())
        self.ops: list[Op] = []
        self.drift: list[str] = []

    def run(self) -> Plan:
        new_tables = build_tables(self.new)
        old_tables = build_tables(self.current) if self.current else {}
        pairs = self._pairs(new_tables, old_tables)
        paired = {p.old.name for p in pairs if p.old is not None}
        creates = [p.new for p in pairs if p.old is None]
        for table_ in _in_dependency_order(creates):
            if table_.name in self.live:
                self.drift.append(
                    f"table `{table_.name}` already exists in the database but is not part of "
                    "the deployed version (left over from a manual or failed change?)"
                )
            else:
                self.ops.append(CreateTable(table_.name, tuple(c.name for c in table_.columns)))
        for pair in pairs:
            if pair.old is not None:
                self._diff_table(pair)
        drops = [t for et in old_tables.values() for t in et.all if t.name not in paired]
        for table_ in reversed(_in_dependency_order(drops)):
            if table_.name in self.live:
                self.ops.append(DropTable(table_.name, self._count(table_.name)))
        self._workflows(pairs)
        self._search()
        ops = sorted(self.ops, key=lambda op: op.phase)
        return Plan(
            self.new.name,
            self.current.version if self.current else None,
            self.new.version,
            tuple(ops),
            tuple(self.drift),
        )

    def _pairs(self, new_tables: Mapping[str, Any], old_tables: Mapping[str, Any]) -> list[_Pair]:
        pairs = []
        for name, entity in self.new.entities.items():
            new_et, old_et = new_tables[name], old_tables.get(name)
            old_entity = self.current.entities.get(name) if self.current else None
            old_fields = _scalar_fields(old_entity) if old_entity else {}
            fields_ = _scalar_fields(entity)
            renames = declared_renames(fields_, old_fields)
            old_main = old_et.main if old_et else None
            pairs.append(_Pair(name, new_et.main, old_main, fields_, old_fields, renames, True))
            children = {n: s for n, s in entity.fields.items() if n not in fields_}
            old_children = (
                {n: s for n, s in old_entity.fields.items() if n not in old_fields}
                if old_entity
                else {}
            )
            child_renames = declared_renames(children, old_children)
            for field_name, spec in children.items():
                group = "lines" if spec.type == "lines" else "links"
                source = field_name if field_name in old_children else child_renames.get(field_name)
                old_spec = old_children.get(source or "")
                old_child = None
                if old_spec is not None and old_spec.type == spec.type:
                    old_child = getattr(old_et, group)[source]
                sub_new = getattr(spec, "fields", {})
                sub_old = getattr(old_spec, "fields", {}) if old_child is not None else {}
                sub_renames = declared_renames(sub_new, sub_old)
                new_child = getattr(new_et, group)[field_name]
                pairs.append(_Pair(name, new_child, old_child, sub_new, sub_old, sub_renames))
        return pairs

    # -- one table -------------------------------------------------------------------------

    def _diff_table(self, pair: _Pair) -> None:
        """Columns are compared with the deployed model (types, nullability, renames) but
        exist or not according to the live table, so a column the platform's table
        generator gained since the last deploy is added instead of blocking it."""
        old, new = pair.old, pair.new
        assert old is not None
        if old.name not in self.live:
            self.drift.append(f"table `{old.name}` of the deployed version is missing")
            return
        name = new.name
        if old.name != name:
            if name in self.live:
                self.drift.append(f"table `{name}` is in the way of renaming `{old.name}`")
                return
            self.ops.append(RenameTable(old.name, name))
        live = {c["name"] for c in self.inspector.get_columns(old.name)}
        rows = self._count(old.name)
        sources: dict[str, str] = {}  # new column -> live column
        for col in new.columns:
            source = col.name if col.name in old.c else pair.renames.get(col.name)
            if source is not None and source in live:
                sources[col.name] = source
                if source != col.name:
                    self.ops.append(RenameColumn(name, source, col.name))
                self._alter_column(pair, old.c[source], col)
            elif col.name in live:
                self.drift.append(
                    f"column `{old.name}.{col.name}` exists in the database but not in the "
                    "deployed version"
                )
            else:
                self._add_column(pair, col, rows)
        for col in old.columns:
            if col.name in live and col.name not in sources.values():
                self.ops.append(DropColumn(name, col.name, self._count(old.name, col.name)))
        self._indexes(pair, sources)
        self._enums(pair, sources)

    def _add_column(self, pair: _Pair, col: Any, rows: int) -> None:
        self.ops.append(AddColumn(pair.new.name, col.name, _type_label(col.type)))
        if not col.nullable:
            has, default = _backfill(pair.new_fields.get(col.name))
            self.ops.append(SetNotNull(pair.new.name, col.name, rows, default, has))

    def _alter_column(self, pair: _Pair, old_col: Any, col: Any) -> None:
        assert pair.old is not None
        change = type_change(old_col.type, col.type)
        if change is not None:
            affected = 0
            if change == "narrow" and isinstance(col.type, String) and col.type.length:
                affected = self._count(
                    pair.old.name, old_col.name, func.length(column(old_col.name)) > col.type.length
                )
            elif change == "convert":
                affected = self._count(pair.old.name, old_col.name)
            self.ops.append(
                AlterColumnType(
                    pair.new.name,
                    col.name,
                    _type_label(old_col.type),
                    _type_label(col.type),
                    change,
                    affected,
                )
            )
        if old_col.nullable and not col.nullable:
            nulls = self._count(pair.old.name, where=column(old_col.name).is_(None))
            has, default = _backfill(pair.new_fields.get(col.name))
            self.ops.append(SetNotNull(pair.new.name, col.name, nulls, default, has))
        elif col.nullable and not old_col.nullable:
            self.ops.append(DropNotNull(pair.new.name, col.name))

    def _indexes(self, pair: _Pair, sources: Mapping[str, str]) -> None:
        """Indexes and unique constraints, compared by name and (renamed) columns."""
        assert pair.old is not None
        back = {old: new for new, old in sources.items()}

        def shape(columns: Iterable[Any], rename: bool) -> tuple[str, ...]:
            return tuple(back.get(c.name, "?") if rename else c.name for c in columns)

        old_ix = {i.name: (shape(i.columns, True), bool(i.unique)) for i in _indexes_of(pair.old)}
        new_ix = {i.name: (shape(i.columns, False), bool(i.unique)) for i in _indexes_of(pair.new)}
        old_uq = {c.name: shape(c.columns, True) for c in _uniques(pair.old)}
        new_uq = {c.name: shape(c.columns, False) for c in _uniques(pair.new)}
        table_ = pair.new.name
        live = {i["name"] for i in self.inspector.get_indexes(pair.old.name)}
        live |= {u["name"] for u in self.inspector.get_unique_constraints(pair.old.name)}
        old_columns = {i.name: tuple(c.name for c in i.columns) for i in _indexes_of(pair.old)}
        old_columns |= {c.name: tuple(x.name for x in c.columns) for c in _uniques(pair.old)}
        # Dropped only if present; (re)created when new, changed or missing from the database.
        for name, (cols, unique) in old_ix.items():
            if new_ix.get(name) != (cols, unique) and name in live:
                self.ops.append(DropIndex(table_, str(name), old_columns[name], unique))
        for name, (cols, unique) in new_ix.items():
            if old_ix.get(name) != (cols, unique) or name not in live:
                dups = self._duplicates(pair, cols, sources) if unique else 0
                self.ops.append(CreateIndex(table_, str(name), cols, unique, dups))
        for name, cols in old_uq.items():
            if new_uq.get(name) != cols and name in live:
                self.ops.append(DropUnique(table_, str(name), old_columns[name]))
        for name, cols in new_uq.items():
            if old_uq.get(name) != cols or name not in live:
                dups = self._duplicates(pair, cols, sources)
                self.ops.append(AddUnique(table_, str(name), cols, dups))

    def _duplicates(self, pair: _Pair, cols: tuple[str, ...], sources: Mapping[str, str]) -> int:
        """Rows sharing their value of `cols` with another row (new columns count as empty)."""
        assert pair.old is not None
        if any(c not in sources for c in cols):
            new_cols = [c for c in cols if c not in sources]
            backfilled = [
                op
                for op in self.ops
                if isinstance(op, SetNotNull)
                and op.table == pair.new.name
                and op.column in new_cols
                and op.has_default
            ]
            if len(backfilled) != len(new_cols):
                return 0  # some column is NULL in every row: NULLs never collide
            if len(cols) == len(new_cols):  # every row gets the same default
                rows = self._count(pair.old.name)
                return rows if rows > 1 else 0
            cols = tuple(c for c in cols if c in sources)  # the shared default adds nothing
        live = [column(sources[c]) for c in cols]
        groups = (
            select(func.count().label("n"))
            .select_from(table(pair.old.name, *live))
            .where(*(c.is_not(None) for c in live))
            .group_by(*live)
            .having(func.count() > 1)
            .subquery()
        )
        return int(self.connection.execute(select(func.coalesce(func.sum(groups.c.n), 0))).scalar())

    def _enums(self, pair: _Pair, sources: Mapping[str, str]) -> None:
        assert pair.old is not None
        for name, spec in pair.new_fields.items():
            old_spec = pair.old_fields.get(sources.get(name, ""))
            if spec.type != "enum" or old_spec is None or old_spec.type != "enum":
                continue
            old_values, new_values = old_spec.value_names, spec.value_names
            added = tuple(v for v in new_values if v not in old_values)
            removed = tuple(v for v in old_values if v not in new_values)
            if added:
                self.ops.append(EnumValuesAdded(pair.new.name, name, added))
            if removed:
                rows = self._enum_rows(pair.old.name, sources[name], removed, old_spec.multiple)
                self.ops.append(EnumValuesRemoved(pair.new.name, name, removed, rows))

    def _enum_rows(self, table_: str, col: str, removed: tuple[str, ...], multiple: bool) -> int:
        if not multiple:
            return self._count(table_, where=column(col).in_(removed))
        values = self.connection.execute(
            select(table(table_, column(col, JSON)).c[col]).where(column(col).is_not(None))
        ).scalars()
        gone = set(removed)
        return sum(1 for v in values if isinstance(v, list) and gone.intersection(v))

    # -- workflows and search --------------------------------------------------------------

    def _workflows(self, pairs: list[_Pair]) -> None:
        for pair in pairs:
            if not pair.main or pair.old is None or pair.old.name not in self.live:
                continue
            entity = self.new.entities[pair.entity]
            nouns = _noun(entity)
            old_wf = self.current.workflow_for(pair.entity) if self.current else None
            new_wf = self.new.workflow_for(pair.entity)
            old_states = dict(old_wf.states) if old_wf else {}
            new_states = dict(new_wf.states) if new_wf else {}
            renamed = declared_renames(new_states, old_states)
            for state, source in renamed.items():
                n = self._state_count(pair.old.name, [source])
                self.ops.append(StateRenamed(pair.entity, source, state, n))
            removed = sorted(set(old_states) - set(new_states) - set(renamed.values()))
            if removed:
                counts = tuple((s, self._state_count(pair.old.name, [s])) for s in removed)
                self.ops.append(StatesRemoved(pair.entity, counts, nouns))
            if new_wf is not None:
                self._pinned(pair, old_wf, new_wf, nouns)

    def _pinned(self, pair: _Pair, old_wf: Any, new_wf: Any, nouns: tuple[str, str]) -> None:
        assert pair.old is not None
        done = {
            s
            for wf in (old_wf, new_wf)
            if wf
            for s, spec in wf.states.items()
            if spec.category == "done"
        }
        t = table(pair.old.name, column("workflow_version"), column("state"), column("deleted_at"))
        query = (
            select(t.c.workflow_version, func.count())
            .where(
                t.c.deleted_at.is_(None),
                t.c.workflow_version.is_not(None),
                t.c.workflow_version != self.new.version,
                t.c.state.not_in(sorted(done)) if done else t.c.state.is_not(None),
            )
            .group_by(t.c.workflow_version)
        )
        rows = sorted(self.connection.execute(query), key=lambda row: _version_order(row[0]))
        counts = tuple((str(v), int(n)) for v, n in rows)
        if counts:
            changed = old_wf is None or old_wf.model_dump() != new_wf.model_dump()
            self.ops.append(PinnedRecords(pair.entity, counts, changed, nouns))

    def _search(self) -> None:
        """Full-text objects are rebuilt after any change to their table (search.py):
        SQLite's batch migrations recreate tables, which drops their triggers."""
        touched = {getattr(op, "table", None) for op in self.ops if op.phase <= 10}
        touched |= {getattr(op, "new_name", None) for op in self.ops if isinstance(op, RenameTable)}
        for name, entity in self.new.entities.items():
            old_entity = self.current.entities.get(name) if self.current else None
            old_search = list(old_entity.search) if old_entity else []
            if not entity.search and not old_search:
                continue
            if f"{self.new.name}__{name}" in touched or list(entity.search) != old_search:
                self.ops.append(CreateSearchIndex(name, tuple(entity.search)))

    # -- counting --------------------------------------------------------------------------

    def _count(self, table_: str, not_null: str | None = None, where: Any = None) -> int:
        query = select(func.count()).select_from(table(table_))
        if not_null is not None:
            query = query.where(column(not_null).is_not(None))
        if where is not None:
            query = query.where(where)
        return int(self.connection.execute(query).scalar() or 0)

    def _state_count(self, table_: str, states: list[str]) -> int:
        return self._count(
            table_, where=column("state").in_(states) & column("deleted_at").is_(None)
        )


def _in_dependency_order(tables: list[Table]) -> list[Table]:
    """Referred tables first; references that form a cycle do not constrain the order."""
    return [t for t, _fks in sort_tables_and_constraints(tables) if t is not None]


def _version_order(version: str) -> tuple[Any, ...]:
    try:
        return (0, semver_key(version))
    except ValueError:
        return (1, version)


def _uniques(table_: Table) -> list[UniqueConstraint]:
    """Unique constraints declared by the model (`indexes: [{unique: true}]`, `number`)."""
    found = [c for c in table_.constraints if isinstance(c, UniqueConstraint)]
    return sorted(found, key=lambda c: str(c.name))


def _indexes_of(table_: Table) -> list[Any]:
    return sorted(table_.indexes, key=lambda i: str(i.name))  # a set: sort for stable plans
