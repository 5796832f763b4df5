"""Shared set-up of the notification and webhook tests (no tests here): a small app
with a hidden and a masked field, and a real SMTP server in its own process."""

from __future__ import annotations

import email
import mailbox
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import Message
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from test_records_support import add_user, store_for

from flowdesk.engine.workflow import WorkflowEngine
from flowdesk.model.appmodel import AppModel
from flowdesk.model.compiler import compile_texts
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import Actor

TEXTS = {
    "app.yaml": """\
apiVersion: flowdesk/v1
kind: App
name: note
version: 1.0.0
title: {en: Notes, zh: 笔记}
locale: en
""",
    "entities/customer.yaml": """\
apiVersion: flowdesk/v1
kind: Entity
name: customer
fields:
  name: {type: string}
""",
    "entities/ticket.yaml": """\
apiVersion: flowdesk/v1
kind: Entity
name: ticket
number: TCK-{seq:04}
fields:
  title: {type: string, required: true}
  secret_note: {type: text}
  id_card: {type: string, mask: "{first:3}***"}
  customer: {type: reference, to: customer}
""",
    "workflows/flow.yaml": """\
apiVersion: flowdesk/v1
kind: Workflow
name: flow
entity: ticket
initial: open
states:
  open: {on_enter: [{notify: {template: opened}}]}
  closed: {category: done}
transitions:
  close: {from: open, to: closed}
""",
    "policies/access.yaml": """\
apiVersion: flowdesk/v1
kind: Policy
name: access
roles:
  agent: {}
  boss: {}
  outsider: {}
grants:
  - roles: [agent]
    entity: ticket
    actions: [read, create, update]
    fields: {hidden: [secret_note]}
  - roles: [agent, boss]
    entity: customer
    actions: [read]
  - roles: [boss]
    entity: ticket
    actions: [read, create, update, unmask]
""",
    "notifications/opened.yaml": """\
apiVersion: flowdesk/v1
kind: Notification
name: opened
entity: ticket
channels: [email, in_app]
to: [{role: agent}, {role: outsider}]
cc: [{role: boss}, {email: ops@example.com}]
subject:
  en: "[{{ record.number }}] {{ record.title }}"
  zh: "【{{ record.number }}】{{ record.title }}"
body:
  en: |
    Note: {{ record.secret_note }}
    Customer: {{ record.customer.name }}
    ID: {{ record.id_card }}
    For: {{ recipient.name }}
  zh: |
    备注：{{ record.secret_note }}
    客户：{{ record.customer.name }}
    证件：{{ record.id_card }}
html:
  en: "<p>{{ record.title }}</p>"
""",
}


@cache
def note_app(extra: tuple[tuple[str, str], ...] = ()) -> AppModel:
    result = compile_texts({**TEXTS, **dict(extra)})
    assert result.app is not None, [str(d) for d in result.diagnostics]
    return result.app


def person(engine: sa.Engine, name: str, role: str, **values: object) -> Actor:
    uid = add_user(engine, name, **values)
    with engine.begin() as connection:
        connection.execute(pt.user_roles.insert().values(user_id=uid, app="note", role=role))
    return Actor(uid, name, roles=(role,))


def setup_engine(engine: sa.Engine, app: AppModel, observers: tuple = ()) -> WorkflowEngine:
    """Tables of `app` and a workflow engine (it serves the app's jobs in this process)."""
    return WorkflowEngine(store_for(engine, app), observers=list(observers))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(folder: Path, port: int | None = None) -> Iterator[int]:
    """`python -m aiosmtpd` writing every message it receives into a Maildir."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
         "-c", "aiosmtpd.handlers.Mailbox", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"aiosmtpd did not start: {error!r}") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def received(folder: Path) -> dict[str, Message]:
    """Messages in the Maildir by their To address."""
    if not folder.exists():
        return {}
    box = mailbox.Maildir(folder, create=False)
    messages = [email.message_from_bytes(box.get_bytes(key), policy=policy.default)
                for key in box.iterkeys()]
    return {str(m["To"]): m for m in messages}


def text_part(message: Message, subtype: str = "plain") -> str | None:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    return None
