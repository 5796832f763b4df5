"""The REST API (ARCHITECTURE decision 9): one Litestar application serving every app
deployed in the database — CRUD, lists with CEL filters and keyset pages, full-text
search, timelines, workflow transitions, form definitions, per-app OpenAPI 3.1 — with
authentication by session, API key or bearer token, and errors as RFC 9457 problems.

Owns: HTTP only. Authorization and redaction are `flowdesk.security.RecordGuard`'s;
records are `flowdesk.store`'s; processes are `flowdesk.engine`'s. May import model,
expressions, store, engine, security, jobs; never web or cli. See README.md.
"""
