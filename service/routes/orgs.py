"""Orgs: list and get (read-only through the API)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, get, route
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException

from service.api import READ, Metadata, OrgId, Paging, listing, metadata, page_of
from service.queries import Db, query
from service.request import run

SQL = {name: query(f"orgs.{name}") for name in ("list", "get", "list_promoted", "get_promoted")}


class OrgCustomer(msgspec.Struct):
    uuid: UUID
    name: str


class Org(msgspec.Struct):
    uuid: UUID
    name: str
    created: datetime
    modified: datetime
    customer: Annotated[
        OrgCustomer | None,
        msgspec.Meta(
            description="The customer this org stands for once the customers are promoted to orgs "
            "(release 6.4, `POST /config/v1/org_promotion/promote/`); null otherwise."
        ),
    ] = None


def _form(db: Db, name: str) -> str:
    """From release 6.4 the statement that shows the org's customer (the promotion's tables)."""
    return SQL[f"{name}_promoted" if db.user is not None and db.user.memberships else name]


OrgPage = page_of(Org, "OrgPage")


async def visible_org(db: Db, org_id: UUID) -> dict[str, Any]:
    """The org if the user may see it; 404 otherwise (another org's id looks like no id)."""
    org = await db.one(_form(db, "get"), org_id=org_id)
    if org is None:
        raise NotFoundException(f"Org {org_id} not found.")
    return org


@get("/config/v1/orgs", tags=["orgs"], summary="List the orgs the user can see", responses=READ)
async def list_orgs(request: Request, paging: NamedDependency[Paging]) -> list[Org] | OrgPage:  # type: ignore[valid-type]
    async def work(db: Db) -> Any:
        return listing(request, paging, await db.all(_form(db, "list"), **paging.sql()))

    return await run(request, "orgs.read", work)


@route(
    "/config/v1/orgs", http_method="OPTIONS", tags=["orgs"], summary="Describe the orgs list", responses=READ
)
async def describe_orgs(request: Request) -> Metadata:
    async def work(db: Db) -> Metadata:
        return metadata("Org List", "Organisations (read-only through this API).", None, False)

    return await run(request, "orgs.read", work)


@get("/config/v1/orgs/{org_id:str}", tags=["orgs"], summary="Get one org", responses=READ)
async def get_org(request: Request, org_id: OrgId) -> Org:
    return await run(request, "orgs.read", lambda db: visible_org(db, org_id))


HANDLERS = [describe_orgs, list_orgs, get_org]
