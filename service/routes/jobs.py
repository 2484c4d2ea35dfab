"""The background job over HTTP: run it now, list recent runs, switch the customer mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, get, post, route
from litestar.di import NamedDependency
from litestar.openapi.spec import Operation
from litestar.params import JSONBody

from service.api import READ, WRITE, Metadata, Paging, field, listing, metadata, page_of, strict_body
from service.auth import run
from service.db import Db
from service.errors import FieldErrors
from service.queries import query
from service.routes.upgrade import associations_final, current_release

SQL = {name: query(f"jobs.{name}") for name in ("reconcile", "list_runs", "switch_mode")}
RECENT_RUNS = 100  # the plain list (no page/page_size) shows this many, newest first


class ReconcileRequest(msgspec.Struct, forbid_unknown_fields=True):
    dry_run: bool = False
    force: bool = False


class SwitchModeRequest(msgspec.Struct, forbid_unknown_fields=True):
    per_project: bool
    dry_run: bool = False


class JobRun(msgspec.Struct):
    id: int
    source: str
    dry_run: bool
    forced: bool
    skipped: bool
    started: datetime
    finished: datetime
    customers_created: int
    projects_associated: int
    customers_renamed: int
    orphans_waiting: int
    orphans_unresolved: int
    error: str | None


JobRunPage = page_of(JobRun, "JobRunPage")

# The job's own summary (config.reconcile_customers / config.switch_customer_mode): documented
# as an open object because its keys are the database's to extend.
Summary = dict[str, Any]

RECONCILE_FIELDS = {
    "dry_run": field("boolean", "Dry run", help_text="Report the planned changes; change nothing."),
    "force": field("boolean", "Force", help_text="Ignore the orphans' grace period."),
}


@dataclass
class OptionalBody(Operation):
    """Litestar documents every request body as required; reconcile runs with none too."""

    def __post_init__(self) -> None:
        if self.request_body is not None:
            self.request_body.required = False


@post(
    "/config/v1/customers/reconcile",
    tags=["jobs"],
    operation_class=OptionalBody,
    status_code=200,
    responses=WRITE,
    summary="Run the background job now; returns its summary (a dry run lists the planned changes)",
)
async def reconcile(request: Request, data: JSONBody[ReconcileRequest | None] = None) -> Summary:
    options = await strict_body(request, ReconcileRequest, data or ReconcileRequest())

    async def work(db: Db) -> Any:
        release = await current_release(db)
        if release.customers_final:  # nothing can be an orphan: say so instead of running
            return {
                "release": release.name,
                "nothing_to_reconcile": True,
                "detail": f"Nothing to reconcile: at release {release.name} every project keeps its "
                "customer for good, so there are no orphans and the job does not run.",
            }
        row = await db.one(SQL["reconcile"], dry_run=options.dry_run, force=options.force)
        return row["result"]  # type: ignore[index]

    return await run(request, "jobs.run", work)


@get(
    "/config/v1/customers/reconcile",
    tags=["jobs"],
    responses=READ,
    summary=f"Recent runs of the job, newest first (the plain list shows the last {RECENT_RUNS})",
)
async def list_runs(request: Request, paging: NamedDependency[Paging]) -> list[JobRun] | JobRunPage:  # type: ignore[valid-type]
    async def work(db: Db) -> Any:
        return listing(request, paging, await db.all(SQL["list_runs"], **paging.sql(RECENT_RUNS)))

    return await run(request, "jobs.read", work)


@route(
    "/config/v1/customers/reconcile",
    http_method="OPTIONS",
    tags=["jobs"],
    responses=READ,
    summary="Describe the job runs list and the options of a run",
)
async def describe_runs(request: Request) -> Metadata:
    async def work(db: Db) -> Metadata:
        return metadata(
            "Reconcile",
            "Runs of the background job that homes orphaned projects.",
            RECONCILE_FIELDS,
            "jobs.run" in db.user.permissions,
        )  # type: ignore[union-attr]

    return await run(request, "jobs.read", work)


@post(
    "/config/v1/customers/switch_mode",
    tags=["jobs"],
    status_code=200,
    responses=WRITE,
    summary="Switch between per-project customers and one default customer per org, atomically (rule 9)",
)
async def switch_mode(request: Request, data: JSONBody[SwitchModeRequest]) -> Summary:
    data = await strict_body(request, SwitchModeRequest)

    async def work(db: Db) -> Any:
        release = await current_release(db)
        if release.customers_final:  # a switch moves projects between customers
            raise FieldErrors({"non_field_errors": [associations_final(release)]})
        row = await db.one(SQL["switch_mode"], per_project=data.per_project, dry_run=data.dry_run)
        return row["result"]  # type: ignore[index]

    return await run(request, "mode.switch", work, default_field="per_project")


HANDLERS = [describe_runs, reconcile, list_runs, switch_mode]
