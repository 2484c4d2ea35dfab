"""Customers: global objects grouping projects (release 6.1).

Visibility (customers.sql): all_orgs users see every customer; others see those holding a
project of their org and those they created, and get 404 for the rest. Changing or deleting
a customer needs customers.write and either all_orgs or having created it (403 otherwise:
the job's and other users' customers belong to the administrators). Adding and removing
projects needs customers.write on a visible customer, and only moves projects of the user's
org (another org's project uuid is 404).

Each write statement carries these conditions itself and returns one row saying which, if
any, refused the change (docs/design.md, "Authorisation"); the handlers below only turn that
row into 404, 403 or 400.

From release 6.4 associations are final: adding and removing projects answer 400 before
anything is touched, and deleting a customer that holds projects is 409 saying how many (the
database refuses both whoever writes; service.routes.upgrade names the field).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, delete, get, patch, post, put, route
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from service.api import (
    COMMON_READ_ONLY,
    READ,
    TEXT_PATTERN,
    WRITE,
    CustomerId,
    Metadata,
    Paging,
    Text,
    field,
    json_listing,
    metadata,
    page_of,
    responses,
)
from service.errors import NOT_THIS_CUSTOMERS, Conflict, FieldErrors
from service.names import ORIGINS
from service.queries import Db, query
from service.request import run, stream_list
from service.routes.upgrade import associations_final, current_release, database_refusals

SQL = {
    name: query(f"customers.{name}")
    for name in ("list", "all_json", "get", "create", "update", "delete", "add_projects", "remove_projects")
}

Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        # the customers_name_valid check ([:space:] and [:cntrl:] of the C locale), spaces allowed:
        # they are stored as dashes
        pattern="^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        description="Unique; spaces become dashes; 1 to 255 characters, no other whitespace or "
        "control characters.",
    ),
]


class Customer(msgspec.Struct):
    uuid: UUID
    name: str
    description: str | None
    origin: str
    projects: list[UUID]
    created: datetime
    modified: datetime


CustomerPage = page_of(Customer, "CustomerPage")


class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Text | None = None


class CustomerUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Text | None | UnsetType = UNSET


class CustomerPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    description: Text | None | UnsetType = UNSET


class ProjectRef(msgspec.Struct, forbid_unknown_fields=True):
    uuid: UUID


class ProjectRefs(msgspec.Struct, forbid_unknown_fields=True):
    projects: Annotated[list[ProjectRef], msgspec.Meta(min_length=1, max_length=1000)]


class Association(msgspec.Struct):
    """The customer after the change (null when the rules deleted it: an emptied auto-created
    customer goes) and the projects that moved."""

    customer: Customer | None
    projects: list[UUID]


POST_FIELDS = {
    **COMMON_READ_ONLY,
    "name": field(
        "string",
        "Name",
        required=True,
        max_length=255,
        help_text="Unique; spaces become dashes. A customer with one project carries its name.",
    ),
    "description": field("string", "Description"),
    "origin": field("choice", "Origin", read_only=True, choices=ORIGINS),
    "projects": field(
        "list", "Projects", read_only=True, help_text="Change with add_projects/ and remove_projects/."
    ),
}


def _not_found(customer_id: UUID) -> NotFoundException:
    return NotFoundException(f"Customer {customer_id} not found.")


async def visible_customer(db: Db, customer_id: UUID) -> dict[str, Any]:
    row = await db.one(SQL["get"], customer_id=customer_id)
    if row is None:
        raise _not_found(customer_id)
    return row


def owned(result: dict[str, Any] | None, customer_id: UUID) -> None:
    """The answer of a guarded update or delete: no row 404, not the user's 403."""
    if result is None:
        raise _not_found(customer_id)
    if not result["mine"]:
        raise PermissionDeniedException(
            "Only a super admin or the user who created this customer may change it."
        )


def moved(result: dict[str, Any], customer_id: UUID) -> None:
    """The answer of add_projects/remove_projects: 404 for the customer or the first unknown
    project, 400 for projects of another customer."""
    if not result["customer_found"]:
        raise _not_found(customer_id)
    if result["missing_project"] is not None:
        raise NotFoundException(f"Project {result['missing_project']} not found.")
    if result.get("strangers"):
        raise Conflict({"projects": [NOT_THIS_CUSTOMERS.format(u) for u in result["strangers"]]})


async def _move(db: Db, statement: str, customer_id: UUID, refs: ProjectRefs) -> dict[str, Any]:
    """add_projects or remove_projects: the guarded statement, then the customer as it is now.

    From 6.4 the endpoint means nothing (associations are final, and the database refuses any
    move whoever asks): it answers 400 before touching anything, 404 for a customer the user
    cannot see, as before 6.4."""
    release = await current_release(db)
    if release.customers_final:
        await visible_customer(db, customer_id)
        raise FieldErrors({"projects": [associations_final(release)]})
    projects = [ref.uuid for ref in refs.projects]
    with database_refusals("projects"):
        result = await db.one(SQL[statement], customer_id=customer_id, projects=projects)
    moved(result, customer_id)  # type: ignore[arg-type]
    return {
        "customer": await db.one(SQL["get"], customer_id=customer_id),
        "projects": result["projects"],  # type: ignore[index]
    }


@get(
    "/config/v1/customers", tags=["customers"], responses=READ, summary="List the customers the user can see"
)
async def list_customers(
    request: Request,
    paging: NamedDependency[Paging],
    name: Annotated[
        str | None,
        QueryParameter(description="Only the customer with this exact name.", pattern=TEXT_PATTERN),
    ] = None,
    origin: Annotated[
        str | None,
        QueryParameter(description="Only customers of this origin.", pattern=f"^({'|'.join(ORIGINS)})$"),
    ] = None,
) -> list[Customer] | CustomerPage:  # type: ignore[valid-type]
    if not paging.paginate:  # the whole list (hdxcli's pagination=False): streamed, never held
        return await stream_list(request, "customers.read", SQL["all_json"], name=name, origin=origin)

    async def work(db: Db) -> Any:
        page = await db.one(SQL["list"], name=name, origin=origin, **paging.sql())
        return json_listing(request, paging, page)

    return await run(request, "customers.read", work)


@route(
    "/config/v1/customers",
    http_method="OPTIONS",
    tags=["customers"],
    responses=READ,
    summary="Describe the customers list and the fields of a new customer",
)
async def describe_customers(request: Request) -> Metadata:
    async def work(db: Db) -> Metadata:
        return metadata(
            "Customer List",
            "Customers: global objects grouping projects.",
            POST_FIELDS,
            "customers.write" in db.user.permissions,
        )  # type: ignore[union-attr]

    return await run(request, "customers.read", work)


@post(
    "/config/v1/customers", tags=["customers"], responses=WRITE, summary="Create a customer (origin manual)"
)
async def create_customer(request: Request, data: JSONBody[CustomerCreate]) -> Customer:
    async def work(db: Db) -> dict[str, Any] | None:
        row = await db.one(SQL["create"], name=data.name, description=data.description)
        return await db.one(SQL["get"], customer_id=row["uuid"])  # type: ignore[index]

    return await run(request, "customers.write", work)


@get("/config/v1/customers/{customer_id:str}", tags=["customers"], responses=READ, summary="Get a customer")
async def get_customer(request: Request, customer_id: CustomerId) -> Customer:
    async def work(db: Db) -> dict[str, Any] | None:
        return await visible_customer(db, customer_id)

    return await run(request, "customers.read", work)


async def _update(request: Request, customer_id: UUID, data: CustomerUpdate | CustomerPatch) -> Any:
    async def work(db: Db) -> dict[str, Any] | None:
        result = await db.one(
            SQL["update"],
            customer_id=customer_id,
            set_name=data.name is not UNSET,
            name=None if data.name is UNSET else data.name,
            set_description=data.description is not UNSET,
            description=None if data.description is UNSET else data.description,
        )
        owned(result, customer_id)
        return await db.one(SQL["get"], customer_id=customer_id)

    return await run(request, "customers.write", work)


@put(
    "/config/v1/customers/{customer_id:str}",
    tags=["customers"],
    responses=WRITE,
    summary="Replace a customer's name (and description if given); a single-project customer keeps "
    "its project's name",
)
async def update_customer(
    request: Request, customer_id: CustomerId, data: JSONBody[CustomerUpdate]
) -> Customer:
    return await _update(request, customer_id, data)


@patch(
    "/config/v1/customers/{customer_id:str}",
    tags=["customers"],
    responses=WRITE,
    summary="Change some fields of a customer",
)
async def patch_customer(
    request: Request, customer_id: CustomerId, data: JSONBody[CustomerPatch]
) -> Customer:
    return await _update(request, customer_id, data)


@delete(
    "/config/v1/customers/{customer_id:str}",
    tags=["customers"],
    summary="Delete a customer; before 6.4 its projects become orphans that the job re-homes, "
    "from 6.4 one holding projects cannot be deleted (409)",
    responses=responses(400, 401, 403, 404, 409),
)
async def delete_customer(request: Request, customer_id: CustomerId) -> None:
    # returns None (not Response[None]): the document shows the 204 without a body
    async def work(db: Db) -> None:
        with database_refusals(deleting=True):
            owned(await db.one(SQL["delete"], customer_id=customer_id), customer_id)

    await run(request, "customers.write", work)


@post(
    "/config/v1/customers/{customer_id:str}/add_projects",
    tags=["customers"],
    status_code=200,
    responses=WRITE,
    summary="Move projects to this customer",
)
async def add_projects(request: Request, customer_id: CustomerId, data: JSONBody[ProjectRefs]) -> Association:
    async def work(db: Db) -> dict[str, Any]:
        return await _move(db, "add_projects", customer_id, data)

    return await run(request, "customers.write", work, default_field="projects")


@post(
    "/config/v1/customers/{customer_id:str}/remove_projects",
    tags=["customers"],
    status_code=200,
    responses=WRITE,
    summary="Detach projects from this customer (they become orphans the job re-homes)",
)
async def remove_projects(
    request: Request, customer_id: CustomerId, data: JSONBody[ProjectRefs]
) -> Association:
    async def work(db: Db) -> dict[str, Any]:
        return await _move(db, "remove_projects", customer_id, data)

    return await run(request, "customers.write", work, default_field="projects")


HANDLERS = [
    describe_customers,
    list_customers,
    create_customer,
    get_customer,
    update_customer,
    patch_customer,
    delete_customer,
    add_projects,
    remove_projects,
]
