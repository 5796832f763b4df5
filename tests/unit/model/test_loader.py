"""The loader keeps every value plain and records where it was written."""

from __future__ import annotations

from flowdesk.model.loader import load_text

TEXT = """\
apiVersion: flowdesk/v1
kind: Entity
name: ticket
fields:
  title: {type: string, max: 200}
  tags: [a, "b"]
---
kind: Form
"""


def test_positions_of_values_and_keys_are_one_based() -> None:
    documents, problems = load_text(TEXT, "t.yaml")
    assert problems == []
    first = documents[0]
    assert first.data["fields"]["title"] == {"type": "string", "max": 200}
    assert first.positions["/fields/title/max"] == (5, 30)
    assert first.key_positions["/fields/title"] == (5, 3)
    assert first.positions["/fields/tags/1"] == (6, 13)
    assert documents[1].line == 8


def test_position_falls_back_to_the_nearest_written_ancestor() -> None:
    document = load_text(TEXT, "t.yaml")[0][0]
    assert document.position("/fields/title/missing") == (5, 10)
    assert document.position("/nothing/here") == (1, 1)


def test_timestamps_stay_text_and_yes_is_not_a_boolean() -> None:
    document = load_text("day: 2026-10-01\nflag: yes\non: off\n", "t.yaml")[0][0]
    assert document.data == {"day": "2026-10-01", "flag": "yes", "on": "off"}


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    _, problems = load_text("a: 1\nb: 2\na: 3\n", "t.yaml")
    assert [(p.code, p.line, p.column) for p in problems] == [("duplicate-key", 3, 1)]
    assert "first on line 1" in problems[0].message


def test_syntax_errors_are_located_and_hinted() -> None:
    _, problems = load_text("a:\n\tb: 1\n", "t.yaml")
    assert problems[0].code == "yaml-syntax"
    assert (problems[0].line, problems[0].column) == (2, 1)
    assert problems[0].hint and "tabs" in problems[0].hint


def test_merge_keys_expand_and_explicit_keys_win() -> None:
    text = "base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n"
    document = load_text(text, "t.yaml")[0][0]
    assert document.data["thing"] == {"x": 1, "y": 3}


def test_unsupported_tags_are_errors_not_code() -> None:
    _, problems = load_text("a: !!python/object:os.system ls\n", "t.yaml")
    assert [p.code for p in problems] == ["yaml-unsupported-tag"]
