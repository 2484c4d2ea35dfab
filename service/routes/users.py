"""Users (super_admin only: users.read, users.write)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, get, post, route
from litestar.di import NamedDependency
from litestar.params import JSONBody

from service import users
from service.api import COMMON_READ_ONLY, READ, WRITE, Metadata, Paging, field, listing, metadata, page_of
from service.names import PASSWORD_LENGTH, ROLES, one_of
from service.queries import Db, by_form
from service.request import run
from service.routes.login import CurrentUser, OrgRef

LIST = by_form("users.list")
USER_ORGS = by_form("auth.user_orgs")


class UserOut(msgspec.Struct):
    uuid: UUID
    email: str
    org: UUID
    role: str
    is_active: bool
    created: datetime
    modified: datetime


UserPage = page_of(UserOut, "UserPage")


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[
        str,
        msgspec.Meta(
            min_length=3,
            max_length=254,
            # the users_email_valid check of the database
            pattern="^[^@\\t\\n\\v\\f\\r \\x00]+@[^@\\t\\n\\v\\f\\r \\x00]+$",
            description="name@domain, unique (case-insensitive).",
        ),
    ]
    password: Annotated[str, msgspec.Meta(min_length=PASSWORD_LENGTH[0], max_length=PASSWORD_LENGTH[1])]
    # one of the roles (a role outside them is 400 here, not a database conflict)
    role: Annotated[Literal[ROLES], msgspec.Meta(description=f"{one_of(ROLES)}.")] = "read_only"  # type: ignore[valid-type]
    org: Annotated[UUID | None, msgspec.Meta(description="Default: the creating user's org.")] = None


POST_FIELDS = {
    **COMMON_READ_ONLY,
    "email": field("email", "Email", required=True, max_length=254),
    "password": field(
        "string",
        "Password",
        required=True,
        help_text=f"At least {PASSWORD_LENGTH[0]} characters; write-only.",
    ),
    "role": field("choice", "Role", choices=ROLES),
    "org": field("uuid", "Org", help_text="Default: your org."),
    "is_active": field("boolean", "Active", read_only=True),
}


@get("/config/v1/users", tags=["users"], responses=READ, summary="List users (super admins only)")
async def list_users(request: Request, paging: NamedDependency[Paging]) -> list[UserOut] | UserPage:  # type: ignore[valid-type]
    async def work(db: Db) -> Any:
        return listing(request, paging, await db.all(LIST[db.user.memberships], **paging.sql()))  # type: ignore[union-attr]

    return await run(request, "users.read", work)


@route(
    "/config/v1/users",
    http_method="OPTIONS",
    tags=["users"],
    responses=READ,
    summary="Describe the users list and the fields of a new user",
)
async def describe_users(request: Request) -> Metadata:
    async def work(db: Db) -> Metadata:
        return metadata(
            "User List",
            "People who call the API; one org and one role each.",
            POST_FIELDS,
            "users.write" in db.user.permissions,
        )  # type: ignore[union-attr]

    return await run(request, "users.read", work)


@post("/config/v1/users", tags=["users"], responses=WRITE, summary="Create a user (super admins only)")
async def create_user(request: Request, data: JSONBody[UserCreate]) -> UserOut:
    async def work(db: Db) -> dict[str, Any] | None:
        # argon2 is ~50 ms of CPU: off the event loop, and only once the caller is authorised
        password_hash = await asyncio.to_thread(users.hash_password, data.password)
        return await db.one(
            users.CREATE[db.user.memberships],  # type: ignore[union-attr]
            email=data.email,
            password_hash=password_hash,
            org_id=data.org or db.user.org_id,
            role=data.role,
        )  # type: ignore[union-attr]

    return await run(request, "users.write", work)


@get(
    "/config/v1/users/current",
    tags=["users"],
    responses=READ,
    summary="The user this token belongs to (any role), as the Config API serves it",
)
async def current_user(request: Request) -> CurrentUser:
    async def work(db: Db) -> CurrentUser:
        user = db.user
        assert user is not None  # run() authenticated the token
        orgs = await db.all(USER_ORGS[user.memberships], user_id=user.uuid)
        return CurrentUser(
            uuid=user.uuid, email=user.email, orgs=[OrgRef(**org) for org in orgs], roles=[user.role]
        )

    return await run(request, None, work)


HANDLERS = [describe_users, list_users, create_user, current_user]
