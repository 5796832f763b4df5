"""Sending e-mail over SMTP, configured by settings (`FLOWDESK_SMTP_*`).

One message per call, one connection per message: notifications are few, and a
fresh connection makes each `notify.email` job independent (a broken connection
fails one job, which the queue retries). Errors propagate so the queue retries
with backoff; the message's `Message-ID` is fixed per job and recipient, so a
receiver can drop the duplicate a retry after an unrecorded success sends.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from flowdesk.settings import Settings

__all__ = ["EmailNotConfigured", "OutgoingEmail", "build_message", "send"]

_TIMEOUT = 30.0


class EmailNotConfigured(RuntimeError):
    """`FLOWDESK_SMTP_HOST` is not set: e-mail cannot be sent."""


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered message for one address."""

    to: str
    subject: str
    text: str
    html: str | None
    message_id: str
    headers: tuple[tuple[str, str], ...] = ()


def build_message(email: OutgoingEmail, sender: str) -> EmailMessage:
    """The MIME message: text, plus an HTML alternative when there is one."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders stay quiet
    for name, value in email.headers:
        message[name] = value
    message.set_content(email.text)
    if email.html:
        message.add_alternative(email.html, subtype="html")
    return message


def send(email: OutgoingEmail, settings: Settings) -> None:
    """Send `email` through the configured SMTP server; raises on any failure."""
    if not settings.smtp_host:
        raise EmailNotConfigured("cannot send e-mail: FLOWDESK_SMTP_HOST is not set")
    message = build_message(email, settings.smtp_from)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=_TIMEOUT) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)
