"""The three shipped apps and the template packs are the product's showcase:
they must validate with no errors, produce an AppModel, and use every kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowdesk.model.compiler import compile_source
from flowdesk.model.kinds import KINDS
from flowdesk.model.sources import read_app

ROOT = Path(__file__).resolve().parents[3]
APPS = ("service_desk", "field_service", "procurement")
PACKS = ("support", "it_ops")


@pytest.mark.parametrize("name", APPS)
def test_shipped_app_is_valid(name: str) -> None:
    result = compile_source(read_app(ROOT / "apps" / name))
    errors = [f"{d.file}:{d.line}: {d.code} {d.message}" for d in result.diagnostics]
    assert errors == []
    assert result.app is not None
    assert result.app.name == name
    assert result.app.expressions, "a shipped app should exercise CEL"


@pytest.mark.parametrize("name", PACKS)
def test_template_pack_is_valid(name: str) -> None:
    result = compile_source(read_app(ROOT / "templates" / name))
    assert [d.message for d in result.diagnostics] == []
    assert result.app is not None and result.app.is_pack


def test_shipped_apps_use_every_kind_between_them() -> None:
    used: set[str] = set()
    for name in APPS:
        app = compile_source(read_app(ROOT / "apps" / name)).app
        assert app is not None
        used.update(kind for kind, docs in app.documents.items() if docs)
    assert used == set(KINDS) - {"Pack", "Scenario"}  # scenarios live in tests/, not the app


def test_labels_are_bilingual_in_the_service_desk() -> None:
    app = compile_source(read_app(ROOT / "apps" / "service_desk")).app
    assert app is not None
    ticket = app.entities["ticket"]
    assert ticket.label is not None and not isinstance(ticket.label, str)
    assert ticket.label.en and ticket.label.zh


def test_documents_pydantic_accepts_also_satisfy_their_json_schema() -> None:
    """The compiler skips the JSON Schema pass for documents pydantic accepts
    (it is the slow pass); that is only sound while the two agree."""
    from flowdesk.model.loader import load_text
    from flowdesk.model.structure import check_structure, parse_document

    checked = 0
    for folder in [*(ROOT / "apps").iterdir(), *(ROOT / "templates").iterdir()]:
        for name, text in read_app(folder).texts.items():
            for document in load_text(text, name)[0]:
                model, problems = parse_document(document)
                assert model is not None and problems == []
                assert check_structure(document) == [], name
                checked += 1
    assert checked > 100
