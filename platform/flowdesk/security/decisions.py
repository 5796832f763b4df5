"""Fast answers to "may this principal do action A on entity E", derived from Casbin.

Measured here, Casbin's `enforce()` with an RBAC-with-domains model scans its policy
lines on every call (0.7-1.0 ms), more than a whole get-by-id request. So Casbin is
asked once per app version, when the `Authorizer` is built: for every role,
`get_implicit_permissions_for_user(role, app)` (the role's own lines and those of the
roles it inherits) expanded over the app's entities and actions, and
`get_implicit_roles_for_user` for the inheritance closure. A request is then one dict
lookup (the principal's role set) and one set membership test.

The wildcards of the lines are expanded here exactly as the model's matcher reads them:
entity `*` is every entity of the app; action `all` is every action including every
workflow transition; `transition` is every transition of the entity's workflow
(`transition:<name>`) as well as the plain `transition` request, which means "any
transition" and is granted only by an unlimited grant. `tests/unit/security` checks the
derived answers against `enforcer.enforce()` for every role x entity x action of every
shipped app, and for users holding several roles.

May import `flowdesk.model`, `flowdesk.store` (platform tables) and the rest of
`flowdesk.security`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import casbin

from flowdesk.model.appmodel import AppModel
from flowdesk.model.policy import ACTIONS

from .errors import Forbidden
from .policy import (
    TRANSITION_PREFIX,
    check_inheritance,
    new_enforcer,
    per_app,
    policy_lines,
    roles_of,
    transition_action,
)

__all__ = ["Authorizer", "HasRoles", "Permission", "action_space", "authorizer_for"]

Permission = tuple[str, str]
"""(entity, action), e.g. `("ticket", "read")` or `("ticket", "transition:confirm")`."""

_MAX_ROLE_SETS = 4096


class HasRoles(Protocol):
    """Anything naming the roles it holds in one app: a `Principal`, a store `Actor`."""

    @property
    def roles(self) -> Iterable[str]: ...


def action_space(app: AppModel, entity: str) -> tuple[str, ...]:
    """Every action that can be asked about `entity`: the standard actions, then one
    `transition:<name>` per transition of its workflow."""
    workflow = app.workflow_for(entity)
    transitions = tuple(workflow.transitions) if workflow is not None else ()
    return (*ACTIONS, *(transition_action(name) for name in transitions))


class Authorizer:
    """Per-request permission checks of one app version, as set lookups.

    Built from a Casbin enforcer holding the app's policy lines (`from_app`), so
    Casbin stays the engine of record; answers are memoised per distinct role set
    (a handful per app), so a check costs a dict lookup and a set membership.
    """

    def __init__(
        self,
        app: str,
        role_permissions: Mapping[str, frozenset[Permission]],
        role_closure: Mapping[str, frozenset[str]],
    ) -> None:
        self.app = app
        self._role_permissions = dict(role_permissions)
        self._role_closure = dict(role_closure)
        self._by_roles: dict[Any, frozenset[Permission]] = {}
        self._closures: dict[Any, frozenset[str]] = {}

    @classmethod
    def from_app(cls, app: AppModel, enforcer: casbin.Enforcer | None = None) -> Authorizer:
        """Derive the decisions of `app` from a Casbin enforcer (by default one loaded
        with `policy_lines(app)`).

        Raises:
            InheritanceTooDeep: a role inherits through more levels than Casbin follows,
                so no derivation could agree with it.
        """
        lines = policy_lines(app)
        too_deep = check_inheritance(lines)
        if too_deep:
            raise too_deep[0]
        enforcer = enforcer or new_enforcer(lines)
        spaces = {entity: action_space(app, entity) for entity in app.entities}
        permissions: dict[str, frozenset[Permission]] = {}
        closure: dict[str, frozenset[str]] = {}
        for role in roles_of(app):
            lines = enforcer.get_implicit_permissions_for_user(role, app.name)
            permissions[role] = frozenset(
                permission
                for _sub, _dom, obj, act in lines
                for permission in _expand(obj, act, spaces)
            )
            inherited = enforcer.get_implicit_roles_for_user(role, app.name)
            closure[role] = frozenset((role, *inherited))
        return cls(app.name, permissions, closure)

    # -- role sets

    def effective_roles(self, roles: Iterable[str]) -> frozenset[str]:
        """The roles held directly and every role they inherit, transitively."""
        key = roles if isinstance(roles, frozenset | tuple) else tuple(roles)
        found = self._closures.get(key)
        if found is None:
            found = frozenset(
                inherited
                for role in key
                for inherited in self._role_closure.get(role, frozenset((role,)))
            )
            self._remember(self._closures, key, found)
        return found

    def permissions(self, roles: Iterable[str]) -> frozenset[Permission]:
        """Every (entity, action) the union of `roles` allows."""
        key = roles if isinstance(roles, frozenset | tuple) else tuple(roles)
        found = self._by_roles.get(key)
        if found is None:
            found = frozenset().union(
                *(self._role_permissions.get(role, frozenset()) for role in key)
            )
            self._remember(self._by_roles, key, found)
        return found

    @staticmethod
    def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= _MAX_ROLE_SETS:  # role sets are few; this only bounds abuse
            cache.clear()
        cache[key] = value

    # -- decisions

    def allowed(self, principal: HasRoles, entity: str, action: str) -> bool:
        """Whether `principal` may do `action` on `entity` (records of it, in scope).

        `action` is one of `model.policy.ACTIONS` or `transition:<name>`; a plain
        `transition` means "every transition" -- use `may_transition` for one. Which
        records and which fields are decided by `scopes` and `fields`.
        """
        roles = principal.roles
        found = self._by_roles.get(roles)
        if found is None:
            found = self.permissions(roles)
        return (entity, action) in found

    def require(self, principal: HasRoles, entity: str, action: str) -> None:
        """`allowed`, raising `Forbidden` when it is not."""
        if not self.allowed(principal, entity, action):
            shown = action.removeprefix(TRANSITION_PREFIX)
            verb = f"take the transition `{shown}` on" if shown != action else f"{action}"
            raise Forbidden(f"you may not {verb} {entity}", entity=entity, action=action)

    def may_transition(self, principal: HasRoles, entity: str, transition: str) -> bool:
        """Whether the policy lets `principal` take one workflow transition.

        The workflow's own `roles:` on the transition and its guard are the workflow
        engine's to check, in addition to this.
        """
        return self.allowed(principal, entity, transition_action(transition))

    def allowed_transitions(self, principal: HasRoles, entity: str) -> frozenset[str]:
        """Names of the workflow transitions of `entity` the policy lets `principal` take."""
        return frozenset(
            action[len(TRANSITION_PREFIX) :]
            for record_entity, action in self.permissions(principal.roles)
            if record_entity == entity and action.startswith(TRANSITION_PREFIX)
        )

    def entities(self, principal: HasRoles, action: str = "read") -> frozenset[str]:
        """The entities on which `principal` may do `action` (menus, OpenAPI per caller)."""
        return frozenset(
            entity for entity, granted in self.permissions(principal.roles) if granted == action
        )


def _expand(obj: str, act: str, spaces: Mapping[str, tuple[str, ...]]) -> Iterable[Permission]:
    """The concrete (entity, action) pairs one policy line covers, per the model's matcher."""
    entities = list(spaces) if obj == "*" else [obj] if obj in spaces else []
    for entity in entities:
        space = spaces[entity]
        if act == "all":
            yield from ((entity, action) for action in space)
        elif act == "transition":
            yield from (
                (entity, action)
                for action in space
                if action == "transition" or action.startswith(TRANSITION_PREFIX)
            )
        elif act in space:
            yield (entity, act)


def authorizer_for(app: AppModel) -> Authorizer:
    """The `Authorizer` of this app version, built once and shared."""
    return per_app("authorizer", app, Authorizer.from_app)
