"""The CelType hierarchy: spelling, hashing, assignability."""

from __future__ import annotations

import dataclasses

import pytest

import flowdesk.expressions as expressions
from flowdesk.expressions import (
    BOOL,
    DOUBLE,
    DYN,
    INT,
    NULL,
    STRING,
    EnumType,
    ListType,
    MapType,
    ObjectType,
    PrimitiveType,
    is_assignable,
)
from flowdesk.expressions.types import common_type

PRIORITY = EnumType("priority", ["p1", "p2"])
STATUS = EnumType("status", ("open",))


def test_types_read_well_in_messages() -> None:
    assert str(INT) == "int"
    assert str(ListType(MapType(STRING, ListType(DOUBLE)))) == "list<map<string, list<double>>>"
    assert str(PRIORITY) == "priority"
    assert str(ObjectType("ticket", {})) == "ticket"


def test_primitives_are_value_singletons() -> None:
    assert PrimitiveType("int") == INT
    assert len({INT, PrimitiveType("int"), STRING}) == 2


def test_types_are_frozen_and_hashable() -> None:
    ticket = ObjectType("ticket", {"priority": PRIORITY, "tags": ListType(STRING)})
    assert {ticket: 1}[ObjectType("ticket", {"tags": ListType(STRING), "priority": PRIORITY})] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        ticket.name = "other"  # type: ignore[misc]
    assert PRIORITY.values == ("p1", "p2")
    assert hash(PRIORITY) == hash(EnumType("priority", ("p1", "p2")))


def test_object_fields_are_a_read_only_mapping() -> None:
    ticket = ObjectType("ticket", {"b": INT, "a": STRING})
    assert dict(ticket.fields) == {"a": STRING, "b": INT}
    assert ticket.field_type("a") == STRING
    assert ticket.field_type("zz") is None
    with pytest.raises(TypeError):
        ticket.fields["c"] = BOOL  # type: ignore[index]
    assert ObjectType("ticket", [("a", STRING), ("b", INT)]) == ticket
    assert ObjectType("ticket", {"a": STRING}) != ticket


ASSIGNABLE = [
    (INT, INT, True),
    (INT, DOUBLE, False),
    (DYN, INT, True),
    (INT, DYN, True),
    (PRIORITY, STRING, True),
    (STRING, PRIORITY, True),
    (PRIORITY, STATUS, False),
    (NULL, INT, False),
    (ListType(INT), ListType(DYN), True),
    (ListType(PRIORITY), ListType(STRING), True),
    (ListType(INT), ListType(STRING), False),
    (MapType(STRING, INT), MapType(STRING, DYN), True),
    (MapType(STRING, INT), MapType(INT, INT), False),
]


@pytest.mark.parametrize(("source", "target", "expected"), ASSIGNABLE)
def test_is_assignable(source, target, expected) -> None:
    assert is_assignable(source, target) is expected


def test_common_type() -> None:
    assert common_type(INT, INT) == INT
    assert common_type(NULL, INT) == INT
    assert common_type(PRIORITY, STRING) == STRING
    assert common_type(PRIORITY, STATUS) == STRING
    assert common_type(INT, DYN) == DYN
    assert common_type(ListType(INT), ListType(NULL)) == ListType(INT)
    assert common_type(INT, DOUBLE) is None
    assert common_type(MapType(STRING, INT), MapType(STRING, STRING)) is None


def test_public_api_is_reexported() -> None:
    for name in (
        "CelType",
        "INT",
        "UINT",
        "DOUBLE",
        "STRING",
        "BOOL",
        "BYTES",
        "NULL",
        "TIMESTAMP",
        "DURATION",
        "DYN",
        "ListType",
        "MapType",
        "EnumType",
        "ObjectType",
        "ExpressionIssue",
        "ExpressionError",
        "ExpressionEvalError",
        "compile_expression",
        "CompiledExpression",
    ):
        assert name in expressions.__all__
        assert hasattr(expressions, name)


def test_package_imports_nothing_else_from_flowdesk() -> None:
    import ast
    import pathlib

    package = pathlib.Path(expressions.__file__).parent
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module]
            elif isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            else:
                continue
            for name in imported:
                if name.startswith("flowdesk"):
                    assert name.startswith("flowdesk.expressions"), (module.name, name)
