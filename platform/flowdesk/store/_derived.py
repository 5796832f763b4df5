"""Computed fields and rules: what each reads, decided once; evaluated on every write.

An `Expr` is a compiled computed field or rule with the record, line and user
fields it reads (`CompiledExpression.names`), so an evaluation is given only
those, converted to what CEL sees (`EntityPlan.view`). `derivations` builds
them for one entity, record computed fields in dependency order;
`reference_tree` says which paths through references must be loaded.

`evaluate` runs them for one write: line computed fields, then record computed
fields, then rules. "Null in, null out": a failure on a null input makes a
computed field null and a rule not fire (as a filter would not select the
row); a failure with all inputs present is a `not-computable` or `rule-failed`
error. A field whose input already has an error is not computed, and rules
reading it are not checked, so one mistake is reported once.
"""

from __future__ import annotations

import datetime as dt
import graphlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowdesk.expressions import CompiledExpression, ExpressionEvalError
from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import Entity

from .errors import FieldError
from .tables import SYSTEM_COLUMNS
from .values import FieldCodec, Invalid

if TYPE_CHECKING:
    from ._entity_plan import EntityPlan

__all__ = [
    "USER_KEYS",
    "Expr",
    "as_object",
    "as_objects",
    "derivations",
    "evaluate",
    "reference_tree",
    "top_field",
]

USER_KEYS = (
    "id", "username", "name", "email", "phone", "department", "position", "manager",
    "roles", "skills", "region", "locale", "timezone", "active",
)  # fmt: skip
"""The fields of the CEL `user` type, as expressions see the acting user."""


def as_object(value: Any) -> Any:
    """A reference id as expressions see it: `{"id": ...}` (fields loaded when read)."""
    return None if value is None else {"id": value}


def as_objects(value: Any) -> Any:
    return [{"id": item} for item in value or ()]


# --------------------------------------------------------------------------- decided once


@dataclass(frozen=True)
class Expr:
    """A compiled computed field or rule, with the record fields it reads."""

    target: str | None
    expression: CompiledExpression
    reads: frozenset[str]
    codec: FieldCodec | None = None
    rule: Any = None
    line_reads: frozenset[str] = frozenset()
    user_reads: frozenset[str] = frozenset()

    def user(self, user: Mapping[str, Any]) -> dict[str, Any]:
        """Only the fields of `user` the expression reads (converting the rest costs time)."""
        return {key: user.get(key) for key in self.user_reads}

    def has_null(self, record: Mapping[str, Any], line: Mapping[str, Any] | None = None) -> bool:
        """Whether an input is null: a failure is then "null in, null out", not a fault."""
        if any(record.get(name) is None for name in self.reads):
            return True
        return line is not None and any(line.get(name) is None for name in self.line_reads)


def _reads(
    expression: CompiledExpression, everything: Sequence[str], root: str = "record"
) -> frozenset[str]:
    if (root,) in expression.names:
        return frozenset(everything)
    return frozenset(p[1] for p in expression.names if p[0] == root and len(p) > 1)


def derivations(
    app: AppModel, entity: Entity, codecs: Mapping[str, FieldCodec]
) -> tuple[dict[str, list[Expr]], list[Expr], list[Expr]]:
    """(line computed fields by collection, record computed fields in dependency order, rules)."""
    everything = (*codecs, *SYSTEM_COLUMNS)

    def compiled(pointer: str) -> CompiledExpression:
        return app.expression("Entity", entity.name, pointer)

    def expr(target: str | None, expression: CompiledExpression, **extra: Any) -> Expr:
        reads, user_reads = _reads(expression, everything), _reads(expression, USER_KEYS, "user")
        return Expr(target, expression, reads, user_reads=user_reads, **extra)

    lines: dict[str, list[Expr]] = {}
    for name, codec in codecs.items():
        line_codecs = codec.lines.codecs if codec.lines else {}
        for sub, sub_codec in line_codecs.items():
            if sub_codec.computed:
                expression = compiled(f"/fields/{name}/fields/{sub}/computed")
                line_reads = _reads(expression, tuple(line_codecs), "line")
                item = expr(sub, expression, codec=sub_codec, line_reads=line_reads)
                lines.setdefault(name, []).append(item)
    computed = {
        name: expr(name, compiled(f"/fields/{name}/computed"), codec=codec)
        for name, codec in codecs.items()
        if codec.computed
    }
    rules = [
        expr(rule.field, compiled(f"/rules/{index}/when"), rule=rule)
        for index, rule in enumerate(entity.rules)
    ]
    return lines, _in_dependency_order(computed), rules


def _in_dependency_order(computed: Mapping[str, Expr]) -> list[Expr]:
    """Computed fields ordered so each comes after the computed fields it reads."""
    graph = {name: (expr.reads & computed.keys()) - {name} for name, expr in computed.items()}
    return [computed[name] for name in graphlib.TopologicalSorter(graph).static_order()]


def reference_tree(expressions: Sequence[Expr]) -> dict[str, Any]:
    """Paths read through references, as a tree: `{"customer": {"level": {}}}`."""
    tree: dict[str, Any] = {}
    for expr in expressions:
        for path in expr.expression.names:
            if path[0] == "record" and len(path) > 2:
                node = tree
                for step in path[1:]:
                    node = node.setdefault(step, {})
    return tree


# --------------------------------------------------------------------------- per write


def evaluate(
    plan: EntityPlan,
    record: dict[str, Any],
    loaded: Mapping[str, Any],
    user: Mapping[str, Any],
    now: dt.datetime,
    errors: list[FieldError],
    locale: str,
) -> None:
    """Compute the fields of `record` in place, then check the rules; problems go to `errors`.

    `loaded` holds the referred records expressions read, by field; `errors`
    already holds the problems of the given values (their fields count as bad).
    """
    bad = {top_field(error.field) for error in errors}
    _compute_lines(plan, record, loaded, user, now, bad, errors)
    _compute_fields(plan, record, loaded, user, now, bad, errors)
    _check_rules(plan, record, loaded, user, now, bad, errors, locale)


def top_field(path: str | None) -> str | None:
    """The record field an error path is about: `lines[2].price` -> `lines`."""
    if path is None:
        return None
    return path.split("[", 1)[0].split(".", 1)[0]


def _compute_lines(plan, record, loaded, user, now, bad, errors) -> None:  # type: ignore[no-untyped-def]
    for name, exprs in plan.line_computed.items():
        if name in bad:
            continue
        for index, line in enumerate(record[name]):
            activation = {
                "record": None,
                "user": user,
                "now": now,
                "line": plan.line_view(name, line),
            }
            for expr in exprs:
                activation["record"] = plan.view(record, expr.reads, loaded)
                activation["user"] = expr.user(user)
                nulls = expr.has_null(record, line)
                path = f"{name}[{index}]."
                line[expr.target] = _value(expr, activation, path, errors, nulls)


def _compute_fields(plan, record, loaded, user, now, bad, errors) -> None:  # type: ignore[no-untyped-def]
    for expr in plan.computed:
        if expr.reads & bad:
            record[expr.target] = None
            bad.add(expr.target)
            continue
        activation = {
            "record": plan.view(record, expr.reads, loaded),
            "user": expr.user(user),
            "now": now,
        }
        nulls = expr.has_null(record)
        record[expr.target] = _value(expr, activation, "", errors, nulls)
        if record[expr.target] is None and expr.target in {top_field(e.field) for e in errors}:
            bad.add(expr.target)


def _value(expr: Expr, activation: dict[str, Any], prefix: str, errors: list, nulls: bool) -> Any:
    """A computed value; null when the expression fails on a null input."""
    path = prefix + (expr.target or "")
    try:
        return expr.codec.computed_value(expr.expression.evaluate(activation))  # type: ignore[union-attr]
    except ExpressionEvalError as error:
        if nulls:
            return None
        message = f"{path} could not be computed: {error.reason}"
    except Invalid as problem:
        message = f"{path}: computed value rejected: {problem.message}"
    errors.append(FieldError(path, "not-computable", message))
    return None


def _check_rules(plan, record, loaded, user, now, bad, errors, locale) -> None:  # type: ignore[no-untyped-def]
    for expr in plan.rules:
        if expr.reads & bad:
            continue
        rule = expr.rule
        activation = {
            "record": plan.view(record, expr.reads, loaded),
            "user": expr.user(user),
            "now": now,
        }
        try:
            broken = expr.expression.evaluate(activation) is True
        except ExpressionEvalError as error:
            if expr.has_null(record):
                continue  # like a filter: a condition that fails on null is not true
            label = rule.name or f"rule on {rule.field or plan.name}"
            message = f"{label} could not be checked: {error.reason}"
            errors.append(FieldError(rule.field, "rule-failed", message, rule.name))
            continue
        if broken:
            message = rule.error if isinstance(rule.error, str) else rule.error.text(locale)
            errors.append(FieldError(rule.field, "rule", message, rule.name))
