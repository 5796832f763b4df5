"""Evaluating the CEL a workflow, automation or escalation carries, against one record.

Expressions were compiled by the linker and are found by (kind, document,
JSON pointer) in the `AppModel`; `Scope` names the document and evaluates
the expression written at a pointer, giving it the record as it reads it
(references along the read paths loaded by `RecordStore.expression_view`),
the acting user and `now`. Values written as `= expr` are expressions, other
values literals (`model.action.is_expression`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from flowdesk.expressions import (
    DYN,
    TIMESTAMP,
    CompiledExpression,
    ExpressionEvalError,
    compile_expression,
)
from flowdesk.model.action import is_expression
from flowdesk.model.appmodel import AppModel
from flowdesk.store.records import Actor, RecordStore

__all__ = ["EvaluationFailed", "Scope", "plain", "reference_value"]

_LATE: dict[tuple[str, str, str, str], CompiledExpression] = {}


class EvaluationFailed(Exception):
    """An expression failed at run time with all its inputs present: the model's fault,
    reported with the document and pointer so an analyst can find it."""

    code = "expression-failed"

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where


@dataclass(frozen=True)
class Scope:
    """One document's compiled expressions, evaluated over records of `entity`."""

    store: RecordStore
    model: AppModel
    kind: str
    name: str
    entity: str

    def evaluate(
        self,
        pointer: str,
        record: Mapping[str, Any],
        actor: Actor,
        now: dt.datetime,
        connection: Connection,
        **extra: Any,
    ) -> Any:
        """The value of the expression written at `pointer` (a CEL result, made plain)."""
        compiled = self._compiled(pointer, extra.pop("_source", None))
        view = self.store.expression_view(
            self.entity, record, compiled.names, connection=connection
        )
        activation = {"record": view, "user": actor.cel_user(), "now": now, **extra}
        try:
            return plain(compiled.evaluate(activation))
        except ExpressionEvalError as error:
            if any(record.get(path[1]) is None for path in compiled.names if len(path) > 1
                   and path[0] == "record"):
                return None  # null in, null out, as for computed fields
            raise EvaluationFailed(f"{self.kind} {self.name} {pointer}", error.reason) from None

    def value(
        self,
        pointer: str,
        value: Any,
        record: Mapping[str, Any],
        actor: Actor,
        now: dt.datetime,
        connection: Connection,
        **extra: Any,
    ) -> Any:
        """A value as written: literal, or the result of `= expr` at `pointer`."""
        if not is_expression(value):
            return value
        return self.evaluate(pointer, record, actor, now, connection, _source=value, **extra)

    def _compiled(self, pointer: str, source: str | None) -> CompiledExpression:
        """The linker's compiled expression; a value it does not compile (a sub-process's
        `values`) is compiled here, once, against the entity's record type."""
        key = (self.kind, self.name, pointer)
        found = self.model.expressions.get(key) or _LATE.get((self.model.content_hash, *key))
        if found is not None:
            return found
        if source is None:
            raise KeyError(key)
        scope = {"record": self.model.record_types[self.entity], "user": DYN, "now": TIMESTAMP,
                 "response": DYN, "child": DYN}
        compiled = compile_expression(source.lstrip("=").strip(), scope, expect=None)
        _LATE[(self.model.content_hash, *key)] = compiled
        return compiled

    def holds(
        self,
        pointer: str,
        record: Mapping[str, Any],
        actor: Actor,
        now: dt.datetime,
        connection: Connection,
        **extra: Any,
    ) -> bool:
        """A condition: true only when the expression gives `true` (null does not hold)."""
        return self.evaluate(pointer, record, actor, now, connection, **extra) is True


def plain(value: Any) -> Any:
    """CEL results as plain Python: celpy's wrappers unwrapped, records reduced to ids
    where a value is a referred record (`= record` assigned to a reference field)."""
    if value is None or isinstance(value, bool | str | int | float | dt.datetime | dt.timedelta):
        return _unwrap(value)
    if isinstance(value, Mapping):
        items = {str(k): plain(v) for k, v in value.items()}
        return items
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    """celpy subclasses of bool/int/str/float/datetime/timedelta -> the builtin types."""
    if type(value) in (bool, int, float, str, dt.datetime, dt.timedelta) or value is None:
        return value
    for base in (bool, int, float, str):
        if isinstance(value, base) and type(value) is not base:
            return base(value)
    if isinstance(value, dt.datetime) and type(value) is not dt.datetime:
        return dt.datetime.fromtimestamp(value.timestamp(), dt.UTC)
    if isinstance(value, dt.timedelta) and type(value) is not dt.timedelta:
        return dt.timedelta(seconds=value.total_seconds())
    return value


def reference_value(value: Any) -> Any:
    """A value for a reference field: a record (`{"id": ...}`) becomes its id."""
    if isinstance(value, Mapping) and "id" in value:
        return value["id"]
    if isinstance(value, list):
        return [reference_value(v) for v in value]
    return value
