"""The fallback scheduler: runs the background job from the service where pg_cron does not.

Started by the app's lifespan. Each tick (``RECONCILE_INTERVAL`` seconds, default 10) first
asks the database whether pg_cron schedules ``reconcile-customers``; if it does, the tick does
nothing (the check is repeated, so installing pg_cron later takes over without a restart).
Otherwise it runs ``SELECT config.reconcile_customers(source => 'service')``; the function's
advisory lock makes several service processes safe (a concurrent run returns at once).
Database errors are logged and the loop carries on; cancellation (shutdown) ends it cleanly.
``HIERARCHY_SCHEDULER=off`` disables it (the tests do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from service import jobs
from service.db import Database
from service.queries import Db, query

log = logging.getLogger(__name__)
RECONCILE = query("jobs.reconcile_from_scheduler")


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


async def tick(database: Database) -> dict | None:
    """One tick: the job's summary, or None when pg_cron schedules it."""
    async with database.connection() as conn, conn.transaction():
        db = Db(conn)
        if await db.steps(jobs.cron_schedules_job()):
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
