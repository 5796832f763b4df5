"""flowdesk.testing — analysts' scenario tests of an app (`flowdesk test`).

Owns: running an app's `tests/*.yaml` scenarios against the real engine on a
throwaway SQLite database with a fake clock, and the report of what passed.
May import: `flowdesk.model`, `flowdesk.store`, `flowdesk.engine`,
`flowdesk.jobs` (it drives the worker). The cli calls it.
"""
