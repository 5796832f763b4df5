"""Static checks of an app's policies that only the security layer can make.

The linker checks that policies are well formed; these check that they can be enforced
as written -- inheritance no deeper than Casbin follows, scope conditions inside the
CEL subset that runs in SQL. Deploy and `flowdesk validate` should run them, so an
analyst learns it before a request fails.
"""

from __future__ import annotations

from flowdesk.model.appmodel import AppModel

from .errors import InheritanceTooDeep, ScopeNotTranslatable
from .policy import check_inheritance, policy_lines
from .scopes import check_scopes

__all__ = ["check_app"]


def check_app(app: AppModel) -> list[InheritanceTooDeep | ScopeNotTranslatable]:
    """Every reason the app's policies could not be enforced; empty when they can."""
    return [*check_inheritance(policy_lines(app)), *check_scopes(app)]
