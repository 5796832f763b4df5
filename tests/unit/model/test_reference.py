"""The model reference pages are what analysts read to learn the language: they
must document real keys, types, enum values and examples, and be stable so the
committed copy under `docs/reference/` can be checked for staleness."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowdesk.model.kinds import KINDS
from flowdesk.model.reference import (
    INDEX_FILE,
    page_file_name,
    render_reference,
    stale_reference,
    write_reference,
)
from flowdesk.model.schema import generate_schemas

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return render_reference(generate_schemas())


def _section(page: str, heading: str) -> str:
    """The text of one `### heading` section, up to the next heading of any level."""
    match = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^#{{1,3}} |\Z)", page, re.M | re.S)
    assert match, f"no section `### {heading}`"
    return match.group(1)


def _row(text: str, key: str) -> list[str]:
    """Cells of the table row documenting `key`."""
    for line in text.splitlines():
        if line.startswith(f"| `{key}` |"):
            return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
    raise AssertionError(f"no row for `{key}`")


def test_every_kind_has_a_page_and_an_index_entry(pages: dict[str, str]) -> None:
    assert set(pages) == {INDEX_FILE} | {page_file_name(kind) for kind in KINDS}
    for kind in KINDS:
        assert pages[page_file_name(kind)].splitlines()[2] == f"# {kind}"
        assert f"[{kind}]({page_file_name(kind)})" in pages[INDEX_FILE]


def test_index_gives_a_one_line_description_per_kind(pages: dict[str, str]) -> None:
    index = pages[INDEX_FILE]
    assert "| [Entity](entity.md) | A record type: becomes a table" in index
    assert "| [Workflow](workflow.md) | The process a record goes through. |" in index
    # the value-type words used by the Type columns are explained once
    assert "| name | A snake_case name" in index
    assert "| duration | A duration such as `30m`" in index


def test_entity_page_documents_top_level_keys(pages: dict[str, str]) -> None:
    entity = pages["entity.md"]
    number = _row(entity, "number")
    assert number[1] == "text"
    assert number[2] == "no"
    assert "`{seq:06}` is a zero-padded sequence" in number[4]
    assert "```yaml\nnumber: TCK-{seq:06}\n```" in entity
    fields = _row(entity, "fields")
    assert fields[2] == "yes"
    assert fields[1].startswith("map of name -> one of (by `type`): [string](#stringfield)")
    assert "[decimal](#decimalfield)" in fields[1]
    assert _row(entity, "audit")[1:4] == ["true / false", "no", "`true`"]
    assert _row(entity, "rules")[1] == "list of [Rule](#rule)"


def test_entity_page_documents_field_types(pages: dict[str, str]) -> None:
    decimal = _section(pages["entity.md"], "DecimalField")
    assert "Written with `type: decimal`." in decimal
    precision = _row(decimal, "precision")
    assert precision[1:4] == ["whole number, 1 to 38", "no", "`18`"]
    assert precision[4] == "Total number of digits."
    assert _row(decimal, "scale")[3] == "`2`"
    reference = _section(pages["entity.md"], "ReferenceField")
    assert _row(reference, "on_delete")[1:4] == [
        "one of: `restrict`, `set_null`, `cascade`", "no", "`restrict`"
    ]
    enum = _section(pages["entity.md"], "EnumField")
    assert _row(enum, "values")[1] == "list of name or map of name -> [EnumValue](#enumvalue)"
    assert "```yaml\nvalues:\n  - low\n  - medium\n  - high\n```" in enum


def test_workflow_page_lists_state_kinds(pages: dict[str, str]) -> None:
    workflow = pages["workflow.md"]
    states = _row(workflow, "states")[1]
    for tag, definition in [
        ("state", "plainstate"), ("gateway", "gatewaystate"), ("approval", "approvalstate"),
        ("service", "servicestate"), ("parallel", "parallelstate"),
        ("subprocess", "subprocessstate"),
    ]:
        assert f"[{tag}](#{definition})" in states
    assert "Written with `type: gateway`." in _section(workflow, "GatewayState")
    assert "(the default, so `type` may be left out)" in _section(workflow, "PlainState")
    approval = _section(workflow, "ApprovalLevel")
    assert _row(approval, "mode")[1] == "one of: `any`, `all`, `n_of_m`, `percent`"
    assert _row(approval, "due")[1] == "duration"
    assert _row(_section(workflow, "Transition"), "from")[1] == "one of: name, `*`, list of name"


def test_every_link_points_at_a_section_of_its_page(pages: dict[str, str]) -> None:
    for name, page in pages.items():
        if name == INDEX_FILE:
            continue
        anchors = {h.lower() for h in re.findall(r"^### (\w+)$", page, re.M)}
        links = set(re.findall(r"\]\(#([a-z0-9_-]+)\)", page))
        assert links <= anchors, f"{name}: dangling links {sorted(links - anchors)}"


def test_definitions_follow_first_use(pages: dict[str, str]) -> None:
    headings = re.findall(r"^### (\w+)$", pages["entity.md"], re.M)
    assert headings.index("StringField") < headings.index("DecimalField") < headings.index("Rule")
    assert headings.index("LinesField") < headings.index("Rule") < headings.index("EnumValue")


def test_shared_examples_are_shown_once_per_page(pages: dict[str, str]) -> None:
    # `mask` exists on every field type; its examples appear once, not 18 times
    assert pages["entity.md"].count("mask: '{first:3}***'") == 1


def test_output_is_deterministic() -> None:
    assert render_reference(generate_schemas()) == render_reference(generate_schemas())


def test_write_then_stale(tmp_path: Path) -> None:
    written = write_reference(tmp_path)
    assert sorted(p.name for p in written) == sorted(render_reference(generate_schemas()))
    assert stale_reference(tmp_path) == []
    (tmp_path / "entity.md").write_text("outdated", encoding="utf-8")
    (tmp_path / "workflow.md").unlink()
    (tmp_path / "retired.md").write_text("", encoding="utf-8")
    assert stale_reference(tmp_path) == ["entity.md", "retired.md", "workflow.md"]


def test_committed_reference_is_current() -> None:
    stale = stale_reference(ROOT / "docs" / "reference")
    assert stale == [], (
        f"docs/reference is out of date: {stale}; regenerate with `PYTHONPATH=platform python -c "
        "\"from pathlib import Path; from flowdesk.model.reference import write_reference; "
        "write_reference(Path('docs/reference'))\"`"
    )
