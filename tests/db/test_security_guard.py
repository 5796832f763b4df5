"""RecordGuard on SQLite and PostgreSQL: actions, data scopes applied in the store's SQL
(own records, department subtree, CEL conditions) for get, list, count, update,
delete and timeline; hidden and masked fields in every response; filters, sorts,
field selections and searches that would reveal what the caller cannot read; and
writes of fields the caller may not write. First on a small inline app, then on the
shipped service desk.

Org chart of both:

      hq
     /  \\
  east   west
    |
 shanghai
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from test_records_support import store_for
from test_security_support import add_department, add_user, shipped_app

from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_texts
from flowdesk.security import (
    Forbidden,
    Principal,
    RecordGuard,
    field_access,
    load_principal,
    redact,
)
from flowdesk.store.errors import NotFound

GLAB = {
    "app.yaml": "apiVersion: flowdesk/v1\nkind: App\nname: glab\nversion: 1.0.0\ntitle: Lab\n",
    "entities/dossier.yaml": """\
apiVersion: flowdesk/v1
kind: Entity
name: dossier
search: [title, secret]
fields:
  title: {type: string, required: true}
  region: {type: string}
  secret: {type: text}
  id_card: {type: string, mask: "{first:3}***"}
  score: {type: integer}
  parts:
    type: lines
    fields:
      label: {type: string}
      serial: {type: string, mask: "{last:2}"}  # shows only the last two characters
""",
    "entities/note.yaml": """\
apiVersion: flowdesk/v1
kind: Entity
name: note
search: [body]
fields:
  body: {type: string, required: true}
  dossier: {type: reference, to: dossier}
""",
    "policies/access.yaml": """\
apiVersion: flowdesk/v1
kind: Policy
name: glab_access
roles:
  clerk: {}
  lead: {}
  regional: {}
  auditor: {}
grants:
  - roles: [clerk]
    entity: dossier
    actions: [read, create, update, delete]
    scope: own
    fields:
      hidden: [secret]
      readonly: [score]
  - roles: [lead]
    entity: dossier
    actions: [read, update, delete, assign]
    scope: department_tree
  - roles: [regional]
    entity: dossier
    actions: [read, create, update]
    scope: {when: 'record.region == user.region'}
  - roles: [auditor]
    entity: dossier
    actions: [read]
  - roles: [clerk, lead, regional, auditor]
    entity: note
    actions: [read, create]
""",
}
ID_CARD = "110101199001011234"


class World:
    """An app's tables (with full-text indexes), an org chart, users and a guard."""

    def __init__(self, engine: sa.Engine, app: AppModel) -> None:
        self.engine, self.app = engine, app
        self.store = store_for(engine, app)
        self.guard = RecordGuard(self.store)
        self.ids: dict[str, int] = {}
        with engine.begin() as c:
            hq = self.ids["hq"] = add_department(c, "hq")
            east = self.ids["east"] = add_department(c, "east", hq)
            self.ids["shanghai"] = add_department(c, "shanghai", east)
            self.ids["west"] = add_department(c, "west", hq)

    def user(self, name: str, *roles: str, department: str | None = None, **values: Any) -> None:
        dept = self.ids[department] if department else None
        with self.engine.begin() as c:
            found = add_user(c, name, {self.app.name: list(roles)}, department_id=dept, **values)
        self.ids[name] = found

    def who(self, name: str) -> Principal:
        with self.engine.connect() as c:
            return load_principal(c, self.ids[name], self.app)

    def make(self, entity: str, by: str, **values: Any) -> int:
        """A record written by `by` through the store (no permission checks)."""
        return int(self.store.create(entity, values, actor=self.who(by).actor())["id"])

    def titles(self, name: str, entity: str = "dossier", **options: Any) -> set[str]:
        label = "title" if entity in ("dossier", "ticket") else "body"
        page = self.guard.list(self.who(name), entity, limit=100, **options)
        return {item[label] for item in page.items}

    def raw(self, entity: str, record_id: int) -> dict[str, Any]:
        return self.store.get(entity, record_id, include_deleted=True)


# --------------------------------------------------------------------------- the inline app


@pytest.fixture(scope="module")
def glab_app() -> AppModel:
    result = compile_texts(GLAB)
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


@pytest.fixture
def lab(engine: sa.Engine, glab_app: AppModel) -> World:
    w = World(engine, glab_app)
    w.user("ann", "clerk", department="shanghai")
    w.user("bob", "clerk", department="west")
    w.user("lee", "lead", department="east")
    w.user("rita", "regional", region="north")
    w.user("aud", "auditor")
    w.user("boss", "admin")
    w.user("nobody")
    ids = w.ids
    ids["ann-1"] = w.make(
        "dossier", "ann", title="ann-1", region="north", secret="alpha", id_card=ID_CARD, score=1
    )
    ids["ann-2"] = w.make("dossier", "ann", title="ann-2", region="south")
    ids["bob-1"] = w.make("dossier", "bob", title="bob-1", region="north", secret="alpha")
    ids["bob-for-ann"] = w.make(
        "dossier", "bob", title="bob-for-ann", region="west", assignee=ids["ann"]
    )
    return w


def test_own_scope_applies_to_get_list_and_count(lab: World) -> None:
    ann, guard, ids = lab.who("ann"), lab.guard, lab.ids
    assert lab.titles("ann") == {"ann-1", "ann-2", "bob-for-ann"}  # created or assigned
    assert guard.count(ann, "dossier") == 3
    assert guard.count(ann, "dossier", filter='record.region == "north"') == 1
    assert guard.get(ann, "dossier", ids["bob-for-ann"])["title"] == "bob-for-ann"
    with pytest.raises(NotFound):
        guard.get(ann, "dossier", ids["bob-1"])


def test_department_tree_scope(lab: World) -> None:
    lee = lab.who("lee")
    # a dossier has no department field: it belongs to its creator's (ann: shanghai)
    assert lab.titles("lee") == {"ann-1", "ann-2"}
    assert lab.guard.count(lee, "dossier") == 2
    with pytest.raises(NotFound):
        lab.guard.get(lee, "dossier", lab.ids["bob-for-ann"])
    with pytest.raises(NotFound):
        lab.guard.timeline(lee, "dossier", lab.ids["bob-1"])


def test_condition_scope(lab: World) -> None:
    rita = lab.who("rita")
    assert lab.titles("rita") == {"ann-1", "bob-1"}  # record.region == user.region
    assert lab.guard.count(rita, "dossier", filter='record.title.startsWith("bob")') == 1
    with pytest.raises(NotFound):
        lab.guard.get(rita, "dossier", lab.ids["ann-2"])


def test_scoped_pages_are_full_and_stable(lab: World) -> None:
    for index in range(5):  # newer records outside ann's scope
        lab.make("dossier", "bob", title=f"bob-later-{index}")
    ann = lab.who("ann")
    first = lab.guard.list(ann, "dossier", limit=2)
    assert [item["title"] for item in first.items] == ["bob-for-ann", "ann-2"]
    assert first.next_cursor is not None
    rest = lab.guard.list(ann, "dossier", limit=2, cursor=first.next_cursor)
    assert [item["title"] for item in rest.items] == ["ann-1"] and rest.next_cursor is None


def test_records_outside_the_scope_are_not_found_for_writes(lab: World) -> None:
    ann, guard, bob_1 = lab.who("ann"), lab.guard, lab.ids["bob-1"]
    with pytest.raises(NotFound):
        guard.update(ann, "dossier", bob_1, {"title": "mine"}, expected_version=1)
    with pytest.raises(NotFound):  # a stale version does not reveal it either (no Conflict)
        guard.update(ann, "dossier", bob_1, {"title": "mine"}, expected_version=7)
    with pytest.raises(NotFound):
        guard.delete(ann, "dossier", bob_1)
    with pytest.raises(NotFound):
        guard.timeline(ann, "dossier", bob_1)
    record = lab.raw("dossier", bob_1)
    assert record["title"] == "bob-1" and record["row_version"] == 1
    assert record["deleted_at"] is None


def test_writes_inside_the_scope(lab: World) -> None:
    ann, lee, guard, ids = lab.who("ann"), lab.who("lee"), lab.guard, lab.ids
    updated = guard.update(ann, "dossier", ids["ann-1"], {"title": "ann-1b"}, expected_version=1)
    assert updated["title"] == "ann-1b" and updated["row_version"] == 2
    guard.delete(ann, "dossier", ids["bob-for-ann"], expected_version=1)  # assigned to her
    assert lab.raw("dossier", ids["bob-for-ann"])["deleted_at"] is not None
    guard.update(lee, "dossier", ids["ann-2"], {"secret": "beta"}, expected_version=1)
    guard.delete(lee, "dossier", ids["ann-2"])
    with pytest.raises(NotFound):
        guard.delete(lee, "dossier", ids["bob-1"])
    assert lab.titles("ann") == {"ann-1b"}


def test_forbidden_actions_name_entity_and_action(lab: World) -> None:
    guard, ids = lab.guard, lab.ids
    with pytest.raises(Forbidden) as refused:
        guard.update(lab.who("aud"), "dossier", ids["ann-1"], {"title": "x"}, expected_version=1)
    assert (refused.value.entity, refused.value.action) == ("dossier", "update")
    assert "update" in str(refused.value) and "dossier" in str(refused.value)
    with pytest.raises(Forbidden):
        guard.list(lab.who("nobody"), "dossier")
    with pytest.raises(Forbidden):
        guard.get(lab.who("nobody"), "dossier", ids["ann-1"])
    with pytest.raises(Forbidden):
        guard.create(lab.who("lee"), "dossier", {"title": "no create grant"})
    with pytest.raises(Forbidden) as refused:
        guard.delete(lab.who("ann"), "dossier", ids["ann-2"], hard=True)
    assert refused.value.action == "purge"
    assert lab.raw("dossier", ids["ann-2"])["deleted_at"] is None
    with pytest.raises(NotFound):
        guard.get(lab.who("ann"), "no_such_entity", 1)


def test_admin_sees_everything_and_may_purge(lab: World) -> None:
    boss, guard = lab.who("boss"), lab.guard
    assert lab.titles("boss") == {"ann-1", "ann-2", "bob-1", "bob-for-ann"}
    record = guard.get(boss, "dossier", lab.ids["ann-1"])
    assert record["secret"] == "alpha" and record["id_card"] == ID_CARD
    guard.delete(boss, "dossier", lab.ids["bob-1"], hard=True)
    with pytest.raises(NotFound):
        lab.raw("dossier", lab.ids["bob-1"])
    assert [e.action for e in guard.timeline(boss, "dossier", lab.ids["bob-1"])][-1] == "purge"


def test_hidden_fields_are_absent_from_every_response(lab: World) -> None:
    ann, guard = lab.who("ann"), lab.guard
    record = guard.get(ann, "dossier", lab.ids["ann-1"])
    assert "secret" not in record and record["title"] == "ann-1" and record["score"] == 1
    assert all("secret" not in item for item in guard.list(ann, "dossier").items)
    made = guard.create(ann, "dossier", {"title": "new", "region": "east"})
    assert "secret" not in made and made["created_by"] == lab.ids["ann"]
    changed = guard.update(ann, "dossier", made["id"], {"title": "newer"}, expected_version=1)
    assert "secret" not in changed and changed["title"] == "newer"
    assert "secret" in guard.get(lab.who("lee"), "dossier", lab.ids["ann-1"])
    with pytest.raises(Forbidden) as refused:
        guard.get(ann, "dossier", lab.ids["ann-1"], fields=["title", "secret"])
    assert refused.value.fields == ("secret",)
    with pytest.raises(Forbidden):
        guard.list(ann, "dossier", fields=["secret"])
    assert guard.readable_record(ann, "dossier", lab.raw("dossier", lab.ids["ann-1"])).keys() == (
        record.keys()
    )


def test_masked_values_are_masked(lab: World) -> None:
    ann, guard = lab.who("ann"), lab.guard
    assert guard.get(ann, "dossier", lab.ids["ann-1"])["id_card"] == "110***"
    shown = {item["title"]: item["id_card"] for item in guard.list(ann, "dossier").items}
    assert shown["ann-1"] == "110***" and shown["ann-2"] is None
    assert guard.get(ann, "dossier", lab.ids["ann-1"], fields=["id_card"])["id_card"] == "110***"
    made = guard.create(ann, "dossier", {"title": "card", "id_card": "220101199001011234"})
    assert made["id_card"] == "220***"
    assert lab.raw("dossier", made["id"])["id_card"] == "220101199001011234"


def test_the_guards_redaction_is_fields_redact(lab: World) -> None:
    """The guard redacts without a call per field; the result must be `redact`'s."""
    parts = [{"label": "disk", "serial": "SN12345"}]
    made = lab.store.create(
        "dossier",
        {"title": "parts", "secret": "s", "id_card": ID_CARD, "parts": parts},
        actor=lab.who("ann").actor(),
    )
    records = [lab.raw("dossier", made["id"]), lab.raw("dossier", lab.ids["bob-1"])]
    for name in ("ann", "lee", "rita", "aud", "boss", "nobody"):
        principal = lab.who(name)
        access = field_access(principal, "dossier", lab.app)
        for record in records:
            fast = lab.guard.readable_record(principal, "dossier", record)
            assert list(fast.items()) == list(redact(record, access).items()), name
    shown = lab.guard.get(lab.who("ann"), "dossier", made["id"])
    assert shown["parts"][0]["serial"] == "45" and shown["parts"][0]["label"] == "disk"
    assert shown["id_card"] == "110***" and "secret" not in shown


def test_filters_and_sorts_on_fields_not_readable_in_clear_are_refused(lab: World) -> None:
    ann, guard = lab.who("ann"), lab.guard
    refused_lists: list[dict[str, Any]] = [
        {"filter": 'record.secret == "alpha"'},  # hidden
        {"filter": 'record.id_card.startsWith("110")'},  # masked
        {"sort": ["secret"]},
        {"sort": ["-id_card", "title"]},
    ]
    for options in refused_lists:
        with pytest.raises(Forbidden) as refused:
            guard.list(ann, "dossier", **options)
        assert refused.value.action == "filter", options
    with pytest.raises(Forbidden):
        guard.count(ann, "dossier", filter='record.secret != "alpha"')
    with pytest.raises(Forbidden) as unknown:  # the same answer as for a hidden field
        guard.list(ann, "dossier", sort=["no_such_field"])
    assert "not a field you may read in clear" in str(unknown.value)
    # through a reference: note -> dossier.secret
    with pytest.raises(Forbidden) as refused:
        guard.list(ann, "note", filter='record.dossier.secret == "alpha"')
    assert refused.value.fields == ("dossier.secret",)
    assert guard.list(lab.who("lee"), "note", filter='record.dossier.secret == "alpha"').items == []
    assert lab.titles("ann", sort=["-score", "title"]) == {"ann-1", "ann-2", "bob-for-ann"}


def test_search_is_refused_when_a_search_field_is_hidden(lab: World) -> None:
    ann, lee, guard = lab.who("ann"), lab.who("lee"), lab.guard
    with pytest.raises(Forbidden) as refused:
        guard.list(ann, "dossier", search="alpha")
    assert "`secret`" in str(refused.value)
    with pytest.raises(Forbidden):
        guard.count(ann, "dossier", search="alpha")
    # lead reads `secret` in clear; the search is limited to their scope (bob-1 matches too)
    assert lab.titles("lee", search="alpha") == {"ann-1"}
    assert guard.count(lee, "dossier", search="alpha") == 1
    assert lab.titles("boss", search="alpha") == {"ann-1", "bob-1"}


def test_writing_fields_one_may_not_write_is_refused_naming_them(lab: World) -> None:
    ann, guard = lab.who("ann"), lab.guard
    before = guard.count(lab.who("boss"), "dossier")
    with pytest.raises(Forbidden) as refused:
        guard.create(ann, "dossier", {"title": "x", "score": 3})
    assert refused.value.fields == ("score",) and "`score`" in str(refused.value)
    with pytest.raises(Forbidden) as refused:
        guard.update(ann, "dossier", lab.ids["ann-1"], {"secret": "peek"}, expected_version=1)
    assert refused.value.fields == ("secret",)
    with pytest.raises(Forbidden) as refused:  # assigning needs the `assign` action
        guard.update(ann, "dossier", lab.ids["ann-1"], {"assignee": 1}, expected_version=1)
    assert refused.value.fields == ("assignee",)
    assert guard.count(lab.who("boss"), "dossier") == before
    assert lab.raw("dossier", lab.ids["ann-1"])["row_version"] == 1
    lead = lab.who("lee")
    done = guard.update(
        lead, "dossier", lab.ids["ann-1"], {"assignee": lab.ids["lee"]}, expected_version=1
    )
    assert done["assignee"] == lab.ids["lee"]


def test_timeline_hides_changes_of_hidden_fields_and_masks_masked_ones(lab: World) -> None:
    boss, ann, guard, ann_1 = lab.who("boss"), lab.who("ann"), lab.guard, lab.ids["ann-1"]
    changes = {"title": "ann-1b", "secret": "gamma", "id_card": "330101199001011234"}
    guard.update(boss, "dossier", ann_1, changes, expected_version=1)
    full = guard.timeline(boss, "dossier", ann_1)
    assert full[-1].changes["secret"] == {"old": "alpha", "new": "gamma"}
    mine = guard.timeline(ann, "dossier", ann_1)
    assert [e.action for e in mine] == ["create", "update"]
    assert "secret" not in mine[0].changes and "secret" not in mine[1].changes
    assert mine[1].changes["title"] == {"old": "ann-1", "new": "ann-1b"}
    assert mine[1].changes["id_card"] == {"old": "110***", "new": "330***"}


def test_created_and_updated_records_must_stay_in_the_scope(lab: World) -> None:
    rita, guard, boss = lab.who("rita"), lab.guard, lab.who("boss")
    before = guard.count(boss, "dossier")
    with pytest.raises(Forbidden) as refused:
        guard.create(rita, "dossier", {"title": "elsewhere", "region": "south"})
    assert refused.value.action == "create"
    assert guard.count(boss, "dossier") == before  # rolled back
    made = guard.create(rita, "dossier", {"title": "here", "region": "north"})
    assert made["region"] == "north"
    with pytest.raises(Forbidden):
        guard.update(rita, "dossier", lab.ids["bob-1"], {"region": "south"}, expected_version=1)
    record = lab.raw("dossier", lab.ids["bob-1"])
    assert record["region"] == "north" and record["row_version"] == 1


def test_access_for_forms(lab: World) -> None:
    ann, guard = lab.who("ann"), lab.guard
    read = guard.access(ann, "dossier")
    assert "secret" not in read.readable and "title" in read.readable
    assert read.writable == frozenset() and read.masked == {"id_card": "{first:3}***"}
    update = guard.access(ann, "dossier", "update")
    assert update.writable == {"title", "region", "id_card", "parts"}
    assert guard.access(lab.who("aud"), "dossier", "update").writable == frozenset()
    with pytest.raises(Forbidden):
        guard.access(lab.who("nobody"), "dossier")


# --------------------------------------------------------------------------- service desk


@pytest.fixture
def desk(engine: sa.Engine) -> World:
    w = World(engine, shipped_app("service_desk"))
    w.user("cust_a", "customer")
    w.user("cust_b", "customer")
    w.user("agent_sh", "agent", department="shanghai")
    w.user("sup_east", "supervisor", department="east")
    w.user("rm_north", "regional_manager", region="north")
    w.user("auditor", "quality_auditor")
    w.user("manager", "service_manager")
    w.user("boss", "admin")
    customers = {}
    for number, region in enumerate(("north", "east", "south"), start=1):
        values = {"name": region.title(), "code": f"C{number:06d}", "region": region}
        customers[region] = w.make("customer", "boss", **values, id_card=ID_CARD)
    w.ids.update({f"cust_{region}": found for region, found in customers.items()})

    def ticket(title: str, by: str, region: str) -> None:
        w.ids[title] = w.make("ticket", by, title=title, customer=customers[region])

    ticket("printer t1", "cust_a", "north")
    ticket("printer t2", "cust_b", "east")
    ticket("vpn t3", "agent_sh", "east")
    ticket("mail t4", "boss", "south")
    return w


def test_customers_see_and_write_only_their_own_tickets(desk: World) -> None:
    cust_a, guard, ids = desk.who("cust_a"), desk.guard, desk.ids
    assert desk.titles("cust_a", "ticket") == {"printer t1"}
    assert guard.count(cust_a, "ticket") == 1
    assert desk.titles("cust_a", "ticket", search="printer") == {"printer t1"}
    with pytest.raises(NotFound):
        guard.get(cust_a, "ticket", ids["printer t2"])
    with pytest.raises(Forbidden):  # customers have no update grant on tickets
        guard.update(cust_a, "ticket", ids["printer t1"], {"title": "Mine!"}, expected_version=1)
    made = guard.create(
        cust_a, "ticket", {"title": "Screen flickers", "customer": ids["cust_north"]}
    )
    assert made["created_by"] == ids["cust_a"] and made["state"] == "new"
    assert desk.titles("cust_a", "ticket") == {"printer t1", "Screen flickers"}


def test_customers_do_not_see_internal_fields(desk: World) -> None:
    cust_a, guard, ids = desk.who("cust_a"), desk.guard, desk.ids
    internal = {"internal_note", "transfer_note", "team", "sla_status", "customer_region"}
    assert not internal & guard.get(cust_a, "ticket", ids["printer t1"]).keys()
    made = guard.create(
        cust_a, "ticket", {"title": "Screen flickers", "customer": ids["cust_north"]}
    )
    assert not internal & made.keys() and made["title"] == "Screen flickers"
    with pytest.raises(Forbidden) as refused:
        guard.create(cust_a, "ticket", {"title": "Urgent!", "priority": "p2"})
    assert refused.value.fields == ("priority",)
    with pytest.raises(Forbidden):
        guard.list(cust_a, "ticket", filter='record.internal_note == "x"')
    with pytest.raises(Forbidden):
        guard.list(cust_a, "ticket", sort=["sla_status"])
    with pytest.raises(Forbidden):  # customers cannot read customer records at all
        guard.list(cust_a, "ticket", filter='record.customer.region == "north"')


def test_supervisors_work_in_their_department_tree(desk: World) -> None:
    sup, guard, ids = desk.who("sup_east"), desk.guard, desk.ids
    assert desk.titles("sup_east", "ticket") == {"vpn t3"}  # created in shanghai
    with pytest.raises(NotFound):
        guard.update(sup, "ticket", ids["printer t1"], {"priority": "p4"}, expected_version=1)
    done = guard.update(sup, "ticket", ids["vpn t3"], {"priority": "p4"}, expected_version=1)
    assert done["priority"] == "p4"
    with pytest.raises(NotFound):
        guard.delete(sup, "ticket", ids["mail t4"])
    guard.delete(sup, "ticket", ids["vpn t3"])
    assert desk.titles("sup_east", "ticket") == set()


def test_regional_managers_see_their_customers_region(desk: World) -> None:
    rm, guard, ids = desk.who("rm_north"), desk.guard, desk.ids
    assert desk.titles("rm_north", "ticket") == {"printer t1"}  # record.customer.region
    assert guard.count(rm, "ticket", filter='record.title.contains("printer")') == 1
    with pytest.raises(NotFound):
        guard.update(rm, "ticket", ids["printer t2"], {"priority": "p4"}, expected_version=1)
    with pytest.raises(NotFound):
        guard.timeline(rm, "ticket", ids["mail t4"])
    done = guard.update(rm, "ticket", ids["printer t1"], {"priority": "p4"}, expected_version=1)
    assert done["row_version"] == 2
    # their customer grant is scoped to the region, but the inherited supervisor grant is not
    assert {c["name"] for c in guard.list(rm, "customer").items} == {"North", "East", "South"}


def test_agents_see_id_cards_masked_and_cannot_filter_on_them(desk: World) -> None:
    agent, guard, ids = desk.who("agent_sh"), desk.guard, desk.ids
    assert guard.get(agent, "customer", ids["cust_north"])["id_card"] == "110***"
    with pytest.raises(Forbidden):
        guard.list(agent, "customer", filter='record.id_card == "110101199001011234"')
    assert guard.get(desk.who("manager"), "customer", ids["cust_north"])["id_card"] == ID_CARD
    # agents read every ticket (an unscoped grant) but only quality auditors' reads are read-only
    assert len(guard.list(agent, "ticket").items) == 4
    with pytest.raises(Forbidden):
        guard.update(
            desk.who("auditor"), "ticket", ids["vpn t3"], {"title": "Audited"}, expected_version=1
        )
    assert guard.get(desk.who("auditor"), "customer", ids["cust_east"])["id_card"] == "110***"


def test_customer_timeline_leaves_out_internal_changes(desk: World) -> None:
    agent, guard, t1 = desk.who("agent_sh"), desk.guard, desk.ids["printer t1"]
    changes = {"title": "printer t1 jammed", "internal_note": "customer is difficult"}
    guard.update(agent, "ticket", t1, changes, expected_version=1)
    theirs = guard.timeline(desk.who("cust_a"), "ticket", t1)
    assert theirs[-1].changes["title"]["new"] == "printer t1 jammed"
    assert all("internal_note" not in entry.changes for entry in theirs)
    ours = guard.timeline(agent, "ticket", t1)
    assert ours[-1].changes["internal_note"]["new"] == "customer is difficult"
