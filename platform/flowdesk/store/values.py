"""Field values: checking and converting what callers give, what the database returns.

One `FieldCodec` per field is built when a `RecordStore` starts, from the
field's spec, so a write only runs prebuilt functions: no per-call look-ups of
the model. Values inside the service are plain Python: `str`, `int`,
`Decimal`, `bool`, `date`, UTC `datetime`, `timedelta`, lists of enum values
or ids, and for line collections lists of dicts.

Input may come from JSON (strings for dates, numbers for decimals) or from
Python; both are accepted and normalised. Every problem is an `Invalid`
(code + message) turned into a `FieldError` by `Shape.coerce`, which checks
all given fields before reporting, so callers see every mistake at once.

This module holds the codec and shape types and builds codecs; what each
field type accepts (one converter per type, `Invalid`, `load_datetime`) is in
`_field_kinds`, re-exported here where it is public.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flowdesk.model.diagnostics import did_you_mean
from flowdesk.model.entity import LinesField

from ._field_kinds import BUILDERS, Coerce, Invalid, as_id, load_datetime, round_decimal
from .errors import FieldError

__all__ = [
    "DefaultContext",
    "FieldCodec",
    "Invalid",
    "Shape",
    "build_codec",
    "json_value",
    "load_datetime",
    "system_codec",
]


@dataclass(frozen=True)
class DefaultContext:
    """What dynamic defaults need: who creates the record and when."""

    user_id: int | None
    now: dt.datetime
    timezone: ZoneInfo

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.timezone).date()


Default = Callable[[DefaultContext], Any]


@dataclass(frozen=True)
class FieldCodec:
    """Everything the service does with one field's values, decided once.

    Attributes:
        coerce: a non-null input value -> the Python value, or raises `Invalid`.
        load: database value -> Python value; None where the driver's value is right.
        dump: Python value -> database value; None where no conversion is needed.
        default: the value a new record gets when the field is not given.
        target: the entity (or `user`, `department`, `position`, `attachment`) an id
            field points at.
    """

    name: str
    kind: str
    required: bool
    computed: bool
    multiple: bool
    coerce: Coerce
    load: Coerce | None = None
    dump: Coerce | None = None
    default: Default | None = None
    target: str | None = None
    deprecated_values: frozenset[str] = frozenset()
    lines: Shape | None = None
    min_items: int | None = None
    max_items: int | None = None

    def computed_value(self, value: Any) -> Any:
        """A computed result stored in this field: numbers rounded to the column's scale."""
        if value is None:
            return None
        if self.kind == "decimal" and isinstance(value, int | float | Decimal):
            return round_decimal(self.coerce, value)
        return self.coerce(value)


@dataclass(frozen=True)
class Shape:
    """The fields of a record or of one line of a line collection, in model order."""

    codecs: Mapping[str, FieldCodec]
    writable: frozenset[str]
    allow_id: bool = False
    system: Mapping[str, FieldCodec] = field(default_factory=dict)

    def coerce(self, values: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], list]:
        """Check the given values; return them converted plus every problem found.

        Lines are returned as lists of partial line dicts (with `id` when given),
        to be merged with the lines they replace by the caller.
        """
        result: dict[str, Any] = {}
        errors: list[FieldError] = []
        for name, value in values.items():
            path = prefix + name
            codec = self.codecs.get(name)
            if codec is None or name not in self.writable:
                if name in self.system or (self.allow_id and name == "id"):
                    result[name] = self._extra(name, value, path, errors)
                    continue
                errors.append(self._not_writable(name, path))
                continue
            if value is None:
                result[name] = [] if codec.multiple else None
            elif codec.lines is not None:
                result[name] = _coerce_lines(codec, value, path, errors)
            else:
                try:
                    result[name] = codec.coerce(value)
                except Invalid as problem:
                    errors.append(FieldError(path, problem.code, problem.message))
        return result, errors

    def defaults(self, context: DefaultContext) -> dict[str, Any]:
        """A new record's values before the caller's: defaults, else null (or [])."""
        values: dict[str, Any] = {}
        for name, codec in self.codecs.items():
            if codec.default is not None:
                values[name] = codec.default(context)
            else:
                values[name] = [] if codec.multiple else None
        return values

    def check_required(
        self, record: Mapping[str, Any], prefix: str = "", skip: frozenset[str] = frozenset()
    ) -> list[FieldError]:
        """Required fields without a value, and line collections with too few or many lines.

        `skip` holds the paths that already have an error (a rejected value is
        not also reported as missing).
        """
        errors: list[FieldError] = []
        for name, codec in self.codecs.items():
            value = record.get(name)
            path = prefix + name
            if path in skip:
                continue
            if codec.lines is not None:
                errors.extend(_check_line_count(codec, value or [], path))
                for index, line in enumerate(value or []):
                    errors.extend(codec.lines.check_required(line, f"{path}[{index}].", skip))
            elif codec.required and not codec.computed and _is_empty(value):
                errors.append(FieldError(path, "required", f"{path} is required"))
        return errors

    def _extra(self, name: str, value: Any, path: str, errors: list[FieldError]) -> Any:
        if name == "id":
            if value is None or (isinstance(value, int) and not isinstance(value, bool)):
                return value
            errors.append(FieldError(path, "invalid-id", f"{path} must be a line id"))
            return None
        codec = self.system[name]
        try:
            return None if value is None else codec.coerce(value)
        except Invalid as problem:
            errors.append(FieldError(path, problem.code, problem.message))
            return None

    def _not_writable(self, name: str, path: str) -> FieldError:
        if name in self.codecs:
            return FieldError(path, "read-only", f"{path} is computed and cannot be set")
        if name in _SYSTEM_NAMES:
            return FieldError(path, "read-only", f"{path} is set by the platform")
        hint = did_you_mean(name, list(self.writable))
        message = f"unknown field {path}" + (f"; {hint}" if hint else "")
        return FieldError(path, "unknown-field", message)


_SYSTEM_NAMES = frozenset(
    {
        "id",
        "number",
        "state",
        "workflow_version",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "row_version",
        "deleted_at",
        "assignee",
    }
)


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list) and not value


def _coerce_lines(codec: FieldCodec, value: Any, path: str, errors: list[FieldError]) -> list:
    if not isinstance(value, list | tuple):
        errors.append(FieldError(path, "not-a-list", f"{path} must be a list of lines"))
        return []
    assert codec.lines is not None
    lines = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            problem = FieldError(f"{path}[{index}]", "not-an-object", "a line must be an object")
            errors.append(problem)
            continue
        line, problems = codec.lines.coerce(item, f"{path}[{index}].")
        errors.extend(problems)
        lines.append(line)
    return lines


def _check_line_count(codec: FieldCodec, lines: list, path: str) -> list[FieldError]:
    count = len(lines)
    low = codec.min_items if codec.min_items is not None else (1 if codec.required else 0)
    if count < low:
        plural = "line" if low == 1 else "lines"
        return [FieldError(path, "too-few", f"{path} needs at least {low} {plural}")]
    if codec.max_items is not None and count > codec.max_items:
        return [FieldError(path, "too-many", f"{path} allows at most {codec.max_items} lines")]
    return []


# --------------------------------------------------------------------------- building


def build_codec(name: str, spec: Any) -> FieldCodec:
    """The codec of one field, from its spec in the model."""
    kind = spec.type
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"no codec for field type {kind!r}")
    parts: dict[str, Any] = builder(name, spec)
    multiple = kind in ("references",) or bool(getattr(spec, "multiple", False))
    codec = FieldCodec(
        name=name,
        kind=kind,
        required=spec.required,
        computed=bool(spec.computed),
        multiple=multiple or kind == "lines",
        **parts,
    )
    default = _default(codec, spec)
    return replace(codec, default=default) if default is not None else codec


def _default(codec: FieldCodec, spec: Any) -> Default | None:
    raw = getattr(spec, "default", None)
    if raw is None or codec.computed:
        return None
    if raw == "current_user" and codec.kind == "user":
        return lambda context: context.user_id
    if raw == "now" and codec.kind == "datetime":
        return lambda context: context.now
    if raw == "today" and codec.kind == "date":
        return lambda context: context.today
    if codec.multiple and not isinstance(raw, list):
        raw = [raw]
    value = codec.coerce(raw)  # the linker checked defaults; this only converts them
    if isinstance(value, list | dict):
        return lambda _context: copy.deepcopy(value)
    return lambda _context: value


def _lines(name: str, spec: LinesField) -> dict[str, Any]:
    """A line collection: a `Shape` of the codecs of its own fields."""
    codecs = {sub: build_codec(sub, sub_spec) for sub, sub_spec in spec.fields.items()}
    writable = frozenset(sub for sub, codec in codecs.items() if not codec.computed)
    shape = Shape(codecs, writable, allow_id=True)

    def coerce(_value: Any) -> Any:  # lines are coerced by Shape, line by line
        raise Invalid("not-a-list", f"{name} must be a list of lines")

    return {"coerce": coerce, "lines": shape, "min_items": spec.min, "max_items": spec.max}


_BUILDERS: Mapping[str, Callable[[str, Any], dict[str, Any]]] = {**BUILDERS, "lines": _lines}


def system_codec(name: str) -> FieldCodec:
    """The codec of a system column: user ids (`assignee`, `created_by` ...) and instants."""
    if name in ("created_at", "updated_at", "deleted_at"):
        return FieldCodec(
            name,
            "datetime",
            False,
            True,
            False,
            BUILDERS["datetime"](name, None)["coerce"],
            load=load_datetime,
        )
    return FieldCodec(
        name,
        "user",
        False,
        name != "assignee",
        False,
        lambda value: as_id(name, value),
        target="user",
    )


# --------------------------------------------------------------------------- JSON forms


def json_value(value: Any) -> Any:
    """A Python value as JSON data, for audit rows and cursors.

    Decimals become strings (no float rounding), instants ISO 8601 text,
    durations whole seconds.
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return int(value.total_seconds())
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return str(value)
