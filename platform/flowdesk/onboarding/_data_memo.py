"""Computed fields and rules of an import, remembered by their inputs.

A history of 100,000 tickets has a handful of distinct inputs for most
expressions (`record.priority == "p1" && !record.is_vip ...` reads a priority,
a flag and the importing user's roles), and CEL is pure: the same inputs give
the same result. `memoized_plan` returns a shallow copy of the store's
`EntityPlan` whose computed fields and rules remember their results per
distinct input (the activation the store's own `evaluate` builds, frozen into a
key), so `flowdesk.store._derived.evaluate` runs unchanged but evaluates each
distinct input once. Expressions reading `now` are never remembered; one whose
inputs rarely repeat (e.g. `resolved_at - created_at`) stops remembering after
a sample, and each memory is bounded.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from flowdesk.store._entity_plan import EntityPlan

__all__ = ["memoized_plan"]

_LIMIT = 20_000  # entries per expression; emptied when full
_SAMPLE = 2_000  # evaluations before judging whether remembering pays
_MIN_HITS = 0.5  # share of hits below which an expression stops remembering


class _Memo:
    """A `CompiledExpression` stand-in that remembers results by the activation."""

    def __init__(self, expression: Any) -> None:
        self.expression = expression
        self.names = expression.names
        self.source = expression.source
        self.enabled = True
        self.calls = 0
        self.hits = 0
        self.results: dict[Any, Any] = {}

    def evaluate(self, activation: Mapping[str, object]) -> object:
        if not self.enabled:
            return self.expression.evaluate(activation)
        self.calls += 1
        try:
            key = _freeze(activation.get("record")), _freeze(activation.get("user"))
            found = self.results.get(key, _MISSING)
        except TypeError:  # a value that cannot be a key: just evaluate
            return self.expression.evaluate(activation)
        if found is not _MISSING:
            self.hits += 1
            return found
        if self.calls == _SAMPLE and self.hits < _SAMPLE * _MIN_HITS:
            self.enabled, self.results = False, {}
            return self.expression.evaluate(activation)
        result = self.expression.evaluate(activation)  # errors are raised, not remembered
        if len(self.results) >= _LIMIT:
            self.results = {}
        self.results[key] = result
        return result


_MISSING = object()


def _freeze(value: Any) -> Any:
    """A hashable form of an activation value: dicts as their (key, value) pairs in
    order (two equal dicts in another order only miss the memory, never share a
    result), lists as tuples, other values tagged with their type."""
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, dict):
        return tuple([(k, _freeze(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("\0list", *[_freeze(v) for v in value])
    return value.__class__, value  # True == 1 == 1.0 == Decimal(1), but not in CEL


def _remembering(expr: Any) -> Any:
    if any(path[0] == "now" for path in expr.expression.names):
        return expr
    return dataclasses.replace(expr, expression=_Memo(expr.expression))


def memoized_plan(plan: EntityPlan) -> EntityPlan:
    """A copy of `plan` whose record computed fields and rules remember their results."""
    memo = copy.copy(plan)
    memo.computed = [_remembering(expr) for expr in plan.computed]
    memo.rules = [_remembering(expr) for expr in plan.rules]
    return memo
