"""``POST /config/v1/login`` and ``POST /config/v1/logout``: tokens in and out (service.auth)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, post
from litestar.exceptions import HTTPException
from litestar.params import Body
from msgspec import UNSET, UnsetType

from service import auth, users
from service.api import TEXT_PATTERN, responses
from service.auth import REFUSED, TOKEN_TTL_SECONDS, bearer_token, hash_token, unauthorized
from service.db import transaction
from service.errors import FieldErrors
from service.names import PASSWORD_LENGTH
from service.queries import Db, by_form, query
from service.request import database, run

SQL = {name: query(f"auth.{name}") for name in ("log_in", "revoke_token", "prune_tokens")}
LOGIN_CHALLENGE = query("auth.login_challenge")
USER_ORGS = by_form("auth.user_orgs")  # primary first: hdxcli works in orgs[0]


LoginName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=254, pattern=TEXT_PATTERN, description="The user's email.")
]


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    """The Config API's login body, ``{"username", "password"}`` (what hdxcli sends), where
    ``username`` is the user's email. ``email`` is accepted in its place for scripts written
    against earlier releases; a body giving both must name the same user."""

    password: Annotated[str, msgspec.Meta(min_length=1, max_length=PASSWORD_LENGTH[1])]
    username: LoginName | UnsetType = UNSET
    email: LoginName | UnsetType = UNSET

    def login_email(self) -> str:
        """The email to log in as; 400 naming the fields when it is missing or ambiguous."""
        if self.username is UNSET and self.email is UNSET:
            raise FieldErrors({"username": ["This field is required."]})
        if self.username is UNSET:
            return self.email  # type: ignore[return-value]
        if self.email is not UNSET and self.email.lower() != self.username.lower():
            message = "username and email name different users; send only username."
            raise FieldErrors({"username": [message], "email": [message]})
        return self.username


# The document states the contract: username (or its alias email) with password, not both.
CREDENTIALS_SCHEMA = {
    "oneOf": [{"required": ["username", "password"]}, {"required": ["email", "password"]}],
}


class OrgRef(msgspec.Struct):
    uuid: UUID
    name: str


class AuthToken(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int


class CurrentUser(msgspec.Struct):
    """Who the token belongs to, as the Config API's ``users/current`` and login answer it."""

    uuid: UUID
    email: str
    orgs: list[OrgRef]
    roles: list[str]


class LoginResponse(CurrentUser):
    auth_token: AuthToken


# security=[{}]: no token needed (Litestar drops an empty list and the document-wide bearer
# requirement would apply)
@post(
    ["/config/v1/login"],
    status_code=200,
    security=[{}],
    tags=["auth"],
    summary="Log in with username (the user's email) and password; returns a 24 h bearer token",
    responses={**responses(400, 401, 413, 429)},
)
async def login(
    request: Request, data: Annotated[Credentials, Body(schema_extra=CREDENTIALS_SCHEMA)]
) -> LoginResponse:
    email = data.login_email()
    address = request.client.host if request.client else None

    async def find(conn: Any) -> tuple[auth.LoginAttempt, dict[str, Any] | None]:
        # the attempt is counted (or refused) before the password is checked (service.auth)
        attempt = await auth.attempt_login(conn, email, address)
        if attempt.retry_after is not None:
            return attempt, None
        return attempt, await Db(conn).one(LOGIN_CHALLENGE, email=email)

    attempt, row = await transaction(database(request), find, read_only=True)

    async def take_back(conn: Any) -> None:  # this attempt was no failure
        await auth.take_back(conn, attempt)

    if attempt.retry_after is not None:
        if attempt.counted:  # by the scope that did not refuse it
            await transaction(database(request), take_back, read_only=True)
        raise HTTPException(
            status_code=429,
            detail=f"Too many failed logins; retry in {attempt.retry_after} s.",
            headers={"Retry-After": str(attempt.retry_after)},
        )
    # argon2 costs ~50 ms of CPU: off the event loop, and outside any transaction. The proof is
    # checked by the database (service_state.log_in): the runtime role never reads the hash.
    params, hash_len = (row["params"], row["hash_len"]) if row else (None, None)
    # None: no such user, or no argon2 hash to prove. log_in still runs (and answers "wrong"):
    # a failed login takes as long whether or not the user exists.
    proof = await asyncio.to_thread(users.password_proof, params, hash_len, data.password)
    token = secrets.token_urlsafe(32)
    rehash = (
        await asyncio.to_thread(users.hash_password, data.password)
        if users.challenge_needs_rehash(params, hash_len)
        else None
    )

    async def issue(conn: Any) -> tuple[str, dict[str, Any] | None, list[dict[str, Any]]]:
        db = Db(conn)
        state = (
            await db.one(
                SQL["log_in"],
                user_id=row["uuid"] if row else None,
                proof=proof,
                token_hash=hash_token(token),
                ttl=TOKEN_TTL_SECONDS,
                new_hash=rehash,
            )
        )["state"]  # type: ignore[index]
        if state != "ok":  # nothing was written
            return state, None, []
        # sign the transaction in with the new token: the user's own rows (its memberships)
        # are visible from here on (row-level security, sql/privileges.sql)
        signed = await auth.lookup(conn, token, local=True)
        await db.execute(SQL["prune_tokens"])
        await auth.login_succeeded(conn, attempt)
        return state, signed, await db.all(USER_ORGS[database(request).memberships], user_id=signed["uuid"])

    state, signed, orgs = await transaction(database(request), issue)
    if state == "wrong":
        raise unauthorized("Invalid email or password.")  # the attempt stays counted
    if state == "inactive":  # the right password
        await transaction(database(request), take_back, read_only=True)
        raise unauthorized(REFUSED["inactive"])
    assert row is not None and signed is not None
    return LoginResponse(
        uuid=row["uuid"],
        email=row["email"],
        orgs=[OrgRef(**org) for org in orgs],
        roles=[signed["role"]],
        auth_token=AuthToken(access_token=token, token_type="Bearer", expires_in=TOKEN_TTL_SECONDS),
    )


@post(
    ["/config/v1/logout"],
    status_code=204,
    tags=["auth"],
    summary="Revoke the token of this request",
    responses=responses(401),
    response_description="Token revoked",
)
async def logout(request: Request) -> None:
    # returns None (not Response[None]): the document shows the 204 without a body
    token = bearer_token(request)

    async def revoke(db: Db) -> None:
        await db.execute(SQL["revoke_token"], token_hash=hash_token(token))

    await run(request, None, revoke)


HANDLERS = [login, logout]
