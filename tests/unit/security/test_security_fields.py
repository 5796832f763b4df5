"""Field-level permissions: who reads, writes and sees masked which fields; mask
patterns; redaction of records, lines and audit timelines; refusals naming the field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from security_support import lab_app, shipped_app, who

from flowdesk.expressions import compile_expression
from flowdesk.model.link.types import SYSTEM_FIELDS, user_type
from flowdesk.security import (
    FieldAccess,
    Forbidden,
    apply_mask,
    check_filterable,
    check_readable,
    check_writable,
    field_access,
    filter_paths,
    redact,
    redact_audit,
)

CUSTOMER_HIDDEN = {
    "internal_note",
    "transfer_note",
    "team",
    "sla_status",
    "escalated",
    "first_responded_at",
    "first_contact_resolved",
    "customer_region",
}
ID_CARD = "110101199003077777"


def sd_access(*roles: str, entity: str = "ticket", action: str = "update") -> FieldAccess:
    app = shipped_app("service_desk")
    return field_access(who(app, *roles), entity, app, action=action)


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize(
    ("value", "pattern", "shown"),
    [
        (ID_CARD, "{first:3}***", "110***"),
        ("DE89370400440532013000", "***{last:4}", "***3000"),
        ("13800138000", "{first:3}****{last:4}", "138****8000"),
        ("12", "{first:3}***", "***"),  # never shows a short value whole
        ("123", "{first:3}***", "***"),
        ("1234", "{first:3}***", "123***"),
        ("secret", "******", "******"),
        ("abc", "{first:0}#", "#"),
        (1234567, "{first:2}***", "12***"),
        (None, "{first:3}***", None),
        (["110101", "220202"], "{first:2}*", ["11*", "22*"]),
        ("", "{first:3}***", "***"),
    ],
)
def test_apply_mask(value: Any, pattern: str, shown: Any) -> None:
    assert apply_mask(value, pattern) == shown


# --------------------------------------------------------------------------- service desk


def test_customer_cannot_read_internal_ticket_fields() -> None:
    access = sd_access("customer")
    assert not CUSTOMER_HIDDEN & access.readable
    assert {"title", "description", "resolution", "priority", "customer"} <= access.readable
    assert set(SYSTEM_FIELDS) <= access.readable
    assert not access.masked


def test_customer_writes_only_what_the_portal_form_offers() -> None:
    create = sd_access("customer", action="create")
    assert "title" in create.writable and "description" in create.writable
    readonly = {"priority", "resolution", "reopen_count", "resolved_at", "closed_at"}
    assert not (CUSTOMER_HIDDEN | readonly) & create.writable
    assert not {"is_vip", "resolution_hours"} & create.writable  # computed
    assert sd_access("customer", action="update").writable == frozenset()  # no update grant


def test_agents_see_id_card_masked_and_managers_in_clear() -> None:
    agent = sd_access("agent", entity="customer")
    assert agent.masked == {"id_card": "{first:3}***"}
    record = {"id": 1, "name": "ACME", "id_card": ID_CARD, "level": "vip"}
    assert redact(record, agent)["id_card"] == "110***"
    assert "id_card" in agent.writable and "level" not in agent.writable
    for roles in (("regional_manager",), ("quality_auditor",), ("monitor",), ("supervisor",)):
        assert sd_access(*roles, entity="customer").masked == {"id_card": "{first:3}***"}, roles
    manager = sd_access("service_manager", entity="customer")
    assert not manager.masked
    assert redact(record, manager)["id_card"] == ID_CARD
    assert sd_access("agent", "service_manager", entity="customer").masked == {}  # widest wins


def test_role_without_a_read_grant_sees_nothing() -> None:
    access = sd_access("customer", entity="customer")
    assert access.readable == frozenset() and access.writable == frozenset()
    assert redact({"id": 1, "name": "x"}, access) == {}


def test_admin_reads_and_writes_everything_in_clear() -> None:
    access = sd_access("admin", entity="customer")
    assert not access.masked
    assert "id_card" in access.writable and "code" in access.writable
    assert redact({"id_card": ID_CARD}, access) == {"id_card": ID_CARD}


def test_entity_mask_applies_to_everyone_without_unmask() -> None:
    app = shipped_app("procurement")

    def supplier(*roles: str) -> FieldAccess:
        return field_access(who(app, *roles), "supplier", app)

    assert "bank_account" not in supplier("employee").readable
    assert supplier("purchaser").masked == {"bank_account": "***{last:4}"}
    assert supplier("monitor").masked == {"bank_account": "***{last:4}"}  # read `*`, no unmask
    assert supplier("finance_director").masked == {}  # holds `unmask`
    assert supplier("cfo").masked == {}  # inherits it
    assert "bank_account" in supplier("employee", "monitor").readable  # most permissive


# --------------------------------------------------------------------------- lab app


def test_combination_across_inherited_grants() -> None:
    app = lab_app()

    def purchase(*roles: str) -> FieldAccess:
        return field_access(who(app, *roles), "purchase", app)

    clerk = purchase("clerk")
    assert "note" not in clerk.readable and "note" not in clerk.writable
    assert "title" in clerk.readable and "title" not in clerk.writable
    assert clerk.masked == {"secret": "{first:2}**"}
    assert clerk.line_masked == {"items": {"serial": "***{last:2}"}}
    senior = purchase("senior_clerk")  # its own grant does not hide `note`, clerk's does
    assert "note" in senior.readable and "title" in senior.writable
    boss = purchase("boss")  # `all` includes unmask
    assert boss.masked == {} and boss.line_masked == {}
    auditor = purchase("auditor")  # monitor: purchase hides `note`, `*` does not
    assert "note" in auditor.readable and auditor.writable == frozenset()
    assert "total" not in purchase("admin").writable  # computed


def test_redact_masks_inside_lines_and_drops_unknown_keys() -> None:
    app = lab_app()
    access = field_access(who(app, "clerk"), "purchase", app)
    record = {
        "id": 3,
        "row_version": 2,
        "title": "Chairs",
        "note": "internal",
        "secret": "ABCDEF",
        "items": [{"id": 1, "sku": "CH-1", "serial": "SN123456"}, {"id": 2, "serial": None}],
        "something_new": 1,
    }
    assert redact(record, access) == {
        "id": 3,
        "row_version": 2,
        "title": "Chairs",
        "secret": "AB**",
        "items": [{"id": 1, "sku": "CH-1", "serial": "***56"}, {"id": 2, "serial": None}],
    }


@dataclasses.dataclass(frozen=True)
class Entry:
    id: int
    action: str
    changes: dict[str, dict[str, Any]]


def test_redact_audit_hides_hidden_fields_and_masks_masked_ones() -> None:
    app = lab_app()
    access = field_access(who(app, "clerk"), "purchase", app)
    changes = {
        "note": {"old": "a", "new": "b"},
        "secret": {"old": "ABCDEF", "new": "XYZXYZ"},
        "title": {"old": "Old", "new": "New"},
        "items": {"old": [], "new": [{"id": 1, "serial": "SN999999"}]},
        "state": {"old": "draft", "new": "review"},
    }
    entries = [Entry(1, "update", changes), {"id": 2, "action": "update", "changes": changes}]
    first, second = redact_audit(entries, access)
    expected = {
        "secret": {"old": "AB**", "new": "XY**"},
        "title": {"old": "Old", "new": "New"},
        "items": {"old": [], "new": [{"id": 1, "serial": "***99"}]},
        "state": {"old": "draft", "new": "review"},
    }
    assert isinstance(first, Entry) and first.changes == expected and first.id == 1
    assert second == {"id": 2, "action": "update", "changes": expected}
    assert entries[0].changes["note"] == {"old": "a", "new": "b"}  # the input is not changed
    assert redact_audit([Entry(3, "create", {})], access)[0].changes == {}


# --------------------------------------------------------------------------- refusals


def test_writing_a_field_names_it() -> None:
    access = sd_access("customer", action="create")
    check_writable({"title": "VPN down", "description": "since 9am"}, access)
    with pytest.raises(Forbidden) as caught:
        check_writable({"title": "x", "internal_note": "vip!"}, access)
    assert caught.value.fields == ("internal_note",)
    assert "`internal_note`" in str(caught.value) and "ticket" in str(caught.value)
    assert caught.value.action == "write"
    with pytest.raises(Forbidden, match="`priority`, `no_such_field`"):
        check_writable(["priority", "no_such_field"], access)


def test_selecting_an_unreadable_field_is_refused() -> None:
    access = sd_access("customer")
    check_readable(["title", "state"], access)
    with pytest.raises(Forbidden, match="`internal_note`"):
        check_readable(["title", "internal_note"], access)


def test_filters_on_unreadable_or_masked_fields_are_refused_alike() -> None:
    app = shipped_app("service_desk")
    customer = who(app, "customer")
    agent = who(app, "agent")

    def related(principal):
        return lambda entity: field_access(principal, entity, app)

    ticket = field_access(customer, "ticket", app)
    check_filterable(["priority", "created_at", ("customer", "id")], ticket)
    messages = []
    for path in ("internal_note", "no_such_field"):
        with pytest.raises(Forbidden) as caught:
            check_filterable([path], ticket)
        messages.append(str(caught.value).replace(path, "X"))
    assert messages[0] == messages[1]  # a hidden field is not told from a missing one
    with pytest.raises(Forbidden):  # the customer cannot read customer records at all
        check_filterable(["customer.level"], ticket, related(customer))
    agent_ticket = field_access(agent, "ticket", app)
    check_filterable(["customer.level", "assignee.region"], agent_ticket, related(agent))
    with pytest.raises(Forbidden, match=r"customer\.id_card"):  # masked: an oracle
        check_filterable(["customer.id_card"], agent_ticket, related(agent))
    with pytest.raises(Forbidden):  # through a reference without `related`
        check_filterable(["customer.level"], agent_ticket)
    with pytest.raises(Forbidden, match="id_card"):
        check_filterable(["id_card"], field_access(agent, "customer", app))
    search = app.entities["ticket"].search
    check_filterable(search, ticket)  # full text over fields the customer reads


def test_filter_paths_of_a_compiled_filter() -> None:
    app = shipped_app("service_desk")
    scope = {"record": app.record_types["ticket"], "user": user_type()}
    expression = compile_expression(
        'record.priority == "p1" && record.customer.level == user.region', scope
    )
    assert filter_paths(expression) == [("customer", "level"), ("priority",)]
    whole = compile_expression("record == record", scope)
    with pytest.raises(Forbidden):
        check_filterable(filter_paths(whole), field_access(who(app, "agent"), "ticket", app))
    line_filter = lab_app()
    access = field_access(who(line_filter, "clerk"), "purchase", line_filter)
    with pytest.raises(Forbidden):
        check_filterable([("items", "serial")], access)
    check_filterable([("items", "sku")], access)
