"""What the scheduler, ``GET /health`` and ``hierarchy status`` ask about the background job.

Each check is written once as :data:`service.queries.Steps` (the statements it runs and what
their rows mean), so the async API (``await db.steps(...)``) and the sync command line
(``db.steps(...)``) run the same logic. The job itself is ``config.reconcile_customers`` in the
database (docs/design.md, section 4).
"""

from __future__ import annotations

from service import releases
from service.queries import Steps, query

SQL = {name: query(f"jobs.{name}") for name in ("cron_table_exists", "cron_scheduled", "cron_ran_recently")}
RELEASE = query("health.release")


def cron_schedules_job() -> Steps[bool]:
    """Whether pg_cron in this database has the reconcile-customers schedule."""
    row = yield SQL["cron_table_exists"], {}
    if not row or not row["present"]:
        return False
    row = yield SQL["cron_scheduled"], {}
    return bool(row and row["scheduled"])


CRON_RECENT_SECONDS = 150.0  # pg_cron ticks every 60 s: two missed ticks and some slack


def cron_runs_job(seconds: float = CRON_RECENT_SECONDS) -> Steps[bool]:
    """Whether pg_cron ran the job successfully lately (not merely whether it is scheduled)."""
    row = yield SQL["cron_table_exists"], {}
    if not row or not row["present"]:
        return False
    row = yield SQL["cron_ran_recently"], {"seconds": seconds}
    return bool(row and row["ran"])


def job_has_work() -> Steps[bool]:
    """Whether the database's release runs the job at all (releases.Release.job_runs)."""
    row = yield RELEASE, {}
    release = releases.get(row["release"]) if row else None
    return release is not None and release.job_runs
