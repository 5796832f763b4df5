"""Static types of CEL expressions as Flowdesk sees them.

The linker describes what an expression may reference (a record, the current user,
``now``...) as a mapping of names to these types, and the checker infers the type of
every sub-expression from them. The types are frozen, hashable dataclasses so that
scopes and compiled expressions can be cached and compared.

Nullability is deliberately not part of the type: every value of any type may be
``null`` at runtime (YAML models cannot promise a field is filled in), so ``x == null``
and ``x != null`` are accepted for every ``x``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "BOOL",
    "BYTES",
    "DOUBLE",
    "DURATION",
    "DYN",
    "INT",
    "NULL",
    "STRING",
    "TIMESTAMP",
    "UINT",
    "CelType",
    "EnumType",
    "ListType",
    "MapType",
    "ObjectType",
    "PrimitiveType",
    "common_type",
    "is_assignable",
]


@dataclass(frozen=True)
class CelType:
    """Base class of every static CEL type.

    Subclasses implement ``__str__`` with the spelling used in messages shown to
    business analysts (``int``, ``list<string>``, ``ticket``...).
    """

    def __str__(self) -> str:  # pragma: no cover - every subclass overrides it
        return type(self).__name__


@dataclass(frozen=True)
class PrimitiveType(CelType):
    """A built-in scalar type, identified by its CEL name (``int``, ``string``...)."""

    name: str

    def __str__(self) -> str:
        return self.name


INT = PrimitiveType("int")
UINT = PrimitiveType("uint")
DOUBLE = PrimitiveType("double")
STRING = PrimitiveType("string")
BOOL = PrimitiveType("bool")
BYTES = PrimitiveType("bytes")
NULL = PrimitiveType("null")
TIMESTAMP = PrimitiveType("timestamp")
DURATION = PrimitiveType("duration")
DYN = PrimitiveType("dyn")
"""The unknown type (JSON fields, erroneous sub-expressions): compatible with everything."""


@dataclass(frozen=True)
class ListType(CelType):
    """A list whose elements all have type ``elem``."""

    elem: CelType

    def __str__(self) -> str:
        return f"list<{self.elem}>"


@dataclass(frozen=True)
class MapType(CelType):
    """A map from ``key`` to ``value``."""

    key: CelType
    value: CelType

    def __str__(self) -> str:
        return f"map<{self.key}, {self.value}>"


@dataclass(frozen=True)
class EnumType(CelType):
    """A string restricted to ``values``.

    At runtime an enum value is a plain string, so it is assignable to and from
    ``string``; the checker additionally rejects comparisons with string literals that
    are not one of ``values``, which is the typo analysts make most.
    """

    name: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        # Accept any iterable (a YAML list) but store a tuple so the type stays hashable.
        object.__setattr__(self, "values", tuple(self.values))

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, init=False)
class ObjectType(CelType):
    """A record with named, typed fields, such as the record of an entity.

    Fields are stored as a sorted tuple of pairs so the type is hashable and two
    objects declaring the same fields in a different order are equal; ``fields``
    exposes them as a read-only mapping.
    """

    name: str
    field_items: tuple[tuple[str, CelType], ...]

    def __init__(
        self, name: str, fields: Mapping[str, CelType] | Iterable[tuple[str, CelType]]
    ) -> None:
        items = fields.items() if isinstance(fields, Mapping) else fields
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "field_items", tuple(sorted(dict(items).items())))

    @property
    def fields(self) -> Mapping[str, CelType]:
        """The declared fields, by name (read-only)."""
        return MappingProxyType(dict(self.field_items))

    def field_type(self, name: str) -> CelType | None:
        """Return the type of field ``name``, or ``None`` when it is not declared."""
        for field_name, field_type in self.field_items:
            if field_name == name:
                return field_type
        return None

    def __str__(self) -> str:
        return self.name


def _is_stringish(cel_type: CelType) -> bool:
    return cel_type == STRING or isinstance(cel_type, EnumType)


def is_assignable(source: CelType, target: CelType) -> bool:
    """Tell whether a value of type ``source`` may be used where ``target`` is expected.

    ``dyn`` on either side is accepted because nothing is known about it; enums and
    strings are interchangeable because enums are strings at runtime. ``null`` is
    only assignable to ``dyn`` and ``null``: a literal ``null`` where a value is
    required is a mistake, even though fields may *hold* null.
    """
    if source == target or DYN in (source, target):
        return True
    if _is_stringish(source) and _is_stringish(target):
        return not (isinstance(source, EnumType) and isinstance(target, EnumType))
    if isinstance(source, ListType) and isinstance(target, ListType):
        return is_assignable(source.elem, target.elem)
    if isinstance(source, MapType) and isinstance(target, MapType):
        return is_assignable(source.key, target.key) and is_assignable(source.value, target.value)
    return False


def common_type(left: CelType, right: CelType) -> CelType | None:
    """Return the type that can hold values of both ``left`` and ``right``.

    Used for the branches of ``?:`` and the items of list and map literals; ``None``
    means the two types cannot be mixed.
    """
    if left == right:
        return left
    if DYN in (left, right):
        return DYN
    if left == NULL or right == NULL:
        return right if left == NULL else left
    if _is_stringish(left) and _is_stringish(right):
        return STRING
    if isinstance(left, ListType) and isinstance(right, ListType):
        elem = common_type(left.elem, right.elem)
        return None if elem is None else ListType(elem)
    if isinstance(left, MapType) and isinstance(right, MapType):
        key = common_type(left.key, right.key)
        value = common_type(left.value, right.value)
        return None if key is None or value is None else MapType(key, value)
    return None
