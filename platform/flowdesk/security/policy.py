"""Policy documents -> Casbin policy lines, and the Casbin enforcer built from them.

Casbin is the policy engine of record (ARCHITECTURE decision 7): its model file
(`casbin_model.conf`, RBAC with the app as domain), its policy lines and its role
inheritance say what a role may do. This module is the one translation from the
apps' `Policy` documents to those lines, so that the lines can be printed, diffed,
loaded into any Casbin enforcer and checked against the fast decisions derived from
them (`decisions.Authorizer`):

    p, agent, service_desk, ticket, read            a grant (one line per action)
    p, customer, service_desk, ticket, transition:confirm   a grant limited to transitions
    p, monitor, service_desk, *, export             `entity: "*"` stays a wildcard
    p, supervisor, service_desk, ticket, all        `actions: [all]` stays a wildcard
    p, admin, service_desk, *, all                  the built-in administrator
    g, regional_manager, supervisor, service_desk   `inherits`
    g, user:7, agent, service_desk                  a user's role, from fd_user_roles

Wildcards are kept rather than expanded so that the lines read like the documents;
the model's matcher gives them their meaning and the agreement test proves that the
derived decisions give them the same one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

import casbin
from casbin.model import Model
from sqlalchemy import Connection, select

from flowdesk.model.appmodel import AppModel
from flowdesk.model.policy import ACTIONS, STANDARD_ROLES, Grant, Policy
from flowdesk.store import platform_tables as pt

from .errors import InheritanceTooDeep

__all__ = [
    "ADMIN",
    "ALL_APPS",
    "MAX_INHERITANCE_DEPTH",
    "TRANSITION_PREFIX",
    "USER_PREFIX",
    "AppGrant",
    "PolicyLines",
    "app_grants",
    "check_inheritance",
    "grant_actions",
    "inheritance_depths",
    "load_user_role_lines",
    "model_text",
    "new_enforcer",
    "per_app",
    "policy_lines",
    "roles_of",
    "transition_action",
    "user_subject",
]

ADMIN = "admin"
"""The built-in administrator: every action on every entity, every field in clear, no
data scope. Declared by the platform (a `p, admin, <app>, *, all` line in every app), not
by the apps' documents."""

ALL_APPS = "*"
"""`fd_user_roles.app` value giving a role in every app (e.g. a platform administrator)."""

MAX_INHERITANCE_DEPTH = 8
"""Longest chain of `inherits` links supported: Casbin follows 10 links at most, one of
which is the user's link to their role (measured: a role reaches permissions 9 links
away, a user only 8 links beyond their role, with pycasbin 1.43 and 2.8)."""

USER_PREFIX = "user:"
TRANSITION_PREFIX = "transition:"

PLine = tuple[str, str, str, str]
GLine = tuple[str, str, str]
T = TypeVar("T")


@dataclass(frozen=True)
class AppGrant:
    """A grant of one of the app's Policy documents, with where it was written.

    The position names the grant in messages and finds its compiled scope condition
    (`AppModel.expression("Policy", policy, pointer + "/scope/when")`).
    """

    policy: str
    index: int
    grant: Grant

    @property
    def pointer(self) -> str:
        return f"/grants/{self.index}"

    def permits(self, action: str) -> bool:
        """Whether this grant covers `action` (`read`, ..., `transition:<name>`)."""
        actions = self.grant.actions
        if action.startswith(TRANSITION_PREFIX):
            if "all" not in actions and "transition" not in actions:
                return False
            limit = self.grant.transitions
            return limit is None or action[len(TRANSITION_PREFIX) :] in limit
        if action == "transition" and self.grant.transitions is not None:
            return False  # a limited grant never covers "every transition"
        return "all" in actions or action in actions


@dataclass(frozen=True)
class PolicyLines:
    """The Casbin policy of one app: `p` lines (grants) and `g` lines (inheritance)."""

    app: str
    p: tuple[PLine, ...]
    g: tuple[GLine, ...]

    def text(self) -> str:
        """The lines in Casbin's CSV policy format, for reading and diffing."""
        rows = [("p", *line) for line in self.p] + [("g", *line) for line in self.g]
        return "".join(", ".join(row) + "\n" for row in rows)


def transition_action(name: str) -> str:
    """The Casbin action for taking one workflow transition: `transition:<name>`."""
    return TRANSITION_PREFIX + name


def user_subject(user_id: int) -> str:
    """The Casbin subject of a user, distinct from every role name (roles are snake_case)."""
    return f"{USER_PREFIX}{user_id}"


def roles_of(app: AppModel) -> tuple[str, ...]:
    """Every role of the app: the standard roles, then the custom ones in document order."""
    custom = [name for policy in _policies(app) for name in policy[1].roles]
    return tuple(dict.fromkeys((*STANDARD_ROLES, *custom)))


def app_grants(app: AppModel) -> tuple[AppGrant, ...]:
    """Every grant of every Policy document of the app, in a stable order."""
    return tuple(
        AppGrant(name, index, grant)
        for name, policy in _policies(app)
        for index, grant in enumerate(policy.grants)
    )


def grant_actions(grant: Grant) -> list[str]:
    """The Casbin actions of one grant.

    A grant limited to some `transitions` gives one `transition:<name>` action per
    transition instead of `transition`; with `all` that limit still holds, so `all` is
    then written out as the other actions.
    """
    if grant.transitions is None:
        return list(dict.fromkeys(grant.actions))
    limited = [transition_action(name) for name in grant.transitions]
    if "all" in grant.actions:
        return [action for action in ACTIONS if action != "transition"] + limited
    actions = [action for action in grant.actions if action != "transition"]
    return actions + (limited if "transition" in grant.actions else [])


def policy_lines(app: AppModel) -> PolicyLines:
    """The app's Policy documents as Casbin lines (deterministic: same app, same lines)."""
    p: dict[PLine, None] = {(ADMIN, app.name, "*", "all"): None}
    for item in app_grants(app):
        for role in item.grant.roles:
            for action in grant_actions(item.grant):
                p[(role, app.name, item.grant.entity, action)] = None
    g: dict[GLine, None] = {}
    for _name, policy in _policies(app):
        for role, spec in policy.roles.items():
            for parent in spec.inherits:
                g[(role, parent, app.name)] = None
    return PolicyLines(app.name, tuple(p), tuple(g))


def inheritance_depths(lines: PolicyLines) -> dict[str, int]:
    """The longest chain of `g` role links above each role (0: inherits nothing)."""
    parents: dict[str, list[str]] = {}
    for role, parent, _app in lines.g:
        parents.setdefault(role, []).append(parent)
    depths: dict[str, int] = {}

    def depth(role: str, path: frozenset[str]) -> int:
        if role not in depths:
            above = [p for p in parents.get(role, []) if p not in path]  # the linker bans cycles
            depths[role] = max((1 + depth(p, path | {p}) for p in above), default=0)
        return depths[role]

    for role in parents:
        depth(role, frozenset((role,)))
    return depths


def check_inheritance(lines: PolicyLines) -> list[InheritanceTooDeep]:
    """Roles whose inheritance is deeper than Casbin follows (see MAX_INHERITANCE_DEPTH)."""
    return [
        InheritanceTooDeep(lines.app, role, depth, MAX_INHERITANCE_DEPTH)
        for role, depth in sorted(inheritance_depths(lines).items())
        if depth > MAX_INHERITANCE_DEPTH
    ]


def load_user_role_lines(connection: Connection, app: str) -> list[GLine]:
    """`g, user:<id>, <role>, <app>` for every role held in `app` (or in every app, `*`)."""
    table = pt.user_roles
    query = (
        select(table.c.user_id, table.c.role)
        .where(table.c.app.in_([app, ALL_APPS]))
        .order_by(table.c.user_id, table.c.role)
    )
    return [(user_subject(row.user_id), row.role, app) for row in connection.execute(query)]


def model_text() -> str:
    """The text of the package's Casbin model file."""
    return resources.files(__package__).joinpath("casbin_model.conf").read_text("utf-8")


def new_enforcer(lines: PolicyLines, user_lines: Iterable[GLine] = ()) -> casbin.Enforcer:
    """A Casbin enforcer with the package's model, `lines` and optional user roles.

    Per-request checks must not go through it (it scans the policy on every call);
    `decisions.Authorizer` derives sets from it once. It serves the derivation, the
    agreement tests, and tools that ask Casbin directly.
    """
    model = Model()
    model.load_model_from_text(model_text())
    enforcer = casbin.Enforcer(model)
    if lines.p:
        enforcer.add_policies([list(line) for line in lines.p])
    grouping = [list(line) for line in (*lines.g, *user_lines)]
    if grouping:
        enforcer.add_grouping_policies(grouping)
    return enforcer


def _policies(app: AppModel) -> Sequence[tuple[str, Policy]]:
    return sorted(app.policies.items())


_CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, str, str], object] = OrderedDict()
_cache_lock = threading.Lock()


def per_app(kind: str, app: AppModel, build: Callable[[AppModel], T]) -> T:
    """The object `build(app)` made once per app content (its name and content hash).

    Deploying a changed policy produces an AppModel with a new content hash, hence new
    decisions, without a restart; the cache keeps the most recent few versions.
    """
    key = (kind, app.name, app.content_hash)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found  # type: ignore[return-value]
    made = build(app)
    with _cache_lock:
        _cache[key] = made
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return made
