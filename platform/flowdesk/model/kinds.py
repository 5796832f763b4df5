"""The registry of model kinds: `kind:` value -> the pydantic model that reads it."""

from __future__ import annotations

from ._base import Document
from .app import App, Pack
from .automation import Automation
from .calendar import Calendar
from .dashboard import Dashboard
from .entity import Entity
from .form import Form
from .integration import Integration
from .notification import Notification
from .policy import Policy
from .report import Report
from .scenario import Scenario
from .sla import SLA
from .workflow import Workflow

__all__ = ["KINDS", "MANIFEST_KINDS", "schema_file_name"]

KINDS: dict[str, type[Document]] = {
    "App": App,
    "Entity": Entity,
    "Form": Form,
    "Workflow": Workflow,
    "Policy": Policy,
    "Calendar": Calendar,
    "SLA": SLA,
    "Automation": Automation,
    "Integration": Integration,
    "Notification": Notification,
    "Report": Report,
    "Dashboard": Dashboard,
    "Pack": Pack,
    "Scenario": Scenario,
}
MANIFEST_KINDS = ("App", "Pack")


def schema_file_name(kind: str) -> str:
    return f"{kind.lower()}.schema.json"
