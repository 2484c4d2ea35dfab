"""The audit log (who changed what), newest first; tenant-scoped in audit.sql."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, get, route
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from service.api import READ, TEXT_PATTERN, Metadata, Paging, listing, metadata, page_of, strict_query
from service.queries import Db, by_form
from service.request import run

LIST = by_form("audit.list")  # release 6.4 (memberships) or the form before
OBJECT_TYPES = ("orgs", "projects", "customers", "tunables", "users")


class AuditEntry(msgspec.Struct):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: UUID | None
    changed: list[str] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


AuditPage = page_of(AuditEntry, "AuditPage")


@get(
    "/config/v1/audit",
    tags=["audit"],
    responses=READ,
    summary="Audit log entries, newest first, filtered by object, time and actor",
)
async def list_audit(
    request: Request,
    paging: NamedDependency[Paging],
    object_type: Annotated[
        str | None,
        QueryParameter(
            description="orgs, projects, customers, tunables, users or org_memberships (release 6.4: "
            "object_id is the user).",
            pattern="^(orgs|projects|customers|tunables|users|org_memberships)$",
        ),
    ] = None,
    object_id: Annotated[UUID | None, QueryParameter(description="The object's uuid.")] = None,
    since: Annotated[
        datetime | None, QueryParameter(description="Entries at or after this time (ISO 8601).")
    ] = None,
    until: Annotated[
        datetime | None, QueryParameter(description="Entries before this time (ISO 8601).")
    ] = None,
    actor: Annotated[
        str | None,
        QueryParameter(description="Entries by this actor (email or database role).", pattern=TEXT_PATTERN),
    ] = None,
) -> list[AuditEntry] | AuditPage:  # type: ignore[valid-type]
    strict_query(request, ("since", "until"), datetime)

    async def work(db: Db) -> Any:
        rows = await db.all(
            LIST[db.user.memberships],  # type: ignore[union-attr]
            object_type=object_type,
            object_id=object_id,
            since=since,
            until=until,
            actor=actor,
            **paging.sql(),
        )
        return listing(request, paging, rows)

    return await run(request, "audit.read", work)


@route(
    "/config/v1/audit",
    http_method="OPTIONS",
    tags=["audit"],
    responses=READ,
    summary="Describe the audit log list",
)
async def describe_audit(request: Request) -> Metadata:
    async def work(db: Db) -> Metadata:
        return metadata(
            "Audit Log", "Who changed what; written by database triggers whoever writes.", None, False
        )

    return await run(request, "audit.read", work)


HANDLERS = [describe_audit, list_audit]
