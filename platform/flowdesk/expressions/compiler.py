"""compile_expression: parse, type-check, choose an engine and prepare the programs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import celpy

from flowdesk.expressions.ast import Node
from flowdesk.expressions.checker import Path, check
from flowdesk.expressions.errors import ExpressionError, ExpressionEvalError, ExpressionIssue
from flowdesk.expressions.evaluation import build_program, run
from flowdesk.expressions.native import FALLBACK, NativeProgram, build
from flowdesk.expressions.parser import parse
from flowdesk.expressions.routing import PYTHON, RUST, route
from flowdesk.expressions.types import CelType

__all__ = ["CompiledExpression", "compile_expression", "evaluate_on"]


@dataclass(frozen=True)
class CompiledExpression:
    """A type-checked expression, ready to be evaluated many times.

    Attributes:
        source: The expression text, as written in the model.
        result_type: Static type of the result.
        ast: Simplified syntax tree (:mod:`flowdesk.expressions.ast`), for tools such
            as the SQL translator.
        names: Member paths of the scope the expression reads, e.g.
            ``{("record", "priority"), ("user", "region")}``; paths follow record
            fields and stop at maps, lists and ``dyn`` values.
    """

    source: str
    result_type: CelType
    ast: Node
    names: frozenset[Path]
    _program: celpy.Runner = field(repr=False, compare=False)
    _scope: Mapping[str, CelType] = field(repr=False, compare=False)
    _roots: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _native: NativeProgram | None = field(default=None, repr=False, compare=False)
    _python_reason: str | None = field(default=None, repr=False, compare=False)

    @property
    def engine(self) -> str:
        """``"rust"`` or ``"python"``: the engine chosen at compile time.

        Results never depend on it (see :mod:`flowdesk.expressions.routing`); it is
        exposed for benchmarks, tests and diagnostics.
        """
        return RUST if self._native is not None else PYTHON

    @property
    def engine_reason(self) -> str | None:
        """Why the expression runs on cel-python; ``None`` when it runs on Rust."""
        return self._python_reason

    def evaluate(self, activation: Mapping[str, object]) -> object:
        """Evaluate with plain Python values and return a plain Python value.

        ``activation`` maps the scope's names to dicts, lists, str, int, float,
        ``Decimal``, bool, ``None``, timezone-aware ``datetime``, ``date`` (midnight
        UTC) or ``timedelta``. Only the names the expression reads need a value.

        Raises:
            ExpressionEvalError: the expression failed at runtime (missing key,
                division by zero, a null where a value was needed...).
        """
        if self._native is not None:
            result = self._native.run(activation)
            if result is not FALLBACK:
                return result
        # cel-python: the expression's engine, or the verdict when the Rust run failed.
        return run(self._program, self.source, self._scope, self._roots, activation)


def compile_expression(
    source: str, scope: Mapping[str, CelType], *, expect: CelType | None = None
) -> CompiledExpression:
    """Parse and type-check ``source`` against ``scope``, then choose its engine.

    Args:
        source: CEL text written by an analyst.
        scope: Types of the names the expression may reference.
        expect: Required result type, e.g. ``BOOL`` for conditions; a ``dyn`` result
            is accepted for any expectation.

    Raises:
        ExpressionError: with every issue found, not just the first one.
    """
    parsed = parse(source)
    if isinstance(parsed, ExpressionIssue):
        raise ExpressionError((parsed,))
    frozen_scope = MappingProxyType(dict(scope))
    checked = check(parsed.ast, frozen_scope, expect=expect, start=parsed.start)
    issues = sorted((*parsed.issues, *checked.issues), key=lambda issue: issue.offset)
    if issues:
        raise ExpressionError(issues)
    roots = tuple(sorted({path[0] for path in checked.names}))
    chosen = route(parsed.ast, checked.node_types, checked.runtime_names)
    native: NativeProgram | None = None
    python_reason = chosen.reason
    if chosen.text is not None:
        built = build(chosen.text, chosen.callbacks, frozen_scope, checked.names)
        if isinstance(built, NativeProgram):
            native = built
        else:
            python_reason = built
    return CompiledExpression(
        source=source,
        result_type=checked.result_type,
        ast=parsed.ast,
        names=checked.names,
        _program=build_program(parsed.tree, checked.runtime_names),
        _scope=frozen_scope,
        _roots=roots,
        _native=native,
        _python_reason=python_reason,
    )


def evaluate_on(
    compiled: CompiledExpression, engine: str, activation: Mapping[str, object]
) -> object:
    """Evaluate on one engine only, without falling back: for differential tests and benchmarks.

    ``engine`` is ``"python"`` (cel-python, the reference) or ``"rust"`` (only for
    expressions routed to it). Every failure is an :class:`ExpressionEvalError`; on the
    Rust engine its reason is the Rust engine's message.
    """
    if engine == PYTHON:
        return run(compiled._program, compiled.source, compiled._scope, compiled._roots, activation)
    if compiled._native is None:
        raise ValueError(f"`{compiled.source}` runs on cel-python: {compiled.engine_reason}")
    try:
        return compiled._native.run_strict(activation)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        raise ExpressionEvalError(reason, source=compiled.source, reason=reason) from error
