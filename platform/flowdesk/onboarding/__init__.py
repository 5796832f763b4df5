"""Onboarding: bringing organisations, packs and data into a Flowdesk database.

Owns: the demo organisation and records that `flowdesk serve --demo` creates
(`demo`), and, as issue 8 grows it, importing organisations (departments,
users, roles), template packs and record data. Everything it writes goes
through the same doors as any other writer: the organisation tables of
`flowdesk.store.platform_tables`, and records through
`flowdesk.store.records.RecordStore`, so numbering, computed fields, rules and
audit apply to imported data too.
May import: `flowdesk.model`, `flowdesk.expressions`, `flowdesk.store`,
`flowdesk.engine` and `flowdesk.security`; never the API, web, jobs or CLI
layers (they call it). See README.md in this folder.
"""
