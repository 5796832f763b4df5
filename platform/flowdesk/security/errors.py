"""Errors of the security layer: refusals the API turns into 403 problem details, and
policy conditions that cannot run in SQL.

A refusal names what was refused (entity, action, fields) because the person who sent
the request can act on it ("you may not change `priority`"); it never says more than
the caller could learn from their own form definition (a field they cannot read is
reported exactly like a field that does not exist).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Forbidden", "InheritanceTooDeep", "ScopeNotTranslatable"]


class Forbidden(Exception):
    """The principal may not do this: an action, a field write, a filter on a field.

    Attributes:
        entity: The entity concerned.
        action: `read`, `update`, `write`, `filter`, `transition:<name>` ...
        fields: The fields refused, in the order they were given (empty for an action).
    """

    code = "forbidden"

    def __init__(
        self, message: str, *, entity: str, action: str, fields: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.entity = entity
        self.action = action
        self.fields = tuple(fields)


class ScopeNotTranslatable(Exception):
    """A grant's `scope.when` condition falls outside the CEL subset that runs in SQL.

    Scopes are applied inside the query, never by filtering rows in Python, so such a
    grant cannot be enforced; it is refused loudly (the request fails) rather than
    silently widened or narrowed. `check_scopes(app)` finds these before deploying.
    """

    code = "scope-not-translatable"

    def __init__(self, policy: str, pointer: str, problem: str) -> None:
        super().__init__(f"policy `{policy}` {pointer}/scope/when: {problem}")
        self.policy = policy
        self.pointer = pointer
        self.problem = problem


class InheritanceTooDeep(Exception):
    """A role inherits through more levels than Casbin follows.

    Casbin's role manager stops after 10 links (`max_hierarchy_level`), counting the
    user's own link to a role, while `get_implicit_roles_for_user` does not stop; so
    beyond `policy.MAX_INHERITANCE_DEPTH` levels the engine of record and the decisions
    derived from it would disagree. Such a policy is refused when it is loaded.
    """

    code = "role-inheritance-too-deep"

    def __init__(self, app: str, role: str, depth: int, limit: int) -> None:
        super().__init__(
            f"app `{app}`: role `{role}` inherits through {depth} levels of roles; "
            f"at most {limit} are supported"
        )
        self.app = app
        self.role = role
        self.depth = depth
        self.limit = limit
