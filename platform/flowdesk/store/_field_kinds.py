"""What each kind of field accepts: one converter per field type, built from its spec.

A builder (`BUILDERS[kind](name, spec)`) returns the parts of a `FieldCodec`
that depend on the kind: `coerce` (a non-null input -> the Python value, or
`Invalid`), `load`/`dump` where the database value differs, the `target` of
an id field, the deprecated values of an enum. Messages name the field and
say what is expected, because people read them. Line collections are built
by `values` (they hold a `Shape` of codecs of their own).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from flowdesk.model._base import DURATION_PATTERN, parse_duration
from flowdesk.model.diagnostics import did_you_mean
from flowdesk.model.entity import EnumField

__all__ = ["BUILDERS", "Coerce", "Invalid", "as_id", "load_datetime", "round_decimal"]

UTC = dt.UTC
_INT64 = (-(2**63), 2**63 - 1)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_EMAIL = re.compile(r"^[^@\s]+@([^@\s.]+\.)+[^@\s.]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,40}$")
_DURATION = re.compile(DURATION_PATTERN)
_STRING_MAX = {"string": 255, "email": 255, "phone": 64, "url": 2048}


class Invalid(Exception):
    """A value that does not fit its field: a stable `code` and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Coerce = Callable[[Any], Any]
"""A conversion of one value (input, database or computed) that may raise `Invalid`."""


def _text(name: str, spec: Any) -> dict[str, Any]:
    kind = spec.type
    limit = getattr(spec, "max", None) or _STRING_MAX.get(kind)
    low = getattr(spec, "min", None)
    pattern = re.compile(spec.pattern) if getattr(spec, "pattern", None) else None
    shape = {"email": _check_email, "url": _check_url, "phone": _check_phone}.get(kind)

    def coerce(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("not-a-string", f"{name} must be text")
        if limit is not None and len(value) > limit:
            raise Invalid("too-long", f"{name} must be at most {limit} characters")
        if low is not None and len(value) < low and value:
            raise Invalid("too-short", f"{name} must be at least {low} characters")
        if pattern is not None and value and not pattern.search(value):
            raise Invalid("pattern", f"{name} must match {pattern.pattern}")
        if shape is not None and value:
            shape(name, value)
        return value

    return {"coerce": coerce}


def _check_email(name: str, value: str) -> None:
    if not _EMAIL.match(value):
        raise Invalid("invalid-email", f"{name} is not an e-mail address: {value!r}")


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise Invalid("invalid-url", f"{name} is not an http(s) URL: {value!r}")


def _check_phone(name: str, value: str) -> None:
    if not _PHONE.match(value) or sum(c.isdigit() for c in value) < 5:
        raise Invalid("invalid-phone", f"{name} is not a phone number: {value!r}")


def _bounds(name: str, spec: Any, convert: Callable[[Any], Any]) -> Callable[[Any], None]:
    low = None if spec.min is None else convert(spec.min)
    high = None if spec.max is None else convert(spec.max)

    def check(value: Any) -> None:
        if low is not None and value < low:
            raise Invalid("too-small", f"{name} must be at least {spec.min:g}")
        if high is not None and value > high:
            raise Invalid("too-large", f"{name} must be at most {spec.max:g}")

    return check


def _integer(name: str, spec: Any) -> dict[str, Any]:
    check = _bounds(name, spec, lambda bound: bound)

    def coerce(value: Any) -> int:
        number = _as_int(name, value)
        if not _INT64[0] <= number <= _INT64[1]:
            raise Invalid("out-of-range", f"{name} is too large")
        check(number)
        return number

    return {"coerce": coerce}


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid("not-an-integer", f"{name} must be a whole number")
    whole = isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value)
    digits = isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip())
    if whole or digits:
        value = int(value)
    if not isinstance(value, int):
        raise Invalid("not-an-integer", f"{name} must be a whole number")
    if abs(value) > MAX_INT64:
        raise Invalid("out-of-range", f"{name} is too large")
    return value


def _decimal(name: str, spec: Any) -> dict[str, Any]:
    check = _bounds(name, spec, lambda bound: Decimal(str(bound)))
    quantum = Decimal(1).scaleb(-spec.scale)
    limit = Decimal(10) ** (spec.precision - spec.scale)

    def coerce(value: Any) -> Decimal:
        number = _as_decimal(name, value)
        if abs(number) >= limit:  # before quantize, which fails on huge values
            raise Invalid(
                "out-of-range",
                f"{name} allows {spec.precision - spec.scale} digits before the point",
            )
        rounded = number.quantize(quantum, rounding=ROUND_HALF_UP)
        if rounded != number:
            raise Invalid("too-precise", f"{name} allows {spec.scale} digits after the point")
        if abs(rounded) >= limit:
            raise Invalid(
                "out-of-range",
                f"{name} allows {spec.precision - spec.scale} digits before the point",
            )
        check(rounded)
        return rounded

    coerce.quantum = quantum  # type: ignore[attr-defined]
    return {"coerce": coerce}


def round_decimal(coerce: Coerce, value: Any) -> Decimal:
    quantum = coerce.quantum  # type: ignore[attr-defined]
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return coerce(exact.quantize(quantum, rounding=ROUND_HALF_UP))


def _as_decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise Invalid("not-a-number", f"{name} must be a number")
    try:
        if isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, int | Decimal | str):
            number = Decimal(value.strip() if isinstance(value, str) else value)
        else:
            raise Invalid("not-a-number", f"{name} must be a number")
    except InvalidOperation:
        raise Invalid("not-a-number", f"{name} must be a number") from None
    if not number.is_finite():
        raise Invalid("not-a-number", f"{name} must be a finite number")
    return number


def _boolean(name: str, _spec: Any) -> dict[str, Any]:
    def coerce(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise Invalid("not-a-boolean", f"{name} must be true or false")

    return {"coerce": coerce}


def _date(name: str, _spec: Any) -> dict[str, Any]:
    def coerce(value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            raise Invalid("not-a-date", f"{name} must be a date (YYYY-MM-DD), not a date-time")
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str) and _DATE.match(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise Invalid("not-a-date", f"{name} must be a date written YYYY-MM-DD")

    return {"coerce": coerce}


def load_datetime(value: Any) -> dt.datetime | None:
    """A stored instant as an aware UTC datetime (SQLite returns them naive, in UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _datetime(name: str, _spec: Any) -> dict[str, Any]:
    def coerce(value: Any) -> dt.datetime:
        if isinstance(value, str) and _DATETIME.match(value.strip()):
            try:
                value = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
            except ValueError:
                raise Invalid("not-a-datetime", f"{name} is not a valid date-time") from None
        if isinstance(value, dt.datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise Invalid("no-timezone", f"{name} needs a time zone offset, e.g. Z or +08:00")
            return value.astimezone(UTC)
        raise Invalid(
            "not-a-datetime",
            f"{name} must be an ISO 8601 date-time with an offset, e.g. 2026-03-01T09:30:00+08:00",
        )

    return {"coerce": coerce, "load": load_datetime}


def _duration(name: str, _spec: Any) -> dict[str, Any]:
    def coerce(value: Any) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            result = value
        elif isinstance(value, int) and not isinstance(value, bool):
            result = dt.timedelta(seconds=value)
        elif isinstance(value, str) and _DURATION.match(value):
            result = parse_duration(value)
        else:
            raise Invalid(
                "not-a-duration",
                f"{name} must be a duration such as 4h or 1d 30m, or a number of seconds",
            )
        if result.microseconds:
            raise Invalid("too-precise", f"{name} is stored in whole seconds")
        return result

    return {
        "coerce": coerce,
        "dump": lambda value: None if value is None else int(value.total_seconds()),
        "load": lambda value: None if value is None else dt.timedelta(seconds=value),
    }


def _enum(name: str, spec: EnumField) -> dict[str, Any]:
    allowed = frozenset(spec.value_names)
    shown = ", ".join(spec.value_names)
    deprecated = frozenset(
        key
        for key, value in (spec.values.items() if isinstance(spec.values, dict) else ())
        if value.deprecated
    )

    def one(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            hint = did_you_mean(value, list(allowed)) if isinstance(value, str) else None
            raise Invalid(
                "not-allowed",
                f"{name} must be one of {shown}, not {value!r}" + (f" ({hint})" if hint else ""),
            )
        return value

    def many(value: Any) -> list[str]:
        if not isinstance(value, list | tuple):
            raise Invalid("not-a-list", f"{name} must be a list of values ({shown})")
        return list(dict.fromkeys(one(item) for item in value))

    if spec.multiple:
        return {"coerce": many, "load": _list_or_empty, "deprecated_values": deprecated}
    return {"coerce": one, "deprecated_values": deprecated}


def _list_or_empty(value: Any) -> list:
    return [] if value is None else value


MAX_INT64 = 2**63 - 1
"""The largest integer both databases store (BIGINT); larger ones are refused as input."""


def as_id(name: str, value: Any) -> int:
    if isinstance(value, Mapping) and "id" in value:
        value = value["id"]
    if isinstance(value, bool):
        raise Invalid("not-an-id", f"{name} must be a record id")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_INT64:
        return value
    raise Invalid("not-an-id", f"{name} must be a record id")


def _reference(name: str, spec: Any) -> dict[str, Any]:
    target = "user" if spec.type == "user" else spec.to
    return {"coerce": lambda value: as_id(name, value), "target": target}


def _references(name: str, spec: Any) -> dict[str, Any]:
    limit = spec.max

    def coerce(value: Any) -> list[int]:
        if not isinstance(value, list | tuple):
            raise Invalid("not-a-list", f"{name} must be a list of record ids")
        ids = list(dict.fromkeys(as_id(name, item) for item in value))
        if limit is not None and len(ids) > limit:
            raise Invalid("too-many", f"{name} allows at most {limit} records")
        return ids

    return {"coerce": coerce, "target": spec.to}


def _attachment(name: str, spec: Any) -> dict[str, Any]:
    if not spec.multiple:
        return {"coerce": lambda value: as_id(name, value), "target": "attachment"}

    def coerce(value: Any) -> list[int]:
        if not isinstance(value, list | tuple):
            raise Invalid("not-a-list", f"{name} must be a list of attachment ids")
        return list(dict.fromkeys(as_id(name, item) for item in value))

    return {"coerce": coerce, "load": _list_or_empty, "target": "attachment"}


def _json(name: str, _spec: Any) -> dict[str, Any]:
    def coerce(value: Any) -> Any:
        if not _is_json(value):
            raise Invalid("not-json", f"{name} must be JSON data (objects, lists, text, numbers)")
        return value

    return {"coerce": coerce}


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json(item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return all(
            isinstance(key, str) and _is_json(item, depth + 1) for key, item in value.items()
        )
    return False


BUILDERS: Mapping[str, Callable[[str, Any], dict[str, Any]]] = {
    "string": _text,
    "text": _text,
    "email": _text,
    "phone": _text,
    "url": _text,
    "integer": _integer,
    "decimal": _decimal,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "duration": _duration,
    "enum": _enum,
    "reference": _reference,
    "user": _reference,
    "references": _references,
    "attachment": _attachment,
    "json": _json,
}
"""The builder of each field type but `lines`, by type name."""
