"""Shared set-up of the security tests (no tests here): the shipped apps compiled once,
a small inline app exercising what the shipped ones do not (deep inheritance, `all`
limited to transitions, masked line fields), and principals made in memory."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_source, compile_texts
from flowdesk.model.sources import read_app
from flowdesk.security.principal import Principal, principal_from_roles

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ("service_desk", "field_service", "procurement")

LAB_APP = """\
apiVersion: flowdesk/v1
kind: App
name: lab
version: 1.0.0
title: Lab
"""

LAB_PURCHASE = """\
apiVersion: flowdesk/v1
kind: Entity
name: purchase
fields:
  title: {type: string, required: true}
  secret: {type: string, mask: "{first:2}**"}
  note: {type: text}
  department: {type: reference, to: department}
  region: {type: string}
  total: {type: integer, computed: "size(record.title)"}
  items:
    type: lines
    fields:
      sku: {type: string}
      serial: {type: string, mask: "***{last:2}"}
"""

LAB_MEMO = """\
apiVersion: flowdesk/v1
kind: Entity
name: memo
fields:
  body: {type: text}
  pin: {type: string, mask: "{last:1}"}
"""

LAB_FLOW = """\
apiVersion: flowdesk/v1
kind: Workflow
name: purchase_flow
entity: purchase
initial: draft
states:
  draft: {}
  review: {}
  done: {category: done}
transitions:
  submit: {from: draft, to: review}
  approve: {from: review, to: done}
  reject: {from: review, to: draft}
"""

LAB_POLICY = """\
apiVersion: flowdesk/v1
kind: Policy
name: lab_access
roles:
  clerk: {}
  senior_clerk: {inherits: [clerk]}
  boss: {inherits: [senior_clerk]}
  auditor: {inherits: [monitor]}
  regional: {}
grants:
  - roles: [clerk]
    entity: purchase
    actions: [read, create, update, transition]
    scope: own
    transitions: [submit]
    fields: {hidden: [note], readonly: [title]}
  - roles: [senior_clerk]
    entity: purchase
    actions: [read, update, comment]
    scope: department
    fields: {masked: [secret]}
  - roles: [boss]
    entity: purchase
    actions: [all]
    scope: department_tree
    transitions: [approve]
  - roles: [regional]
    entity: purchase
    actions: [read]
    scope: {own: true, when: 'record.region == user.region'}
  - roles: [monitor]
    entity: purchase
    actions: [read]
    fields: {hidden: [note]}
  - roles: [monitor]
    entity: "*"
    actions: [read, export]
"""


@cache
def shipped_app(name: str) -> AppModel:
    result = compile_source(read_app(ROOT / "apps" / name))
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


def lab_app(policy: str = LAB_POLICY) -> AppModel:
    result = compile_texts(
        {
            "app.yaml": LAB_APP,
            "entities/purchase.yaml": LAB_PURCHASE,
            "entities/memo.yaml": LAB_MEMO,
            "workflows/purchase_flow.yaml": LAB_FLOW,
            "policies/access.yaml": policy,
        }
    )
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


def who(app: AppModel | str, *roles: str, user_id: int = 7, **attributes: object) -> Principal:
    name = app if isinstance(app, str) else app.name
    return principal_from_roles(user_id, name, roles, **attributes)
