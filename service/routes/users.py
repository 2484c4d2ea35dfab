"""Users (super_admin only: users.read, users.write), and their org memberships (release 6.4).

A user belongs to one or more orgs, with a role in each and one primary org (login lists it
first). The actions change one user's memberships through the SQL functions of
migrations/0004 (``users.change_membership``), which lock the user, check and refuse with a
message naming the user and the org; a refusal is 400 ``{"<field>": ["message"]}`` and changes
nothing (the request is one transaction):

- ``add_orgs/`` ``{"orgs": [uuid, ...], "role": "read_only"}``: joins each org with the role;
- ``remove_orgs/`` ``{"orgs": [uuid, ...]}``: leaves each (never the primary org);
- ``set_primary_org/`` ``{"org": uuid}``;
- ``add_roles/`` and ``remove_roles/`` ``{"roles": [...], "org": uuid?}``, as hdxcli calls them
  (without ``org``: the primary org). A user holds one role per org: ``add_roles`` gives it the
  one role named, ``remove_roles`` of the role it holds leaves it ``read_only`` (removing
  ``read_only`` itself is refused: remove the membership instead).

Every action answers the user as ``GET /config/v1/users/{uuid}/`` shows it. Below release 6.4
(one org per user) the actions answer 400 saying so; ``GET`` works at every release.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
import psycopg
from litestar import Request, get, post, route
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, PathParameter

from service import users
from service.api import COMMON_READ_ONLY, READ, WRITE, Metadata, Paging, field, listing, metadata, page_of
from service.errors import Conflict
from service.names import PASSWORD_LENGTH, ROLES, one_of
from service.queries import Db, by_form, query
from service.request import run
from service.routes.login import CurrentUser, OrgRef

LIST = by_form("users.list")
GET = by_form("users.get")
USER_ORGS = by_form("auth.user_orgs")
CHANGE = query("users.change_membership")
MEMBERSHIP = query("users.membership")
LEAST_ROLE = "read_only"
UserId = Annotated[UUID, PathParameter(description="The user's uuid.")]
Role = Annotated[Literal[ROLES], msgspec.Meta(description=f"{one_of(ROLES)}.")]  # type: ignore[valid-type]


class UserOut(msgspec.Struct):
    uuid: UUID
    email: str
    org: UUID
    role: str
    roles: list[str]
    is_active: bool
    created: datetime
    modified: datetime


UserPage = page_of(UserOut, "UserPage")


class Membership(msgspec.Struct):
    org: UUID
    org_name: str
    role: str
    is_primary: bool


class UserDetail(UserOut):
    """A user with every org it belongs to (primary first); ``org`` and ``role``/``roles`` are
    its primary org's."""

    memberships: list[Membership]


class AddOrgs(msgspec.Struct, forbid_unknown_fields=True):
    orgs: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=100, description="Orgs to join.")]
    role: Role = "read_only"


class RemoveOrgs(msgspec.Struct, forbid_unknown_fields=True):
    orgs: Annotated[
        list[UUID],
        msgspec.Meta(min_length=1, max_length=100, description="Orgs to leave (not the primary one)."),
    ]


class PrimaryOrg(msgspec.Struct, forbid_unknown_fields=True):
    org: Annotated[UUID, msgspec.Meta(description="One of the user's orgs.")]


class Roles(msgspec.Struct, forbid_unknown_fields=True):
    """hdxcli's body; ``org``: where (default: the user's primary org)."""

    roles: Annotated[list[Role], msgspec.Meta(min_length=1, max_length=10)]
    org: UUID | None = None


class AddRoles(msgspec.Struct, forbid_unknown_fields=True):
    """hdxcli's body with one role: a user holds one role per org (it replaces the one held)."""

    roles: Annotated[
        list[Role],
        msgspec.Meta(min_length=1, max_length=1, description="One role per org: it replaces the one held."),
    ]
    org: UUID | None = None


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
            "People who call the API; from release 6.4 each belongs to one or more orgs, a role in each.",
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


# -- one user and its memberships -----------------------------------------------------------------
async def _detail(db: Db, user_id: UUID) -> UserDetail:
    row = await db.one(GET[db.user.memberships], user_id=user_id)  # type: ignore[union-attr]
    if row is None:
        raise NotFoundException(f"User {user_id} not found.")
    return msgspec.convert(row, UserDetail)


@contextlib.contextmanager
def refusals(field: str) -> Iterator[None]:
    """A membership function's refusal (migrations/0004: constraint org_memberships_*) as 400
    naming ``field``, with the database's message (it names the user and the org)."""
    try:
        yield
    except psycopg.Error as exc:
        if not (exc.diag.constraint_name or "").startswith("org_memberships"):
            raise
        raise Conflict({field: [exc.diag.message_primary or str(exc)]}) from None


async def _change(db: Db, user_id: UUID, field: str, changes: list[dict[str, Any]]) -> UserDetail:
    """Apply membership changes (all or none: the request's transaction), answer the user."""
    user = await _detail(db, user_id)  # 404 first
    if not db.user.memberships:  # type: ignore[union-attr]
        raise Conflict(
            {field: ["org memberships need release 6.4 (one org per user before): run `hierarchy migrate`"]}
        )
    with refusals(field):
        for change in changes:
            await db.one(CHANGE, user_id=user.uuid, **{"role": None, "primary": None, **change})
    return await _detail(db, user_id)


async def _membership(db: Db, user: UserDetail, org: UUID | None) -> dict[str, Any]:
    row = await db.one(MEMBERSHIP, user_id=user.uuid, org_id=org)
    if row is None:
        raise Conflict({"org": [f"user {user.email} is not a member of org {org}"]})
    return row


@get("/config/v1/users/{user_id:str}", tags=["users"], responses=READ, summary="Get a user with its orgs")
async def get_user(request: Request, user_id: UserId) -> UserDetail:
    async def work(db: Db) -> UserDetail:
        return await _detail(db, user_id)

    return await run(request, "users.read", work)


def _action(name: str, summary: str) -> Any:
    return post(
        f"/config/v1/users/{{user_id:str}}/{name}",
        tags=["users"],
        status_code=200,
        responses=WRITE,
        summary=summary,
    )


@_action("add_orgs", "Add the user to orgs with a role (release 6.4; super admins only)")
async def add_orgs(request: Request, user_id: UserId, data: JSONBody[AddOrgs]) -> UserDetail:
    async def work(db: Db) -> UserDetail:
        changes = [{"action": "add", "org_id": org, "role": data.role} for org in dict.fromkeys(data.orgs)]
        return await _change(db, user_id, "orgs", changes)

    return await run(request, "users.write", work, default_field="orgs")


@_action("remove_orgs", "Remove the user from orgs, never its primary one (release 6.4; super admins only)")
async def remove_orgs(request: Request, user_id: UserId, data: JSONBody[RemoveOrgs]) -> UserDetail:
    async def work(db: Db) -> UserDetail:
        changes = [{"action": "remove", "org_id": org} for org in dict.fromkeys(data.orgs)]
        return await _change(db, user_id, "orgs", changes)

    return await run(request, "users.write", work, default_field="orgs")


@_action("set_primary_org", "Make one of the user's orgs its primary org (release 6.4; super admins only)")
async def set_primary_org(request: Request, user_id: UserId, data: JSONBody[PrimaryOrg]) -> UserDetail:
    async def work(db: Db) -> UserDetail:
        return await _change(db, user_id, "org", [{"action": "set_primary", "org_id": data.org}])

    return await run(request, "users.write", work, default_field="org")


async def _set_role(
    db: Db, user_id: UUID, org: UUID | None, new_role: Callable[[UserDetail, dict[str, Any]], str]
) -> UserDetail:
    """add_roles/remove_roles: the role ``new_role`` decides for the membership in ``org`` (the
    primary org when None)."""
    user = await _detail(db, user_id)
    if not db.user.memberships:  # type: ignore[union-attr]
        return await _change(db, user_id, "roles", [])  # says which release it needs
    member = await _membership(db, user, org)
    change = {"action": "set_role", "org_id": member["org_id"], "role": new_role(user, member)}
    return await _change(db, user_id, "roles", [change])


@_action(
    "add_roles", "Give the user a role in its primary org, or in `org` (one role per org; super admins only)"
)
async def add_roles(request: Request, user_id: UserId, data: JSONBody[AddRoles]) -> UserDetail:
    async def work(db: Db) -> UserDetail:
        return await _set_role(db, user_id, data.org, lambda _user, _member: data.roles[0])

    return await run(request, "users.write", work, default_field="roles")


def _least_role(roles: list[str]) -> Callable[[UserDetail, dict[str, Any]], str]:
    """remove_roles: the held role must be among ``roles``; it becomes read_only."""

    def decide(user: UserDetail, member: dict[str, Any]) -> str:
        held, org = member["role"], member["org_name"]
        if held not in roles:
            message = (
                f"user {user.email} holds role {held} in org {org}, not {', '.join(dict.fromkeys(roles))}"
            )
            raise Conflict({"roles": [message]})
        if held == LEAST_ROLE:
            message = f"{LEAST_ROLE} is the least role: remove the user from org {org} instead (remove_orgs)"
            raise Conflict({"roles": [message]})
        return LEAST_ROLE

    return decide


@_action("remove_roles", "Take a role from the user in its primary org, or in `org`: it becomes read_only")
async def remove_roles(request: Request, user_id: UserId, data: JSONBody[Roles]) -> UserDetail:
    async def work(db: Db) -> UserDetail:
        return await _set_role(db, user_id, data.org, _least_role(data.roles))

    return await run(request, "users.write", work, default_field="roles")


HANDLERS = [
    describe_users,
    list_users,
    create_user,
    current_user,
    get_user,
    add_orgs,
    remove_orgs,
    set_primary_org,
    add_roles,
    remove_roles,
]
