"""The process engine: what makes workflow, SLA and calendar documents run.

Owns: business calendars (`calendar`: working time, due dates), and as they
arrive, workflow instances, approvals, SLA clocks and timers.
May import: `flowdesk.model`, `flowdesk.expressions`, `flowdesk.store`. It reads
the frozen `AppModel` only, never YAML; the API, web, jobs and CLI layers call
it, it never imports them. See README.md in this folder for where to start.
"""
