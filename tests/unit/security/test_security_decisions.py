"""Casbin policy lines from Policy documents, and the precomputed decisions that answer
requests: for every shipped app, every role x entity x action, the `Authorizer` says
exactly what `enforcer.enforce()` says -- also for users holding several roles."""

from __future__ import annotations

import itertools
import random

import pytest
from security_support import LAB_POLICY, SHIPPED, lab_app, shipped_app, who

from flowdesk.security import Forbidden, InheritanceTooDeep, check_app
from flowdesk.security.decisions import Authorizer, action_space, authorizer_for
from flowdesk.security.policy import (
    MAX_INHERITANCE_DEPTH,
    grant_actions,
    model_text,
    new_enforcer,
    policy_lines,
    roles_of,
    user_subject,
)


def test_model_file_is_rbac_with_domains() -> None:
    text = model_text()
    assert "g = _, _, _" in text
    assert "r = sub, dom, obj, act" in text


def test_service_desk_lines_read_like_the_documents() -> None:
    lines = policy_lines(shipped_app("service_desk"))
    assert ("admin", "service_desk", "*", "all") in lines.p
    assert ("agent", "service_desk", "ticket", "update") in lines.p
    assert ("monitor", "service_desk", "*", "export") in lines.p
    assert ("supervisor", "service_desk", "ticket", "all") in lines.p
    # the customer's transitions are limited: no plain `transition` line
    assert ("customer", "service_desk", "ticket", "transition:confirm") in lines.p
    assert ("customer", "service_desk", "ticket", "transition") not in lines.p
    assert ("regional_manager", "supervisor", "service_desk") in lines.g
    assert "p, agent, service_desk, ticket, read\n" in lines.text()
    assert policy_lines(shipped_app("service_desk")) == lines  # deterministic


def test_all_limited_to_transitions_is_written_out() -> None:
    grant = lab_app().policies["lab_access"].grants[2]  # boss: all, transitions [approve]
    actions = grant_actions(grant)
    assert "all" not in actions and "transition" not in actions
    assert "transition:approve" in actions and "delete" in actions


def _agree(app_name: str, authorizer: Authorizer, enforcer, subject: str, principal) -> int:
    app = shipped_app(app_name) if app_name in SHIPPED else lab_app()
    checked = 0
    for entity in app.entities:
        for action in action_space(app, entity):
            expected = enforcer.enforce(subject, app.name, entity, action)
            assert authorizer.allowed(principal, entity, action) == expected, (
                subject,
                sorted(principal.roles),
                entity,
                action,
            )
            checked += 1
    return checked


@pytest.mark.parametrize("name", [*SHIPPED, "lab"])
def test_every_role_entity_action_agrees_with_casbin(name: str) -> None:
    app = shipped_app(name) if name in SHIPPED else lab_app()
    enforcer = new_enforcer(policy_lines(app))
    authorizer = Authorizer.from_app(app, enforcer)
    checked = 0
    for role in roles_of(app):
        checked += _agree(name, authorizer, enforcer, role, who(app, role))
    assert checked == len(roles_of(app)) * sum(len(action_space(app, e)) for e in app.entities)


@pytest.mark.parametrize("name", [*SHIPPED, "lab"])
def test_users_with_several_roles_agree_with_casbin(name: str) -> None:
    app = shipped_app(name) if name in SHIPPED else lab_app()
    roles = roles_of(app)
    rng = random.Random(name)
    combos = [(), *itertools.combinations(roles, 2)]
    combos += [tuple(rng.sample(roles, k)) for k in (3, 4, 5) for _ in range(10)]
    combos += [("no_such_role",), ("customer", "no_such_role")]
    users = {index + 1: combo for index, combo in enumerate(combos)}
    user_lines = [
        (user_subject(user), role, app.name) for user, combo in users.items() for role in combo
    ]
    enforcer = new_enforcer(policy_lines(app), user_lines)
    authorizer = authorizer_for(app)
    for user, combo in users.items():
        _agree(name, authorizer, enforcer, user_subject(user), who(app, *combo, user_id=user))


def test_inherited_roles_and_limited_transitions() -> None:
    app = lab_app()
    authorizer = authorizer_for(app)
    boss = who(app, "boss")
    assert authorizer.effective_roles(boss.roles) == {"boss", "senior_clerk", "clerk"}
    assert authorizer.allowed(boss, "purchase", "comment")  # from senior_clerk
    assert authorizer.allowed_transitions(boss, "purchase") == {"submit", "approve"}
    assert not authorizer.allowed(boss, "purchase", "transition")  # not "every transition"
    clerk = who(app, "clerk")
    assert authorizer.may_transition(clerk, "purchase", "submit")
    assert not authorizer.may_transition(clerk, "purchase", "approve")
    auditor = who(app, "auditor")
    assert authorizer.entities(auditor, "export") == {"purchase", "memo"}
    admin = who(app, "admin")
    assert authorizer.allowed(admin, "memo", "delete")
    assert authorizer.allowed(admin, "purchase", "transition")
    assert authorizer.allowed_transitions(admin, "purchase") == {"submit", "approve", "reject"}


def test_standard_roles_have_nothing_unless_granted() -> None:
    app = lab_app()
    authorizer = authorizer_for(app)
    for role in ("designer", "approver", "agent", "supervisor", "customer"):
        assert authorizer.permissions({role}) == frozenset(), role
    assert not authorizer.allowed(who(app), "purchase", "read")
    assert not authorizer.allowed(who(app, "unknown"), "purchase", "read")
    assert not authorizer.allowed(who(app, "admin"), "no_such_entity", "read")


def test_require_names_the_refused_action() -> None:
    app = shipped_app("service_desk")
    authorizer = authorizer_for(app)
    customer = who(app, "customer")
    authorizer.require(customer, "ticket", "create")
    with pytest.raises(Forbidden, match="may not delete ticket") as caught:
        authorizer.require(customer, "ticket", "delete")
    assert caught.value.action == "delete"
    with pytest.raises(Forbidden, match="transition `escalate`"):
        authorizer.require(customer, "ticket", "transition:escalate")


def test_a_changed_policy_is_a_new_authorizer() -> None:
    app = lab_app()
    changed = lab_app(_with_clerk_delete())
    assert app.content_hash != changed.content_hash
    clerk = who(app, "clerk")
    assert not authorizer_for(app).allowed(clerk, "purchase", "delete")
    assert authorizer_for(changed).allowed(clerk, "purchase", "delete")
    assert authorizer_for(app) is authorizer_for(lab_app())  # same content, built once


def _with_clerk_delete() -> str:
    return LAB_POLICY.replace(
        "actions: [read, create, update, transition]\n    scope: own",
        "actions: [read, create, update, delete, transition]\n    scope: own",
    )


def _chain(depth: int) -> str:
    roles = "".join(f"  r{i}: {{inherits: [r{i + 1}]}}\n" for i in range(depth))
    return (
        "apiVersion: flowdesk/v1\nkind: Policy\nname: chain\nroles:\n"
        f"{roles}  r{depth}: {{}}\n"
        f"grants:\n  - roles: [r{depth}]\n    entity: purchase\n    actions: [read]\n"
    )


def test_inheritance_as_deep_as_casbin_follows_agrees() -> None:
    app = lab_app(_chain(MAX_INHERITANCE_DEPTH))
    assert check_app(app) == []
    enforcer = new_enforcer(policy_lines(app), [(user_subject(1), "r0", "lab")])
    authorizer = authorizer_for(app)
    assert enforcer.enforce("r0", "lab", "purchase", "read")
    assert enforcer.enforce(user_subject(1), "lab", "purchase", "read")
    assert authorizer.allowed(who(app, "r0"), "purchase", "read")


def test_deeper_inheritance_is_refused() -> None:
    app = lab_app(_chain(MAX_INHERITANCE_DEPTH + 1))
    enforcer = new_enforcer(policy_lines(app), [(user_subject(1), "r0", "lab")])
    assert not enforcer.enforce(user_subject(1), "lab", "purchase", "read")  # Casbin stops
    with pytest.raises(InheritanceTooDeep, match="`r0` inherits through 9 levels"):
        Authorizer.from_app(app)
    assert [problem.role for problem in check_app(app)] == ["r0"]
