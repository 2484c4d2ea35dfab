"""What the scheduler, ``GET /health`` and ``hierarchy status`` ask about the background job.

Each check is written once as :data:`service.queries.Steps` (the statements it runs and what
their rows mean), so the async API (``await db.steps(...)``) and the sync command line
(``db.steps(...)``) run the same logic. The job itself is ``config.reconcile_customers`` in the
database (docs/design.md, section 4).
"""

from __future__ import annotations

from service.queries import Steps, query

SQL = {name: query(f"jobs.{name}") for name in ("cron_table_exists", "cron_scheduled")}


def cron_schedules_job() -> Steps[bool]:
    """Whether pg_cron in this database has the reconcile-customers schedule."""
    row = yield SQL["cron_table_exists"], {}
    if not row or not row["present"]:
        return False
    row = yield SQL["cron_scheduled"], {}
    return bool(row and row["scheduled"])
