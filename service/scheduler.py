"""The fallback scheduler: runs the background job from the service where pg_cron does not.

Started by the app's lifespan. Each tick (``RECONCILE_INTERVAL`` seconds, default 10) first
asks the database whether pg_cron actually runs ``reconcile-customers``: a run recorded in
``cron.job_run_details`` as succeeded within the last ``CRON_RECENT_SECONDS`` (two minute ticks
and a half). If so, the tick does nothing (the check is repeated, so pg_cron takes over again
without a restart). Otherwise (no pg_cron, a schedule whose runs fail, a freshly scheduled job
that has not run yet, ``cron.log_run = off``) it runs
``SELECT config.reconcile_customers(source => 'service')``. The function's advisory lock makes a
service run and a pg_cron run, or several service processes, harmless: a concurrent run returns
at once, recorded as skipped. pg_cron's row-level security shows a user only its own jobs: a
service connecting as another user than the one that migrated sees no run and always runs the
job as well (harmless, as said).
Database errors are logged and the loop carries on; cancellation (shutdown) ends it cleanly.
``HIERARCHY_SCHEDULER=off`` disables it (the tests do).

The scheduler follows the release: a tick at a release where the job has no work (6.0 has no
customers; from 6.4 nothing can become an orphan) does nothing (``job_has_work``), so an
upgrade or a downgrade takes effect at the next tick without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from service import releases
from service.db import Database, Db
from service.queries import query

log = logging.getLogger(__name__)
RECONCILE = query("jobs.reconcile_from_scheduler")
CRON_TABLE = query("jobs.cron_table_exists")
CRON_RAN = query("jobs.cron_ran_recently")
CRON_RECENT_SECONDS = 150.0  # pg_cron ticks every 60 s: two missed ticks and some slack
RELEASE = query("health.release")


def enabled() -> bool:
    return os.environ.get("HIERARCHY_SCHEDULER", "on").strip().lower() not in ("off", "0", "false", "no")


def interval() -> float:
    raw = os.environ.get("RECONCILE_INTERVAL", "").strip()
    try:
        value = float(raw) if raw else 10.0
    except ValueError:
        log.warning("RECONCILE_INTERVAL=%r is not a number; using 10 s", raw)
        return 10.0
    return max(value, 0.1)


async def cron_runs_job(db: Db) -> bool:
    """Whether pg_cron ran the job successfully lately (not merely whether it is scheduled)."""
    present = await db.one(CRON_TABLE)
    if not present or not present["present"]:
        return False
    ran = await db.one(CRON_RAN, seconds=CRON_RECENT_SECONDS)
    return bool(ran and ran["ran"])


async def job_has_work(db: Db) -> bool:
    """Whether the database's release runs the job at all (releases.Release.job_runs)."""
    row = await db.one(RELEASE)
    release = releases.get(row["release"]) if row else None
    return release is not None and release.job_runs


async def tick(database: Database) -> dict | None:
    """One tick: the job's summary, or None when pg_cron runs it or the release has no job."""
    async with database.connection() as conn, conn.transaction():
        db = Db(conn)
        if not await job_has_work(db) or await cron_runs_job(db):
            return None
        row = await db.one(RECONCILE)
        return row["result"] if row else None


class Scheduler:
    def __init__(self, database: Database, every: float | None = None) -> None:
        self.database = database
        self.every = every if every is not None else interval()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reconcile-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        log.info("fallback scheduler: checking every %.1f s", self.every)
        while True:
            try:
                result = await tick(self.database)
                if result and (result.get("projects_associated") or result.get("error")):
                    log.info("reconcile: %s", result)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never crash the loop: the next tick retries
                log.warning("reconcile tick failed: %s", exc)
            await asyncio.sleep(self.every)
