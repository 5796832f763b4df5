"""Shared set-up of the data import tests: the service desk deployed with 20 customers,
and a 2,000-row ticket history with known bad and duplicate rows (no tests here)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from flowdesk.model.appmodel import AppModel
from flowdesk.model.sources import read_app
from flowdesk.onboarding._data_sample import TICKET_MAPPING, Sample, write_ticket_history
from flowdesk.store.deploy import deploy, load_active
from flowdesk.store.records import Actor, RecordStore

ROOT = Path(__file__).resolve().parents[2]
ROWS = 2000
CUSTOMERS = [f"C{n:06d}" for n in range(1, 21)]


def deployed_desk(engine: sa.Engine) -> tuple[sa.Engine, AppModel]:
    """The service desk deployed on `engine`, with customers C000001 ... C000020."""
    root = ROOT / "apps" / "service_desk"
    texts = {
        str(Path(path).resolve().relative_to(root)): text
        for path, text in read_app(root).texts.items()
    }
    deploy(engine, texts, actor="test")
    app = load_active(engine, "service_desk")
    assert app is not None
    store = RecordStore(engine, app)
    admin = Actor(None, "test")
    for index, code in enumerate(CUSTOMERS):
        region = ("north", "east", "south")[index % 3]
        store.create("customer", {"name": f"客户 {code}", "code": code, "region": region},
                     actor=admin)  # fmt: skip
    return engine, app


def ticket_history(tmp_path: Path) -> tuple[Path, Path, Sample]:
    """The 2,000-row history in `tmp_path`, its mapping file, and what it holds."""
    source = tmp_path / "tickets.csv"
    sample = write_ticket_history(source, ROWS, CUSTOMERS)
    mapping = tmp_path / "tickets.mapping.yaml"
    mapping.write_text(TICKET_MAPPING, encoding="utf-8")
    return source, mapping, sample
