"""Notifications: the `notify.send` and `notify.email` jobs, and the in-app inbox.

`notify.send` (enqueued by the `notify` action, `engine.actions`) loads the
Notification document from the app version the record runs on, resolves its
recipients (`to` and `cc` parties -> active users, plus fixed `{email: ...}`
addresses), and renders subject, text and HTML once per recipient, in the
recipient's language, with the record *as that recipient may see it*: fields
their roles cannot read are absent, masked fields masked, referred records
(`record.customer.name`) redacted by the referred entity's field rules. Then per
channel:

* `in_app`: a row in `fd_notifications`, in the job's transaction (so exactly
  once);
* `email`: one `notify.email` job per address, carrying the rendered message. A
  failed SMTP send fails only that job, which the queue retries with backoff and
  dead-letters after its last attempt; the in-app rows and the other addresses
  are not touched. The `Message-ID` is fixed per job and address, so a receiver
  can drop the copy a retry sends after an unrecorded success.

A recipient whose roles cannot read the entity gets nothing; a user without an
e-mail address gets no e-mail (both logged). Fixed addresses belong to no user:
they see only the record's number, state and id. No SMTP host configured: the
e-mail channel is skipped with a warning (in-app delivery still happens).

Templates run in Jinja2's sandbox (no attribute of Python internals, no calls
outside the safe set); an unknown or hidden name renders as empty text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, nodes
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Connection, func, select, update

from flowdesk.engine._context import Scope
from flowdesk.engine._runtime import engine_for
from flowdesk.jobs.handlers import register
from flowdesk.jobs.queue import Job, enqueue
from flowdesk.model.appmodel import AppModel
from flowdesk.model.notification import Notification
from flowdesk.model.party import Party
from flowdesk.security import (
    FieldAccess,
    PrincipalNotFound,
    field_access,
    load_principal,
    redact,
)
from flowdesk.settings import Settings, load_settings
from flowdesk.store import platform_tables as pt
from flowdesk.store.errors import NotFound
from flowdesk.store.records import RecordStore

from . import email as smtp

__all__ = [
    "EXTERNAL_FIELDS",
    "InAppNotification",
    "Rendered",
    "list_notifications",
    "mark_read",
    "notify_email",
    "notify_send",
    "render",
    "unread_count",
]

EXTERNAL_FIELDS = frozenset({"id", "number", "state"})
"""What a fixed `{email: ...}` address (no user, no roles) sees of the record."""
USER_KEYS = ("id", "username", "name", "email", "locale")
"""What templates see of a user (the recipient, `record.assignee` ...)."""
_log = logging.getLogger("flowdesk.notifications")
_TEXT = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)
_HTML = SandboxedEnvironment(autoescape=True, undefined=ChainableUndefined)


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Rendered:
    """One notification as one recipient reads it."""

    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class _Recipient:
    user_id: int | None  # None: a fixed address, who sees only EXTERNAL_FIELDS
    email: str | None
    locale: str
    view: Mapping[str, Any]  # the record as they may see it
    person: Mapping[str, Any]  # `recipient` / `user` in templates


def _locale(value: str | None, default: str) -> str:
    """`zh-CN` -> `zh`; labels have `en` and `zh`."""
    return (value or default or "en").split("-")[0].split("_")[0].lower()


def _label(label: Any, locale: str) -> str | None:
    if label is None or isinstance(label, str):
        return label
    return str(label.text(locale))


@lru_cache(maxsize=512)
def _template(source: str, html: bool) -> Template:
    """Compiled once per text (the linker already checked it parses)."""
    return (_HTML if html else _TEXT).from_string(source)


def render(
    notification: Notification, locale: str, context: Mapping[str, Any]
) -> Rendered:
    """Subject (one line), text and HTML of `notification` in `locale` with `context`."""
    subject = _template(_label(notification.subject, locale) or "", False).render(context)
    text = _template(_label(notification.body, locale) or "", False).render(context)
    source = _label(notification.html, locale)
    html = _template(source, True).render(context) if source else None
    return Rendered(" ".join(subject.split()), text, html)


def _record_paths(notification: Notification) -> set[tuple[str, ...]]:
    """Paths under `record` the templates read (`record.customer.name` ->
    ("record", "customer", "name")), so referred records are loaded only when read."""
    paths: set[tuple[str, ...]] = set()
    for label in (notification.subject, notification.body, notification.html):
        for text in _texts(label):
            for node in _TEXT.parse(text).find_all(nodes.Getattr):
                chain = _chain(node)
                if chain and chain[0] == "record":
                    paths.add(tuple(chain))
    return paths


def _texts(label: Any) -> Iterator[str]:
    if label is None:
        return
    if isinstance(label, str):
        yield label
        return
    yield from (t for t in (label.en, label.zh) if t)


def _chain(node: nodes.Node) -> list[str] | None:
    names: list[str] = []
    while isinstance(node, nodes.Getattr):
        names.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    return [node.name, *reversed(names)]


class _Views:
    """The record (with the referred records the templates read) redacted per reader."""

    def __init__(self, model: AppModel, record: Mapping[str, Any],
                 loaded: Mapping[str, Any]) -> None:
        self.model, self.record, self.loaded = model, record, loaded

    def for_access(self, principal: Any, access: FieldAccess) -> dict[str, Any]:
        shown = redact(self.record, access)
        for name, value in self.loaded.items():
            if name in access.readable and name not in access.masked:
                shown[name] = self._referred(principal, access.references.get(name), value)
        return shown

    def external(self) -> dict[str, Any]:
        return {k: v for k, v in self.record.items() if k in EXTERNAL_FIELDS}

    def _referred(self, principal: Any, target: str | None, value: Any) -> Any:
        if isinstance(value, list):
            return [self._referred(principal, target, item) for item in value]
        if not isinstance(value, Mapping):
            return value
        if target == "user":
            return {k: value.get(k) for k in USER_KEYS}
        if target in self.model.entities:
            return redact(value, field_access(principal, target, self.model, action="update"))
        return dict(value)


# --------------------------------------------------------------------------- notify.send


@register("notify.send", replace=True)
def notify_send(connection: Connection, job: Job) -> None:
    """Render a notification for each recipient and deliver it on its channels."""
    payload = job.payload
    engine = engine_for(connection, payload["app"])
    entity = payload.get("entity")
    record: dict[str, Any] = {}
    if entity is not None:
        try:
            record = engine.store.get(entity, payload["record_id"], connection=connection)
        except NotFound:
            _log.info("notification %s: %s %s no longer exists, nothing sent",
                      payload["template"], entity, payload["record_id"])
            return
    model = engine.model_for(record, connection)
    notification = model.notifications.get(payload["template"])
    if notification is None:  # retrying cannot help: say so and drop it
        _log.warning("app %s %s has no notification `%s`: nothing sent", model.name,
                     model.version, payload["template"])
        return
    settings = load_settings()
    now = dt.datetime.now(dt.UTC)
    for recipient in _recipients(connection, engine, model, notification, entity, record,
                                 payload):
        context = _context(model, entity, record, recipient, settings, now)
        message = render(notification, recipient.locale, context)
        _deliver(connection, job, model, notification, entity, record, recipient, message,
                 settings)


def _parties(notification: Notification, payload: Mapping[str, Any]
             ) -> list[tuple[str, list[Any]]]:
    """Who the job is for, by the pointer their references are written at: the action's
    `to` (resolved ids, or party references given as data) instead of the document's,
    and always the document's `cc`."""
    given = payload.get("to")
    if payload.get("recipients") is not None:
        to: list[Any] = []
    elif given is not None:
        to = [p if isinstance(p, str) else Party.model_validate(p) for p in given]
    else:
        to = list(notification.to)
    return [("/to", to), ("/cc", list(notification.cc))]


def _recipients(
    connection: Connection, engine: Any, model: AppModel, notification: Notification,
    entity: str | None, record: Mapping[str, Any], payload: Mapping[str, Any],
) -> list[_Recipient]:
    scope = Scope(engine.store, model, "Notification", notification.name, entity or "")
    users: list[int] = list(payload.get("recipients") or [])
    emails = list(payload.get("emails") or [])
    for pointer, parties in _parties(notification, payload):
        for user in engine.parties.resolve_all(connection, parties, record, scope=scope,
                                               pointer=pointer):
            if user not in users:
                users.append(user)
        emails += [p.email for p in parties if not isinstance(p, str) and p.email]
    views = _Views(model, record, _loaded(engine.store, entity, record,
                                          _record_paths(notification), connection))
    default = getattr(model.manifest, "locale", "en")
    found = [r for r in (_user(connection, model, entity, views, u, default) for u in users)
             if r is not None]
    taken = {r.email.lower() for r in found if r.email}
    for address in dict.fromkeys(emails):
        if address.lower() not in taken:
            found.append(_Recipient(None, address, _locale(None, default), views.external(),
                                    {"email": address}))
    return found


def _loaded(store: RecordStore, entity: str | None, record: Mapping[str, Any],
            paths: Iterable[tuple[str, ...]], connection: Connection) -> dict[str, Any]:
    """Referred records the templates read, as `expression_view` loads them."""
    deep = [p for p in paths if len(p) > 2]
    if entity is None or not deep:
        return {}
    view = store.expression_view(entity, record, deep, connection=connection)
    return {name: view[name] for name in {p[1] for p in deep} if isinstance(
        view.get(name), Mapping | list)}


def _user(connection: Connection, model: AppModel, entity: str | None, views: _Views,
          user_id: int, default: str) -> _Recipient | None:
    """A user recipient with their view of the record; None when they may not read it."""
    try:
        principal = load_principal(connection, user_id, model)
    except PrincipalNotFound:
        return None
    view: dict[str, Any] = {}
    if entity is not None:
        access = field_access(principal, entity, model, action="update")
        if not access.readable:
            _log.info("notification to user %s (%s) skipped: they may not read %s", user_id,
                      principal.username, entity)
            return None
        view = views.for_access(principal, access)
    attributes = principal.attributes
    locale = _locale(attributes.get("locale"), default)
    person = {"id": user_id, "username": principal.username, "name": attributes.get("name"),
              "email": attributes.get("email"), "locale": locale}
    return _Recipient(user_id, attributes.get("email"), locale, view, person)


def _context(model: AppModel, entity: str | None, record: Mapping[str, Any],
             recipient: _Recipient, settings: Settings, now: dt.datetime) -> dict[str, Any]:
    link = f"{settings.public_url or ''}/apps/{model.name}"
    if entity is not None:
        link += f"/{entity}/{record['id']}"
    return {
        "record": recipient.view,
        "recipient": recipient.person,
        "user": recipient.person,
        "app": {"name": model.name, "title": _label(model.manifest.title, recipient.locale)},
        "link": link,
        "survey_link": f"{link}/survey",
        "now": now,
    }


def _deliver(connection: Connection, job: Job, model: AppModel, notification: Notification,
             entity: str | None, record: Mapping[str, Any], recipient: _Recipient,
             message: Rendered, settings: Settings) -> None:
    now = dt.datetime.now(dt.UTC)
    if "in_app" in notification.channels and recipient.user_id is not None:
        connection.execute(pt.notifications.insert().values(
            user_id=recipient.user_id, app=model.name, entity=entity, record_id=record.get("id"),
            notification=notification.name, subject=message.subject, body=message.text,
            created_at=now,
        ))
    if "email" not in notification.channels:
        return
    if not recipient.email:
        _log.info("notification %s: user %s has no e-mail address, no e-mail sent",
                  notification.name, recipient.user_id)
        return
    if not settings.smtp_host:
        _log.warning("notification %s: FLOWDESK_SMTP_HOST is not set, no e-mail to %s",
                     notification.name, recipient.email)
        return
    who = recipient.user_id if recipient.user_id is not None else recipient.email
    domain = settings.smtp_from.rpartition("@")[2] or "flowdesk"
    enqueue(connection, "notify.email", {
        "to": recipient.email, "subject": message.subject, "text": message.text,
        "html": message.html, "message_id": f"<fd-{job.id}-{_token(who)}@{domain}>",
        "notification": notification.name, "app": model.name,
    }, idempotency_key=f"notify.email:{job.id}:{_token(who)}"[:200], now=now)


def _token(who: int | str) -> str:
    """A Message-ID-safe token for a recipient (a user id, else the address's hash)."""
    if isinstance(who, int):
        return f"u{who}"
    return "a" + hashlib.sha1(who.lower().encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- notify.email


@register("notify.email", replace=True)
def notify_email(connection: Connection, job: Job) -> None:
    """Send one rendered message; an SMTP failure raises, so the queue retries it."""
    payload = job.payload
    smtp.send(smtp.OutgoingEmail(
        to=payload["to"], subject=payload["subject"], text=payload["text"],
        html=payload.get("html"), message_id=payload["message_id"],
        headers=(("X-Flowdesk-Notification", str(payload.get("notification", ""))),),
    ), load_settings())


# --------------------------------------------------------------------------- in-app inbox


@dataclass(frozen=True)
class InAppNotification:
    """One row of a user's in-app inbox."""

    id: int
    app: str
    entity: str | None
    record_id: int | None
    notification: str
    subject: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC


def unread_count(connection: Connection, user_id: int) -> int:
    """How many of the user's in-app notifications are unread (the badge)."""
    table = pt.notifications
    statement = select(func.count()).select_from(table).where(
        table.c.user_id == user_id, table.c.read_at.is_(None))
    return int(connection.execute(statement).scalar_one())


def list_notifications(
    connection: Connection, user_id: int, unread_only: bool = False, *, limit: int = 50,
    before_id: int | None = None,
) -> list[InAppNotification]:
    """The user's notifications, newest first; `before_id` pages further back."""
    if not 1 <= limit <= 500:
        raise ValueError(f"limit must be between 1 and 500, got {limit}")
    table = pt.notifications
    statement = select(table).where(table.c.user_id == user_id)
    if unread_only:
        statement = statement.where(table.c.read_at.is_(None))
    if before_id is not None:
        statement = statement.where(table.c.id < before_id)
    rows = connection.execute(statement.order_by(table.c.id.desc()).limit(limit)).mappings()
    return [
        InAppNotification(
            row["id"], row["app"], row["entity"], row["record_id"], row["notification"],
            row["subject"], row["body"], _utc(row["created_at"]), _utc(row["read_at"]),
        )
        for row in rows
    ]


def mark_read(
    connection: Connection, user_id: int, ids: Iterable[int], *, now: dt.datetime | None = None
) -> int:
    """Mark the user's notifications `ids` read; others' ids are ignored. Returns how
    many changed (already read ones do not count)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return 0
    table = pt.notifications
    result = connection.execute(
        update(table)
        .where(table.c.user_id == user_id, table.c.id.in_(wanted), table.c.read_at.is_(None))
        .values(read_at=now or dt.datetime.now(dt.UTC))
    )
    return int(result.rowcount)
