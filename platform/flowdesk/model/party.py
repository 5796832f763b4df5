"""Who a step or message is for: assignees of approvals, recipients of
notifications, targets of assignment. One shape everywhere, so analysts
learn it once: `{role: agent}`, `{user: li.lei}`, `{field: requester}`,
`{department_head: requester}`, `{manager: 2}`, `{expr: ...}`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ._base import CelExpr, Identifier, OneKeyOf

__all__ = ["KEYWORD_PARTIES", "Party", "PartyRef"]

KEYWORD_PARTIES = ("assignee", "requester", "supervisor", "watchers", "team", "customer")


class Party(OneKeyOf):
    """Exactly one way of naming people."""

    user: str | None = Field(None, description="A user name (login).")
    role: Identifier | None = Field(None, description="Everyone with this role.")
    field: Identifier | None = Field(
        None, description="The user (or users) in this field of the record."
    )
    department_head: Identifier | None = Field(
        None, description="Head of the department of the user in this field, e.g. `requester`."
    )
    manager: int | None = Field(
        None,
        ge=1,
        le=10,
        description="The requester's manager N levels up the reporting line (1 = direct manager).",
    )
    team: Identifier | None = Field(None, description="Members of the team in this field.")
    email: str | None = Field(None, description="A fixed e-mail address (notifications only).")
    expr: CelExpr | None = Field(None, description="A CEL expression giving user names.")


PartyRef = Annotated[
    Literal["assignee", "requester", "supervisor", "watchers", "team", "customer"] | Party,
    Field(
        description="`assignee`, `requester`, `supervisor`, `watchers`, `team`, `customer`, "
        "or one of `{role: ...}`, `{user: ...}`, `{field: ...}`, `{department_head: ...}`, "
        "`{manager: N}`, `{team: ...}`, `{email: ...}`, `{expr: ...}`.",
    ),
]
