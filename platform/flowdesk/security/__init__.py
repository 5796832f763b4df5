"""Authorization: who may do what to which records and fields of an app.

Owns the Casbin model and the translation of the apps' Policy documents into Casbin
policy lines (`policy`), the per-request permission checks derived from Casbin once
per app version (`decisions`), field-level read/write/mask rules and the redaction of
records and audit timelines (`fields`), data scopes as SQL clauses (`scopes`), the
principal loaded from the organisation tables (`principal`), and `RecordGuard`
(`guard`), the one place that applies all of them to the records service. A library:
it takes no HTTP request; the API, the UI, exports, reports and jobs call it.

May import `flowdesk.model`, `flowdesk.expressions` and `flowdesk.store` (public
names only: platform tables, `filters`, `records`, `errors`, `audit`); never the API,
web, jobs or CLI layers. See README.md.
"""

from __future__ import annotations

from .checks import check_app
from .decisions import Authorizer, action_space, authorizer_for
from .errors import Forbidden, InheritanceTooDeep, ScopeNotTranslatable
from .fields import (
    FieldAccess,
    apply_mask,
    check_filterable,
    check_readable,
    check_writable,
    field_access,
    filter_paths,
    redact,
    redact_audit,
)
from .guard import RecordGuard, RecordWriter
from .policy import ADMIN, PolicyLines, load_user_role_lines, new_enforcer, policy_lines
from .principal import Principal, PrincipalNotFound, load_principal
from .scopes import check_scopes, scope_clause

__all__ = [
    "ADMIN",
    "Authorizer",
    "FieldAccess",
    "Forbidden",
    "InheritanceTooDeep",
    "PolicyLines",
    "Principal",
    "PrincipalNotFound",
    "RecordGuard",
    "RecordWriter",
    "ScopeNotTranslatable",
    "action_space",
    "apply_mask",
    "authorizer_for",
    "check_app",
    "check_filterable",
    "check_readable",
    "check_scopes",
    "check_writable",
    "field_access",
    "filter_paths",
    "load_principal",
    "load_user_role_lines",
    "new_enforcer",
    "policy_lines",
    "redact",
    "redact_audit",
    "scope_clause",
]
