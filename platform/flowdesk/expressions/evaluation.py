"""Runtime evaluation of compiled expressions on the cel-python interpreter.

This module owns everything cel-python specific at runtime:

* the extra functions ``sum``, ``max`` and ``min``;
* corrections to cel-python that the type checker relies on: ``x == null`` and
  ``x in list`` work for every type, ``string(true)`` is ``"true"``, conversions of
  ``null`` fail instead of returning ``0``, runtime errors propagate through operators
  and indexing instead of turning into "no such overload", arithmetic results stay
  celpy values, and the list macros are evaluated by Flowdesk (see :class:`_Evaluator`);
* running programs on plain Python values (converted by
  :mod:`flowdesk.expressions.values`).

Callers see plain Python values and
:class:`~flowdesk.expressions.errors.ExpressionEvalError` only. This evaluator is the
reference: the faster Rust-backed engine (:mod:`flowdesk.expressions.native`) runs only
the expressions :mod:`flowdesk.expressions.routing` proves it agrees on, and this module
evaluates again whenever the Rust engine fails.
"""

from __future__ import annotations

import datetime
import operator
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.evaluation import CELEvalError, Evaluator, bool_eq, bool_ne

from flowdesk.expressions.errors import ExpressionEvalError
from flowdesk.expressions.types import DYN, CelType
from flowdesk.expressions.values import ConversionError, to_cel, to_python

__all__ = ["RUNTIME_FUNCTIONS", "build_program", "describe", "run"]

_SOURCE_LIMIT = 120


# --------------------------------------------------------------------------- functions


def _fail(message: str, exc_class: type[Exception] = TypeError) -> CELEvalError:
    return CELEvalError(message, exc_class, (message,))


_REWRAP: tuple[tuple[type, type], ...] = (
    (str, celtypes.StringType),
    (bytes, celtypes.BytesType),
    (list, celtypes.ListType),
    (float, celtypes.DoubleType),
    (datetime.datetime, celtypes.TimestampType),
    (datetime.timedelta, celtypes.DurationType),
)


def _rewrapping(operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    # Several celpy types inherit arithmetic from str, bytes, list, float or timedelta,
    # so `s + s` is a plain str (on which `.contains()` fails) and `dur - dur` a plain
    # timedelta (on which `.getMinutes()` fails). Re-wrap results in celpy types.
    def rewrap(left: Any, right: Any) -> Any:
        result = operation(left, right)
        for plain, cel in _REWRAP:
            if isinstance(result, plain) and not isinstance(result, cel):
                return cel(result)
        return result

    return rewrap


_add = _rewrapping(operator.add)


def _numbers(name: str, values: Any) -> list[Any] | CELEvalError:
    if not isinstance(values, list):
        return _fail(f"{name}() needs a list")
    if any(value is None for value in values):
        return _fail(f"{name}() of a list containing null")
    return values


def _summer(zero: Callable[[], Any] | None) -> Callable[[Any], Any]:
    """Build ``sum``; ``zero`` is the sum of an empty list (``None``: int 0, for dyn)."""

    def sum_(values: Any) -> Any:
        checked = _numbers("sum", values)
        if isinstance(checked, CELEvalError):
            return checked
        if not checked:
            return zero() if zero is not None else celtypes.IntType(0)
        total = zero() if zero is not None else checked[0]
        for value in checked if zero is not None else checked[1:]:
            total = _add(total, value)  # celpy types raise on overflow and int + double
        return total

    return sum_


def _extreme(name: str, pick: Callable[[list[Any]], Any]) -> Callable[[Any], Any]:
    def extreme(values: Any) -> Any:
        checked = _numbers(name, values)
        if isinstance(checked, CELEvalError):
            return checked
        if not checked:
            return _fail(f"{name}() of an empty list", ValueError)
        return pick(checked)

    return extreme


def _reject_null(name: str, conversion: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # cel-python turns int(null) into 0 and string(null) into "None"; a conversion of a
    # missing value must fail instead of inventing one. int(infinity) raises an
    # OverflowError that cel-python does not catch.
    def convert(value: Any) -> Any:
        if value is None:
            return _fail(f"{name}() of null")
        try:
            return conversion(value)
        except OverflowError as error:
            return _fail(f"invalid value: {error}", ValueError)

    return convert


def _to_string(value: Any) -> Any:
    # cel-python writes True/False and drops fractional seconds; CEL writes true/false
    # and keeps them (analysts build keys and messages from these strings).
    if isinstance(value, celtypes.BoolType):
        return celtypes.StringType("true" if value else "false")
    if isinstance(value, celtypes.TimestampType):
        return celtypes.StringType(_timestamp_text(value))
    if isinstance(value, celtypes.DurationType):
        return celtypes.StringType(_duration_text(value))
    return celtypes.StringType(value)


def _fraction(microseconds: int) -> str:
    return f".{microseconds:06d}".rstrip("0") if microseconds else ""


def _timestamp_text(value: datetime.datetime) -> str:
    offset = value.utcoffset() or datetime.timedelta(0)
    if not offset:
        zone = "Z"
    else:
        sign = "-" if offset < datetime.timedelta(0) else "+"
        minutes = abs(offset) // datetime.timedelta(minutes=1)
        zone = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{value:%Y-%m-%dT%H:%M:%S}{_fraction(value.microsecond)}{zone}"


def _duration_text(value: datetime.timedelta) -> str:
    total = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if total < 0 else ""
    seconds, microseconds = divmod(abs(total), 1_000_000)
    return f"{sign}{seconds}{_fraction(microseconds)}s"


def _null_safe(
    compare: Callable[[Any, Any], Any], when_null: Callable[[Any, Any], bool]
) -> Callable[[Any, Any], Any]:
    # cel-python raises for `1 == null`; CEL (and every nullable field) needs a boolean.
    def equality(left: Any, right: Any) -> Any:
        if isinstance(left, CELEvalError):
            return left
        if isinstance(right, CELEvalError):
            return right
        if left is None or right is None:
            return celtypes.BoolType(when_null(left, right))
        return compare(left, right)

    return equality


_equals = _null_safe(bool_eq, lambda left, right: left is None and right is None)


def _contains(item: Any, container: Any) -> Any:
    # cel-python's `in` compares with its raw `==`, which fails for `null in [0]` and
    # `0 in [null]`; membership must agree with the null-safe `==`.
    if isinstance(item, CELEvalError):
        return item
    if isinstance(container, CELEvalError):
        return container
    if not isinstance(container, list | dict):
        return _fail(f"`in` needs a list or map, got {_kind(container)}")
    failure: CELEvalError | None = None
    for element in container:
        try:
            outcome = _equals(element, item)
        except TypeError as error:
            outcome = _fail(f"no such overload: {error}")
        if isinstance(outcome, CELEvalError):
            failure = failure or outcome
        elif outcome:
            return celtypes.BoolType(True)
    return failure if failure is not None else celtypes.BoolType(False)


def _error_aware(logical: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    # cel-python wraps `error || error` in a new error whose text embeds both operands'
    # texts, so a chain of n failing terms builds a 2**n-long message. Keep the first.
    def combine(left: Any, right: Any) -> Any:
        if isinstance(left, CELEvalError) and not isinstance(right, celtypes.BoolType):
            return left
        if isinstance(right, CELEvalError) and not isinstance(left, celtypes.BoolType):
            return right
        return logical(left, right)

    return combine


def _propagating(operation: Callable[..., Any]) -> Callable[..., Any]:
    # cel-python lets `1 + error` and `list[error]` raise a fresh "no such overload"
    # instead of passing the original error (say, an index out of range) through.
    def propagate(*operands: Any) -> Any:
        for operand in operands:
            if isinstance(operand, CELEvalError):
                return operand
        return operation(*operands)

    return propagate


RUNTIME_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "_||_": _error_aware(celtypes.logical_or),
    "_&&_": _error_aware(celtypes.logical_and),
    "_?_:_": _propagating(celtypes.logical_condition),
    "_+_": _propagating(_add),
    "_-_": _propagating(_rewrapping(operator.sub)),
    "_*_": _propagating(_rewrapping(operator.mul)),
    "_/_": _propagating(_rewrapping(operator.truediv)),
    "_%_": _propagating(_rewrapping(operator.mod)),
    "_[_]": _propagating(operator.getitem),
    "_==_": _equals,
    "_in_": _contains,
    "_!=_": _null_safe(bool_ne, lambda left, right: not (left is None and right is None)),
    "sum": _summer(None),
    "__flowdesk_sum_int": _summer(lambda: celtypes.IntType(0)),
    "__flowdesk_sum_double": _summer(lambda: celtypes.DoubleType(0.0)),
    "max": _extreme("max", max),
    "min": _extreme("min", min),
    "string": _reject_null("string", _to_string),
    "int": _reject_null("int", celtypes.IntType),
    "uint": _reject_null("uint", celtypes.UintType),
    "double": _reject_null("double", celtypes.DoubleType),
    "bool": _reject_null("bool", celtypes.BoolType),
    "bytes": _reject_null("bytes", celtypes.BytesType),
    "duration": _reject_null("duration", celtypes.DurationType),
    "timestamp": _reject_null("timestamp", celtypes.TimestampType),
}
"""Functions registered with cel-python on top of (or instead of) its base functions."""


# --------------------------------------------------------------------------- interpreter


class _Evaluator(Evaluator):
    """cel-python's interpreter with Flowdesk's own evaluation of the list macros.

    cel-python folds the results of ``all``/``exists`` with ``&&``/``||`` and wraps each
    failing step in a new error whose text embeds the previous one, escaped: a list of
    50 failing elements exhausts memory. It also lets ``null.map(...)`` escape as a raw
    ``TypeError``. The five macros are evaluated here instead, with CEL's semantics:
    errors are values, and a decisive element of ``all``/``exists`` wins over errors in
    other elements.
    """

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        return _Evaluator(ast, activation=self.activation)

    def member_dot_arg(self, tree: lark.Tree) -> Any:
        macro = str(tree.children[1])
        if macro not in _MACROS:
            return super().member_dot_arg(tree)
        items = self.visit(tree.children[0])
        if isinstance(items, CELEvalError):
            return items
        if not isinstance(items, list | dict):
            return _fail(f"`{macro}` needs a list or map, got {_kind(items)}")
        body = self.build_ss_macro_eval(tree)  # returns errors instead of raising them
        return _MACROS[macro](macro, list(items), body)


def _decide(macro: str, outcome: Any) -> bool | CELEvalError:
    if isinstance(outcome, celtypes.BoolType):
        return bool(outcome)
    if isinstance(outcome, CELEvalError):
        return outcome
    return _fail(f"the condition of `{macro}` is {_kind(outcome)}")


def _quantifier(universal: bool) -> Callable[[str, list[Any], Callable[[Any], Any]], Any]:
    def quantify(macro: str, items: list[Any], body: Callable[[Any], Any]) -> Any:
        first_error: CELEvalError | None = None
        for item in items:
            decision = _decide(macro, body(item))
            if isinstance(decision, CELEvalError):
                first_error = first_error or decision
            elif decision != universal:
                return celtypes.BoolType(not universal)
        return first_error if first_error is not None else celtypes.BoolType(universal)

    return quantify


def _exists_one(macro: str, items: list[Any], body: Callable[[Any], Any]) -> Any:
    count = 0
    for item in items:
        decision = _decide(macro, body(item))
        if isinstance(decision, CELEvalError):
            return decision
        count += decision
    return celtypes.BoolType(count == 1)


def _map(macro: str, items: list[Any], body: Callable[[Any], Any]) -> Any:
    results = []
    for item in items:
        result = body(item)
        if isinstance(result, CELEvalError):
            return result
        results.append(result)
    return celtypes.ListType(results)


def _filter(macro: str, items: list[Any], body: Callable[[Any], Any]) -> Any:
    kept = []
    for item in items:
        decision = _decide(macro, body(item))
        if isinstance(decision, CELEvalError):
            return decision
        if decision:
            kept.append(item)
    return celtypes.ListType(kept)


_MACROS: Mapping[str, Callable[[str, list[Any], Callable[[Any], Any]], Any]] = {
    "all": _quantifier(universal=True),
    "exists": _quantifier(universal=False),
    "exists_one": _exists_one,
    "map": _map,
    "filter": _filter,
}


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__.removesuffix("Type").lower()


class _Runner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return _Evaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


# Note: celpy.Environment() raises sys.getrecursionlimit() to 2500 as a side effect, which
# its recursive interpreter needs.
_ENVIRONMENT = celpy.Environment(runner_class=_Runner)


def build_program(tree: lark.Tree, runtime_names: Mapping[int, str]) -> celpy.Runner:
    """Bind ``tree`` to the runtime functions once, so evaluation does no parsing.

    ``runtime_names`` (call offset -> implementation name, decided by the checker)
    renames calls in ``tree`` in place; the tree must not be shared.
    """
    if runtime_names:
        for subtree in tree.iter_subtrees():
            if subtree.data != "ident_arg":
                continue
            token = subtree.children[0]
            if isinstance(token, lark.Token) and token.start_pos in runtime_names:
                subtree.children[0] = token.update(value=runtime_names[token.start_pos])
    return _ENVIRONMENT.program(tree, functions=dict(RUNTIME_FUNCTIONS))


# --------------------------------------------------------------------------- running


def run(
    program: celpy.Runner,
    source: str,
    scope: Mapping[str, CelType],
    roots: Collection[str],
    activation: Mapping[str, object],
) -> object:
    """Evaluate ``program`` with the values of ``activation`` for the names in ``roots``.

    Every failure becomes :class:`ExpressionEvalError`: cel-python reports some errors
    as ``CELEvalError`` and lets others escape as plain Python exceptions (e.g.
    iterating over a null list), and callers must not depend on either.
    """
    try:
        context = {name: _bind(name, scope, activation) for name in sorted(roots)}
        return to_python(program.evaluate(context))
    except CELEvalError as error:
        reason = describe(error)
    except ConversionError as error:
        reason = str(error)
    except RecursionError:
        reason = "expression is too deeply nested to evaluate"
    except Exception as error:  # see docstring: nothing else may escape
        reason = f"{type(error).__name__}: {error}"
    raise ExpressionEvalError(
        f"cannot evaluate `{_shorten(source)}`: {reason}", source=source, reason=reason
    )


def _bind(name: str, scope: Mapping[str, CelType], activation: Mapping[str, object]) -> object:
    if name not in activation:
        raise ConversionError(f"no value for `{name}`")
    try:
        return to_cel(activation[name], scope.get(name, DYN))
    except ConversionError as error:
        raise ConversionError(f"value of `{name}`: {error}") from error
    except ValueError as error:  # celpy range checks (int64, durations)
        raise ConversionError(f"value of `{name}` is out of range: {error}") from error


def _shorten(source: str) -> str:
    flat = " ".join(source.split())
    return flat if len(flat) <= _SOURCE_LIMIT else flat[: _SOURCE_LIMIT - 3] + "..."


_QUOTED = re.compile(r"'([^']*)'")


def describe(error: CELEvalError) -> str:
    """Turn a cel-python error into a sentence an analyst can act on."""
    message = str(error.args[0]) if error.args else "evaluation failed"
    exc_class = error.args[1] if len(error.args) > 1 else None
    exc_args = error.args[2] if len(error.args) > 2 and error.args[2] else ()
    quoted = _QUOTED.search(message)
    if exc_class is ZeroDivisionError:
        return "division by zero"
    if message.startswith("undeclared reference") and quoted:
        return f"unknown name `{quoted.group(1)}`"
    if message == "no such key" and exc_args:
        return f"no such key `{to_python(exc_args[0])}`"
    if message.startswith("no such member in mapping") and quoted:
        return f"no field or key `{quoted.group(1)}`"
    if exc_class is IndexError:
        return "list index out of range"
    if message == "return error for overflow":
        if tuple(exc_args) == ("overflow",):
            return "integer overflow"
        return f"invalid value: {exc_args[0] if exc_args else message}"
    if message == "match error":
        return "invalid regular expression"
    if "does not support field selection" in message:
        return "cannot select a field of null" if message.startswith("None") else message
    if "no matching overload" in message or message == "no such overload":
        return "operation not supported for these values (is one of them null?)"
    return message
