"""Lines and links: the child rows of a record.

A line collection is a table of lines (`id`, `parent_id`, `position` and the
line's fields); a multi-reference is a link table (`parent_id`, `target_id`,
`position`). `Children` reads the children of many records in one query and
replaces those of one record, keeping the ids of the lines that stay, so line
ids are stable across updates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, select, update

from .values import FieldCodec

__all__ = ["Children"]


class Children:
    """Reading and writing one line collection or multi-reference link table."""

    def __init__(self, table: Table, codec: FieldCodec) -> None:
        self.is_lines = codec.lines is not None
        parents = table.c.parent_id.in_(bindparam("parents", expanding=True))
        order = (table.c.parent_id, table.c.position)
        if codec.lines is None:
            self.select = select(table.c.parent_id, table.c.target_id).where(parents)
            self.select = self.select.order_by(*order)
            self.insert = table.insert()
            self.delete = delete(table).where(table.c.parent_id == bindparam("parent"))
            return
        self.codecs = codec.lines.codecs
        self.fields = tuple(self.codecs)
        self.loaders = [(f, c.load) for f, c in self.codecs.items() if c.load]
        self.dumps = [(f, c.dump) for f, c in self.codecs.items() if c.dump]
        columns = (table.c.id, table.c.parent_id, *(table.c[f] for f in self.fields))
        self.select = select(*columns).where(parents).order_by(*order)
        self.insert = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        self.update = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(position=bindparam("position"), **{f: bindparam(f) for f in self.fields})
        )
        self.delete = delete(table).where(table.c.id.in_(bindparam("ids", expanding=True)))

    def read(self, connection: Connection, parents: Sequence[int]) -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {parent: [] for parent in parents}
        for row in connection.execute(self.select, {"parents": list(parents)}):
            if not self.is_lines:
                found[row[0]].append(row[1])
                continue
            line = {"id": row[0], **dict(zip(self.fields, row[2:], strict=True))}
            for name, load in self.loaders:
                line[name] = load(line[name])
            found[row[1]].append(line)
        return found

    def write(
        self, connection: Connection, parent: int, new: list[Any], old: list[Any] | None
    ) -> None:
        """Replace the children of `parent` by `new`, keeping the ids of kept lines."""
        if not self.is_lines:
            if old is not None:
                connection.execute(self.delete, {"parent": parent})
            rows = [
                {"parent_id": parent, "target_id": target, "position": index}
                for index, target in enumerate(new)
            ]
            if rows:
                connection.execute(self.insert, rows)
            return
        before = {line["id"]: (index, line) for index, line in enumerate(old or [])}
        kept = {line.get("id") for line in new} - {None}
        gone = [line_id for line_id in before if line_id not in kept]
        if gone:
            connection.execute(self.delete, {"ids": gone})
        changed = [
            self._params(parent, index, line) | {"_id": line["id"]}
            for index, line in enumerate(new)
            if line.get("id") is not None and before[line["id"]] != (index, line)
        ]
        if changed:
            connection.execute(self.update, changed)
        fresh = [(index, line) for index, line in enumerate(new) if line.get("id") is None]
        if fresh:
            rows = [self._params(parent, index, line) for index, line in fresh]
            result = connection.execute(self.insert, rows)
            for (_index, line), line_id in zip(fresh, result.scalars(), strict=True):
                line["id"] = line_id

    def _params(self, parent: int, position: int, line: Mapping[str, Any]) -> dict[str, Any]:
        params = {f: line.get(f) for f in self.fields}
        for name, dump in self.dumps:
            params[name] = dump(params[name])
        return params | {"parent_id": parent, "position": position}
