"""Outbound webhooks on SQLite and PostgreSQL against real HTTP receivers on loopback:
a receiver failing twice then succeeding (3 attempts, one effect), one always failing
(dead after the last attempt), a slow one (timeout recorded), one answering 429 with
Retry-After (honoured); signatures verified by the receiver; every attempt logged."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import sqlalchemy as sa
from test_notifications_support import note_app, person, setup_engine

from flowdesk.integrations.http import verify
from flowdesk.integrations.webhooks import WebhookObserver, delivery_log, wait_for_delivery_log
from flowdesk.jobs import queue
from flowdesk.jobs.handlers import import_handler_modules
from flowdesk.jobs.queue import Backoff
from flowdesk.jobs.worker import Worker
from flowdesk.store import platform_tables as pt

SECRET = "s3cret-for-tests"
import_handler_modules([])  # what every worker loads: notify.send, webhook.deliver ...


def _integration(name: str, path: str, *, attempts: int, timeout: str = "5s",
                 events: str = "[created]", body: str = "fields: [title, id_card]") -> str:
    return f"""\
apiVersion: flowdesk/v1
kind: Integration
name: {name}
base_url: ${{HOOKS_URL}}
timeout: {timeout}
retry: {{attempts: {attempts}}}
webhooks:
  - name: {name}_hook
    entity: ticket
    events: {events}
    when: record.title == "{name}"
    url: ${{HOOKS_URL}}/{path}
    {body}
"""


INTEGRATIONS = (
    ("integrations/flaky.yaml", _integration("flaky", "flaky", attempts=3)),
    ("integrations/down.yaml", _integration("down", "down", attempts=3)),
    ("integrations/slow.yaml", _integration("slow", "slow", attempts=1, timeout="1s")),
    ("integrations/busy.yaml", _integration("busy", "busy", attempts=3)),
    ("integrations/closing.yaml", _integration(
        "closing", "closed", attempts=2, events='["state_entered:closed"]',
        body='map: {ticketNumber: "= record.number", status: CLOSED}')),
)


class _Receiver(BaseHTTPRequestHandler):
    """Answers by path; records every request with whether its signature verified."""

    calls: ClassVar[dict[str, list[dict]]] = {}
    effects: ClassVar[dict[str, int]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        path = self.path.strip("/")
        calls = self.calls.setdefault(path, [])
        calls.append({"body": body, "headers": dict(self.headers), "valid": verify(
            SECRET, self.headers["X-Flowdesk-Timestamp"], body,
            self.headers.get("X-Flowdesk-Signature", ""))})
        status, extra = 200, {}
        if (path == "flaky" and len(calls) <= 2) or path == "down":
            status = 500
        elif path == "busy" and len(calls) == 1:
            status, extra = 429, {"Retry-After": "1"}
        elif path == "slow":
            time.sleep(2.5)
        if status == 200:
            self.effects[path] = self.effects.get(path, 0) + 1
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        payload = b'{"ok": true}' if status == 200 else b"try again later"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the slow path's caller gave up
            self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    _Receiver.calls, _Receiver.effects = {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("FLOWDESK_HOOKS_URL", url)
    monkeypatch.setenv("FLOWDESK_WEBHOOK_SECRET", SECRET)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def _run(engine: sa.Engine, until: float = 15.0) -> None:
    """Run jobs (retries come back after a few ms, or Retry-After) until none is waiting."""
    worker = Worker(engine, backoff=Backoff(base=0.05, cap=0.05))
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        worker.drain()
        counts = queue.stats(engine)
        if counts["pending"] + counts["retry"] + counts["running"] == 0:
            break
        time.sleep(0.05)
    assert wait_for_delivery_log()


def _job(engine: sa.Engine, webhook: str) -> queue.Job:
    with engine.connect() as conn:
        statement = sa.select(pt.jobs).where(pt.jobs.c.kind == "webhook.deliver")
        rows = [r for r in conn.execute(statement) if r.payload["webhook"] == webhook]
    assert len(rows) == 1, rows
    return queue.Job.from_row(rows[0])


def _setup(engine: sa.Engine):  # type: ignore[no-untyped-def]
    app = note_app(INTEGRATIONS)
    flow = setup_engine(engine, app)
    flow.observers.append(WebhookObserver(app, flow.store))
    return flow, person(engine, "ann", "boss", email="ann@example.com")


def test_retries_dead_letter_timeout_and_retry_after(engine: sa.Engine, receiver: str) -> None:
    flow, ann = _setup(engine)
    for title in ("flaky", "down", "slow", "busy", "unmatched"):
        flow.create("ticket", {"title": title, "id_card": "110101199001011234"}, actor=ann)
    _run(engine)

    flaky = _job(engine, "flaky_hook")
    assert flaky.status == "done" and flaky.attempts == 3
    assert _Receiver.effects["flaky"] == 1 and len(_Receiver.calls["flaky"]) == 3
    assert all(call["valid"] for calls in _Receiver.calls.values() for call in calls)
    deliveries = {c["headers"]["X-Flowdesk-Delivery"] for c in _Receiver.calls["flaky"]}
    assert deliveries == {str(flaky.id)}  # the same delivery id on every attempt
    first = _Receiver.calls["flaky"][0]
    assert first["headers"]["X-Flowdesk-Event"] == "created"
    sent = json.loads(first["body"])
    assert sent["event"] == "created" and sent["entity"] == "ticket"
    assert sent["record"] == {"title": "flaky", "id_card": "110***"}  # masked as for anyone

    down = _job(engine, "down_hook")
    assert down.status == "dead" and down.attempts == 3 and "HTTP 500" in down.last_error
    slow = _job(engine, "slow_hook")
    assert slow.status == "dead" and "timeout after 1s" in slow.last_error
    busy = _job(engine, "busy_hook")
    assert busy.status == "done" and busy.attempts == 2
    assert "unmatched" not in _Receiver.calls and len(_Receiver.calls) == 4

    ids = {name: _job(engine, name).id
           for name in ("flaky_hook", "down_hook", "slow_hook", "busy_hook")}
    with engine.connect() as conn:
        log = {name: sorted(delivery_log(conn, job_id=i), key=lambda d: d.attempt)
               for name, i in ids.items()}
    assert [(d.attempt, d.status_code) for d in log["flaky_hook"]] == [
        (1, 500), (2, 500), (3, 200)]
    assert log["flaky_hook"][2].error is None and log["flaky_hook"][2].response_body == \
        '{"ok": true}'
    assert log["flaky_hook"][0].response_body == "try again later"
    assert json.loads(log["flaky_hook"][0].request_body) == sent
    assert [d.status_code for d in log["down_hook"]] == [500, 500, 500]
    [timeout] = log["slow_hook"]
    assert timeout.status_code is None and timeout.error == "timeout after 1s"
    assert 900 <= timeout.duration_ms < 2400
    assert [d.status_code for d in log["busy_hook"]] == [429, 200]
    waited = (log["busy_hook"][1].at - log["busy_hook"][0].at).total_seconds()
    assert waited >= 0.9  # Retry-After: 1, not the 50 ms backoff


def test_state_entered_sends_the_mapped_body_and_replay_after_fix(
    engine: sa.Engine, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow, ann = _setup(engine)
    ticket = flow.create("ticket", {"title": "closing"}, actor=ann)
    monkeypatch.delenv("FLOWDESK_WEBHOOK_SECRET")
    flow.transition("ticket", ticket["id"], "close", actor=ann,
                    expected_version=ticket["row_version"])
    _run(engine)
    job = _job(engine, "closing_hook")  # no signing key: refused before sending, then dead
    assert job.status == "dead" and "FLOWDESK_WEBHOOK_SECRET" in job.last_error
    assert "closed" not in _Receiver.calls

    monkeypatch.setenv("FLOWDESK_WEBHOOK_SECRET", SECRET)
    assert queue.replay(engine, job.id)
    _run(engine)
    assert queue.get(engine, job.id).status == "done"
    [call] = _Receiver.calls["closed"]
    assert call["valid"] and call["headers"]["X-Flowdesk-Event"] == "state_entered:closed"
    assert json.loads(call["body"]) == {"ticketNumber": ticket["number"], "status": "CLOSED"}
    with engine.connect() as conn:
        log = delivery_log(conn, job_id=job.id)
    assert [d.status_code for d in reversed(log)] == [None, None, 200]
    assert "FLOWDESK_WEBHOOK_SECRET" in log[-1].error


def test_a_missing_url_setting_is_named(engine: sa.Engine, receiver: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    flow, ann = _setup(engine)
    monkeypatch.delenv("FLOWDESK_HOOKS_URL")
    flow.create("ticket", {"title": "slow"}, actor=ann)
    _run(engine)
    job = _job(engine, "slow_hook")
    assert job.status == "dead"
    assert "set HOOKS_URL or FLOWDESK_HOOKS_URL" in job.last_error
