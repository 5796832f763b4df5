"""Scope clauses as SQL text (no database): which column a department scope reads,
how grants combine, that reused clauses never leak across users, and that conditions
outside the SQL subset are refused loudly. The database tests run them for real."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from security_support import LAB_POLICY, SHIPPED, lab_app, shipped_app, who
from sqlalchemy.dialects import postgresql

from flowdesk.security import (
    ScopeNotTranslatable,
    action_space,
    authorizer_for,
    check_scopes,
    scope_clause,
)
from flowdesk.security.policy import roles_of
from flowdesk.security.scopes import scope_policy_for
from flowdesk.store.filters import TableColumns
from flowdesk.store.tables import build_tables


def sql(clause: sa.ColumnElement[bool] | None) -> str | None:
    if clause is None:
        return None
    compiled = clause.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return " ".join(str(compiled).split())


@pytest.fixture(scope="module")
def lab() -> tuple:
    app = lab_app()
    tables = build_tables(app)
    return app, {name: t.main for name, t in tables.items()}


def clause_of(lab: tuple, principal, entity: str = "purchase", action: str = "read") -> str | None:
    app, tables = lab
    table = tables[entity]
    return sql(scope_clause(principal, entity, table, TableColumns(table), app, action=action))


def test_own_and_condition_of_one_grant(lab: tuple) -> None:
    text = clause_of(lab, who("lab", "regional", user_id=3, region="east"))
    assert text == (
        "(lab__purchase.created_by = 3 OR lab__purchase.assignee = 3) "
        "AND lab__purchase.region = 'east'"
    )


def test_department_reads_the_department_field(lab: tuple) -> None:
    principal = who("lab", "senior_clerk", user_id=4, department_id=10, department_ids={10, 11})
    # senior_clerk: department; inherited clerk: own -> OR
    assert clause_of(lab, principal) == (
        "lab__purchase.created_by = 4 OR lab__purchase.assignee = 4 "
        "OR lab__purchase.department = 10"
    )
    boss = who("lab", "boss", user_id=5, department_id=10, department_ids={10, 11})
    assert "lab__purchase.department IN (10, 11)" in clause_of(lab, boss)


def test_department_of_a_record_without_one_is_its_creators() -> None:
    policy = LAB_POLICY.replace(
        '''  - roles: [monitor]
    entity: "*"''',
        '''  - roles: [clerk]
    entity: memo
    actions: [read]
    scope: department
  - roles: [monitor]
    entity: "*"''',
    )
    app = lab_app(policy)
    table = build_tables(app)["memo"].main
    principal = who(app, "clerk", department_id=10, department_ids={10})
    text = sql(scope_clause(principal, "memo", table, TableColumns(table), app))
    assert text is not None and "SELECT fd_users.department_id" in text
    assert "fd_users.id = lab__memo.created_by" in text and text.endswith("= 10")


def test_action_decides_the_grants(lab: tuple) -> None:
    boss = who("lab", "boss", user_id=5, department_id=10, department_ids={10, 11})
    assert clause_of(lab, boss, action="transition:approve") == (
        "lab__purchase.department IN (10, 11)"
    )
    assert clause_of(lab, boss, action="transition:submit") == (
        "lab__purchase.created_by = 5 OR lab__purchase.assignee = 5"
    )
    assert clause_of(lab, boss, action="transition:reject") == "false"
    assert clause_of(lab, who("lab", "monitor"), entity="memo") is None
    assert clause_of(lab, who("lab", "admin")) is None
    assert clause_of(lab, who("lab")) == "false"


def test_reused_clauses_never_cross_users(lab: tuple) -> None:
    app, tables = lab
    table = tables["purchase"]
    resolver = TableColumns(table)
    east = who(app, "regional", user_id=3, region="east")
    west = who(app, "regional", user_id=3, region="west")
    other = who(app, "regional", user_id=8, region="east")
    first = scope_clause(east, "purchase", table, resolver, app)
    assert scope_clause(east, "purchase", table, resolver, app) is first  # built once
    assert "'west'" in sql(scope_clause(west, "purchase", table, resolver, app))
    assert "= 8" in sql(scope_clause(other, "purchase", table, resolver, app))
    assert "'east'" in sql(scope_clause(east, "purchase", table, resolver, app))


def test_conditions_reading_now_bind_the_given_time(lab: tuple) -> None:
    policy = LAB_POLICY.replace(
        "scope: {own: true, when: 'record.region == user.region'}",
        "scope: {when: 'record.region == user.region"
        ' || now > timestamp("2026-01-01T00:00:00Z")\'}',
    )
    app = lab_app(policy)
    table = build_tables(app)["purchase"].main
    principal = who(app, "regional", region="east")

    def at(year: int) -> str | None:
        now = dt.datetime(year, 6, 1, tzinfo=dt.UTC)
        return sql(scope_clause(principal, "purchase", table, TableColumns(table), app, now=now))

    assert at(2025) == "lab__purchase.region = 'east'"
    assert at(2027) == "true"


def test_untranslatable_conditions_are_refused_loudly() -> None:
    policy = LAB_POLICY.replace(
        "scope: {own: true, when: 'record.region == user.region'}",
        "scope: {when: 'record.items.exists(i, i.sku == user.region)'}",
    )
    app = lab_app(policy)
    problems = check_scopes(app)
    assert len(problems) == 1 and "/grants/3" in str(problems[0])
    table = build_tables(app)["purchase"].main
    with pytest.raises(ScopeNotTranslatable, match="lab_access"):
        scope_clause(who(app, "regional", region="x"), "purchase", table, TableColumns(table), app)
    assert check_scopes(lab_app()) == []


@pytest.mark.parametrize("name", SHIPPED)
def test_a_scope_exists_exactly_when_the_action_is_allowed(name: str) -> None:
    app = shipped_app(name)
    authorizer = authorizer_for(app)
    scopes = scope_policy_for(app)
    for role in roles_of(app):
        principal = who(app, role)
        for entity in app.entities:
            for action in action_space(app, entity):
                found = scopes.scopes(principal, entity, action)
                allowed = authorizer.allowed(principal, entity, action)
                assert (found != ()) == allowed, (role, entity, action, found)
