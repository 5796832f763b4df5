"""Plan operations without a database: version ordering, type changes, safety classes,
sentences, reverses, renames in both directions, and the text / JSON renderings."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import JSON, BigInteger, Integer, Numeric, String, Text

from flowdesk.store.ops import (
    DATA_STEP,
    DESTRUCTIVE,
    SAFE,
    AddColumn,
    AlterColumnType,
    CreateIndex,
    DropColumn,
    EnumValuesRemoved,
    Plan,
    RenameColumn,
    SetNotNull,
    StatesRemoved,
    render_json,
    render_text,
)
from flowdesk.store.plan import type_change
from flowdesk.store.snapshots import declared_renames, semver_key

ORDERED = [
    "0.9.0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0",
]


def test_semver_precedence() -> None:
    assert sorted(ORDERED[::-1], key=semver_key) == ORDERED
    assert semver_key("1.0.0+build.1") == semver_key("1.0.0+build.2") == semver_key("1.0.0")
    with pytest.raises(ValueError, match="not a semantic version"):
        semver_key("1.0")


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        (String(50), String(50), None),
        (String(50), String(200), "widen"),
        (String(200), String(50), "narrow"),
        (String(200), Text(), "widen"),
        (Text(), String(10), "narrow"),
        (Integer(), BigInteger(), "widen"),
        (Numeric(10, 2), Numeric(12, 3), "widen"),
        (Numeric(10, 2), Numeric(10, 4), "narrow"),
        (String(64), JSON(), "convert"),
        (BigInteger(), String(20), "convert"),
    ],
)
def test_type_changes(old: object, new: object, change: str | None) -> None:
    assert type_change(old, new) == change


def test_safety_problems_and_sentences() -> None:
    assert AddColumn("t", "c", "date").safety == SAFE
    assert DropColumn("t", "c", 1).describe() == "drop column `t.c` (1 row has a value)"
    assert DropColumn("t", "c", 0).safety == DESTRUCTIVE
    widen = AlterColumnType("t", "c", "string(50)", "text", "widen")
    assert widen.safety == SAFE
    narrow = AlterColumnType("t", "c", "string(200)", "string(20)", "narrow", 3)
    assert narrow.safety == DESTRUCTIVE and "3 rows have longer values" in narrow.describe()
    assert SetNotNull("t", "c", 0).safety == SAFE
    backfill = SetNotNull("t", "c", 12, "web", True)
    assert backfill.safety == DATA_STEP and backfill.problem is None
    assert backfill.describe() == 'make `t.c` required: backfill 12 rows with "web"'
    assert "give the field a `default`" in (SetNotNull("t", "c", 2).problem or "")
    assert CreateIndex("t", "ix", ("c",), unique=True, duplicates=4).problem
    assert CreateIndex("t", "ix", ("c",), unique=False, duplicates=4).problem is None
    assert EnumValuesRemoved("t", "c", ("x",), 0).safety == SAFE
    assert EnumValuesRemoved("t", "c", ("x",), 2).safety == DESTRUCTIVE
    removed = StatesRemoved("ticket", (("triage", 14), ("hold", 1)), ("ticket", "tickets"))
    assert removed.describe() == (
        "14 tickets are in state `triage`, which this version removes; "
        "1 ticket is in state `hold`, which this version removes"
    )
    assert StatesRemoved("ticket", (("triage", 0),)).safety == SAFE


def test_reverse() -> None:
    assert RenameColumn("t", "a", "b").reverse() == RenameColumn("t", "b", "a")
    assert AddColumn("t", "c", "date").reverse() == DropColumn("t", "c")
    widen = AlterColumnType("t", "c", "string(5)", "string(9)", "widen")
    assert widen.reverse() == AlterColumnType("t", "c", "string(9)", "string(5)", "narrow")
    assert StatesRemoved("ticket", ()).reverse() is None


def test_declared_renames_work_both_ways() -> None:
    class Spec:
        def __init__(self, renamed_from: str | None = None) -> None:
            self.renamed_from = renamed_from

    old = {"notes": Spec(), "title": Spec()}
    new = {"summary": Spec("notes"), "title": Spec()}
    assert declared_renames(new, old) == {"summary": "notes"}
    assert declared_renames(old, new) == {"notes": "summary"}  # a rollback undoes it
    assert declared_renames(new, new) == {}  # already applied: nothing to rename


def test_renderings() -> None:
    plan = Plan(
        "desk",
        "1.0.0",
        "2.0.0",
        (
            AddColumn("desk__ticket", "due", "date"),
            SetNotNull("desk__ticket", "code", 2),
            DropColumn("desk__ticket", "old", 5),
        ),
    )
    assert render_text(plan).splitlines() == [
        "plan for desk: 1.0.0 -> 2.0.0 (1 safe, 1 data step, 1 destructive)",
        "  safe         add column `desk__ticket.due` (date)",
        "  blocked      make `desk__ticket.code` required: 2 rows have no value and there is "
        "no default",
        "  destructive  drop column `desk__ticket.old` (5 rows have a value)",
        "cannot be applied:",
        "  - `desk__ticket.code` becomes required but 2 rows have no value: give the field a "
        "`default` to backfill them",
    ]
    data = json.loads(render_json(plan))
    assert data["safety"] == DESTRUCTIVE and len(data["problems"]) == 1
    assert data["ops"][0] == {
        "op": "add_column",
        "safety": "safe",
        "description": "add column `desk__ticket.due` (date)",
        "table": "desk__ticket",
        "column": "due",
        "type": "date",
        "problem": None,
    }
    assert render_text(Plan("desk", "1.0.0", "1.0.0")).endswith("no changes")
