"""Static signatures of the functions analysts may call, and of the arithmetic operators.

Only functions the cel-python runtime really evaluates are listed (each one is
exercised by a unit test), plus Flowdesk's own ``sum``, ``max`` and ``min`` which are
implemented in :mod:`flowdesk.expressions.evaluation`. ``now()`` is intentionally absent:
it would make expressions non-deterministic, so the runtime passes ``now`` as a variable.

A signature may name a ``runtime_name``: the evaluator then calls that specialised
implementation when the checker resolved exactly this overload (``sum`` of an empty
``list<double>`` must be ``0.0``, not ``0``, and only the checker knows which one it is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from flowdesk.expressions.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    ListType,
    MapType,
    is_assignable,
)

__all__ = [
    "ARITHMETIC",
    "FUNCTIONS",
    "MACROS",
    "FunctionSpec",
    "Resolution",
    "Signature",
    "render",
    "resolve",
]

ANY_LIST = ListType(DYN)
ANY_MAP = MapType(DYN, DYN)

MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
"""Names handled by the checker itself because their arguments are not plain values."""


@dataclass(frozen=True)
class Signature:
    """One overload; for a method, ``params[0]`` is the receiver."""

    params: tuple[CelType, ...]
    result: CelType
    runtime_name: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """All overloads of one function name, split by call style.

    CEL distinguishes ``size(x)`` from ``x.size()``; cel-python accepts both for every
    function, but the checker follows the CEL specification so expressions stay portable
    to another runtime.
    """

    name: str
    globals: tuple[Signature, ...] = ()
    methods: tuple[Signature, ...] = ()


@dataclass(frozen=True)
class Resolution:
    """Outcome of overload resolution: the result type and optional specialisation."""

    result: CelType
    runtime_name: str | None


def _unary(types: Sequence[CelType], result: CelType) -> tuple[Signature, ...]:
    return tuple(Signature((param,), result) for param in types)


def _string_predicate() -> tuple[Signature, ...]:
    return (Signature((STRING, STRING), BOOL),)


def _getter(receivers: Sequence[CelType]) -> tuple[Signature, ...]:
    # Timestamp getters take an optional time zone ("Europe/Paris", "+05:30"); UTC otherwise.
    with_zone = tuple(Signature((TIMESTAMP, STRING), INT) for r in receivers if r == TIMESTAMP)
    return _unary(receivers, INT) + with_zone


def _aggregate(name: str, element_types: Sequence[CelType], special: bool) -> FunctionSpec:
    signatures = tuple(
        Signature((ListType(elem),), elem, f"__flowdesk_{name}_{elem}" if special else None)
        for elem in element_types
    )
    return FunctionSpec(name, globals=signatures)


_SIZED = (STRING, BYTES, ANY_LIST, ANY_MAP)
_ORDERED_ELEMENTS = (INT, UINT, DOUBLE, STRING, TIMESTAMP, DURATION)
_TIMESTAMP_GETTERS = (
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
)
_TIME_GETTERS = ("getHours", "getMinutes", "getSeconds", "getMilliseconds")

_SPECS: tuple[FunctionSpec, ...] = (
    FunctionSpec("size", globals=_unary(_SIZED, INT), methods=_unary(_SIZED, INT)),
    FunctionSpec("contains", methods=_string_predicate()),
    FunctionSpec("startsWith", methods=_string_predicate()),
    FunctionSpec("endsWith", methods=_string_predicate()),
    FunctionSpec("matches", globals=_string_predicate(), methods=_string_predicate()),
    FunctionSpec("int", globals=_unary((INT, UINT, DOUBLE, STRING, TIMESTAMP), INT)),
    FunctionSpec("uint", globals=_unary((INT, UINT, DOUBLE, STRING), UINT)),
    FunctionSpec("double", globals=_unary((INT, UINT, DOUBLE, STRING), DOUBLE)),
    FunctionSpec(
        "string",
        globals=_unary((INT, UINT, DOUBLE, STRING, BOOL, BYTES, TIMESTAMP, DURATION), STRING),
    ),
    FunctionSpec("bool", globals=_unary((BOOL, STRING), BOOL)),
    FunctionSpec("bytes", globals=_unary((BYTES, STRING), BYTES)),
    FunctionSpec("timestamp", globals=_unary((STRING, TIMESTAMP), TIMESTAMP)),
    FunctionSpec("duration", globals=_unary((STRING, DURATION), DURATION)),
    FunctionSpec("dyn", globals=_unary((DYN,), DYN)),
    *(FunctionSpec(name, methods=_getter((TIMESTAMP,))) for name in _TIMESTAMP_GETTERS),
    *(FunctionSpec(name, methods=_getter((TIMESTAMP, DURATION))) for name in _TIME_GETTERS),
    _aggregate("sum", (INT, DOUBLE), special=True),
    _aggregate("max", _ORDERED_ELEMENTS, special=False),
    _aggregate("min", _ORDERED_ELEMENTS, special=False),
)

FUNCTIONS: Mapping[str, FunctionSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
"""Every callable function, by name."""


def _arithmetic(*rows: tuple[CelType, CelType, CelType]) -> tuple[Signature, ...]:
    return tuple(Signature((left, right), result) for left, right, result in rows)


_NUMERIC_ROWS = ((INT, INT, INT), (UINT, UINT, UINT), (DOUBLE, DOUBLE, DOUBLE))

ARITHMETIC: Mapping[str, tuple[Signature, ...]] = MappingProxyType(
    {
        # list + list is handled by the checker (the element types must be joined).
        "+": _arithmetic(
            *_NUMERIC_ROWS,
            (STRING, STRING, STRING),
            (BYTES, BYTES, BYTES),
            (TIMESTAMP, DURATION, TIMESTAMP),
            (DURATION, TIMESTAMP, TIMESTAMP),
            (DURATION, DURATION, DURATION),
        ),
        "-": _arithmetic(
            *_NUMERIC_ROWS,
            (TIMESTAMP, TIMESTAMP, DURATION),
            (TIMESTAMP, DURATION, TIMESTAMP),
            (DURATION, DURATION, DURATION),
        ),
        "*": _arithmetic(*_NUMERIC_ROWS),
        "/": _arithmetic(*_NUMERIC_ROWS),
        "%": _arithmetic((INT, INT, INT), (UINT, UINT, UINT)),
    }
)
"""Overloads of the arithmetic operators; CEL never converts between int and double."""


def _matches(arg: CelType, param: CelType) -> bool:
    if DYN in (arg, param):
        return True
    if arg == NULL:
        return False
    return is_assignable(arg, param)


def resolve(signatures: Sequence[Signature], args: Sequence[CelType]) -> Resolution | None:
    """Pick the overload for ``args``; ``None`` when no overload accepts them.

    A ``dyn`` argument can match several overloads: the result is then their common
    result type, or ``dyn`` when they disagree (the runtime decides).
    """
    candidates = [
        signature
        for signature in signatures
        if len(signature.params) == len(args)
        and all(_matches(arg, param) for arg, param in zip(args, signature.params, strict=True))
    ]
    if not candidates:
        return None
    if len(candidates) == 1:
        return Resolution(candidates[0].result, candidates[0].runtime_name)
    results = {candidate.result for candidate in candidates}
    return Resolution(results.pop() if len(results) == 1 else DYN, None)


def render(name: str, types: Sequence[CelType], *, method: bool) -> str:
    """Spell a call the way an analyst would write it: ``string.startsWith(int)``."""
    if method and types:
        receiver, *rest = types
        return f"{receiver}.{name}({', '.join(str(t) for t in rest)})"
    return f"{name}({', '.join(str(t) for t in types)})"
