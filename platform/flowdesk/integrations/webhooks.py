"""Outbound webhooks: record events -> `webhook.deliver` jobs -> signed HTTP POSTs.

`WebhookObserver(app)` is a workflow-engine observer (`after_create`,
`after_update`, `after_transition`, called inside the write's transaction). For
each webhook of the app's Integration documents whose entity and event match
and whose `when` holds, it enqueues one `webhook.deliver` job in that same
transaction, so a delivery exists exactly when the change committed. The body is
built then, from the record as it is at the event: the `map` values (the body is
exactly that object), or the `fields` listed (default: every field, masked
fields masked) in an envelope `{event, app, entity, id, occurred_at, record}`.

Events: `created` (and `state_entered:<initial>` for a record created in a
workflow), `updated` (a change of fields), `state_entered:<state>` and
`state_left:<state>` (a transition); a bare `state_entered` / `state_left`
matches every state. The idempotency key is the record version and event, so
the same event is enqueued once however often an observer sees it.

The `webhook.deliver` handler POSTs the JSON body with `X-Flowdesk-Event`,
`X-Flowdesk-Delivery` (the job id: the same on every attempt, so receivers drop
repeats), `X-Flowdesk-Timestamp` (Unix seconds), `Idempotency-Key` and
`X-Flowdesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`. The key
is `FLOWDESK_WEBHOOK_SECRET_<INTEGRATION>` if set, else `FLOWDESK_WEBHOOK_SECRET`
(secrets stored encrypted and named in the model are still to come). The
timeout is the integration's `timeout`; the attempts its `retry.attempts`; the
delays are the worker's exponential backoff with jitter, except that a 429 or
503 with `Retry-After` waits what the receiver asked. After the last attempt the
job is `dead` (replay: `flowdesk.jobs.queue.replay`).

Every attempt writes a row to `fd_webhook_deliveries`. A successful one is
written in the job's transaction. A failed attempt's transaction is rolled back
by the worker, so its row is written on a connection of its own once that
transaction has ended (`wait_for_delivery_log` waits for those writes).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from flowdesk.engine._context import Scope
from flowdesk.engine._runtime import EXTENSIONS
from flowdesk.jobs.handlers import RetryLater, register
from flowdesk.jobs.queue import Job, enqueue
from flowdesk.model._base import parse_duration
from flowdesk.model.appmodel import AppModel
from flowdesk.model.integration import Integration, Webhook
from flowdesk.security import apply_mask
from flowdesk.settings import load_settings
from flowdesk.store import platform_tables as pt
from flowdesk.store.records import SYSTEM_ACTOR, Actor, RecordStore
from flowdesk.store.values import json_value

from .http import HttpResult, expand_settings, post, retry_after_seconds, sign

__all__ = [
    "RESPONSE_LIMIT",
    "Delivery",
    "WebhookFailed",
    "WebhookObserver",
    "delivery_log",
    "wait_for_delivery_log",
    "webhook_deliver",
    "webhook_secret",
]

RESPONSE_LIMIT = 2000
"""Characters of a receiver's answer kept in the delivery log."""
_log = logging.getLogger("flowdesk.webhooks")
_pending: list[threading.Thread] = []
_pending_lock = threading.Lock()


class WebhookFailed(Exception):
    """A delivery attempt got no 2xx answer; the queue retries it."""


# --------------------------------------------------------------------------- events -> jobs


@dataclass(frozen=True)
class _Hook:
    integration: Integration
    index: int
    webhook: Webhook

    @property
    def pointer(self) -> str:
        return f"/webhooks/{self.index}"


class WebhookObserver:
    """Enqueues webhook deliveries for the record events of one app version.

    Args:
        app: the app version whose Integration documents declare the webhooks.
        store: its records service (loads what `when` and `map` read through
            references); built on first use from the connection's engine if omitted.
    """

    def __init__(self, app: AppModel, store: RecordStore | None = None) -> None:
        self.app = app
        self.store = store
        self._hooks: dict[str, list[_Hook]] = {}
        for integration in app.integrations.values():
            for index, webhook in enumerate(integration.webhooks):
                self._hooks.setdefault(webhook.entity, []).append(
                    _Hook(integration, index, webhook))

    def after_create(self, connection: Connection, entity: str, record: Mapping[str, Any],
                     actor: Actor | None = None) -> None:
        events = ["created"]
        if record.get("state"):
            events.append(f"state_entered:{record['state']}")
        self._fire(connection, entity, record, events, actor)

    def after_update(self, connection: Connection, entity: str, before: Mapping[str, Any],
                     after: Mapping[str, Any], actor: Actor | None = None) -> None:
        self._fire(connection, entity, after, ["updated"], actor)

    def after_transition(self, connection: Connection, entity: str, before: Mapping[str, Any],
                         after: Mapping[str, Any], transition: str | None,
                         actor: Actor | None = None) -> None:
        if before.get("state") == after.get("state"):
            return
        events = [f"state_left:{before.get('state')}", f"state_entered:{after.get('state')}"]
        self._fire(connection, entity, after, events, actor)

    # ------------------------------------------------------------------ the work

    def _fire(self, connection: Connection, entity: str, record: Mapping[str, Any],
              events: list[str], actor: Actor | None) -> None:
        hooks = self._hooks.get(entity)
        if not hooks or record.get("id") is None:
            return
        actor = actor or SYSTEM_ACTOR
        now = dt.datetime.now(dt.UTC)
        for hook in hooks:
            for event in events:
                if _matches(hook.webhook.events, event):
                    self._enqueue(connection, hook, entity, record, event, actor, now)

    def _scope(self, connection: Connection, hook: _Hook, entity: str) -> Scope:
        if self.store is None:
            self.store = RecordStore(connection.engine, self.app)
        return Scope(self.store, self.app, "Integration", hook.integration.name, entity)

    def _enqueue(self, connection: Connection, hook: _Hook, entity: str,
                 record: Mapping[str, Any], event: str, actor: Actor, now: dt.datetime) -> None:
        scope = self._scope(connection, hook, entity)
        webhook = hook.webhook
        if webhook.when and not scope.holds(hook.pointer + "/when", record, actor, now,
                                            connection):
            return
        if webhook.map is not None:
            body: Any = {
                key: json_value(scope.value(f"{hook.pointer}/map/{key}", value, record, actor,
                                            now, connection))
                for key, value in webhook.map.items()
            }
        else:
            body = {"event": event, "app": self.app.name, "entity": entity, "id": record["id"],
                    "occurred_at": now.isoformat(), "record": self._fields(entity, record, webhook)}
        integration = hook.integration
        payload = {
            "app": self.app.name, "integration": integration.name, "webhook": webhook.name,
            "event": event, "entity": entity, "record_id": record["id"], "url": webhook.url,
            "sign": webhook.sign, "body": body,
            "timeout": parse_duration(integration.timeout).total_seconds(),
        }
        key = (f"webhook:{self.app.name}:{integration.name}:{webhook.name}:{entity}:"
               f"{record['id']}:{record.get('row_version')}:{event}")
        enqueue(connection, "webhook.deliver", payload, idempotency_key=key[:200],
                max_attempts=integration.retry.attempts, now=now)

    def _fields(self, entity: str, record: Mapping[str, Any], webhook: Webhook) -> dict[str, Any]:
        spec = self.app.entities[entity].fields
        names = webhook.fields if webhook.fields is not None else [
            n for n in record if n != "deleted_at"]
        shown = {}
        for name in names:
            value = record.get(name)
            mask = getattr(spec.get(name), "mask", None)
            shown[name] = json_value(apply_mask(value, mask) if mask else value)
        return shown


def _matches(declared: list[str], event: str) -> bool:
    """`state_entered:closed` matches itself and a bare `state_entered`."""
    return event in declared or event.split(":", 1)[0] in declared


# --------------------------------------------------------------------------- delivery


def webhook_secret(integration: str, env: Mapping[str, str] | None = None) -> str | None:
    """The signing key: `FLOWDESK_WEBHOOK_SECRET_<INTEGRATION>`, else the common one."""
    source = os.environ if env is None else env
    own = source.get(f"FLOWDESK_WEBHOOK_SECRET_{integration.upper()}")
    return own or load_settings(dict(source)).webhook_secret


@register("webhook.deliver", replace=True)
def webhook_deliver(connection: Connection, job: Job) -> None:
    """One delivery attempt; a failure raises (`RetryLater` when the receiver said when)."""
    payload = job.payload
    body = json.dumps(payload["body"], ensure_ascii=False, separators=(",", ":")).encode()
    try:
        url = expand_settings(payload["url"])
        headers = _headers(job, body)
    except LookupError as error:
        _record_failure(connection.engine, job, payload["url"], body, None, str(error))
        raise WebhookFailed(str(error)) from None
    result = post(url, body, headers, timeout=float(payload.get("timeout") or 10.0),
                  limit=RESPONSE_LIMIT)
    if result.ok:
        connection.execute(pt.webhook_deliveries.insert().values(
            **_row(job, url, body, result, None)))
        return
    error = result.error or f"HTTP {result.status_code}: {result.body[:200]}"
    _record_failure(connection.engine, job, url, body, result, error)
    wait = retry_after_seconds(result.headers.get("retry-after"))
    if result.status_code in (429, 503) and wait is not None:
        raise RetryLater(f"{url} answered {result.status_code}, retry after {wait:g}s",
                         retry_after=wait)
    raise WebhookFailed(f"{url}: {error}")


def _headers(job: Job, body: bytes) -> dict[str, str]:
    payload = job.payload
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Flowdesk-Webhooks/1",
        "X-Flowdesk-Event": payload["event"],
        "X-Flowdesk-Delivery": str(job.id),
        "X-Flowdesk-Timestamp": timestamp,
        "Idempotency-Key": job.idempotency_key or f"fd-job-{job.id}",
    }
    if payload.get("sign", True):
        secret = webhook_secret(payload["integration"])
        if not secret:
            raise LookupError(
                f"webhook `{payload['webhook']}` is signed but no key is set: set "
                f"FLOWDESK_WEBHOOK_SECRET (or FLOWDESK_WEBHOOK_SECRET_"
                f"{payload['integration'].upper()})")
        headers["X-Flowdesk-Signature"] = sign(secret, timestamp, body)
    return headers


def _row(job: Job, url: str, body: bytes, result: HttpResult | None,
         error: str | None) -> dict[str, Any]:
    payload = job.payload
    return {
        "job_id": job.id, "app": payload["app"], "integration": payload["integration"],
        "webhook": payload["webhook"], "event": payload["event"], "url": url,
        "attempt": job.attempts, "status_code": result.status_code if result else None,
        "error": error, "request_body": body.decode(),
        "response_body": result.body[:RESPONSE_LIMIT] if result else None,
        "duration_ms": round(result.seconds * 1000, 3) if result else 0.0,
        "at": dt.datetime.now(dt.UTC),
    }


def _record_failure(engine: Engine, job: Job, url: str, body: bytes,
                    result: HttpResult | None, error: str) -> None:
    """Log a failed attempt outside the job's transaction, which will be rolled back.

    On SQLite that transaction holds the only write lock until the handler returns,
    so the row is written by a short-lived thread that waits for it (busy timeout);
    on PostgreSQL it is written at once on a second connection."""
    row = _row(job, url, body, result, error)

    def write() -> None:
        try:
            with engine.begin() as connection:
                connection.execute(pt.webhook_deliveries.insert().values(**row))
        except Exception:  # a log row must never fail the delivery's bookkeeping
            _log.exception("webhook job %s: cannot log failed attempt %s", job.id, job.attempts)

    if engine.dialect.name != "sqlite":
        write()
        return
    thread = threading.Thread(target=write, name=f"flowdesk-webhook-log-{job.id}", daemon=True)
    with _pending_lock:
        _pending[:] = [t for t in _pending if t.is_alive()]
        _pending.append(thread)
    thread.start()


def wait_for_delivery_log(timeout: float = 15.0) -> bool:
    """Wait until failed attempts' log rows are written (tests, orderly shutdown)."""
    deadline = time.monotonic() + timeout
    with _pending_lock:
        threads = list(_pending)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


# --------------------------------------------------------------------------- reading the log


@dataclass(frozen=True)
class Delivery:
    """One attempt as logged."""

    id: int
    job_id: int
    integration: str
    webhook: str
    event: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    request_body: str
    response_body: str | None
    duration_ms: float
    at: dt.datetime


def delivery_log(
    connection: Connection, *, app: str | None = None, job_id: int | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """Attempts, newest first, of one job or one app (or all)."""
    table = pt.webhook_deliveries
    statement = select(table).order_by(table.c.id.desc()).limit(limit)
    if app is not None:
        statement = statement.where(table.c.app == app)
    if job_id is not None:
        statement = statement.where(table.c.job_id == job_id)
    return [
        Delivery(
            row["id"], row["job_id"], row["integration"], row["webhook"], row["event"],
            row["url"], row["attempt"], row["status_code"], row["error"], row["request_body"],
            row["response_body"], row["duration_ms"],
            row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=dt.UTC),
        )
        for row in connection.execute(statement).mappings()
    ]



def _attach(engine: Any) -> None:
    """Every engine built for an app queues its webhooks."""
    engine.observers.append(WebhookObserver(engine.app, engine.store))


EXTENSIONS.append(_attach)
