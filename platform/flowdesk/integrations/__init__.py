"""Talking to people and other systems: notifications (e-mail, in-app) and outbound
webhooks, delivered through the job queue.

Owns: the `notify.send` / `notify.email` and `webhook.deliver` job handlers, the
rendering of Notification templates in Jinja2's sandbox with the record as each
recipient may see it, the SMTP client, the in-app notification table's functions
(`unread_count`, `list_notifications`, `mark_read`), `WebhookObserver` (record
events -> delivery jobs), signed HTTP delivery and its log.
May import: `flowdesk.model`, `flowdesk.expressions`, `flowdesk.store`,
`flowdesk.security`, `flowdesk.engine`, `flowdesk.jobs`, `flowdesk.settings` (and
httpx, Jinja2, smtplib). The API, web and CLI layers call it; the jobs package
never imports it: the worker loads it by name (`jobs.handlers.BUILT_IN_MODULES`).
See README.md in this folder for where to start.
"""
