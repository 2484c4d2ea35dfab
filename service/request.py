"""What every route runs its work in: :func:`run`, and :func:`stream_list` for a whole list.

Every request that touches the database runs on one pooled connection. Its first statement
checks the bearer token (service.auth), in front of routing (service.front: the 401 comes
before any 400, 404, 405 or 413); :func:`run` answers, from the same row, the role's permission
(403) and, for a path under ``/orgs/{org}/``, whether the user may see that org (404); for a
valid token it also sets the actor settings (``hierarchy.actor``, ``hierarchy.user_id``, read by
the audit triggers and ``customers.created_by``). Then the handler's work runs with a
:class:`service.queries.Db` scoped to the user.

A write (any method but GET, HEAD and OPTIONS) runs all of that in one transaction; deadlocks
and serialization failures re-run the whole transaction, the token lookup included
(service.db.retried: 3 attempts, then 503). A read runs its statements in autocommit: no
BEGIN, no COMMIT. Under read committed (the server's default, which the service never
changes) each statement of a transaction block takes its own snapshot anyway, so a read
answers the same; a list and its count are one statement (sql/queries), and nothing a read
runs needs the actor settings, which then end with the token lookup. Other database errors
become DRF-style 4xx bodies (service.db_errors).

Row-level security (sql/privileges.sql) keys on the request user the token lookup signs in:
for a write's transaction, or for a read's session, signed out when the request ends
(service.front); behind a transaction pooler (``HIERARCHY_PREPARED_STATEMENTS=off``) a read runs
in a transaction too (``front.in_transaction``).

Round trips to the database per request (``bench.api.round_trips``): the orphan audit was 6
(pool check, BEGIN, token lookup, org check, list, COMMIT), now 2 (token lookup with the org
check, list: the pool's check is a local poll, service.db); the customers page was 5, now 2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from litestar import MediaType, Request
from litestar.response import Stream
from psycopg.rows import tuple_row

from service import front
from service.db import Database, as_http, retried
from service.queries import Db, bind

T = TypeVar("T")
STREAM_ROWS = 2000  # rows per chunk of a streamed list (about half a MiB of JSON)


def database(request: Request) -> Database:
    """The app's pool (opened by the lifespan in service.app)."""
    return request.app.state.database


async def run(
    request: Request,
    permission: str | None,
    work: Callable[[Db], Awaitable[T]],
    *,
    default_field: str = "non_field_errors",
    org_id: Any = None,
) -> T:
    """Authorise and run ``work``: in one transaction for a write, in autocommit for a read
    (see the module's docstring), on the connection whose token lookup the front made.

    ``permission`` is a ``config.role_permissions`` name (None: any authenticated user).
    ``org_id``: the org of the path, which the token lookup checks the user may see (404).
    """
    found = front.session(request)
    write = front.in_transaction(request.method, found.database)

    async def attempt() -> T:
        try:
            async with found.attempt(write):
                user = await found.user(permission, org_id)
                request.state.user = user
                return await work(Db(found.conn, user))
        except psycopg.Error as exc:
            if (unavailable := await found.failed(exc)) is not None:
                raise unavailable from None
            raise

    return await retried(attempt, default_field, found.database)


async def stream_list(request: Request, permission: str, sql: str, **params: Any) -> Stream:
    """A JSON array streamed from one statement whose rows are JSON texts (its first column).

    Before the response starts, the token lookup (401, 403) has run and the statement has
    produced its first rows (or ended), so a refusal, bad input or an unreachable database is
    still a clean 4xx or 503. The rows then come as the database sends them (psycopg's
    ``stream``, libpq chunks of ``STREAM_ROWS`` rows, autocommit: one statement, one snapshot),
    sent on in chunks of as many: the service never holds the whole list. A failure after the
    first chunk aborts the response (no closing ``]``, no end of the chunked body), so a client
    can never take a truncated list for a complete JSON document.
    """
    found = front.session(request)

    async def chunks() -> AsyncIterator[bytes]:
        user = await found.user(permission)
        request.state.user = user
        cursor = found.conn.cursor(row_factory=tuple_row)
        opening, batch = b"[", []
        async for (row,) in cursor.stream(sql, bind(user.scope, params), size=STREAM_ROWS):
            batch.append(row)
            if len(batch) == STREAM_ROWS:
                yield opening + ",".join(batch).encode()
                opening, batch = b",", []
        if batch:
            yield opening + ",".join(batch).encode()
            opening = b","
        yield b"[]" if opening == b"[" else b"]"

    body = chunks()
    try:
        try:
            first = await anext(body)
        except psycopg.Error as exc:
            if not await found.schema_moved(exc):
                raise
            body = chunks()  # a migration changed the schema under the service: once more
            first = await anext(body)
    except psycopg.Error as exc:
        raise (await found.failed(exc) or as_http(exc)) from exc
    except UnicodeEncodeError as exc:
        raise as_http(exc) from exc

    async def rest() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in body:
                yield chunk
        finally:  # a client gone mid-way: cancel the statement, give the connection back now
            await body.aclose()

    return Stream(rest(), media_type=MediaType.JSON)
