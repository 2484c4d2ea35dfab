"""``GET /health`` and ``GET /metrics``: no token needed (probes and scrapers).

Health answers 200 when the database answers and is at a release this service serves (one
with customers: 6.1 to 6.4, from ``service.releases``), else 503; the body says which, whether
pg_cron schedules the job (else the service's own scheduler runs it; ``none`` at a release
where the job has nothing to do), and the last run. Metrics: request counts and latencies by route
template and status (Litestar's Prometheus middleware, prefix ``hierarchy``), plus gauges
read from the database at scrape time: orphaned projects and seconds since the last job run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import psycopg
from litestar import Request, Response, get
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from service import jobs, releases
from service.queries import Db, query

REQUIRED_RELEASE = releases.FIRST_WITH_CUSTOMERS  # the oldest release the service serves
SQL = {name: query(f"health.{name}") for name in ("release", "last_run", "orphans")}

ORPHANS = Gauge("hierarchy_orphaned_projects", "Projects without a customer (the job re-homes them)")
SINCE_LAST_RUN = Gauge(
    "hierarchy_seconds_since_last_job_run",
    "Seconds since the background job last finished (NaN: never ran, or a release without the job)",
)
DATABASE_UP = Gauge("hierarchy_database_up", "1 when the last scrape could query the database")


class LastRun(msgspec.Struct):
    id: int
    source: str
    started: datetime
    finished: datetime
    skipped: bool
    error: str | None
    seconds_ago: float


class Health(msgspec.Struct):
    status: str
    database: str
    release: str | None
    required_release: str
    latest_release: str
    scheduler: str
    last_run: LastRun | None
    detail: str | None = None


async def _probe(request: Request) -> dict[str, Any]:
    report: dict[str, Any] = {
        "status": "unavailable",
        "database": "unreachable",
        "release": None,
        "required_release": REQUIRED_RELEASE,
        "latest_release": releases.LATEST,
        "scheduler": "unknown",
        "last_run": None,
    }
    database = request.app.state.database
    try:
        async with database.connection() as conn:
            db = Db(conn)
            report["database"] = "ok"
            async with conn.transaction():
                report["release"] = (await db.one(SQL["release"]))["release"]  # type: ignore[index]
                release = releases.get(report["release"])
                report["scheduler"] = (
                    "pg_cron"
                    if await db.steps(jobs.cron_schedules_job())
                    else "none"
                    if release is not None and release.customers_final
                    else ("service" if request.app.state.scheduler_enabled else "off")
                )
                report["last_run"] = await db.one(SQL["last_run"])
    except HTTPException:
        report["detail"] = "database unavailable"
    except psycopg.Error as exc:  # e.g. schema not migrated: config.schema_release() missing
        report["detail"] = f"schema not ready: {(exc.diag.message_primary or str(exc)).strip()}"
    served = releases.get(report["release"])
    if report["database"] == "ok" and served is not None and served.customers:
        report["status"] = "ok"
    elif report["database"] == "ok" and "detail" not in report:
        report["detail"] = (
            f"schema at release {report['release']}; this service needs {REQUIRED_RELEASE} "
            f"to {releases.LATEST}: run `hierarchy migrate`"
        )
    return report


@get(
    "/health",
    tags=["health"],
    security=[{}],
    summary="Database, schema release, schedule and last job run",
    responses={
        503: ResponseSpec(
            data_container=Health,
            description="Database unreachable or schema not at the required release",
            generate_examples=False,
        ),
        405: ResponseSpec(
            data_container=dict[str, str], description="Method not allowed", generate_examples=False
        ),
    },
)
async def health(request: Request) -> Response[Health]:
    report = await _probe(request)
    return Response(report, status_code=200 if report["status"] == "ok" else 503)  # type: ignore[arg-type]


@get(
    "/metrics",
    tags=["health"],
    security=[{}],
    media_type=CONTENT_TYPE_LATEST,
    summary="Prometheus metrics",
    responses={
        405: ResponseSpec(
            data_container=dict[str, str], description="Method not allowed", generate_examples=False
        )
    },
)
async def metrics(request: Request) -> Response[bytes]:
    try:
        async with request.app.state.database.connection() as conn:
            db = Db(conn)
            orphans = await db.one(SQL["orphans"])
            last = await db.one(SQL["last_run"])
            release = releases.get((await db.one(SQL["release"]))["release"])  # type: ignore[index]
        ORPHANS.set(orphans["orphans"] if orphans else 0)
        # at 6.4 the job has nothing to do and is unscheduled: its age would only grow, and alert
        job_runs = release is not None and not release.customers_final
        SINCE_LAST_RUN.set(last["seconds_ago"] if last and job_runs else float("nan"))
        DATABASE_UP.set(1)
    except (HTTPException, psycopg.Error):
        DATABASE_UP.set(0)  # still serve the request metrics: a scrape must not fail with the database
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


HANDLERS = [health, metrics]
