"""The Rust-backed evaluator: the ``common-expression-language`` package (module ``cel``).

Only expressions that :mod:`flowdesk.expressions.routing` sends here run here, and only
on activations whose values mean the same thing to both engines. This module owns:

* building a :class:`NativeProgram` from the routed CEL text (``None`` when the package is
  missing or refuses the text: the expression then stays on cel-python);
* converting activations, guided by the declared types, to what the Rust engine reads
  exactly as cel-python would: ints for ``double`` fields become floats, dates become
  midnight UTC. Anything the two engines could read differently is not converted: the
  run reports :data:`FALLBACK` and cel-python evaluates instead. That is: ints outside
  int64; a value whose Python type is not its declared type; durations beyond 10,000
  years; naive datetimes, and timestamps not at UTC -- cel-python adds wall-clock time
  in zones with daylight saving where Rust adds absolute time, and cel-python checks the
  calendar's range (years 1 to 9999) in local time where Rust checks it in UTC, so
  ``ts + duration('2h') - duration('2h')`` near year 9999 at +05:00 fails on one engine
  only. Flowdesk's runtime passes UTC timestamps (``now`` and stored instants);
* Flowdesk's functions for the Rust engine, as Python callbacks: ``size`` of a string in
  code points, ``sum``, ``max``, ``min``, and the duration getters as cel-python computes
  them. A callback never raises (the ``cel`` package
  logs a warning for every exception raised in a callback); on input it does not handle
  exactly like cel-python it returns an unconvertible value, which fails the Rust run,
  so cel-python decides.

:meth:`NativeProgram.run` returns the result or :data:`FALLBACK`; it never raises.
"""

from __future__ import annotations

import datetime
import decimal
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from flowdesk.expressions.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    EnumType,
    ListType,
    MapType,
    ObjectType,
    PrimitiveType,
)


def _load_engine() -> Any:
    """The ``cel`` extension module, or ``None`` when the package is not installed.

    ``import cel`` also imports the package's command-line shell (typer, rich,
    prompt_toolkit): about 150 ms added to every Flowdesk start-up, for nothing used
    here. So the compiled extension ``cel/cel.*.so`` is loaded by itself when it is where
    the package puts it, and through ``import cel`` otherwise. It is registered as
    ``cel.cel``, so a later ``import cel`` reuses it instead of loading it twice.
    """
    if "cel.cel" in sys.modules:
        return sys.modules["cel.cel"]
    try:
        spec = importlib.util.find_spec("cel")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "cel" + suffix)
            if not os.path.isfile(path):
                continue
            try:
                loader = importlib.machinery.ExtensionFileLoader("cel.cel", path)
                found = importlib.util.spec_from_file_location("cel.cel", path, loader=loader)
                if found is None:
                    continue
                module = importlib.util.module_from_spec(found)
                loader.exec_module(module)
            except ImportError:
                continue
            sys.modules["cel.cel"] = module
            return module
    try:
        import cel
    except ImportError:  # pragma: no cover - a broken installation: all on cel-python
        return None
    return cel


_cel = _load_engine()

__all__ = ["AVAILABLE", "CALLBACKS", "FALLBACK", "NativeProgram", "build", "converter"]

AVAILABLE = _cel is not None
"""Whether the Rust-backed ``cel`` package could be imported."""

FALLBACK: Any = type("Fallback", (), {"__repr__": lambda self: "FALLBACK"})()
"""Returned by :meth:`NativeProgram.run` when cel-python must evaluate instead."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_MAX_DURATION_SECONDS = 315_576_000_000  # cel-python's range: 10,000 years
_UTC = datetime.UTC
_ZERO = datetime.timedelta(0)


class _Unsupported(Exception):
    """A value that the two engines might not read alike."""


# --------------------------------------------------------------------------- callbacks


class _Failed:
    """Returned by a callback to fail the Rust run: the ``cel`` package cannot convert it."""

    __slots__ = ()


_FAILED = _Failed()


def _size(value: object) -> object:
    return len(value) if type(value) is str else _FAILED


def _sum_int(values: object) -> object:
    if type(values) is not list:
        return _FAILED
    total = 0
    for value in values:
        if type(value) is not int:
            return _FAILED
        total += value
        if not _INT64_MIN <= total <= _INT64_MAX:  # cel-python fails at the first overflow
            return _FAILED
    return total


def _sum_double(values: object) -> object:
    if type(values) is not list:
        return _FAILED
    total = 0.0
    for value in values:
        if type(value) is not float:
            return _FAILED
        total += value  # left to right from 0.0, as cel-python adds
    return total


_ORDERED_TYPES = frozenset({int, float, str, datetime.datetime, datetime.timedelta})


def _extreme(pick: Callable[[list[Any]], Any]) -> Callable[[object], object]:
    def extreme(values: object) -> object:
        if type(values) is not list or not values:
            return _FAILED
        kind = type(values[0])
        if kind not in _ORDERED_TYPES or any(type(value) is not kind for value in values):
            return _FAILED
        return pick(values)  # the builtin, as cel-python: same ties, same NaN handling

    return extreme


def _duration_getter(compute: Callable[[float], float]) -> Callable[[object], object]:
    # cel-python's formulas, floating point included: int(total_seconds() * 1000) makes
    # duration('1001ms').getMilliseconds() 1000, and its results are the reference.
    def getter(value: object) -> object:
        if type(value) is not datetime.timedelta:
            return _FAILED
        return int(compute(value.total_seconds()))

    return getter


CALLBACKS: Mapping[str, Callable[[object], object]] = {
    "__flowdesk_size": _size,
    "__flowdesk_duration_getHours": _duration_getter(lambda seconds: seconds / 60 / 60),
    "__flowdesk_duration_getMinutes": _duration_getter(lambda seconds: seconds / 60),
    "__flowdesk_duration_getSeconds": _duration_getter(lambda seconds: seconds),
    "__flowdesk_duration_getMilliseconds": _duration_getter(lambda seconds: seconds * 1000),
    "__flowdesk_sum_int": _sum_int,
    "__flowdesk_sum_double": _sum_double,
    "__flowdesk_max": _extreme(max),
    "__flowdesk_min": _extreme(min),
}
"""Python callbacks the routed CEL text may call, by name."""


# --------------------------------------------------------------------------- values

Converter = Callable[[object], object]


def _int(value: object) -> object:
    if type(value) is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        raise _Unsupported  # cel-python fails; the cel package would make it a double
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _int(int(value))
    raise _Unsupported


def _uint(value: object) -> object:
    # uint operations stay on cel-python; a uint only travels inside whole records.
    if type(value) is int and 0 <= value <= _INT64_MAX:
        return value
    if value is None:
        return None
    raise _Unsupported


def _double(value: object) -> object:
    if type(value) is float or value is None:
        return value
    if isinstance(value, float | decimal.Decimal) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        try:
            return float(value)
        except (OverflowError, ValueError) as error:
            raise _Unsupported from error
    raise _Unsupported


def _string(value: object) -> object:
    if type(value) is str or value is None:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    raise _Unsupported


def _bool(value: object) -> object:
    if type(value) is bool or value is None:
        return value
    raise _Unsupported


def _bytes(value: object) -> object:
    if type(value) is bytes or value is None:
        return value
    raise _Unsupported


def _timestamp(value: object) -> object:
    if type(value) is datetime.datetime:
        if value.tzinfo is _UTC or (
            type(value.tzinfo) is datetime.timezone and value.utcoffset() == _ZERO
        ):
            return value
        raise _Unsupported  # naive, or not at UTC: see the module docstring
    if type(value) is datetime.date:
        return datetime.datetime(value.year, value.month, value.day, tzinfo=_UTC)
    if value is None:
        return None
    raise _Unsupported


def _duration(value: object) -> object:
    if type(value) is datetime.timedelta:
        if -_MAX_DURATION_SECONDS <= value.total_seconds() <= _MAX_DURATION_SECONDS:
            return value
        raise _Unsupported
    if value is None:
        return None
    raise _Unsupported


def _any(value: object) -> object:
    """Convert a value of unknown type (``dyn``, undeclared record keys)."""
    if value is None or type(value) in (bool, str, float, bytes):
        return value
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, float | decimal.Decimal):
        return _double(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return _timestamp(value)
    if isinstance(value, datetime.timedelta):
        return _duration(value)
    if isinstance(value, Mapping):
        return {_key(key, _any): _any(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_any(item) for item in value]
    raise _Unsupported


def _key(key: object, convert: Converter) -> object:
    converted = convert(key)
    if type(converted) not in (str, int, bool):
        raise _Unsupported  # the Rust engine's map keys
    return converted


_SCALARS: Mapping[CelType, Converter] = {
    INT: _int,
    UINT: _uint,
    DOUBLE: _double,
    STRING: _string,
    BOOL: _bool,
    BYTES: _bytes,
    TIMESTAMP: _timestamp,
    DURATION: _duration,
}


def converter(cel_type: CelType) -> Converter:
    """The conversion of a plain Python value of declared type ``cel_type``.

    The result raises ``_Unsupported`` for values the engines might read differently.
    Record types convert their fields lazily: a record type nests the types of the
    records it refers to, and hashing or walking all of them for every compiled
    expression cost more than compiling it.
    """
    if isinstance(cel_type, PrimitiveType):
        return _SCALARS.get(cel_type, _any)
    if isinstance(cel_type, EnumType):
        return _string
    if isinstance(cel_type, ListType):
        return _list_converter(converter(cel_type.elem))
    if isinstance(cel_type, MapType):
        return _map_converter(converter(cel_type.key), converter(cel_type.value))
    if isinstance(cel_type, ObjectType):
        return _object_converter(cel_type)
    return _any


def _list_converter(elem: Converter) -> Converter:
    def convert(value: object) -> object:
        if isinstance(value, list | tuple):
            return [elem(item) for item in value]
        if value is None:
            return None
        raise _Unsupported

    return convert


def _map_converter(key: Converter, item: Converter) -> Converter:
    def convert(value: object) -> object:
        if isinstance(value, Mapping):
            return {_key(k, key): item(v) for k, v in value.items()}
        if value is None:
            return None
        raise _Unsupported

    return convert


def _object_converter(cel_type: ObjectType) -> Converter:
    declared = dict(cel_type.field_items)
    fields: dict[str, Converter] = {}  # filled on first use of each field

    def convert(value: object) -> object:
        if not isinstance(value, Mapping):
            if value is None:
                return None
            raise _Unsupported
        converted = {}
        for key, item in value.items():
            if type(key) is not str:
                key = _key(key, _any)
            field = fields.get(key)
            if field is None:
                field = fields[key] = converter(declared.get(key, DYN))
            converted[key] = field(item)
        return converted

    return convert


# --------------------------------------------------------------------------- programs


class NativeProgram:
    """A Rust-compiled expression with the conversions of the names it reads."""

    __slots__ = ("_binders", "_functions", "_program")

    def __init__(
        self, program: Any, binders: Sequence[tuple[str, Converter]], callbacks: frozenset[str]
    ) -> None:
        self._program = program
        self._binders = tuple(binders)
        self._functions = {name: CALLBACKS[name] for name in sorted(callbacks)} or None

    def run(self, activation: Mapping[str, object]) -> object:
        """Evaluate; :data:`FALLBACK` when cel-python must decide (never raises)."""
        try:
            variables = {name: convert(activation[name]) for name, convert in self._binders}
        except Exception:  # a missing name, or a value the engines might read differently
            return FALLBACK
        try:
            if self._functions is None:
                return self._program.execute(variables)
            context = _cel.Context(variables=variables, functions=self._functions)  # type: ignore[union-attr]
            return self._program.execute(context)
        except Exception:  # the Rust engine's runtime errors: cel-python gives the verdict
            return FALLBACK
        except BaseException as error:  # a Rust panic arrives as a BaseException
            if isinstance(error, KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            return FALLBACK

    def run_strict(self, activation: Mapping[str, object]) -> object:
        """Evaluate or raise the Rust engine's own error (for tests and benchmarks)."""
        try:
            variables = {name: convert(activation[name]) for name, convert in self._binders}
        except _Unsupported as error:
            raise ValueError("a value the engines might read differently") from error
        if self._functions is None:
            return self._program.execute(variables)
        return self._program.execute(
            _cel.Context(variables=variables, functions=self._functions)  # type: ignore[union-attr]
        )


def build(
    text: str,
    callbacks: frozenset[str],
    scope: Mapping[str, CelType],
    names: Collection[tuple[str, ...]],
) -> NativeProgram | str:
    """Compile routed ``text`` for the Rust engine; a reason string if it cannot be.

    ``names`` are the member paths the expression reads (the checker's): each record
    passes only the fields on them, which is also what makes whole records cheap.
    """
    if _cel is None:
        return "the common-expression-language package is not installed"
    try:
        program = _cel.compile(text)
    except Exception as error:  # its parser is stricter about some names
        return f"the Rust engine cannot compile it: {str(error).splitlines()[0]}"
    reads = _read_tree(names)
    binders = [(root, _reading(scope.get(root, DYN), reads[root])) for root in sorted(reads)]
    return NativeProgram(program, binders, callbacks)


_Reads = dict[str, "_Reads"] | None
"""The fields read below a value, or ``None`` when the value is read whole."""


def _read_tree(names: Collection[tuple[str, ...]]) -> dict[str, _Reads]:
    tree: dict[str, _Reads] = {}
    for path in sorted(names, key=len):  # a shorter path read whole wins
        level: dict[str, _Reads] | None = tree
        for step in path[:-1]:
            if level is None:
                break
            level = level.setdefault(step, {})
        if level is not None and path[-1] not in level:
            level[path[-1]] = None
    return tree


def _reading(cel_type: CelType, reads: _Reads) -> Converter:
    """Like :func:`converter`, but a record passes on only the fields in ``reads``.

    The ``cel`` package converts every value it is given, read or not, at 2-4
    microseconds per string, so a record passes only the fields on the expression's
    paths (the checker records every path read). The other fields are still checked
    (and their conversions thrown away): cel-python converts whole records and fails on,
    say, a naive datetime in a field the expression never reads, so such a record must
    fall back to cel-python here too.
    """
    if reads is None or not isinstance(cel_type, ObjectType):
        return converter(cel_type)
    declared = dict(cel_type.field_items)
    kept = {name: _reading(declared.get(name, DYN), below) for name, below in reads.items()}
    checked: dict[str, Converter] = {}  # the other fields, filled on first use

    def convert(value: object) -> object:
        if not isinstance(value, Mapping):
            if value is None:
                return None
            raise _Unsupported
        passed = {}
        for key, item in value.items():
            if type(key) is not str:
                key = _key(key, _any)
            field = kept.get(key)
            if field is not None:
                passed[key] = field(item)
                continue
            check = checked.get(key)
            if check is None:
                check = checked[key] = converter(declared.get(key, DYN))
            check(item)
        return passed

    return convert
