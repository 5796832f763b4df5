"""The `AppModel`: what the runtime sees of an app, and all it sees.

Produced only by the linker, after every reference was checked and every CEL
expression compiled. Frozen: layers read it, never change it; a new version
of an app is a new `AppModel`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from ._base import Document
from .app import App, Pack

if TYPE_CHECKING:
    from flowdesk.expressions import CelType, CompiledExpression

    from .automation import Automation
    from .calendar import Calendar
    from .dashboard import Dashboard
    from .entity import Entity
    from .form import Form
    from .integration import Integration
    from .notification import Notification
    from .policy import Policy
    from .report import Report
    from .sla import SLA
    from .workflow import Workflow

__all__ = ["AppModel", "ExpressionKey", "content_hash"]

D = TypeVar("D", bound=Document)
ExpressionKey = tuple[str, str, str]  # (kind, document name, JSON pointer)


def content_hash(texts: Mapping[str, str]) -> str:
    """Hash of an app's content, independent of file order and line endings."""
    digest = hashlib.sha256()
    for name in sorted(texts):
        digest.update(name.replace("\\", "/").rsplit("/", 1)[-1].encode())
        digest.update(b"\0")
        digest.update(texts[name].replace("\r\n", "\n").encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class AppModel:
    manifest: App | Pack
    documents: Mapping[str, Mapping[str, Document]]
    expressions: Mapping[ExpressionKey, CompiledExpression]
    record_types: Mapping[str, CelType]
    content_hash: str

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def is_pack(self) -> bool:
        return isinstance(self.manifest, Pack)

    def of_kind(self, kind: str) -> Mapping[str, Document]:
        return self.documents.get(kind, MappingProxyType({}))

    @property
    def entities(self) -> Mapping[str, Entity]:
        return self.of_kind("Entity")  # type: ignore[return-value]

    @property
    def forms(self) -> Mapping[str, Form]:
        return self.of_kind("Form")  # type: ignore[return-value]

    @property
    def workflows(self) -> Mapping[str, Workflow]:
        return self.of_kind("Workflow")  # type: ignore[return-value]

    @property
    def policies(self) -> Mapping[str, Policy]:
        return self.of_kind("Policy")  # type: ignore[return-value]

    @property
    def calendars(self) -> Mapping[str, Calendar]:
        return self.of_kind("Calendar")  # type: ignore[return-value]

    @property
    def slas(self) -> Mapping[str, SLA]:
        return self.of_kind("SLA")  # type: ignore[return-value]

    @property
    def automations(self) -> Mapping[str, Automation]:
        return self.of_kind("Automation")  # type: ignore[return-value]

    @property
    def integrations(self) -> Mapping[str, Integration]:
        return self.of_kind("Integration")  # type: ignore[return-value]

    @property
    def notifications(self) -> Mapping[str, Notification]:
        return self.of_kind("Notification")  # type: ignore[return-value]

    @property
    def reports(self) -> Mapping[str, Report]:
        return self.of_kind("Report")  # type: ignore[return-value]

    @property
    def dashboards(self) -> Mapping[str, Dashboard]:
        return self.of_kind("Dashboard")  # type: ignore[return-value]

    def expression(self, kind: str, name: str, pointer: str) -> CompiledExpression:
        """The compiled CEL written at `pointer` of document `name` of `kind`."""
        return self.expressions[(kind, name, pointer)]

    def workflow_for(self, entity: str) -> Workflow | None:
        return next((w for w in self.workflows.values() if w.entity == entity), None)
