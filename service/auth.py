"""Login, logout, bearer tokens, permissions, and the per-request transaction (:func:`run`).

Tokens are ``secrets.token_urlsafe(32)``, shown once at login; the database stores only their
SHA-256 (``config.tokens.token_hash``), an expiry 24 h later, and ``revoked`` set by logout.
A request's token is checked inside the request's own transaction, together with the user's
``is_active`` and the permissions of its role (``config.role_permissions``).

Failed logins are throttled in process: after 5 failures for one email within 60 s, login for
that email answers 429 with ``Retry-After`` until the oldest of them is 60 s old. The counter
is a bounded dict (10 000 emails, least recently failed evicted first), so it is per process
and lost on restart; a table would make it cluster-wide (see the report / README).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
import psycopg
from litestar import MediaType, Request, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.handlers import BaseRouteHandler
from litestar.params import Body
from litestar.response import Stream
from msgspec import UNSET, UnsetType
from psycopg.rows import tuple_row

from service import users
from service.api import TEXT_PATTERN, responses
from service.db import Database, Db, User, map_error, transaction
from service.errors import FieldErrors
from service.queries import query

T = TypeVar("T")

TOKEN_TTL_SECONDS = 86400
FAILURE_LIMIT = 5
FAILURE_WINDOW_SECONDS = 60.0
THROTTLE_MAX_EMAILS = 10_000
STREAM_ROWS = 2000  # rows per fetch of a streamed list (a few hundred kB)

SQL = {
    name: query(f"auth.{name}")
    for name in (
        "user_for_login",
        "update_password_hash",
        "login_details",
        "create_token",
        "user_for_token",
        "revoke_token",
        "prune_tokens",
    )
}

_REFUSED = {
    "revoked": "Token has been revoked (logged out); log in again.",
    "expired": "Token has expired; log in again.",
    "inactive": "User account is disabled.",
}


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _unauthorized(detail: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail, headers={"WWW-Authenticate": 'Bearer realm="config"'})


def bearer_token(request: Request | ASGIConnection) -> str:
    """The token of ``Authorization: Bearer <token>``; 401 when missing or malformed."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("Authentication credentials were not provided.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or not token.isascii():
        raise _unauthorized("Invalid Authorization header: expected 'Bearer <token>'.")
    return token


async def require_bearer(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    """Guard of every protected route: a missing or malformed ``Authorization`` header is 401
    before the path, query and body are parsed, so a caller without a token learns nothing
    from validation errors. The token itself is checked in the request's transaction.
    Async on purpose: Litestar runs a sync guard in a worker thread (a hop per request)."""
    bearer_token(connection)


async def authenticate(
    conn: Any, token: str, permission: str | None = None, org_id: UUID | None = None
) -> User:
    """The token's user (401), holding ``permission`` (403), and with ``org_id`` allowed to see
    that org (404): one statement, the token lookup, answers all three."""
    row = await Db(conn).one(SQL["user_for_token"], token_hash=hash_token(token), org_id=org_id)
    if row is None:
        raise _unauthorized("Invalid token.")
    if row["state"] != "ok":
        raise _unauthorized(_REFUSED[row["state"]])
    if permission is not None and permission not in row["permissions"]:
        raise PermissionDeniedException(
            f"You do not have permission to perform this action (role {row['role']} lacks {permission})."
        )
    if not row["org_visible"]:
        raise NotFoundException(f"Org {org_id} not found.")
    return User(
        uuid=row["uuid"],
        email=row["email"],
        org_id=row["org_id"],
        role=row["role"],
        permissions=frozenset(row["permissions"]),
    )


def database(request: Request) -> Database:
    return request.app.state.database


async def run(
    request: Request,
    permission: str | None,
    work: Callable[[Db], Awaitable[T]],
    *,
    default_field: str = "non_field_errors",
    read_only: bool = False,
    org_id: UUID | None = None,
) -> T:
    """Authenticate, authorise and run ``work`` in the request's one transaction.

    ``permission`` is a ``config.role_permissions`` name (None: any authenticated user). The
    token lookup also sets the actor settings, so every audit row the work causes names the user.
    ``read_only`` (reads that change nothing): no transaction block, each statement in
    autocommit (see :func:`service.db.transaction`); the token is checked all the same.
    ``org_id``: the org in the path, checked visible by the token lookup itself (404).
    """
    token = bearer_token(request)

    async def in_transaction(conn: Any) -> T:
        user = await authenticate(conn, token, permission, org_id)
        request.state.user = user
        return await work(Db(conn, user))

    return await transaction(
        database(request), in_transaction, default_field=default_field, read_only=read_only
    )


async def stream_json(request: Request, permission: str, sql: str, **params: Any) -> Stream:
    """A JSON array streamed from one statement whose rows are JSON texts (first column).

    The token, the permission and the statement's start are checked before the response
    begins, so a refusal or a bad parameter is still a clean 4xx. The rows then come from a
    server-side cursor, ``STREAM_ROWS`` at a time, in the same transaction: the service holds
    one chunk, never the whole list.
    """
    token = bearer_token(request)
    stack = contextlib.AsyncExitStack()
    try:
        conn = await stack.enter_async_context(database(request).connection())
        await stack.enter_async_context(conn.transaction())
        user = await authenticate(conn, token, permission)
        request.state.user = user
        cursor = conn.cursor("stream_json", row_factory=tuple_row)
        await cursor.execute(sql, Db(conn, user)._params(params))
        rows = await cursor.fetchmany(STREAM_ROWS)
    except BaseException as exc:
        await stack.__aexit__(type(exc), exc, exc.__traceback__)
        if isinstance(exc, psycopg.Error):
            raise map_error(exc) from exc
        raise

    async def body() -> AsyncIterator[bytes]:
        nonlocal rows
        try:
            opening = b"["
            while rows:
                yield opening + ",".join(row[0] for row in rows).encode()
                opening = b","
                rows = await cursor.fetchmany(STREAM_ROWS)
            yield b"[]" if opening == b"[" else b"]"
        finally:
            await stack.aclose()

    return Stream(body(), media_type=MediaType.JSON)


# -- failed-login throttle -----------------------------------------------------------------------
class LoginThrottle:
    """Recent failed logins per email, bounded in size."""

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW_SECONDS,
        max_emails: int = THROTTLE_MAX_EMAILS,
    ) -> None:
        self.limit, self.window, self.max_emails = limit, window, max_emails
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, email: str) -> int | None:
        """Seconds to wait when ``email`` is throttled, else None."""
        failures = self._recent(email.lower())
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[-self.limit] + self.window - time.monotonic()))

    def failed(self, email: str) -> None:
        key = email.lower()
        failures = self._recent(key)
        failures.append(time.monotonic())
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_emails:
            self._failures.popitem(last=False)

    def succeeded(self, email: str) -> None:
        self._failures.pop(email.lower(), None)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key, deque(maxlen=self.limit))
        horizon = time.monotonic() - self.window
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures


# -- endpoints -----------------------------------------------------------------------------------
LoginName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=254, pattern=TEXT_PATTERN, description="The user's email.")
]


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    """The Config API's login body, ``{"username", "password"}`` (what hdxcli sends), where
    ``username`` is the user's email. ``email`` is accepted in its place for scripts written
    against earlier releases; a body giving both must name the same user."""

    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
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


def _throttle(state: State) -> LoginThrottle:
    if not hasattr(state, "login_throttle"):
        state.login_throttle = LoginThrottle()
    return state.login_throttle


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
    throttle = _throttle(request.app.state)
    if (wait := throttle.retry_after(email)) is not None:
        raise HTTPException(
            status_code=429,
            detail=f"Too many failed logins; retry in {wait} s.",
            headers={"Retry-After": str(wait)},
        )

    async def find(conn: Any) -> dict[str, Any] | None:
        return await Db(conn).one(SQL["user_for_login"], email=email)

    row = await transaction(database(request), find)
    # argon2 costs ~50 ms of CPU: off the event loop, and outside any transaction
    ok = await asyncio.to_thread(users.verify_password, row["password_hash"] if row else None, data.password)
    if not ok:
        throttle.failed(email)
        raise _unauthorized("Invalid email or password.")
    assert row is not None
    if not row["is_active"]:
        raise _unauthorized(_REFUSED["inactive"])
    throttle.succeeded(email)
    token = secrets.token_urlsafe(32)
    rehash = (
        await asyncio.to_thread(users.hash_password, data.password)
        if users.needs_rehash(row["password_hash"])
        else None
    )

    async def issue(conn: Any) -> dict[str, Any] | None:
        db = Db(conn)
        await db.execute(
            SQL["create_token"], token_hash=hash_token(token), user_id=row["uuid"], ttl=TOKEN_TTL_SECONDS
        )
        if rehash:
            await db.execute(SQL["update_password_hash"], password_hash=rehash, user_id=row["uuid"])
        await db.execute(SQL["prune_tokens"])
        return await db.one(SQL["login_details"], org_id=row["org_id"])

    org = await transaction(database(request), issue)
    return LoginResponse(
        uuid=row["uuid"],
        email=row["email"],
        orgs=[OrgRef(**org)] if org else [],
        roles=[row["role"]],
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
