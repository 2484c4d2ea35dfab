"""Authentication before validation: the token is checked in front of routing.

Every path but the public ones (login, ``/health``, ``/metrics`` and the OpenAPI document under
``/schema``) answers 401 ``{"detail"}`` to a missing, malformed, unknown, expired or revoked
token before anything looks at the path's ids, the query or the body: no 400, 404, 405 or 413
first, and an unknown path is 401 too, so a caller without a token learns neither what the API
validates nor which paths exist. Litestar's router answers 404/405 and parses path parameters
before handlers, guards and middleware, so the check is in :class:`App`, the Litestar app's
ASGI entry point, in front of its router.

No extra round trip: the front takes the request's one pooled connection, runs the token
lookup on it (``auth.user_for_token``, which also answers whether the user may see the org of a
``/orgs/{org}/`` path), and hands connection and row to the handler in the ASGI scope
(:class:`Session`); ``service.request.run`` answers 403/404 from the same row and runs the
handler's statements on the same connection. A write (any method but GET, HEAD, OPTIONS) opens
its transaction before the lookup, so the actor settings the lookup sets hold for the
handler's statements, and ``run`` commits it before the response is sent; whatever a handler
leaves open (it refused the input after authentication, the path is unknown) is rolled back
when the response is done.

Row-level security (sql/privileges.sql) keys on the request user the lookup signs in: for the
write's transaction, or, for a read (autocommit: each statement its own transaction), for the
session. The connection then goes back to the pool still signed in: the next request's lookup
signs it in again (or out, for a token that does not authenticate) in its first statement, and
any other use of it (login, health, the scheduler) is signed out first by
``Database.connection`` (no round trip on the read path; see service.db).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from litestar import Litestar, Request
from litestar.datastructures import Headers
from litestar.exceptions import HTTPException
from litestar.types import Receive, Scope, Send

from service import auth
from service.db import Database, as_http, schema_changed
from service.errors import ServiceUnavailable, http_exception_handler

READS = frozenset({"GET", "HEAD", "OPTIONS"})  # methods whose handlers change nothing
SESSION = "hierarchy.session"  # key of the Session in the ASGI scope's "state"
# the paths whose handlers pass their org to service.request.run (the projects of an org)
_ORG_PATH = re.compile(r"/config/v1/orgs/([^/]+)/projects(?:/|$)")


def in_transaction(method: str, database: Database) -> bool:
    """Whether a request runs in one transaction: a write; or any request behind a transaction
    pooler, where a read's autocommit statements could reach two server connections and the
    session's signed-in user (row-level security) would not follow them (service.db)."""
    return method not in READS or database.pooler


def path_org(path: str) -> UUID | None:
    """The org id of a ``/config/v1/orgs/{org}/projects...`` path, as Litestar's ``uuid``
    parameter parses it (None: not such a path, or not a uuid, which the route answers 404).
    Another org than the handler's only costs a second lookup (:meth:`Session.user`)."""
    match = _ORG_PATH.match(path)
    if match is None:
        return None
    try:
        return UUID(match[1])
    except ValueError:
        return None


@dataclass
class Session:
    """A protected request's connection and its token lookup, made in front of routing."""

    database: Database
    conn: psycopg.AsyncConnection
    token: str
    org_id: UUID | None  # the org whose visibility ``row`` answers
    row: dict[str, Any] | None  # the lookup's row; None once a retry needs a fresh one
    _open: Any = field(default=None, repr=False)  # the write's transaction, begun by the front

    async def first_lookup(self, write: bool) -> None:
        """The front's lookup (401 for a token that does not authenticate), in the write's
        transaction; once more when a migration changed the schema under the service."""
        for last in (False, True):
            if write:
                await self.begin()
            try:
                auth.check_token(await self.lookup(self.org_id))
                return
            except psycopg.Error as exc:
                await self.end(exc)
                if last or not await self.schema_moved(exc):
                    raise

    async def begin(self) -> None:
        self._open = self.conn.transaction()
        await self._open.__aenter__()

    async def end(self, exc: BaseException | None = None) -> None:
        """Commit (``exc`` None) or roll back the transaction the front began, if still open."""
        tx, self._open = self._open, None
        if tx is not None and not self.conn.closed:
            if exc is None:
                await tx.__aexit__(None, None, None)
            else:
                await tx.__aexit__(type(exc), exc, exc.__traceback__)

    @contextlib.asynccontextmanager
    async def attempt(self, write: bool) -> AsyncIterator[None]:
        """One attempt of a handler's work: in the front's transaction on the first attempt of
        a write, in a new one on a retry; a read runs in autocommit."""
        if write and self._open is None:
            self.row = None  # a new transaction: the actor settings need the lookup again
            await self.begin()
        try:
            yield
        except BaseException as exc:
            await self.end(exc)
            raise
        await self.end()

    async def failed(self, exc: psycopg.Error) -> ServiceUnavailable | None:
        """The 503 for a statement's error that says the database failed over or went away
        (the connection is closed: the pool replaces it); None for a query's own error (after
        a schema that changed under the service, the next attempt looks the token up again)."""
        if schema_changed(exc):
            self.row = None
        unavailable = await self.database.failed_over(exc)
        if unavailable is not None and not self.conn.closed:
            await self.conn.close()
        return unavailable

    async def schema_moved(self, exc: psycopg.Error) -> bool:
        """Whether ``exc`` says a migration changed the schema under the service; if so, the
        statements' form is read again and the next :meth:`lookup` uses it."""
        if not schema_changed(exc):
            return False
        await self.database.refresh_form()
        self.row = None
        return True

    async def lookup(self, org_id: Any = None) -> dict[str, Any] | None:
        """The token lookup for ``org_id``."""
        # a write: the request user holds for its transaction; a read, for the session (until
        # the next lookup, or Database.connection signs it out), unless row-level security does
        # not apply to the service's role anyway
        local = self._open is not None or not self.database.row_security
        if not local:
            self.database.signed_in(self.conn)
        self.row = await auth.lookup(self.conn, self.token, org_id, local=local)
        self.org_id = org_id
        return self.row

    async def user(self, permission: str | None, org_id: Any = None) -> auth.User:
        """The user (403 when it lacks ``permission``; 404 when it may not see ``org_id``),
        from the front's lookup when it answered for this org, else from a new lookup."""
        if self.row is None or org_id != self.org_id:
            await self.lookup(org_id)
        return auth.authorise(self.row, permission, org_id, memberships=self.database.memberships)


def session(request: Request) -> Session:
    """The Session the front made for this request (every protected route has one)."""
    return request.scope["state"][SESSION]


class App(Litestar):
    """The Litestar app with the token check in front of its router (see the module)."""

    public_paths: frozenset[str] = frozenset()  # set by service.app (without a trailing slash)
    public_prefixes: tuple[str, ...] = ()

    def is_public(self, path: str) -> bool:
        return path.rstrip("/") in self.public_paths or path.startswith(self.public_prefixes)

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_public(scope["path"]):
            await super().__call__(scope, receive, send)
            return
        try:
            token = auth.parse_bearer(Headers.from_scope(scope).get("authorization"))
            database: Database = self.state.database
            async with database.connection(signing_in=True) as conn:
                found = Session(database, conn, token, path_org(scope["path"]), None)
                try:
                    await found.first_lookup(write=in_transaction(scope["method"], database))
                    scope.setdefault("state", {})[SESSION] = found
                    await super().__call__(scope, receive, send)
                except BaseException as exc:
                    await found.end(exc)
                    raise
                await found.end(exc=_LEFT_OPEN)
        except HTTPException as exc:
            await _answer(self, scope, receive, send, exc)
        except psycopg.Error as exc:  # the lookup's (a failover is 503 already: Database.connection)
            await _answer(self, scope, receive, send, as_http(exc))


class _LeftOpen(Exception):
    """Rolls back what a handler left open (it answered without committing)."""


_LEFT_OPEN = _LeftOpen()


async def _answer(app: Litestar, scope: Scope, receive: Receive, send: Send, exc: HTTPException) -> None:
    """The refusal as the app's exception handler words it (``{"detail": ...}``)."""
    scope["app"] = scope["litestar_app"] = app  # what Request.app reads
    request: Request = Request(scope)
    response = http_exception_handler(request, exc)
    asgi = response.to_asgi_response(None, request, is_head_response=scope["method"] == "HEAD")
    await asgi(scope, receive, send)
