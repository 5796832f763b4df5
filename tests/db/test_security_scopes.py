"""Data scopes applied inside SQL, on SQLite and PostgreSQL: own records, my department,
my department tree (a 3-level org chart), CEL conditions over the record and the user
(a regional manager sees only their region's tickets), OR across grants and roles, and
principals loaded from the organisation tables.

      hq
     /  \\
  east   west
    |
 shanghai
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from test_security_support import (
    NOW,
    add_department,
    add_user,
    create_tables,
    insert,
    lab_app,
    shipped_app,
    visible,
)

from flowdesk.model.appmodel import AppModel
from flowdesk.security import (
    Principal,
    PrincipalNotFound,
    action_space,
    authorizer_for,
    load_principal,
    load_user_role_lines,
    new_enforcer,
    policy_lines,
    scope_clause,
)
from flowdesk.security.policy import user_subject
from flowdesk.security.principal import department_subtree
from flowdesk.store.records import RecordStore


class World:
    """An app's tables with an org chart, users and records; ids by name."""

    def __init__(self, engine: sa.Engine, app: AppModel) -> None:
        self.engine, self.app = engine, app
        self.tables = create_tables(engine, app)
        self.store = RecordStore(engine, app, self.tables)
        self.ids: dict[str, int] = {}
        with engine.begin() as c:
            hq = self.ids["hq"] = add_department(c, "hq")
            east = self.ids["east"] = add_department(c, "east", hq)
            self.ids["shanghai"] = add_department(c, "shanghai", east)
            self.ids["west"] = add_department(c, "west", hq)

    def user(self, name: str, *roles: str, department: str | None = None, **values: Any) -> int:
        with self.engine.begin() as c:
            dept = self.ids[department] if department else None
            found = add_user(c, name, {self.app.name: list(roles)}, department_id=dept, **values)
        self.ids[name] = found
        return found

    def row(self, entity: str, **values: Any) -> int:
        with self.engine.begin() as c:
            return insert(c, self.tables[entity].main, **values)

    def principal(self, name: str) -> Principal:
        with self.engine.connect() as c:
            return load_principal(c, self.ids[name], self.app)

    def sees(self, name: str, entity: str, action: str = "read") -> set[str] | None:
        """Labels of the rows in scope, or None when the clause is "every record"."""
        table = self.store.table(entity)
        clause = scope_clause(
            self.principal(name),
            entity,
            table,
            self.store.resolver(entity),
            self.app,
            action=action,
            now=NOW,
        )
        if clause is None:
            return None
        with self.engine.connect() as c:
            return visible(c, table, clause)


# --------------------------------------------------------------------------- service desk


@pytest.fixture
def desk(engine: sa.Engine) -> World:
    w = World(engine, shipped_app("service_desk"))
    for name in ("cust_a", "cust_b"):
        w.user(name, "customer")
    w.user("agent_sh", "agent", department="shanghai")
    w.user("agent_west", "agent", department="west")
    w.user("agent_hq", "agent", department="hq")
    w.user("sup_east", "supervisor", department="east")
    w.user("sup_sh", "supervisor", department="shanghai")
    w.user("sup_hq", "supervisor", department="hq")
    w.user("rm_north", "regional_manager", region="north")
    w.user("rm_south", "regional_manager", region="south", department="west")
    w.user("manager", "service_manager")
    w.user("boss", "admin")
    w.user("both", "customer", "regional_manager", region="west")
    w.user("nobody")
    customers = {}
    for region in ("north", "east", "west", "south"):
        customers[region] = w.row("customer", name=region, level="normal", region=region)
    ids = w.ids

    def ticket(title: str, by: str, region: str, assignee: str | None = None) -> None:
        w.row(
            "ticket",
            title=title,
            created_by=ids[by],
            customer=customers[region],
            assignee=ids[assignee] if assignee else None,
        )

    ticket("t1", "cust_a", "north")
    ticket("t2", "cust_b", "east", assignee="agent_sh")
    ticket("t3", "agent_sh", "east")
    ticket("t4", "agent_west", "west")
    ticket("t5", "agent_hq", "south")
    ticket("t6", "agent_west", "north", assignee="cust_a")
    ticket("t7", "both", "east")
    return w


def test_customers_see_their_own_tickets(desk: World) -> None:
    assert desk.sees("cust_a", "ticket") == {"t1", "t6"}  # created, or assigned to them
    assert desk.sees("cust_b", "ticket") == {"t2"}


def test_regional_manager_sees_only_their_region(desk: World) -> None:
    # `record.customer.region == user.region`; their supervisor rights cover the
    # department tree, and this one has no department.
    assert desk.sees("rm_north", "ticket") == {"t1", "t6"}


def test_regional_manager_with_a_department_adds_its_tree(desk: World) -> None:
    assert desk.sees("rm_south", "ticket") == {"t5", "t4", "t6"}  # south, or made in west


def test_supervisors_see_their_department_tree(desk: World) -> None:
    # A ticket has no department field: it belongs to its creator's department.
    assert desk.sees("sup_sh", "ticket") == {"t3"}
    assert desk.sees("sup_east", "ticket") == {"t3"}  # east and shanghai
    assert desk.sees("sup_hq", "ticket") == {"t3", "t4", "t5", "t6"}  # the whole tree


def test_grants_of_several_roles_combine_with_or(desk: World) -> None:
    assert desk.sees("both", "ticket") == {"t7", "t4"}  # own, or region west


def test_unscoped_grants_and_admin_see_everything(desk: World) -> None:
    assert desk.sees("agent_sh", "ticket") is None
    assert desk.sees("manager", "ticket") is None
    assert desk.sees("boss", "ticket") is None
    assert desk.sees("boss", "customer", action="delete") is None


def test_without_a_grant_nothing_is_visible(desk: World) -> None:
    assert desk.sees("nobody", "ticket") == set()
    assert desk.sees("cust_a", "customer") == set()
    assert desk.sees("cust_a", "ticket", action="delete") == set()


def test_customer_scope_of_regional_managers_is_widened_by_supervisor(desk: World) -> None:
    # The shipped policy scopes regional managers' customers to their region, but they
    # inherit `supervisor`, whose customer grant is unscoped: permissions add up.
    assert desk.sees("rm_north", "customer") is None


def test_scope_applies_to_counts_and_combines_with_filters(desk: World) -> None:
    table = desk.tables["ticket"].main
    clause = scope_clause(
        desk.principal("sup_hq"), "ticket", table, desk.store.resolver("ticket"), desk.app
    )
    assert clause is not None
    with desk.engine.connect() as c:
        count = c.execute(sa.select(sa.func.count()).select_from(table).where(clause)).scalar()
        assigned = sa.select(table.c.title).where(clause, table.c.assignee.is_not(None))
        assert count == 4
        assert set(c.execute(assigned).scalars()) == {"t6"}


# --------------------------------------------------------------------------- procurement


@pytest.fixture
def purchasing(engine: sa.Engine) -> World:
    w = World(engine, shipped_app("procurement"))
    w.user("emp_sh", "employee", department="shanghai")
    w.user("emp_east", "employee", department="east")
    w.user("approver_east", "approver", department="east")
    w.user("reviewer", "it_reviewer", department="west")
    w.user("buyer", "purchaser", department="hq")
    w.user("homeless", "employee")
    budgets = {
        dept: w.row("budget", code=f"b_{dept}", department=w.ids[dept], year=2026, amount=1)
        for dept in ("hq", "east", "shanghai", "west")
    }

    def request(title: str, by: str, dept: str, category: str) -> None:
        w.row(
            "purchase_request",
            title=title,
            created_by=w.ids[by],
            requester=w.ids[by],
            department=w.ids[dept],
            budget=budgets[dept],
            category=category,
        )

    request("r1", "emp_sh", "shanghai", "it_equipment")
    request("r2", "emp_east", "east", "office_supplies")
    request("r3", "reviewer", "west", "services")
    request("r4", "emp_sh", "hq", "facilities")  # for head office, typed in shanghai
    request("r5", "buyer", "west", "software")
    return w


def test_department_scope_is_the_users_department_only(purchasing: World) -> None:
    assert purchasing.sees("emp_sh", "budget") == {"b_shanghai"}
    assert purchasing.sees("emp_east", "budget") == {"b_east"}  # not shanghai's
    assert purchasing.sees("homeless", "budget") == set()


def test_department_tree_follows_the_records_department_field(purchasing: World) -> None:
    # r4 was typed by someone in shanghai but belongs to head office.
    assert purchasing.sees("approver_east", "purchase_request") == {"r1", "r2"}
    assert purchasing.sees("approver_east", "budget") == set()


def test_own_and_conditions_of_inherited_roles(purchasing: World) -> None:
    assert purchasing.sees("emp_sh", "purchase_request") == {"r1", "r4"}
    # it_reviewer: IT categories, or (as an employee) their own requests
    assert purchasing.sees("reviewer", "purchase_request") == {"r1", "r3", "r5"}
    assert purchasing.sees("buyer", "purchase_request") is None


def test_scopes_differ_per_action(purchasing: World) -> None:
    # it_reviewer may transition IT requests, but only `it_approve`/`it_return`;
    # as an employee only their own with `submit`, `receive`, `cancel`.
    reviewer = purchasing
    assert reviewer.sees("reviewer", "purchase_request", "transition:it_approve") == {"r1", "r5"}
    assert reviewer.sees("reviewer", "purchase_request", "transition:submit") == {"r3"}
    assert reviewer.sees("reviewer", "purchase_request", "transition:place_order") == set()
    assert reviewer.sees("reviewer", "purchase_request", "update") == {"r3"}


# --------------------------------------------------------------------------- field service


def test_condition_through_two_references(engine: sa.Engine) -> None:
    w = World(engine, shipped_app("field_service"))
    tech_a = w.user("tech_a", "technician", region="east")
    tech_b = w.user("tech_b", "technician", region="east")
    w.user("dispatch", "dispatcher", region="east")
    for name, account in (("A", tech_a), ("B", tech_b)):
        w.row("technician", name=name, account=account, region="east", skills=["hvac"])
    assert w.sees("tech_a", "technician") == {"A"}  # record.account.id == user.id
    assert w.sees("dispatch", "technician") is None


# --------------------------------------------------------------------------- AND, now, transitions


@pytest.fixture
def lab(engine: sa.Engine) -> World:
    w = World(engine, lab_app())
    w.user("ann", "worker", region="east", department="shanghai")
    w.user("bob", "worker", region="west", department="west")
    w.user("lee", "lead", region="north", department="east")
    past, future = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)
    w.row("task", title="ann-east", created_by=w.ids["ann"], region="east")
    w.row("task", title="ann-west", created_by=w.ids["ann"], region="west")
    w.row("task", title="bob-east-for-ann", created_by=w.ids["bob"], region="east",
          assignee=w.ids["ann"])  # fmt: skip
    w.row("task", title="bob-west-overdue", created_by=w.ids["bob"], region="west", due=past)
    w.row("task", title="bob-west-later", created_by=w.ids["bob"], region="west", due=future)
    return w


def test_keys_of_one_scope_combine_with_and(lab: World) -> None:
    assert lab.sees("ann", "task") == {"ann-east", "bob-east-for-ann"}  # own AND her region
    assert lab.sees("bob", "task") == {"bob-west-overdue", "bob-west-later"}


def test_now_is_bound_and_transitions_have_their_own_scope(lab: World) -> None:
    # lead: own+region as a worker (none in north), department tree of east, overdue tasks
    assert lab.sees("lee", "task") == {"ann-east", "ann-west", "bob-west-overdue"}
    assert lab.sees("lee", "task", "transition:approve") == {"ann-east", "ann-west"}
    assert lab.sees("lee", "task", "transition:submit") == set()  # worker's own+north: none
    assert lab.sees("lee", "task", "update") == set()


# --------------------------------------------------------------------------- principals


def test_load_principal(desk: World) -> None:
    rm = desk.principal("rm_south")
    assert rm.roles == {"regional_manager"} and rm.region == "south"
    assert rm.department_id == desk.ids["west"] and rm.department_ids == {desk.ids["west"]}
    user = rm.cel_user()
    assert user["department"]["code"] == "west" and user["roles"] == ["regional_manager"]
    sup = desk.principal("sup_hq")
    ids = desk.ids
    assert sup.department_ids == {ids["hq"], ids["east"], ids["shanghai"], ids["west"]}
    assert desk.principal("sup_east").department_ids == {ids["east"], ids["shanghai"]}
    actor = sup.actor()
    assert actor.id == ids["sup_hq"] and actor.roles == ("supervisor",)
    with desk.engine.connect() as c:
        assert department_subtree(c, None) == frozenset()
        with pytest.raises(PrincipalNotFound):
            load_principal(c, 999_999, desk.app)


def test_roles_in_every_app_and_inactive_users(desk: World) -> None:
    from flowdesk.store import platform_tables as pt

    with desk.engine.begin() as c:
        root = add_user(c, "root", {"*": ["admin"]})
        gone = add_user(c, "gone", {"service_desk": ["agent"]}, active=False)
    with desk.engine.connect() as c:
        assert load_principal(c, root, "service_desk").roles == {"admin"}
        assert load_principal(c, root, "procurement").is_admin
        assert load_principal(c, gone, "service_desk").roles == frozenset()
        assert c.execute(sa.select(sa.func.count()).select_from(pt.user_roles)).scalar() > 10


def test_user_role_lines_agree_with_loaded_principals(desk: World) -> None:
    with desk.engine.connect() as c:
        user_lines = load_user_role_lines(c, "service_desk")
        enforcer = new_enforcer(policy_lines(desk.app), user_lines)
        authorizer = authorizer_for(desk.app)
        for name in ("cust_a", "agent_sh", "rm_north", "both", "boss", "nobody"):
            principal = load_principal(c, desk.ids[name], desk.app)
            for entity in desk.app.entities:
                for action in action_space(desk.app, entity):
                    expected = enforcer.enforce(
                        user_subject(principal.user_id), "service_desk", entity, action
                    )
                    assert authorizer.allowed(principal, entity, action) == expected
