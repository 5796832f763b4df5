"""Storage: tables generated from AppModels, the platform's own tables and their
Alembic migrations, the records service with audit, CEL-to-SQL filters, and
versioned deploys with plans.

May import `flowdesk.model`, `flowdesk.expressions` and `flowdesk.settings`;
the engine, security, API, web and job layers import it. See README.md.
"""
