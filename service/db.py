"""The database pool, and one transaction on it with retries (:func:`transaction`).

Pool settings and what a database restart costs (measured)
-----------------------------------------------------------
psycopg_pool ``AsyncConnectionPool``: min 2 / max 20 connections (``HIERARCHY_POOL_MAX``),
``timeout`` 2 s while the database is up and 0.25 s while the service believes it is down,
``reconnect_timeout`` 3 s (a failed reconnect chain ends soon; the next request starts a new
one at once instead of waiting out the pool's growing backoff), libpq ``connect_timeout`` 2 s,
a ``check`` on every checkout that first polls the connection's socket without waiting
(:func:`_server_spoke`): an idle connection the server has neither closed nor written to is
handed out with no round trip; one the server closed or spoke on (a restart, a crash, a
failover, ``pg_terminate_backend``: each closes it, most with a FATAL message first) gets
``AsyncConnectionPool.check_connection`` (an empty query), wrapped so that when it is dead *and*
a fresh connection is refused the request answers 503 at once instead of looping until its
timeout; plus a sweep of idle connections (``pool.check()``, the empty query) every second so a
restart's dead connections are replaced before requests meet them. (Until 2026-12 every
checkout ran the empty query: one round trip per request, 11 % of the orphan audit's CPU in
the service; tests/faults and tests/cluster pass without it.)

Measured with uvicorn on this module against a local PostgreSQL 15, polling ``/health`` every
20 ms while ``pg_ctl stop -m fast`` / ``start`` ran (script: poll, stop, wait N s, start):

=================  ==============================  =====================  ===================
outage             slowest request during outage   first 200 after start  slowest after start
=================  ==============================  =====================  ===================
restart (0.13 s)   0.25 s (503)                    0.74 s                 0.26 s
3 s                0.27 s (503)                    0.68 s                 0.26 s
10 s               0.26 s (503)                    0.13 s                 0.01 s
=================  ==============================  =====================  ===================

Before the sweep and the outage check (plain ``check_connection``, timeout 2 s), the first
request after a restart took 1.0 s (the pool's 1 s backoff between two dead connections) and
requests during a 3 s outage waited the full 2 s timeout.

A request's work runs in one :func:`transaction` (service/request.py adds the token check and
the permission; a read runs its statements in autocommit instead): deadlocks and
serialization failures re-run the whole transaction (3 attempts, then 503). Other database
errors become DRF-style 4xx bodies (service.db_errors.map_error); an unreachable database is
503 ``database unavailable``.

A replicated cluster (Patroni): the URL may list several hosts (``service.conninfo``; with
``target_session_attrs=read-write`` libpq connects to the primary). During a failover every
error that says the connection can no longer serve the request -- read-only (25006: a standby
or a demoted primary), class 57 (admin shutdown, cannot connect now), class 08 or a lost
connection -- discards the connection and answers 503 with ``Retry-After`` (never 500); a
read-only one also replaces every pooled connection (service.db_errors.failover_error). The next
request's connection goes to whichever node is primary by then. A commit whose answer was lost
may have happened: the client retries, and a create then answers "already exists".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from service import roles
from service.conninfo import for_primary
from service.db_errors import READ_ONLY, SCHEMA_MOVED, STANDBY, UNAVAILABLE, failover_error, map_error
from service.errors import FieldErrors, ServiceUnavailable
from service.queries import query
from service.settings import prepared_statements

log = logging.getLogger(__name__)
T = TypeVar("T")

POOL_MIN_SIZE = 2
POOL_MAX_SIZE = int(os.environ.get("HIERARCHY_POOL_MAX", "20"))
POOL_TIMEOUT = 2.0  # seconds a request waits for a connection while the database is up
OUTAGE_TIMEOUT = 0.25  # ... and while the last attempt failed: fail fast, let the pool retry
RECONNECT_TIMEOUT = 3.0  # the pool stops a reconnect chain after this; the next request starts a new one
CHECK_INTERVAL = 1.0  # seconds between sweeps of idle connections (purges those a restart killed)
CONNECT_TIMEOUT = 2  # libpq connect_timeout, seconds
TRANSACTION_ATTEMPTS = 3
CLOSE_TIMEOUT = 5.0  # seconds the shutdown waits for the sweeper, then for the pool


def database_url() -> str | None:
    """``HIERARCHY_DATABASE_URL`` (set by ``hierarchy run``) or ``DATABASE_URL``."""
    return os.environ.get("HIERARCHY_DATABASE_URL") or os.environ.get("DATABASE_URL") or None


def prepare_threshold() -> int | None:
    """psycopg's ``prepare_threshold`` for the pool: None (never prepare on the server) when
    ``HIERARCHY_PREPARED_STATEMENTS=off``, as PgBouncer's transaction pooling (1.18) needs: a
    statement prepared on one server connection is unknown on the next. Else psycopg's default
    (prepare a statement after its 5th execution on a connection).
    """
    return 5 if prepared_statements() else None


# Clears the request user a read's token lookup left on a pooled connection (Database.connection).
SIGN_OUT = query("auth.sign_out")

# A statement naming a table, column or function the schema no longer (or not yet) has: a
# migration ran under the service (release 6.4's memberships replace users.org_id/role).
SCHEMA_CHANGED = frozenset({"42P01", "42703", "42883"})


def schema_changed(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error) and exc.sqlstate in SCHEMA_CHANGED


def _server_spoke(conn: psycopg.AsyncConnection) -> bool:
    """Whether an idle connection's socket is readable: the server closed it or sent something
    (an error before closing, a notice, a changed parameter). No round trip: a poll with no wait."""
    if conn.closed:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):  # no socket any more
        return True
    return bool(readable)


class _Outage(BaseException):
    """Raised by the pool's check to stop waiting: the server refuses new connections too."""


@dataclass
class Database:
    """The pool plus what the service learnt about the database's availability."""

    url: str
    pool: AsyncConnectionPool = field(init=False)
    down_since: float | None = None
    # Which form of the statements that release 6.4's memberships change applies (service.
    # queries.by_form): read on every new pooled connection (the pool's configure callback, no
    # round trip per request) and again when a statement meets a schema that changed under
    # the running service (transaction(): the request is then re-run, never a 500).
    memberships: bool = True
    role_checked: bool = False  # whether the first connection's role was checked (_check_role)
    # Whether row-level security applies to the service's role (False: a superuser or BYPASSRLS
    # role, warned about): then the token lookup signs in for its statement only, as before
    # row-level security, and no read needs signing out (service.front).
    row_security: bool = True
    # Behind PgBouncer in transaction pooling (HIERARCHY_PREPARED_STATEMENTS=off) two autocommit
    # statements may run on two server connections, so a read cannot sign its session in:
    # every request then runs in one transaction (service.front, service.request).
    pooler: bool = field(default_factory=lambda: not prepared_statements())
    # Pooled connections a read's token lookup signed in for the session (service.front): any
    # other use of one (login, health, the scheduler) signs it out first (connection()).
    _signed_in: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    _sweeper: asyncio.Task | None = None

    def __post_init__(self) -> None:
        self.url = for_primary(self.url)  # several hosts: find the primary (service.conninfo)
        self.pool = AsyncConnectionPool(
            self.url,
            min_size=POOL_MIN_SIZE,
            max_size=max(POOL_MAX_SIZE, POOL_MIN_SIZE),
            timeout=POOL_TIMEOUT,
            reconnect_timeout=RECONNECT_TIMEOUT,
            # A connection is checked when handed out: a restart's dead connections never
            # reach a handler.
            check=self._check,
            configure=self._configure,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT,
                "row_factory": dict_row,
                "application_name": "hierarchy-api",
                "prepare_threshold": prepare_threshold(),
            },
            open=False,
            name="hierarchy",
        )

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        self.memberships = await self._read_form(conn)
        if not self.role_checked:
            self.role_checked = True
            await self._check_role(conn)

    async def _check_role(self, conn: psycopg.AsyncConnection) -> None:
        """Warn loudly when the service connects as a role above the runtime role's: a
        superuser (or BYPASSRLS) ignores the grants and row-level security of sql/privileges.sql."""
        row = await (await conn.execute(query("health.runtime_role"))).fetchone()
        if row and (row["superuser"] or row["bypass_rls"]):
            self.row_security = False
            log.warning(
                "SECURITY: the service connects as role %s, a %s: grants and row-level security do "
                "not apply to it; connect as the runtime role (DATABASE_URL naming %s, docs/dba.md)",
                row["role"],
                "superuser" if row["superuser"] else "role with BYPASSRLS",
                roles.from_env().app,
            )

    @staticmethod
    async def _read_form(conn: psycopg.AsyncConnection) -> bool:
        row = await (await conn.execute(query("users.has_memberships"))).fetchone()
        return bool(row and row["present"])

    async def refresh_form(self) -> None:
        """Read the schema's form again (a statement met a schema that changed under us)."""
        async with self.connection() as conn:
            self.memberships = await self._read_form(conn)
        log.info(
            "the schema changed under the service; statements of the %s form from now on",
            "memberships" if self.memberships else "one-org",
        )

    async def _check(self, conn: psycopg.AsyncConnection) -> None:
        if not _server_spoke(conn):
            # An idle connection whose socket has nothing to read: the server has neither
            # closed it (a restart, a crash, a failover, pg_terminate_backend all close it,
            # most with a FATAL message first) nor said anything. Hand it out without the
            # round trip of an empty query; a connection that dies after this answers 503.
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            # A dead pooled connection: a restart, or an outage? The pool would sleep its
            # backoff and retry until the request's timeout; when the server does not accept
            # a new connection either, give up at once instead (_Outage ends the pool's loop).
            try:
                probe = await psycopg.AsyncConnection.connect(self.url, connect_timeout=CONNECT_TIMEOUT)
            except Exception:
                self._mark_down()
                raise _Outage() from None
            await probe.close()
            raise

    async def open(self) -> None:
        # wait=False: the service starts (and answers 503) even while the database is down.
        await self.pool.open(wait=False)
        self._sweeper = asyncio.create_task(self._sweep(), name="pool-sweeper")

    async def close(self) -> None:
        # Bounded waits only: a shutdown must never hang. (Seen under load in the tests: the
        # cancelled sweeper kept running inside pool.check(), and awaiting it never returned.)
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait({self._sweeper}, timeout=CLOSE_TIMEOUT)
        closing = asyncio.ensure_future(self.pool.close(timeout=CLOSE_TIMEOUT))
        done, _ = await asyncio.wait({closing}, timeout=2 * CLOSE_TIMEOUT)
        if not done:
            log.warning("the pool did not close within %s s; leaving it to the server", 2 * CLOSE_TIMEOUT)

    async def _sweep(self) -> None:
        # After a restart every idle connection is dead. Checking them at checkout alone makes
        # the first request meet them one by one, sleeping the pool's backoff (1 s, 2 s, ...)
        # between them; sweeping every second replaces them all before requests arrive.
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            try:
                await self.pool.check()
            except Exception:  # the sweeper must outlive any error
                log.debug("pool check failed", exc_info=True)

    def signed_in(self, conn: psycopg.AsyncConnection) -> None:
        """``conn`` holds a request user for its session (a read's token lookup)."""
        self._signed_in.add(conn)

    @contextlib.asynccontextmanager
    async def connection(self, *, signing_in: bool = False) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection; 503 quickly when the database cannot be reached or is failing over.

        ``signing_in``: the caller's first statement is the token lookup, which replaces the
        request user a previous read left on the connection; any other caller gets the
        connection signed out first (auth.sign_out: the user's rows stay invisible to it)."""
        timeout = POOL_TIMEOUT if self.down_since is None else OUTAGE_TIMEOUT
        try:
            async with self.pool.connection(timeout=timeout) as conn:
                if conn in self._signed_in and not signing_in:
                    await conn.execute(SIGN_OUT)
                    self._signed_in.discard(conn)
                try:
                    yield conn
                except psycopg.Error as exc:
                    if failover_error(exc) and not conn.closed:
                        # a read-only connection is healthy to the pool: close it so the pool
                        # replaces it instead of handing it out again
                        await conn.close()
                    raise
        except (PoolTimeout, _Outage):
            self._mark_down()
            raise ServiceUnavailable(UNAVAILABLE) from None
        except psycopg.Error as exc:
            if (unavailable := await self.failed_over(exc)) is None:
                raise  # a query error of class 53/55/... : not an outage, map_error decides
            raise unavailable from None
        else:
            self.down_since = None

    async def failed_over(self, exc: psycopg.Error) -> ServiceUnavailable | None:
        """What a statement's error says about the database: None when it is only a query's
        error; else the 503 to answer, after replacing the connections it condemns. (The
        connection that raised it is closed by ``connection()``, or by its holder.)"""
        if not failover_error(exc):
            return None
        if exc.sqlstate == READ_ONLY:
            # The server we reached does not accept writes (a standby, a demoted primary):
            # every pooled connection was made the same way. Replace them all; with
            # target_session_attrs=read-write the new ones find the primary. (drain only
            # closes the idle ones and schedules their replacements: it does not wait.)
            await self.pool.drain()
            return ServiceUnavailable(STANDBY)
        self._mark_down()
        # a connection died under us: sweep the others now rather than on the next tick
        asyncio.get_running_loop().create_task(self.pool.check())
        return ServiceUnavailable(UNAVAILABLE)

    def _mark_down(self) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("database unavailable")


def as_http(exc: psycopg.Error | UnicodeEncodeError, default_field: str = "non_field_errors") -> Exception:
    """What a request answers for an error its statements raised (service.db_errors)."""
    if isinstance(exc, UnicodeEncodeError):  # e.g. a lone surrogate in a JSON string
        return FieldErrors({default_field: [f"text cannot be stored: {exc.reason}"]})
    return map_error(exc, default_field)


async def transaction(
    database: Database,
    work: Callable[[psycopg.AsyncConnection], Awaitable[T]],
    *,
    default_field: str = "non_field_errors",
    read_only: bool = False,
) -> T:
    """Run ``work`` in one transaction, retried on deadlock/serialization failure.

    ``read_only``: the work only reads, so its statements run in autocommit, each with its own
    snapshot as in a read-committed transaction block: no BEGIN and no COMMIT, two round trips
    fewer. (A list and its count are one statement, so they always agree.)
    """

    async def attempt() -> T:
        async with database.connection() as conn:
            if read_only:
                return await work(conn)
            async with conn.transaction():
                return await work(conn)

    return await retried(attempt, default_field, database)


async def retried(
    attempt: Callable[[], Awaitable[T]],
    default_field: str = "non_field_errors",
    database: Database | None = None,
) -> T:
    """``attempt()`` (one transaction), again on deadlock/serialization failure (3 attempts, then
    503), and again after ``database`` learnt the schema's form when a statement met a schema
    that a migration changed under the service; its other database errors as HTTP answers
    (:func:`as_http`)."""
    for number in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            return await attempt()
        except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
            log.info("transaction attempt %d failed (%s): retrying", number, exc.sqlstate)
            if number == TRANSACTION_ATTEMPTS:
                raise ServiceUnavailable("database busy: the change conflicted with others; retry") from None
            await asyncio.sleep(0.01 * number)
        except psycopg.Error as exc:
            if database is None or not schema_changed(exc):
                raise as_http(exc, default_field) from exc
            # a migration ran under the service: learn the schema's form and run it all again
            log.info("transaction attempt %d met a changed schema (%s): retrying", number, exc.sqlstate)
            if number == TRANSACTION_ATTEMPTS:
                raise ServiceUnavailable(SCHEMA_MOVED) from None
            await database.refresh_form()
        except UnicodeEncodeError as exc:
            raise as_http(exc, default_field) from exc
    raise AssertionError("unreachable")  # pragma: no cover
