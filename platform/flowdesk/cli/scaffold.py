"""`flowdesk new app NAME`: a small app that validates as it is, showing one
document of each everyday kind for an analyst to grow from."""

from __future__ import annotations

from pathlib import Path

__all__ = ["scaffold_app"]

_SCHEMA = "# yaml-language-server: $schema={up}schemas/{kind}.schema.json\n"

_FILES = {
    "app.yaml": (
        "app",
        """\
apiVersion: flowdesk/v1
kind: App
name: {name}
version: 0.1.0
title: {{en: {title}, zh: {title}}}
locale: en
timezone: UTC
calendar: office_hours
""",
    ),
    "entities/request.yaml": (
        "entity",
        """\
apiVersion: flowdesk/v1
kind: Entity
name: request
label: {{en: Request, zh: 请求}}
number: REQ-{{seq:05}}
title: subject
search: [subject, details]
fields:
  subject: {{type: string, required: true, max: 200, label: {{en: Subject, zh: 主题}}}}
  details: {{type: text, label: {{en: Details, zh: 详情}}}}
  urgency:
    type: enum
    label: {{en: Urgency, zh: 紧急程度}}
    default: normal
    values:
      high: {{label: {{en: High, zh: 高}}, color: red}}
      normal: {{label: {{en: Normal, zh: 普通}}, color: blue}}
  requester: {{type: user, default: current_user, label: {{en: Requester, zh: 申请人}}}}
rules:
  - when: record.urgency == "high" && size(record.details) < 10
    field: details
    error: {{en: Describe urgent requests in a few words, zh: 紧急请求请简要说明}}
""",
    ),
    "workflows/request_flow.yaml": (
        "workflow",
        """\
apiVersion: flowdesk/v1
kind: Workflow
name: request_flow
entity: request
initial: open
states:
  open: {{category: open, label: {{en: Open, zh: 待处理}}}}
  done: {{category: done, label: {{en: Done, zh: 已完成}}}}
transitions:
  finish: {{from: open, to: done, roles: [agent], label: {{en: Finish, zh: 完成}}}}
  reopen: {{from: done, to: open, label: {{en: Reopen, zh: 重新打开}}}}
""",
    ),
    "forms/request_form.yaml": (
        "form",
        """\
apiVersion: flowdesk/v1
kind: Form
name: request_form
entity: request
sections:
  - label: {{en: Request, zh: 请求}}
    fields: [subject, urgency, {{field: details, widget: textarea, span: 2}}]
""",
    ),
    "policies/access.yaml": (
        "policy",
        """\
apiVersion: flowdesk/v1
kind: Policy
name: access
grants:
  - roles: [agent]
    entity: request
    actions: [read, create, update, transition]
  - roles: [customer]
    entity: request
    actions: [read, create]
    scope: own
""",
    ),
    "calendars/office_hours.yaml": (
        "calendar",
        """\
apiVersion: flowdesk/v1
kind: Calendar
name: office_hours
hours:
  mon-fri: ["09:00-17:00"]
""",
    ),
}


def scaffold_app(name: str, parent: Path) -> list[Path]:
    """Write a new app folder `parent/name`; refuses to touch an existing folder."""
    root = parent / name
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    title = name.replace("_", " ").title()
    written = []
    for relative, (kind, body) in _FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        up = "../" * (len(Path(relative).parts) + 1)
        header = _SCHEMA.format(up=up, kind=kind)
        path.write_text(header + body.format(name=name, title=title), encoding="utf-8")
        written.append(path)
    return written
