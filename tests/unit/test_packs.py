"""Template packs (issue 8, item 2): `flowdesk pack list / show / import`, conflicts,
required entities, `${param}` substitution with comments kept, and the import result
validating in a fresh `flowdesk new app` scaffold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flowdesk.cli.main import main
from flowdesk.model.compiler import compile_source
from flowdesk.model.sources import read_app
from flowdesk.onboarding._pack_params import substitute
from flowdesk.onboarding.packs import (
    PackError,
    ParameterError,
    import_pack,
    list_packs,
    parse_settings,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"


def scaffold(tmp_path: Path, name: str = "helpdesk") -> Path:
    assert main(["new", "app", name, "--dir", str(tmp_path)]) == 0
    return tmp_path / name


def valid(app: Path) -> bool:
    return compile_source(read_app(app)).ok


def test_pack_list_and_show(capsys):
    assert [p.name for p in list_packs(TEMPLATES)] == ["it_ops", "support"]
    assert main(["pack", "list", "--templates", str(TEMPLATES)]) == 0
    out = capsys.readouterr().out
    assert "support" in out and "1.0.0" in out and "it_ops" in out
    assert main(["pack", "show", "support", "--templates", str(TEMPLATES), "--format",
                 "json"]) == 0  # fmt: skip
    shown = json.loads(capsys.readouterr().out)
    assert shown["valid"] is True and shown["version"] == "1.0.0"
    assert {"kind": "SLA", "name": "support_sla", "file": "sla/support_sla.yaml"} in \
        shown["documents"]  # fmt: skip
    assert shown["parameters"]["country"]["default"] == "CN"
    assert main(["pack", "show", "nope", "--templates", str(TEMPLATES)]) == 1
    assert "no pack `nope`" in capsys.readouterr().err


def test_it_ops_imported_into_a_fresh_scaffold_validates(tmp_path, capsys):
    app = scaffold(tmp_path)
    code = main(["pack", "import", "it_ops", "--into", str(app), "--templates", str(TEMPLATES),
                 "--set", "country=US"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().endswith(f"{app}: valid")
    assert (app / "sla" / "incident_sla.yaml").is_file()
    assert "- {name: it_ops, version: ^1.0.0, with: {country: US}}" in (
        app / "app.yaml").read_text()
    assert valid(app)


def test_support_needs_its_entities_then_imports_into_a_scaffold_and_validates(tmp_path, capsys):
    app = scaffold(tmp_path)
    before = sorted(p.relative_to(app) for p in app.rglob("*"))
    assert main(["pack", "import", "support", "--into", str(app),
                 "--templates", str(TEMPLATES)]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert "missing: the pack needs entity `ticket`" in out and "nothing written" in out
    assert sorted(p.relative_to(app) for p in app.rglob("*")) == before
    # The entities the pack requires, as the service desk defines them.
    for path in (ROOT / "apps" / "service_desk" / "entities").glob("*.yaml"):
        shutil.copy(path, app / "entities" / path.name)
    assert valid(app)
    assert main(["pack", "import", "support", "--into", str(app),
                 "--templates", str(TEMPLATES)]) == 0  # fmt: skip
    assert valid(app)
    copied = (app / "calendars" / "calendars.yaml").read_text()
    original = (TEMPLATES / "support" / "calendars" / "calendars.yaml").read_text()
    def body(text: str) -> list[str]:
        return [line for line in text.splitlines() if "$schema=" not in line]

    assert body(copied) == body(original)  # comments and all
    schemas = [line.split("$schema=")[1] for line in copied.splitlines() if "$schema=" in line]
    assert len(schemas) == 3
    for schema in schemas:  # re-pointed at the same schema file
        assert (app / "calendars" / schema).resolve() == ROOT / "schemas" / "calendar.schema.json"


def test_conflicts_are_reported_and_nothing_is_overwritten(tmp_path, capsys):
    app = scaffold(tmp_path)
    report = import_pack(TEMPLATES, "it_ops", app)
    assert report.ok
    sla = app / "sla" / "incident_sla.yaml"
    sla.write_text(sla.read_text() + "# edited by the team\n")
    edited = sla.read_text()
    assert main(["pack", "import", "it_ops", "--into", str(app),
                 "--templates", str(TEMPLATES)]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert "conflict: SLA `incident_sla` of sla/incident_sla.yaml is already in" in out
    assert sla.read_text() == edited
    again = import_pack(TEMPLATES, "it_ops", app, skip_existing=True)
    assert again.written == [] and len(again.skipped) == len(again.conflicts)


def write_pack(folder: Path) -> Path:
    (folder / "calendars").mkdir(parents=True)
    (folder / "pack.yaml").write_text(
        "apiVersion: flowdesk/v1\nkind: Pack\nname: tiny\nversion: 0.2.0\n"
        "title: {en: Tiny}\nprovides: [calendars]\nparameters:\n"
        "  country: {type: string, default: CN}\n"
        "  office: {type: string, default: Shanghai}\n"
        "  unused: {type: boolean, default: false}\n",
        encoding="utf-8",
    )
    (folder / "calendars" / "office.yaml").write_text(
        "# The office calendar: adjust the hours.\n"
        "apiVersion: flowdesk/v1\n"
        "kind: Calendar\n"
        "name: tiny_office\n"
        "label: {en: '${office} office', zh: '${office} 办公室'}  # shown to agents\n"
        "timezone: Asia/Shanghai\n"
        "country: ${country}\n"
        "hours:\n"
        "  mon-fri: ['09:00-18:00']  # lunch included\n",
        encoding="utf-8",
    )
    return folder


def test_parameters_are_substituted_in_string_values_and_comments_survive(tmp_path):
    templates = tmp_path / "templates"
    write_pack(templates / "tiny")
    app = scaffold(tmp_path / "apps")
    report = import_pack(templates, "tiny", app, settings={"country": "US", "office": "NYC"})
    assert report.ok, report.diagnostics
    assert report.unused == ["unused"]
    text = (app / "calendars" / "office.yaml").read_text()
    assert "country: US" in text and "NYC office" in text and "NYC 办公室" in text
    assert "# The office calendar: adjust the hours." in text
    assert "# shown to agents" in text and "# lunch included" in text
    assert "with: {country: US, office: NYC}" in (app / "app.yaml").read_text()


def test_bad_parameters_are_refused_before_anything_is_written(tmp_path, capsys):
    templates = tmp_path / "templates"
    write_pack(templates / "tiny")
    app = scaffold(tmp_path / "apps")
    with pytest.raises(ParameterError, match="`colour` is not a parameter"):
        import_pack(templates, "tiny", app, settings={"colour": "red"})
    with pytest.raises(ParameterError, match="expected true or false"):
        import_pack(templates, "tiny", app, settings={"unused": "maybe"})
    assert main(["pack", "import", "tiny", "--into", str(app), "--templates", str(templates),
                 "--set", "oops"]) == 2  # fmt: skip
    assert "is not KEY=VALUE" in capsys.readouterr().err
    assert not (app / "calendars" / "office.yaml").exists()
    with pytest.raises(PackError, match="not an app folder"):
        import_pack(templates, "tiny", tmp_path)


def test_substitution_rules():
    values = {"n": 3, "on": True, "name": "x"}
    assert substitute("${n}", values) == 3
    assert substitute("${on}", values) is True
    assert substitute("level ${n} is ${on}", values) == "level 3 is true"
    assert substitute("literal $${name}", values) == "literal ${name}"
    with pytest.raises(KeyError):
        substitute("${missing}", values)
    assert parse_settings(["a=1", "b = two words"]) == {"a": "1", "b": "two words"}
