"""Tables generated from an app's entities, with SQLAlchemy Core.

One table per entity, `<app>__<entity>`, holding the entity's fields plus the
system columns every record has; a child table `<app>__<entity>__<field>` per
line collection (deleted with its parent) and per multi-reference (a link
table). Column names are field names, so a CEL path `record.priority` is the
column `priority` and a reference column holds the referred record's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import Entity, LinesField

from . import platform_tables as pt

__all__ = [
    "SYSTEM_COLUMNS",
    "EntityTables",
    "build_tables",
    "column_type",
    "table_name",
]

ID = pt.ID
SYSTEM_COLUMNS = (
    "id",
    "number",
    "state",
    "workflow_version",
    "assignee",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "row_version",
    "deleted_at",
)
_PLATFORM_TARGETS = {"user": pt.users, "department": pt.departments, "position": pt.positions}
_ON_DELETE = {"restrict": "RESTRICT", "set_null": "SET NULL", "cascade": "CASCADE"}
_STRING_LENGTHS = {"email": 255, "phone": 64, "url": 2048}


def table_name(app: str, entity: str, child: str | None = None) -> str:
    return f"{app}__{entity}" + (f"__{child}" if child else "")


@dataclass(frozen=True)
class EntityTables:
    """The tables of one entity."""

    main: Table
    lines: Mapping[str, Table] = field(default_factory=dict)
    links: Mapping[str, Table] = field(default_factory=dict)

    @property
    def all(self) -> list[Table]:
        return [self.main, *self.lines.values(), *self.links.values()]


def column_type(spec: Any) -> Any:
    """The SQL type of a scalar field (references are handled by `_field_columns`)."""
    kind = spec.type
    if kind == "string":
        return String(spec.max or 255)
    if kind in _STRING_LENGTHS:
        return String(_STRING_LENGTHS[kind])
    if kind == "text":
        return Text()
    if kind == "integer":
        return BigInteger()
    if kind == "decimal":
        return Numeric(spec.precision, spec.scale, asdecimal=True)
    if kind == "boolean":
        return Boolean()
    if kind == "date":
        return Date()
    if kind == "datetime":
        return DateTime(timezone=True)
    if kind == "duration":
        return BigInteger()  # seconds: portable, sortable, summable
    if kind == "enum":
        return JSON() if spec.multiple else String(64)
    if kind in ("json", "references") or (kind == "attachment" and spec.multiple):
        return JSON()
    raise ValueError(f"no column type for field type {kind!r}")


def _reference_target(app: str, target: str) -> Any:
    """The id column a reference points at: a platform table's, or an app table's by name."""
    if target in _PLATFORM_TARGETS:
        return _PLATFORM_TARGETS[target].c.id
    return f"{table_name(app, target)}.id"


def _field_columns(name: str, spec: Any, app: str) -> list[Any]:
    """Columns (and constraints) of one field of a main or line table."""
    kind = spec.type
    nullable = not spec.required or bool(spec.computed)
    if kind in ("reference", "user") or (kind == "attachment" and not spec.multiple):
        target = {"user": "user", "attachment": None}.get(kind, getattr(spec, "to", None))
        if target is None:
            foreign = ForeignKey(pt.attachments.c.id, ondelete="SET NULL")
        else:
            on_delete = _ON_DELETE[getattr(spec, "on_delete", "set_null")]
            foreign = ForeignKey(_reference_target(app, target), ondelete=on_delete)
        return [
            Column(name, BigInteger, foreign, nullable=nullable, index=True, unique=spec.unique)
        ]
    return [
        Column(
            name,
            column_type(spec),
            nullable=nullable,
            index=spec.index or spec.unique,
            unique=spec.unique,  # a unique index: the records service maps its violations
        )
    ]


def _system_columns() -> list[Any]:
    return [
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("number", String(40), nullable=True, unique=True),
        Column("state", String(64), index=True),
        Column("workflow_version", String(64)),
        Column("assignee", BigInteger, ForeignKey(pt.users.c.id, ondelete="SET NULL"), index=True),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
        Column("created_by", BigInteger, ForeignKey(pt.users.c.id, ondelete="SET NULL")),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("updated_by", BigInteger, ForeignKey(pt.users.c.id, ondelete="SET NULL")),
        Column("row_version", Integer, nullable=False, default=1),
        Column("deleted_at", DateTime(timezone=True), index=True),
        CheckConstraint("row_version >= 1", name="row_version_positive"),
    ]


def _line_table(
    app: str, entity: Entity, name: str, spec: LinesField, metadata: MetaData, parent: Table
) -> Table:
    columns: list[Any] = [
        Column("id", ID, primary_key=True, autoincrement=True),
        Column(
            "parent_id",
            BigInteger,
            ForeignKey(parent.c.id, ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("position", Integer, nullable=False),
    ]
    for sub_name, sub in spec.fields.items():
        columns.extend(_field_columns(sub_name, sub, app))
    return Table(table_name(app, entity.name, name), metadata, *columns)


def _link_table(
    app: str, entity: Entity, name: str, spec: Any, metadata: MetaData, parent: Table
) -> Table:
    return Table(
        table_name(app, entity.name, name),
        metadata,
        Column(
            "parent_id", BigInteger, ForeignKey(parent.c.id, ondelete="CASCADE"), primary_key=True
        ),
        Column(
            "target_id",
            BigInteger,
            ForeignKey(_reference_target(app, spec.to), ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
        Column("position", Integer, nullable=False),
    )


def _main_table(app: str, entity: Entity, metadata: MetaData) -> Table:
    columns = _system_columns()
    for name, spec in entity.fields.items():
        if spec.type in ("lines", "references"):
            continue
        columns.extend(_field_columns(name, spec, app))
    for index in entity.indexes:
        label = index.name or "_".join(index.fields)
        columns.append(
            UniqueConstraint(*index.fields, name=f"uq_{entity.name}_{label}")
            if index.unique
            else Index(f"ix_{app}__{entity.name}_{label}", *index.fields)
        )
    return Table(table_name(app, entity.name), metadata, *columns)


def build_tables(app: AppModel, metadata: MetaData | None = None) -> dict[str, EntityTables]:
    """Every table of `app`, keyed by entity name, in a MetaData of their own.

    References to the app's entities are named by string (`<app>__<entity>.id`),
    so they resolve within this MetaData whatever the order entities are built in.
    """
    metadata = metadata or MetaData(naming_convention=pt.NAMING)
    mains = {name: _main_table(app.name, e, metadata) for name, e in app.entities.items()}
    return {name: _children(app, app.entities[name], metadata, mains) for name in app.entities}


def _children(
    app: AppModel, entity: Entity, metadata: MetaData, mains: Mapping[str, Table]
) -> EntityTables:
    main = mains[entity.name]
    lines = {
        name: _line_table(app.name, entity, name, spec, metadata, main)
        for name, spec in entity.fields.items()
        if isinstance(spec, LinesField)
    }
    links = {
        name: _link_table(app.name, entity, name, spec, metadata, main)
        for name, spec in entity.fields.items()
        if spec.type == "references"
    }
    return EntityTables(main, lines, links)
