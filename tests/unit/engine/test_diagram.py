"""`flowdesk diagram`: golden Mermaid for a shipped workflow; SVG is well-formed XML
that names every state."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flowdesk.cli.main import main
from flowdesk.engine.diagram import mermaid, svg
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import read_app

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "fixtures" / "diagrams" / "purchase_flow.mmd"


def app(name: str) -> AppModel:
    result = compile_source(read_app(ROOT / "apps" / name))
    assert result.app is not None
    return result.app


def test_mermaid_matches_the_golden_file() -> None:
    assert mermaid(app("procurement"), "purchase_flow") == GOLDEN.read_text(encoding="utf-8")


def test_mermaid_marks_kinds_timers_and_categories() -> None:
    text = mermaid(app("service_desk"), "ticket_lifecycle")
    assert text.startswith("stateDiagram-v2\n")
    assert "    state triage <<choice>>" in text
    assert "pending_customer --> closed: auto_close ⏱ 72h" in text
    assert "class closed,cancelled done" in text


@pytest.mark.parametrize(("name", "workflow"), [("procurement", "purchase_flow"),
                                                 ("service_desk", "ticket_lifecycle"),
                                                 ("field_service", "work_order_flow")])
def test_svg_is_well_formed_and_names_every_state(name: str, workflow: str) -> None:
    model = app(name)
    root = ET.fromstring(svg(model, workflow))
    ids = {g.get("id") for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("id")}
    assert ids == {f"state-{s}" for s in model.workflows[workflow].states}
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert "[approval]" in texts or name != "procurement"


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "flow.svg"
    assert main(["diagram", str(ROOT / "apps" / "procurement"), "purchase_flow",
                 "--format", "svg", "-o", str(out)]) == 0
    ET.parse(out)
    assert main(["diagram", str(ROOT / "apps" / "procurement"), "nope"]) == 2
    assert "workflows: purchase_flow" in capsys.readouterr().err
