"""``/config/v2/projects/``: projects with the org in the request body, as Hydrolix's 6.4 v2
API takes it (docs/api.md). The list shows every project of the user's orgs (``org`` filters);
a create names its ``org`` in the body, which the token lookup checks exactly as the v1 path's
org (403 without projects.write there), and an org the user cannot see is 400
``{"org": ["org does not exist."]}``. A project's own path ``/config/v2/projects/{uuid}/``
takes the org from the project: another org's project is 404, a change needs projects.write in
the project's org (403), and an ``org`` in a PUT or PATCH body must be that org (400: a project
never changes org). The rows and rules are v1's: the same statements."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from service import front
from service.api import READ, WRITE, Paging, ProjectId, Text, listing
from service.errors import ORG_MISSING, PROJECT_OTHER_ORG, Conflict
from service.queries import Db, query
from service.request import run
from service.routes.projects import (
    SQL,
    CustomerRef,
    Name,
    Project,
    ProjectPage,
    ProjectPatch,
    ProjectUpdate,
    Settings,
    _found,
    _written,
    delete_in,
    update_in,
)
from service.routes.upgrade import database_refusals

LIST = query("projects.list_v2")
GET = query("projects.get_v2")
BodyOrg = Annotated[UUID, msgspec.Meta(description="The project's org (optional; it cannot change).")]


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


class ProjectUpdateV2(ProjectUpdate, forbid_unknown_fields=True):
    """PUT: name required; other fields absent are left as they are; ``org`` the project's own."""

    org: BodyOrg | UnsetType = UNSET


class ProjectPatchV2(ProjectPatch, forbid_unknown_fields=True):
    org: BodyOrg | UnsetType = UNSET


ITEM = "/config/v2/projects/{project_id:str}"


@get(ITEM, tags=["projects"], responses=READ, summary="Get a project of one of the user's orgs")
async def get_project_v2(request: Request, project_id: ProjectId) -> Project:
    async def work(db: Db) -> dict[str, Any]:
        return await _found(await db.one(GET, project_id=project_id), project_id)

    return await run(request, "projects.read", work)


async def _writable(request: Request, db: Db, project_id: UUID, body_org: Any = UNSET) -> UUID:
    """The project's org, once the user may change projects there: 404 for a project of an org
    the user does not see, 403 without projects.write in its org (a second token lookup, for
    that org, in the same transaction), 400 for a body naming another org."""
    org: UUID = (await _found(await db.one(GET, project_id=project_id), project_id))["org"]
    await front.session(request).user("projects.write", org)
    if body_org is not UNSET and body_org != org:
        raise Conflict({"org": [PROJECT_OTHER_ORG.format(org)]})
    return org


async def _update_v2(
    request: Request, project_id: UUID, data: ProjectUpdateV2 | ProjectPatchV2
) -> dict[str, Any]:
    async def work(db: Db) -> dict[str, Any]:
        return await update_in(db, await _writable(request, db, project_id, data.org), project_id, data)

    return await run(request, "projects.read", work)


@put(ITEM, tags=["projects"], responses=WRITE, summary="Replace a project's name (and any other field given)")
async def update_project_v2(
    request: Request, project_id: ProjectId, data: JSONBody[ProjectUpdateV2]
) -> Project:
    return await _update_v2(request, project_id, data)


@patch(ITEM, tags=["projects"], responses=WRITE, summary="Change some fields of a project")
async def patch_project_v2(
    request: Request, project_id: ProjectId, data: JSONBody[ProjectPatchV2]
) -> Project:
    return await _update_v2(request, project_id, data)


@delete(ITEM, tags=["projects"], responses=READ, summary="Delete a project")
async def delete_project_v2(request: Request, project_id: ProjectId) -> None:
    async def work(db: Db) -> None:
        await delete_in(db, await _writable(request, db, project_id), project_id)

    await run(request, "projects.read", work)


HANDLERS = [
    list_projects_v2,
    create_project_v2,
    get_project_v2,
    update_project_v2,
    patch_project_v2,
    delete_project_v2,
]
