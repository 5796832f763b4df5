"""Deploy plan operations: small frozen records of one change each, as data.

Deploy plans: what deploying a new version of an app changes, as data.

`plan()` compares the new `AppModel` with the deployed one (recompiled from
its stored snapshot), checks the live database, and returns a `Plan`: a tuple
of small frozen operations (`AddColumn`, `StatesRemoved` ...) carrying the row
counts read from the database. As in Alembic (compare -> ops -> render /
execute), ops are plain data; tables of functions keyed by op type give their
safety, their problems, their text (`describe()`) and their reverse, and
`flowdesk.store.deploy` holds the table that executes them.

Safety classes:
    safe         no stored value changes or disappears;
    data_step    existing rows are rewritten (a backfill) or need a follow-up
                 step (records in removed states: `flowdesk migrate-instances`);
    destructive  stored data can be lost or invalidated: needs explicit consent.
An op may also carry a `problem`: it cannot be applied at all as things are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "DATA_STEP",
    "DESTRUCTIVE",
    "SAFE",
    "AddColumn",
    "AddUnique",
    "AlterColumnType",
    "CreateIndex",
    "CreateSearchIndex",
    "CreateTable",
    "DropColumn",
    "DropIndex",
    "DropNotNull",
    "DropTable",
    "DropUnique",
    "EnumValuesAdded",
    "EnumValuesRemoved",
    "Op",
    "PinnedRecords",
    "Plan",
    "RenameColumn",
    "RenameTable",
    "SetNotNull",
    "StateRenamed",
    "StatesRemoved",
    "render_json",
    "render_text",
]

SAFE, DATA_STEP, DESTRUCTIVE = "safe", "data_step", "destructive"
_SAFETY_ORDER = {SAFE: 0, DATA_STEP: 1, DESTRUCTIVE: 2}


@dataclass(frozen=True)
class Op:
    """One change; subclasses are frozen data, everything else is looked up by type."""

    @property
    def kind(self) -> str:
        """`add_column` for `AddColumn`: the op's name in JSON and in stored plans."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    @property
    def phase(self) -> int:
        """Ops are applied by phase: creates and renames first, drops last."""
        return _PHASE[type(self)]

    @property
    def safety(self) -> str:
        return _SAFETY.get(type(self), lambda _op: SAFE)(self)

    @property
    def problem(self) -> str | None:
        """Why this op cannot be applied at all (None when it can)."""
        check = _PROBLEM.get(type(self))
        return check(self) if check else None

    def describe(self) -> str:
        return _DESCRIBE[type(self)](self)

    def reverse(self) -> Op | None:
        """The op that undoes this one's schema change (data aside); None for reports."""
        undo = _REVERSE.get(type(self))
        return undo(self) if undo else None

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            "op": self.kind,
            "safety": self.safety,
            "description": self.describe(),
            **{k: list(v) if isinstance(v, tuple) else v for k, v in data.items()},
            "problem": self.problem,
        }


@dataclass(frozen=True)
class CreateTable(Op):
    table: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenameTable(Op):
    table: str
    new_name: str


@dataclass(frozen=True)
class RenameColumn(Op):
    table: str
    column: str
    new_name: str


@dataclass(frozen=True)
class DropIndex(Op):
    table: str
    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class DropUnique(Op):
    table: str
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class AddColumn(Op):
    """Always added as nullable; a required field is followed by `SetNotNull`."""

    table: str
    column: str
    type: str


@dataclass(frozen=True)
class AlterColumnType(Op):
    """`change` is `widen` (every value fits), `narrow` (long values are cut) or `convert`."""

    table: str
    column: str
    old_type: str
    new_type: str
    change: str
    rows: int = 0  # values that do not fit (narrow) or must be converted (convert)


@dataclass(frozen=True)
class DropNotNull(Op):
    table: str
    column: str


@dataclass(frozen=True)
class SetNotNull(Op):
    """Make a column required; rows without a value are backfilled with `default` first."""

    table: str
    column: str
    null_rows: int = 0
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True)
class CreateIndex(Op):
    table: str
    name: str
    columns: tuple[str, ...]
    unique: bool = False
    duplicates: int = 0  # rows sharing their value with another row (unique indexes only)


@dataclass(frozen=True)
class AddUnique(Op):
    table: str
    name: str
    columns: tuple[str, ...]
    duplicates: int = 0


@dataclass(frozen=True)
class DropColumn(Op):
    table: str
    column: str
    rows: int = 0  # rows holding a value that would be lost


@dataclass(frozen=True)
class DropTable(Op):
    table: str
    rows: int = 0


@dataclass(frozen=True)
class EnumValuesAdded(Op):
    table: str
    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class EnumValuesRemoved(Op):
    table: str
    column: str
    values: tuple[str, ...]
    rows: int = 0  # rows holding a removed value: they become invalid


@dataclass(frozen=True)
class StateRenamed(Op):
    entity: str
    state: str
    new_name: str
    records: int = 0


@dataclass(frozen=True)
class StatesRemoved(Op):
    """Records keep running on their pinned version; moving them is `migrate-instances`."""

    entity: str
    counts: tuple[tuple[str, int], ...]  # (state, records in it)
    nouns: tuple[str, str] = ("record", "records")


@dataclass(frozen=True)
class PinnedRecords(Op):
    entity: str
    counts: tuple[tuple[str, int], ...]  # (workflow version, running records)
    workflow_changed: bool = False
    nouns: tuple[str, str] = ("record", "records")


@dataclass(frozen=True)
class CreateSearchIndex(Op):
    entity: str
    fields: tuple[str, ...]


_PHASE: dict[type[Op], int] = {
    CreateTable: 0,
    RenameTable: 1,
    RenameColumn: 2,
    DropIndex: 3,
    DropUnique: 3,
    AddColumn: 4,
    AlterColumnType: 5,
    DropNotNull: 6,
    SetNotNull: 7,
    CreateIndex: 8,
    AddUnique: 8,
    DropColumn: 9,
    DropTable: 10,
    EnumValuesAdded: 11,
    EnumValuesRemoved: 11,
    StateRenamed: 11,
    StatesRemoved: 11,
    PinnedRecords: 11,
    CreateSearchIndex: 12,
}

_SAFETY: dict[type[Op], Callable[[Any], str]] = {
    AlterColumnType: lambda op: SAFE if op.change == "widen" else DESTRUCTIVE,
    SetNotNull: lambda op: DATA_STEP if op.null_rows else SAFE,
    DropColumn: lambda _op: DESTRUCTIVE,
    DropTable: lambda _op: DESTRUCTIVE,
    EnumValuesRemoved: lambda op: DESTRUCTIVE if op.rows else SAFE,
    StatesRemoved: lambda op: DATA_STEP if any(n for _s, n in op.counts) else SAFE,
}


def _rows(n: int) -> str:
    return f"{n} row" + ("" if n == 1 else "s")


def _rows_have(n: int) -> str:
    return f"{n} row has" if n == 1 else f"{n} rows have"


def _names(values: Iterable[str]) -> str:
    return ", ".join(f"`{v}`" for v in values)


def _duplicates(op: CreateIndex | AddUnique) -> str | None:
    if not op.duplicates or not getattr(op, "unique", True):
        return None
    return (
        f"{_rows(op.duplicates)} of `{op.table}` share their ({', '.join(op.columns)}) with "
        "another row: the unique index cannot be built until the values are made distinct"
    )


def _required(op: SetNotNull) -> str | None:
    if op.null_rows and not op.has_default:
        return (
            f"`{op.table}.{op.column}` becomes required but {_rows_have(op.null_rows)} no "
            "value: give the field a `default` to backfill them"
        )
    return None


_PROBLEM: dict[type[Op], Callable[[Any], str | None]] = {
    SetNotNull: _required,
    CreateIndex: _duplicates,
    AddUnique: _duplicates,
}


def _describe_type(op: AlterColumnType) -> str:
    text = f"change `{op.table}.{op.column}` from {op.old_type} to {op.new_type}"
    if op.change == "widen":
        return text + " (widening: every value fits)"
    if op.change == "narrow":
        return text + f" (narrowing: {_rows_have(op.rows)} longer values, cut to fit)"
    return text + f" (conversion of {_rows(op.rows)} with values)"


def _describe_not_null(op: SetNotNull) -> str:
    text = f"make `{op.table}.{op.column}` required"
    if not op.null_rows:
        return text
    if op.has_default:
        return text + f": backfill {_rows(op.null_rows)} with {json.dumps(op.default)}"
    return text + f": {_rows_have(op.null_rows)} no value and there is no default"


def _describe_index(op: CreateIndex | AddUnique) -> str:
    if isinstance(op, AddUnique):
        what = "unique constraint"
    else:
        what = "unique index" if op.unique else "index"
    text = f"create {what} `{op.name}` on `{op.table}` ({', '.join(op.columns)})"
    return text + (f": {_rows(op.duplicates)} are duplicates" if op.duplicates else "")


def _describe_state_renamed(op: StateRenamed) -> str:
    text = f"workflow state `{op.entity}.{op.state}` is renamed `{op.new_name}`"
    if not op.records:
        return text
    return text + (
        f": {op.records} records in `{op.state}` stay on their version until migrated "
        f"(`--map {op.state}={op.new_name}` is the default)"
    )


def _describe_states_removed(op: StatesRemoved) -> str:
    parts = []
    for state, n in op.counts:
        noun, verb = (op.nouns[0], "is") if n == 1 else (op.nouns[1], "are")
        parts.append(f"{n} {noun} {verb} in state `{state}`, which this version removes")
    return "; ".join(parts)


def _describe_pinned(op: PinnedRecords) -> str:
    parts = [
        f"{n} running {op.nouns[0] if n == 1 else op.nouns[1]} on version {version}"
        for version, n in op.counts
    ]
    tail = (
        "the workflow changes in this version: move them with `flowdesk migrate-instances`"
        if op.workflow_changed
        else "the workflow is unchanged"
    )
    return "pinned to older workflow versions: " + ", ".join(parts) + f" ({tail})"


_DESCRIBE: dict[type[Op], Callable[[Any], str]] = {
    CreateTable: lambda op: f"create table `{op.table}` ({len(op.columns)} columns)",
    RenameTable: lambda op: f"rename table `{op.table}` to `{op.new_name}` (keeps its rows)",
    RenameColumn: lambda op: f"rename `{op.table}.{op.column}` to `{op.new_name}` (keeps its data)",
    DropIndex: lambda op: f"drop index `{op.name}` on `{op.table}` ({', '.join(op.columns)})",
    DropUnique: lambda op: (
        f"drop unique constraint `{op.name}` on `{op.table}` ({', '.join(op.columns)})"
    ),
    AddColumn: lambda op: f"add column `{op.table}.{op.column}` ({op.type})",
    AlterColumnType: _describe_type,
    DropNotNull: lambda op: f"make `{op.table}.{op.column}` optional",
    SetNotNull: _describe_not_null,
    CreateIndex: _describe_index,
    AddUnique: _describe_index,
    DropColumn: lambda op: f"drop column `{op.table}.{op.column}` ({_rows_have(op.rows)} a value)",
    DropTable: lambda op: f"drop table `{op.table}` ({_rows(op.rows)})",
    EnumValuesAdded: lambda op: f"`{op.table}.{op.column}` gains enum values {_names(op.values)}",
    EnumValuesRemoved: lambda op: (
        f"`{op.table}.{op.column}` loses enum values {_names(op.values)}: "
        f"{_rows(op.rows)} hold them"
    ),
    StateRenamed: _describe_state_renamed,
    StatesRemoved: _describe_states_removed,
    PinnedRecords: _describe_pinned,
    CreateSearchIndex: lambda op: (
        f"(re)build the full-text index of `{op.entity}` over {_names(op.fields) or 'nothing'}"
    ),
}


def _undo_type(op: AlterColumnType) -> Op:
    back = {"widen": "narrow", "narrow": "widen"}.get(op.change, "convert")
    return AlterColumnType(op.table, op.column, op.new_type, op.old_type, back)


_REVERSE: dict[type[Op], Callable[[Any], Op]] = {
    CreateTable: lambda op: DropTable(op.table),
    RenameTable: lambda op: RenameTable(op.new_name, op.table),
    RenameColumn: lambda op: RenameColumn(op.table, op.new_name, op.column),
    DropIndex: lambda op: CreateIndex(op.table, op.name, op.columns, op.unique),
    DropUnique: lambda op: AddUnique(op.table, op.name, op.columns),
    AddColumn: lambda op: DropColumn(op.table, op.column),
    AlterColumnType: _undo_type,
    DropNotNull: lambda op: SetNotNull(op.table, op.column),
    SetNotNull: lambda op: DropNotNull(op.table, op.column),
    CreateIndex: lambda op: DropIndex(op.table, op.name, op.columns, op.unique),
    AddUnique: lambda op: DropUnique(op.table, op.name, op.columns),
}


@dataclass(frozen=True)
class Plan:
    """Everything deploying `to_version` over `from_version` changes, in the order applied."""

    app: str
    from_version: str | None
    to_version: str
    ops: tuple[Op, ...] = ()
    drift: tuple[str, ...] = field(default=())  # database disagrees with the deployed version

    @property
    def problems(self) -> list[str]:
        return [*self.drift, *(op.problem for op in self.ops if op.problem)]

    @property
    def destructive(self) -> list[Op]:
        return [op for op in self.ops if op.safety == DESTRUCTIVE]

    @property
    def safety(self) -> str:
        return max((op.safety for op in self.ops), key=_SAFETY_ORDER.__getitem__, default=SAFE)

    def summary(self) -> dict[str, int]:
        counts = {SAFE: 0, DATA_STEP: 0, DESTRUCTIVE: 0}
        for op in self.ops:
            counts[op.safety] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "safety": self.safety,
            "summary": self.summary(),
            "ops": [op.as_dict() for op in self.ops],
            "problems": self.problems,
        }


_LABELS = {SAFE: "safe", DATA_STEP: "data step", DESTRUCTIVE: "destructive"}


def render_text(plan_: Plan) -> str:
    """The plan as `flowdesk plan` prints it: one line per op, safety first."""
    source = plan_.from_version or "nothing deployed"
    head = f"plan for {plan_.app}: {source} -> {plan_.to_version}"
    if not plan_.ops and not plan_.problems:
        return head + "\nno changes"
    summary = ", ".join(f"{n} {_LABELS[s]}" for s, n in plan_.summary().items() if n)
    lines = [f"{head} ({summary or 'no changes'})"]
    lines += [
        f"  {'blocked' if op.problem else _LABELS[op.safety]:<12} {op.describe()}"
        for op in plan_.ops
    ]
    if plan_.problems:
        lines.append("cannot be applied:")
        lines += [f"  - {problem}" for problem in plan_.problems]
    return "\n".join(lines)


def render_json(plan_: Plan) -> str:
    return json.dumps(plan_.as_dict(), ensure_ascii=False, indent=2, default=str)
