"""Background work: the `fd_jobs` queue, its handlers, the worker and cron triggers.

Owns: enqueueing jobs inside a caller's transaction, claiming them
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, one writer on SQLite), running each
handler in the transaction that completes its job, retries with exponential
backoff and full jitter, the `dead` state and replay, and the schedule of
Automation rules with a `cron` trigger.
May import: `flowdesk.store`, `flowdesk.model` and `flowdesk.settings` (and
SQLAlchemy, croniter). The engine, API and CLI layers call it; it never imports
them: they add job kinds by registering handlers (`handlers.register`). See
README.md in this folder for where to start.
"""
