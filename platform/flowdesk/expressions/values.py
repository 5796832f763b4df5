"""Conversion of plain Python values to and from cel-python (celpy) values.

Callers of :meth:`~flowdesk.expressions.CompiledExpression.evaluate` pass and receive
plain Python only; this module converts at that boundary, so celpy types never leak
out of the package.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping

from celpy import celtypes
from celpy.evaluation import CELEvalError

from flowdesk.expressions.types import DOUBLE, DYN, UINT, CelType, ListType, MapType, ObjectType

__all__ = ["ConversionError", "to_cel", "to_python"]


class ConversionError(ValueError):
    """A value cannot cross the boundary between plain Python and celpy."""


def to_cel(value: object, declared: CelType = DYN) -> object:
    """Convert a plain Python value to a celpy value, guided by its declared type.

    The declared type matters for numbers: JSON and YAML write ``5`` for a double
    field, which must become ``5.0`` or every ``amount * 1.5`` would fail.

    Raises:
        ValueError: unsupported value (naive datetime, arbitrary object) or out of the
            CEL range (int64, durations of more than 10,000 years).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int | decimal.Decimal) and declared == DOUBLE:
        return celtypes.DoubleType(float(value))
    if isinstance(value, int) and declared == UINT:
        return celtypes.UintType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float | decimal.Decimal):
        return celtypes.DoubleType(float(value))
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, bytes):
        return celtypes.BytesType(value)
    return _to_cel_structured(value, declared)


def _to_cel_structured(value: object, declared: CelType) -> object:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConversionError("naive datetime; pass a timezone-aware datetime")
        return celtypes.TimestampType(value)
    if isinstance(value, datetime.date):
        midnight = datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
        return celtypes.TimestampType(midnight)
    if isinstance(value, datetime.timedelta):
        return celtypes.DurationType(value)
    if isinstance(value, Mapping):
        return celtypes.MapType(
            {
                to_cel(key, _key_type(declared)): to_cel(item, _value_type(declared, key))
                for key, item in value.items()
            }
        )
    if isinstance(value, list | tuple):
        elem = declared.elem if isinstance(declared, ListType) else DYN
        return celtypes.ListType([to_cel(item, elem) for item in value])
    raise ConversionError(f"unsupported value of type {type(value).__name__}")


def _key_type(declared: CelType) -> CelType:
    return declared.key if isinstance(declared, MapType) else DYN


def _value_type(declared: CelType, key: object) -> CelType:
    if isinstance(declared, MapType):
        return declared.value
    if isinstance(declared, ObjectType) and isinstance(key, str):
        return declared.field_type(key) or DYN
    return DYN


def to_python(value: object) -> object:
    """Convert a celpy result to plain Python (bool, int, float, str, list, dict...).

    Raises:
        CELEvalError: the result contains an error value (``{"a": 1 / 0}``).
        ValueError: the result has no plain Python counterpart (a type value).
    """
    if value is None:
        return None
    if isinstance(value, CELEvalError):
        raise value
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, datetime.datetime):
        result = datetime.datetime.combine(value.date(), value.timetz())
        if type(result.tzinfo).__module__.partition(".")[0] == "pendulum":
            # celpy parses timestamp("...") with pendulum; callers get a plain offset,
            # the same object the Rust-backed engine returns.
            offset = result.utcoffset() or datetime.timedelta(0)
            zone = datetime.timezone(offset) if offset else datetime.UTC
            result = result.replace(tzinfo=zone)
        return result
    if isinstance(value, datetime.timedelta):
        return datetime.timedelta(
            days=value.days, seconds=value.seconds, microseconds=value.microseconds
        )
    if isinstance(value, Mapping):
        return {to_python(key): to_python(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_python(item) for item in value]
    raise ConversionError(f"unsupported result of type {type(value).__name__}")
