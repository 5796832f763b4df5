"""Plans read their counts from the live database (records in removed states, rows
holding removed enum values, records pinned to older workflow versions), report
drift, and `migrate_instances` moves pinned records explicitly, with audit rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flowdesk.model.compiler import compile_texts
from flowdesk.model.sources import read_app
from flowdesk.store.deploy import DeployError, deploy, load_active, migrate_instances
from flowdesk.store.ops import StatesRemoved, render_json, render_text
from flowdesk.store.plan import plan

NOW = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)


def texts(version: str, *, states: str, values: str = "[low, high]", search: str = "") -> dict:
    return {
        "app.yaml": f"apiVersion: flowdesk/v1\nkind: App\nname: desk\nversion: {version}\n"
        "title: Desk\n",
        "ticket.yaml": "apiVersion: flowdesk/v1\nkind: Entity\nname: ticket\nlabel: Ticket\n"
        f"plural: Tickets\n{search}fields:\n  title: {{type: string, max: 200}}\n"
        f"  priority: {{type: enum, values: {values}}}\n"
        "  tags: {type: enum, multiple: true, values: [a, b, c]}\n",
        "flow.yaml": "apiVersion: flowdesk/v1\nkind: Workflow\nname: flow\nentity: ticket\n"
        f"initial: {'open' if 'open:' in states else 'new'}\nstates:\n{states}",
    }


STATES_V1 = """\
  new: {}
  triage: {}
  waiting: {category: waiting}
  done: {category: done}
transitions:
  sort: {from: new, to: triage}
  wait: {from: triage, to: waiting}
  close: {from: [triage, waiting], to: done}
"""
# 2.0.0 renames `new` to `open` and removes `triage`.
STATES_V2 = """\
  open: {renamed_from: new}
  waiting: {category: waiting}
  done: {category: done}
transitions:
  wait: {from: open, to: waiting}
  close: {from: [open, waiting], to: done}
"""


def model(source: dict) -> Any:
    result = compile_texts(source)
    assert result.app is not None, result.diagnostics
    return result.app


def insert(engine: sa.Engine, state: str, version: str = "1.0.0", **values: Any) -> None:
    with engine.begin() as connection:
        table = sa.Table("desk__ticket", sa.MetaData(), autoload_with=connection)
        connection.execute(
            table.insert(),
            {
                "created_at": NOW,
                "updated_at": NOW,
                "row_version": 1,
                "state": state,
                "workflow_version": version,
                "title": f"in {state}",
                **values,
            },
        )


@pytest.fixture
def populated(engine: sa.Engine) -> sa.Engine:
    deploy(engine, texts("1.0.0", states=STATES_V1), actor="ana")
    for _ in range(14):
        insert(engine, "triage", priority="high")
    insert(engine, "triage", deleted_at=NOW)  # soft-deleted: not running, not counted
    insert(engine, "new", priority="low", tags=["a", "c"])
    insert(engine, "waiting", tags=["b"])
    insert(engine, "done", version="0.9.0", priority="high")
    return engine


def test_plan_counts_states_enum_values_and_pinned_records(populated: sa.Engine) -> None:
    source = texts("2.0.0", states=STATES_V2, values="[low, urgent]")
    source["ticket.yaml"] = source["ticket.yaml"].replace("values: [a, b, c]", "values: [a, b]")
    new = model(source)
    result = plan(populated, new, load_active(populated, "desk"))
    by_kind = {op.kind: op for op in result.ops}
    removed = by_kind["states_removed"]
    assert isinstance(removed, StatesRemoved) and removed.safety == "data_step"
    assert removed.describe() == "14 tickets are in state `triage`, which this version removes"
    assert by_kind["state_renamed"].records == 1
    enums = [op for op in result.ops if op.kind == "enum_values_removed"]
    assert [(op.column, op.values, op.rows) for op in enums] == [
        ("priority", ("high",), 15),  # the closed one too: data, not running
        ("tags", ("c",), 1),
    ]
    assert all(op.safety == "destructive" for op in enums)
    pinned = by_kind["pinned_records"]
    assert pinned.counts == (("1.0.0", 16),) and pinned.workflow_changed  # `done` is not running
    text = render_text(result)
    assert "data step    14 tickets are in state `triage`" in text
    assert "16 running tickets on version 1.0.0" in text
    as_json = json.loads(render_json(result))
    assert as_json["to_version"] == "2.0.0" and as_json["summary"]["destructive"] == 2
    assert {"op": "states_removed", "counts": [["triage", 14]]}.items() <= next(
        op for op in as_json["ops"] if op["op"] == "states_removed"
    ).items()


def test_first_plan_creates_everything_and_drift_is_reported(engine: sa.Engine) -> None:
    v1 = model(texts("1.0.0", states=STATES_V1))
    first = plan(engine, v1, None)
    assert [op.kind for op in first.ops] == ["create_table"] and not first.problems
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE desk__ticket (id INTEGER PRIMARY KEY)")
    blocked = plan(engine, v1, None)
    assert blocked.problems and "already exists" in blocked.problems[0]
    with pytest.raises(DeployError, match="already exists"):
        deploy(engine, texts("1.0.0", states=STATES_V1), actor="ana")


def test_migrate_instances_remaps_states_with_audit_rows(populated: sa.Engine) -> None:
    deploy(populated, texts("2.0.0", states=STATES_V2), actor="ben")
    with pytest.raises(DeployError, match="15 `ticket` records are in state `triage`"):
        migrate_instances(populated, "desk", "1.0.0", "2.0.0", {})
    with pytest.raises(DeployError, match="no such state"):
        migrate_instances(populated, "desk", "1.0.0", "2.0.0", {"triage": "nowhere"})
    moved = migrate_instances(populated, "desk", "1.0.0", "2.0.0", {"triage": "open"}, actor="cy")
    assert moved == 17  # every record on 1.0.0, the soft-deleted one too
    with populated.connect() as connection:
        states = connection.exec_driver_sql(
            "SELECT workflow_version, state, count(*), min(row_version) FROM desk__ticket "
            "GROUP BY workflow_version, state ORDER BY 1, 2"
        ).all()
        audit = connection.exec_driver_sql(
            "SELECT entity, action, actor, changes FROM fd_audit WHERE action = 'migrate' "
            "ORDER BY record_id"
        ).all()
    assert [tuple(s) for s in states] == [
        ("0.9.0", "done", 1, 1),
        ("2.0.0", "open", 16, 2),
        ("2.0.0", "waiting", 1, 2),
    ]
    assert len(audit) == 17 and {(a.entity, a.actor) for a in audit} == {("ticket", "cy")}
    changes = (
        audit[0].changes if isinstance(audit[0].changes, dict) else json.loads(audit[0].changes)
    )
    assert changes == {
        "state": {"old": "triage", "new": "open"},
        "workflow_version": {"old": "1.0.0", "new": "2.0.0"},
    }
    with pytest.raises(DeployError, match="never deployed"):
        migrate_instances(populated, "desk", "2.0.0", "7.0.0", {})


def test_search_objects_are_rebuilt_after_schema_changes(engine: sa.Engine) -> None:
    search = pytest.importorskip("flowdesk.store.search")
    deploy(engine, texts("1.0.0", states=STATES_V1, search="search: [title]\n"), actor="ana")
    insert(engine, "new", title="printer on fire")
    # Widening a column copies the table on SQLite, which drops its triggers.
    v2 = texts("2.0.0", states=STATES_V1, search="search: [title]\n")
    v2["ticket.yaml"] = v2["ticket.yaml"].replace("max: 200", "max: 300")
    result = deploy(engine, v2, actor="ana")
    assert "create_search_index" in [op.kind for op in result.plan.ops]
    insert(engine, "new", title="paper jam", version="2.0.0")
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            fts = search.fts_table_name("desk", "ticket")
            hits = connection.exec_driver_sql(
                f"SELECT rowid FROM {fts} WHERE {fts} MATCH 'printer OR paper'"
            ).all()
            assert len(hits) == 2
        else:
            indexes = {i["name"] for i in sa.inspect(connection).get_indexes("desk__ticket")}
            assert "ix_desk__ticket_fts" in indexes


def cycle_app(version: str, *, with_teams: bool) -> dict[str, str]:
    header = "apiVersion: flowdesk/v1\nkind: Entity\n"
    found = {
        "app.yaml": f"apiVersion: flowdesk/v1\nkind: App\nname: org\nversion: {version}\n"
        "title: Org\n",
        "note.yaml": header + "name: note\nfields:\n  text: {type: text}\n",
    }
    if with_teams:  # two entities that refer to each other: a cycle of foreign keys
        found["team.yaml"] = header + "name: team\nfields:\n  lead: {type: reference, to: agent}\n"
        found["agent.yaml"] = header + "name: agent\nfields:\n  team: {type: reference, to: team}\n"
    return found


def test_entities_referring_to_each_other_are_created_and_dropped(engine: sa.Engine) -> None:
    deploy(engine, cycle_app("1.0.0", with_teams=True), actor="ana")
    with engine.begin() as connection:
        for table in ("org__team", "org__agent"):
            connection.exec_driver_sql(
                f"INSERT INTO {table} (id, created_at, updated_at, row_version) "
                "VALUES (1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
            )
        connection.exec_driver_sql("UPDATE org__team SET lead = 1")
        connection.exec_driver_sql("UPDATE org__agent SET team = 1")
    result = deploy(
        engine, cycle_app("2.0.0", with_teams=False), actor="ana", allow_destructive=True
    )
    assert sorted(op.describe() for op in result.plan.destructive) == [
        "drop table `org__agent` (1 row)",
        "drop table `org__team` (1 row)",
    ]
    assert {"org__team", "org__agent"}.isdisjoint(sa.inspect(engine).get_table_names())


def test_a_shipped_app_deploys(engine: sa.Engine) -> None:
    root = Path(__file__).resolve().parents[2] / "apps" / "service_desk"
    texts_ = {str(Path(k).resolve().relative_to(root)): v for k, v in read_app(root).texts.items()}
    result = deploy(engine, texts_, actor="ana")
    assert result.status == "deployed"
    assert "service_desk__ticket" in sa.inspect(engine).get_table_names()
    assert deploy(engine, texts_, actor="ana").status == "unchanged"
