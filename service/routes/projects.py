"""Projects of an org, with their customer (docs/api.md); the orphan audit is
``GET /config/v1/orgs/{org_id}/projects/?customer_id__isnull=True``.

Every handler passes the path's org to service.request.run, whose token lookup answers 404
for an org the user may not see (as orgs.get): the statements below only scope by that org."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, delete, get, patch, post, put, route
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from service.api import (
    COMMON_READ_ONLY,
    READ,
    TEXT_PATTERN,
    WRITE,
    Metadata,
    OrgId,
    Paging,
    ProjectId,
    Text,
    field,
    listing,
    metadata,
    page_of,
)
from service.errors import NO_SUCH_CUSTOMER, Conflict
from service.queries import Db, query
from service.request import run
from service.routes.upgrade import current_release, database_refusals

SQL = {
    name: query(f"projects.{name}")
    for name in ("list", "get", "create", "update", "delete", "org_stands_for_customer")
}

Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        # the projects_name_valid check of the database, which has the last word
        pattern="^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="1 to 255 characters: letters, digits, _ and -; "
        "starts with a letter or digit; unique in the org.",
    ),
]
Settings = Annotated[dict[str, Any], msgspec.Meta(description="Free-form settings (a JSON object).")]
CustomerRef = Annotated[
    UUID | None,
    msgspec.Meta(
        description="The customer's uuid. Before 6.4 it may be omitted on create (the server assigns "
        "one, rule 5); from 6.4 it is required on create and cannot be changed."
    ),
]


class Project(msgspec.Struct):
    uuid: UUID
    name: str
    org: UUID
    description: str | None
    settings: dict[str, Any]
    customer: UUID | None
    created: datetime
    modified: datetime


ProjectPage = page_of(Project, "ProjectPage")


class ProjectCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Text | None = None
    settings: Settings = msgspec.field(default_factory=dict)
    customer: CustomerRef = None


class ProjectUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """PUT: name required; other fields absent are left as they are."""

    name: Name
    description: Text | None | UnsetType = UNSET
    settings: Settings | UnsetType = UNSET
    customer: CustomerRef | UnsetType = UNSET


class ProjectPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    description: Text | None | UnsetType = UNSET
    settings: Settings | UnsetType = UNSET
    customer: CustomerRef | UnsetType = UNSET


POST_FIELDS = {
    **COMMON_READ_ONLY,
    "name": field(
        "string",
        "Name",
        required=True,
        max_length=255,
        help_text="Letters, digits, _ and -; starts with a letter or digit; unique in the org.",
    ),
    "org": field("uuid", "Org", read_only=True),
    "description": field("string", "Description"),
    "settings": field("json", "Settings", help_text="A JSON object."),
    "customer": field("uuid", "Customer", help_text="Omit to let the server assign one."),
}
# From 6.4 (releases.Release.customers_final) the creator names the customer, for good.
POST_FIELDS_FINAL = {
    **POST_FIELDS,
    "customer": field(
        "uuid", "Customer", required=True, help_text="The customer the project belongs to, for good."
    ),
}
# From 6.4, in an org that stands for a customer while the customers are promoted to orgs: a
# create without a customer gets the org's (config.refuse_project_outside_customer_org).
POST_FIELDS_PROMOTED = {
    **POST_FIELDS,
    "customer": field(
        "uuid",
        "Customer",
        help_text="Omit to get the customer this org stands for (the customers are promoted to orgs); "
        "given, it must be that one. The project keeps it for good.",
    ),
}


def _written(row: dict[str, Any], customer: Any, project_id: UUID | None = None) -> dict[str, Any]:
    """The answer of the guarded create or update: the statement wrote nothing when the body
    names a customer the user cannot see (400 'does not exist') or there is no such project
    (404); otherwise the project."""
    if row.pop("unknown_customer"):
        raise Conflict({"customer": [NO_SUCH_CUSTOMER.format(customer)]})
    if row["uuid"] is None:
        raise NotFoundException(f"Project {project_id} not found.")
    return row


async def _found(row: dict[str, Any] | None, project_id: UUID) -> dict[str, Any]:
    if row is None:
        raise NotFoundException(f"Project {project_id} not found.")
    return row


@get(
    "/config/v1/orgs/{org_id:str}/projects",
    tags=["projects"],
    responses=READ,
    summary="List an org's projects (customer_id__isnull=True is the orphan audit)",
)
async def list_projects(
    request: Request,
    org_id: OrgId,
    paging: NamedDependency[Paging],
    customer_id__isnull: Annotated[
        bool | None,
        QueryParameter(description="True: only projects without a customer (orphans); False: only with one."),
    ] = None,
    customer: Annotated[
        UUID | None, QueryParameter(description="Only the projects of this customer.")
    ] = None,
    name: Annotated[
        str | None,
        QueryParameter(description="Only the project with this exact name.", pattern=TEXT_PATTERN),
    ] = None,
) -> list[Project] | ProjectPage:  # type: ignore[valid-type]
    async def work(db: Db) -> Any:
        rows = await db.all(
            SQL["list"],
            org_id=org_id,
            isnull=customer_id__isnull,
            customer=customer,
            name=name,
            **paging.sql(),
        )
        return listing(request, paging, rows)

    return await run(request, "projects.read", work, org_id=org_id)


@route(
    "/config/v1/orgs/{org_id:str}/projects",
    http_method="OPTIONS",
    tags=["projects"],
    summary="Describe the projects list and the fields of a new project",
    responses=READ,
)
async def describe_projects(request: Request, org_id: OrgId) -> Metadata:
    async def work(db: Db) -> Metadata:
        fields = POST_FIELDS
        if (await current_release(db)).customers_final:
            promoted = await db.one(SQL["org_stands_for_customer"], org_id=org_id)
            fields = POST_FIELDS_PROMOTED if promoted["stands"] else POST_FIELDS_FINAL  # type: ignore[index]
        return metadata(
            "Project List",
            "Projects of an org; each belongs to one customer.",
            fields,
            "projects.write" in db.user.permissions,
        )  # type: ignore[union-attr]

    return await run(request, "projects.read", work, org_id=org_id)


@post(
    "/config/v1/orgs/{org_id:str}/projects",
    tags=["projects"],
    responses=WRITE,
    summary="Create a project (it gets a customer in the same transaction)",
)
async def create_project(request: Request, org_id: OrgId, data: JSONBody[ProjectCreate]) -> Project:
    async def work(db: Db) -> dict[str, Any]:
        with database_refusals():  # from 6.4: no customer is "This field is required."
            row = await db.one(
                SQL["create"],
                org_id=org_id,
                name=data.name,
                description=data.description,
                settings=msgspec.json.encode(data.settings).decode(),
                customer=data.customer,
            )
        return _written(row, data.customer)  # type: ignore[arg-type]

    return await run(request, "projects.write", work, org_id=org_id)


@get(
    "/config/v1/orgs/{org_id:str}/projects/{project_id:str}",
    tags=["projects"],
    responses=READ,
    summary="Get a project",
)
async def get_project(request: Request, org_id: OrgId, project_id: ProjectId) -> Project:
    async def work(db: Db) -> dict[str, Any]:
        return await _found(await db.one(SQL["get"], org_id=org_id, project_id=project_id), project_id)

    return await run(request, "projects.read", work, org_id=org_id)


async def update_in(
    db: Db, org_id: UUID, project_id: UUID, data: ProjectUpdate | ProjectPatch
) -> dict[str, Any]:
    """The guarded update of a project of org ``org_id`` (v1's path org, v2's project's org)."""

    def given(name: str) -> bool:
        return getattr(data, name) is not UNSET

    settings = msgspec.json.encode(data.settings).decode() if given("settings") else None
    with database_refusals():  # from 6.4: a different customer is refused
        row = await db.one(
            SQL["update"],
            org_id=org_id,
            project_id=project_id,
            set_name=given("name"),
            name=data.name if given("name") else None,
            set_description=given("description"),
            description=data.description if given("description") else None,
            set_settings=given("settings"),
            settings=settings,
            set_customer=given("customer"),
            customer=data.customer if given("customer") else None,
        )
    return _written(row, data.customer, project_id)  # type: ignore[arg-type]


async def delete_in(db: Db, org_id: UUID, project_id: UUID) -> None:
    """Delete a project of org ``org_id`` (404 when there is none)."""
    await _found(await db.one(SQL["delete"], org_id=org_id, project_id=project_id), project_id)


async def _update(
    request: Request, org_id: UUID, project_id: UUID, data: ProjectUpdate | ProjectPatch
) -> dict[str, Any]:
    async def work(db: Db) -> dict[str, Any]:
        return await update_in(db, org_id, project_id, data)

    return await run(request, "projects.write", work, org_id=org_id)


@put(
    "/config/v1/orgs/{org_id:str}/projects/{project_id:str}",
    tags=["projects"],
    responses=WRITE,
    summary="Replace a project's name (and any other field given)",
)
async def update_project(
    request: Request, org_id: OrgId, project_id: ProjectId, data: JSONBody[ProjectUpdate]
) -> Project:
    return await _update(request, org_id, project_id, data)


@patch(
    "/config/v1/orgs/{org_id:str}/projects/{project_id:str}",
    tags=["projects"],
    responses=WRITE,
    summary="Change some fields of a project; `customer` moves it to another customer",
)
async def patch_project(
    request: Request, org_id: OrgId, project_id: ProjectId, data: JSONBody[ProjectPatch]
) -> Project:
    return await _update(request, org_id, project_id, data)


@delete(
    "/config/v1/orgs/{org_id:str}/projects/{project_id:str}",
    tags=["projects"],
    responses=READ,
    summary="Delete a project",
)
async def delete_project(request: Request, org_id: OrgId, project_id: ProjectId) -> None:
    # returns None (not Response[None]): the document shows the 204 without a body
    async def work(db: Db) -> None:
        await delete_in(db, org_id, project_id)

    await run(request, "projects.write", work, org_id=org_id)


HANDLERS = [
    describe_projects,
    list_projects,
    create_project,
    get_project,
    update_project,
    patch_project,
    delete_project,
]
