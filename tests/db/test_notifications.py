"""Notifications on SQLite and PostgreSQL: a workflow's `notify` action rendered per
recipient (language, hidden and masked fields, referred records) and delivered to a
real SMTP server process and the in-app inbox; SMTP failures retried by the queue."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_notifications_support import (
    note_app,
    person,
    received,
    setup_engine,
    smtp_server,
    text_part,
)

from flowdesk.integrations.notifications import list_notifications, mark_read, unread_count
from flowdesk.jobs import queue
from flowdesk.jobs.queue import Backoff
from flowdesk.jobs.worker import Worker
from flowdesk.store import platform_tables as pt


def _people(engine: sa.Engine) -> dict:
    return {
        "ann": person(engine, "ann", "agent", email="ann@example.com", locale="en"),
        "bo": person(engine, "bo", "boss", email="bo@example.com", locale="zh-CN"),
        "nomail": person(engine, "nomail", "agent"),
        "olga": person(engine, "olga", "outsider", email="olga@example.com"),
    }


def _open_ticket(flow, who) -> dict:  # type: ignore[no-untyped-def]
    acme = flow.create("customer", {"name": "Acme"}, actor=who)
    return flow.create("ticket", {"title": "Printer & fire", "secret_note": "classified",
                                  "id_card": "110101199001011234", "customer": acme["id"]},
                       actor=who)


def _jobs(engine: sa.Engine, kind: str) -> list:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(pt.jobs).where(pt.jobs.c.kind == kind)))


def test_each_recipient_gets_their_own_view_by_email_and_in_app(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = setup_engine(engine, note_app())
    users = _people(engine)
    folder = tmp_path / "maildir"
    with smtp_server(folder) as port:
        monkeypatch.setenv("FLOWDESK_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("FLOWDESK_SMTP_PORT", str(port))
        monkeypatch.setenv("FLOWDESK_SMTP_FROM", "desk@example.com")
        ticket = _open_ticket(flow, users["ann"])
        outcomes = Worker(engine).drain()
        assert [o.status for o in outcomes] == ["done"] * 4  # notify.send + 3 e-mails
        deadline = time.monotonic() + 10
        while len(received(folder)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    mail = received(folder)
    assert set(mail) == {"ann@example.com", "bo@example.com", "ops@example.com"}

    ann = mail["ann@example.com"]
    assert ann["Subject"] == f"[{ticket['number']}] Printer & fire"
    assert ann["From"] == "desk@example.com"
    body = text_part(ann)
    assert "classified" not in body  # hidden from agents
    assert "Note: \n" in body
    assert "Customer: Acme" in body and "ID: 110***" in body and "For: Ann" in body
    assert text_part(ann, "html").strip() == "<p>Printer &amp; fire</p>"  # escaped

    bo = mail["bo@example.com"]  # zh-CN -> the Chinese text; the boss may unmask
    assert bo["Subject"] == f"【{ticket['number']}】Printer & fire"
    assert "备注：classified" in text_part(bo) and "证件：110101199001011234" in text_part(bo)

    ops = text_part(mail["ops@example.com"])  # a fixed address sees number and state only
    assert "Acme" not in ops and "110" not in ops and "classified" not in ops
    assert mail["ops@example.com"]["Subject"] == f"[{ticket['number']}]"  # no title either
    assert len({m["Message-ID"] for m in mail.values()}) == 3

    with engine.begin() as conn:
        assert unread_count(conn, users["ann"].id) == 1
        assert unread_count(conn, users["nomail"].id) == 1  # no address: in-app only
        assert unread_count(conn, users["olga"].id) == 0  # may not read tickets
        inbox = list_notifications(conn, users["ann"].id, unread_only=True)
        assert [(n.subject, n.record_id, n.entity) for n in inbox] == [
            (f"[{ticket['number']}] Printer & fire", ticket["id"], "ticket")]
        assert "classified" not in inbox[0].body
        others = list_notifications(conn, users["bo"].id)
        assert mark_read(conn, users["ann"].id, [others[0].id]) == 0  # not hers
        assert mark_read(conn, users["ann"].id, [inbox[0].id]) == 1
        assert mark_read(conn, users["ann"].id, [inbox[0].id]) == 0
        assert unread_count(conn, users["ann"].id) == 0
        assert list_notifications(conn, users["ann"].id, unread_only=True) == []
        assert list_notifications(conn, users["ann"].id)[0].read_at is not None
        assert unread_count(conn, users["bo"].id) == 1


def test_a_failed_smtp_send_is_retried_without_repeating_in_app_rows(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_notifications_support import free_port

    flow = setup_engine(engine, note_app())
    users = {"ann": person(engine, "ann", "agent", email="ann@example.com")}
    port = free_port()  # nothing listens yet
    monkeypatch.setenv("FLOWDESK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("FLOWDESK_SMTP_PORT", str(port))
    _open_ticket(flow, users["ann"])
    worker = Worker(engine, backoff=Backoff(base=0.05, cap=0.05))
    outcomes = worker.drain()
    statuses = sorted(o.status for o in outcomes)
    assert statuses.count("done") == 1 and "retry" in statuses  # send done, e-mails retry
    failed = [o for o in outcomes if o.status == "retry"]
    assert all(o.job.kind == "notify.email" and "Connection refused" in o.error
               for o in failed)
    folder = tmp_path / "maildir"
    with smtp_server(folder, port):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            worker.drain()
            if len(received(folder)) == 2:
                break
            time.sleep(0.06)
    assert set(received(folder)) == {"ann@example.com", "ops@example.com"}
    assert all(queue.get(engine, j.id).status == "done" for j in _jobs(engine, "notify.email"))
    with engine.connect() as conn:
        assert unread_count(conn, users["ann"].id) == 1  # notify.send ran once


def test_without_smtp_host_in_app_still_delivered_and_missing_template_is_dropped(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWDESK_SMTP_HOST", raising=False)
    flow = setup_engine(engine, note_app())
    ann = person(engine, "ann", "agent", email="ann@example.com")
    ticket = _open_ticket(flow, ann)
    with engine.begin() as conn:
        queue.enqueue(conn, "notify.send", {"app": "note", "entity": "ticket",
                                            "record_id": ticket["id"], "template": "nope",
                                            "recipients": None, "emails": []})
    outcomes = Worker(engine).drain()
    assert [o.status for o in outcomes] == ["done", "done"]
    assert _jobs(engine, "notify.email") == []
    with engine.connect() as conn:
        assert unread_count(conn, ann.id) == 1


def test_bad_smtp_port_setting_is_a_clear_error() -> None:
    from flowdesk.settings import load_settings

    with pytest.raises(ValueError, match="FLOWDESK_SMTP_PORT must be a port number"):
        load_settings({"FLOWDESK_SMTP_PORT": "smtp"})
    assert load_settings({"FLOWDESK_SMTP_PORT": "2525"}).smtp_port == 2525
