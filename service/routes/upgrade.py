"""Releases over HTTP: the pre-upgrade check, and what the routes need to know of the release.

``GET /config/v1/upgrade_blockers/?release=6.4`` (super admins: ``all_orgs``, since blockers span
every org) answers what blocks an upgrade to that release (default: the newest), from
``config.upgrade_blockers`` -- the function the migration itself calls first.

From 6.4 the database refuses what 6.4 forbids (migrations/0003): ``database_refusals`` turns
those refusals into the DRF bodies the API documents, naming the field to blame, and
``current_release`` lets a handler answer before touching anything where a whole endpoint
means nothing at that release (associations are final, the job has nothing to do).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Request, get
from litestar.exceptions import HTTPException
from litestar.params import QueryParameter
from psycopg import errors

from service import releases
from service.api import READ
from service.errors import FieldErrors
from service.queries import Db, query
from service.request import run

SQL = {name: query(f"releases.{name}") for name in ("has_upgrade_blockers", "upgrade_blockers")}
RELEASE = query("health.release")

# constraint names raised by migrations/0003's triggers
CUSTOMER_FINAL = "projects_customer_final"
CUSTOMER_KEEPS_PROJECTS = "customers_keep_projects"
CUSTOMER_FK = "projects_customer_id_fkey"
CUSTOMER_PROMOTED = "customers_promotion_kept"  # migrations/0005: while the customers are promoted
REQUIRED = "This field is required."


class Conflict(HTTPException):
    status_code = 409


async def current_release(db: Db) -> releases.Release:
    """The release the database reports (config.schema_release(): the truth)."""
    row = await db.one(RELEASE)
    return releases.BY_NAME[row["release"]]  # type: ignore[index]


def associations_final(release: releases.Release) -> str:
    return (
        f"Associations are final from release {releases.FIRST_FINAL}: a project keeps the customer it "
        f"was created with (the database is at {release.name})."
    )


@contextlib.contextmanager
def database_refusals(field: str = "customer", *, deleting: bool = False) -> Iterator[None]:
    """Around a statement: the 6.4 rules' refusals as 400 naming ``field`` (409 for a customer
    ``deleting`` that still holds projects)."""
    try:
        yield
    except errors.CheckViolation as exc:
        constraint, message = exc.diag.constraint_name, exc.diag.message_primary or str(exc)
        if constraint == CUSTOMER_FINAL:
            raise FieldErrors({field: [message]}) from None
        if constraint == CUSTOMER_KEEPS_PROJECTS:
            raise Conflict(message) from None
        raise
    except errors.NotNullViolation as exc:
        if exc.diag.table_name == "projects" and exc.diag.column_name == "customer_id":
            raise FieldErrors({field: [REQUIRED]}) from None
        raise
    except errors.ForeignKeyViolation as exc:
        # ON DELETE RESTRICT: a project joined the customer while it was being deleted
        if deleting and exc.diag.constraint_name == CUSTOMER_FK:
            raise Conflict(
                "This customer holds projects: a customer holding projects cannot be deleted."
            ) from None
        # while promoted, an org stands for it (trigger customers_promotion_kept_delete)
        if deleting and exc.diag.constraint_name == CUSTOMER_PROMOTED:
            raise Conflict(exc.diag.message_primary or str(exc)) from None
        raise


class Blocker(msgspec.Struct):
    blocker: str
    org: UUID
    org_name: str
    project: UUID
    project_name: str
    since: datetime
    reason: str
    remedy: str


class UpgradeCheck(msgspec.Struct):
    release: str
    target: str
    blocked: bool
    blockers: list[Blocker]


@get(
    "/config/v1/upgrade_blockers",
    tags=["releases"],
    responses=READ,
    summary="Pre-upgrade check (super admins): what blocks an upgrade to a release, and what to do",
)
async def upgrade_blockers(
    request: Request,
    release: Annotated[
        str | None,
        QueryParameter(
            description=f"The release to upgrade to (default {releases.LATEST}).",
            schema_extra={"enum": list(releases.NAMES)},  # documented; an unknown one is 400 saying so
        ),
    ] = None,
) -> UpgradeCheck:
    target = releases.LATEST if release is None else release
    if target not in releases.BY_NAME:
        raise FieldErrors({"release": [f"unknown release '{target}'; known: {', '.join(releases.NAMES)}."]})

    async def work(db: Db) -> UpgradeCheck:
        now = await current_release(db)
        found = []
        if (await db.one(SQL["has_upgrade_blockers"]))["present"]:  # type: ignore[index]
            found = await db.all(SQL["upgrade_blockers"], release=target)
        return UpgradeCheck(
            release=now.name,
            target=target,
            blocked=bool(found),
            blockers=[Blocker(**row) for row in found],
        )

    return await run(request, "all_orgs", work)


HANDLERS = [upgrade_blockers]
