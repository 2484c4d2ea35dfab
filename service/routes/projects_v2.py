"""``/config/v2/projects/``: projects with the org in the request body, as Hydrolix's 6.4 v2
API takes it (docs/api.md). The list shows every project of the user's orgs (``org`` filters);
a create names its ``org`` in the body, which the token lookup checks exactly as the v1 path's
org (403 without projects.write there), and an org the user cannot see is 400
``{"org": ["org does not exist."]}``. The rows and rules are v1's: the same statements."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, QueryParameter

from service.api import READ, WRITE, Paging, Text, listing
from service.errors import ORG_MISSING, Conflict
from service.queries import Db, query
from service.request import run
from service.routes.projects import SQL, CustomerRef, Name, Project, ProjectPage, Settings, _written
from service.routes.upgrade import database_refusals

LIST = query("projects.list_v2")


class ProjectCreateV2(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    org: Annotated[UUID, msgspec.Meta(description="The org the project belongs to (one the user sees).")]
    description: Text | None = None
    settings: Settings = msgspec.field(default_factory=dict)
    customer: CustomerRef = None


@get("/config/v2/projects", tags=["projects"], responses=READ, summary="List the projects of the user's orgs")
async def list_projects_v2(
    request: Request,
    paging: NamedDependency[Paging],
    org: Annotated[UUID | None, QueryParameter(description="Only the projects of this org.")] = None,
    name: Annotated[str | None, QueryParameter(description="Only the projects with this exact name.")] = None,
) -> list[Project] | ProjectPage:  # type: ignore[valid-type]
    async def work(db: Db) -> Any:
        return listing(request, paging, await db.all(LIST, org=org, name=name, **paging.sql()))

    return await run(request, "projects.read", work)


@post(
    "/config/v2/projects",
    tags=["projects"],
    responses=WRITE,
    summary="Create a project in the org named in the body",
)
async def create_project_v2(request: Request, data: JSONBody[ProjectCreateV2]) -> Project:
    async def work(db: Db) -> dict[str, Any]:
        with database_refusals():
            row = await db.one(
                SQL["create"],
                org_id=data.org,
                name=data.name,
                description=data.description,
                settings=msgspec.json.encode(data.settings).decode(),
                customer=data.customer,
            )
        return _written(row, data.customer)  # type: ignore[arg-type]

    try:
        return await run(request, "projects.write", work, org_id=data.org)
    except NotFoundException:  # the token lookup: an org the user cannot see is no org
        raise Conflict({"org": [ORG_MISSING]}) from None


HANDLERS = [list_projects_v2, create_project_v2]
