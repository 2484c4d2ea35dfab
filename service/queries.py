"""Every SQL statement the service runs, loaded by name from ``sql/queries/*.sql``.

A file holds named blocks, Procrastinate-style::

    -- name: list_projects
    -- optional comment lines describing the statement
    SELECT ... WHERE p.org_id = %(org_id)s::uuid;

A block is available as ``"<file stem>.<name>"`` (``projects.list_projects``). Python never
builds SQL and never formats values into it: statements take psycopg named parameters, each
with an explicit cast, and callers fetch them with :func:`query` at import time, so a
misspelt name fails when the module is imported (the app refuses to start), not on a request.
Loading fails on a duplicate name, a block without a statement, or text before the first name.

Running them: the API (async, one request's connection) and the command line (sync) use the
same two faces, :class:`Db` and :class:`SyncDb`, which share what every statement is given
(:func:`bind`: the caller's :class:`Scope`, then ``limit``/``offset`` defaults meaning "the
whole list", then the statement's own parameters) and how a list's ``total`` column is taken
off its rows (:func:`split_total`). A route or a command names the statement and its own
parameters, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg

QUERIES_DIR = Path(__file__).resolve().parent.parent / "sql" / "queries"
_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class QueryError(LookupError):
    """A query file is malformed, or code asked for a name no file defines."""


def parse(text: str, stem: str) -> dict[str, str]:
    """The named blocks of one file, keyed ``"<stem>.<name>"``."""
    found: dict[str, str] = {}
    parts = _NAME.split(text)
    if parts[0].strip() and any(not line.startswith("--") for line in parts[0].strip().splitlines()):
        raise QueryError(f"{stem}.sql: statement text before the first '-- name:' line")
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        key = f"{stem}.{name}"
        statement = (
            "\n".join(line for line in body.strip().splitlines() if not line.lstrip().startswith("--"))
            .strip()
            .rstrip(";")
            .strip()
        )
        if not statement:
            raise QueryError(f"{stem}.sql: block {name!r} has no statement")
        if key in found:
            raise QueryError(f"{stem}.sql: duplicate query name {name!r}")
        found[key] = statement
    return found


def load(directory: Path = QUERIES_DIR) -> dict[str, str]:
    """All named statements of every ``*.sql`` file in ``directory``."""
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for key, statement in parse(path.read_text(encoding="utf-8"), path.stem).items():
            if key in queries:  # pragma: no cover - parse() already refuses duplicates per file
                raise QueryError(f"duplicate query name {key!r}")
            queries[key] = statement
    if not queries:
        raise QueryError(f"no queries found in {directory}")
    return queries


QUERIES: dict[str, str] = load()


def query(name: str) -> str:
    """The statement called ``name`` ("<file>.<name>"); raises QueryError for an unknown name."""
    try:
        return QUERIES[name]
    except KeyError:
        raise QueryError(f"unknown query {name!r} (not in {QUERIES_DIR}/*.sql)") from None


def by_form(name: str) -> dict[bool, str]:
    """A statement that release 6.4's memberships change: ``{True: name, False: name_one_org}``,
    indexed by whether the schema has ``config.org_memberships`` (``User.memberships``,
    ``Database.memberships``). Only the token lookup, login and the users statements differ."""
    return {True: query(name), False: query(f"{name}_one_org")}


# -- running them: one async and one sync face with the same defaults -------------------------------
T = TypeVar("T")
# A check written once for both faces: it yields (statement, params), is sent each first row
# back, and returns its answer (Db.steps / SyncDb.steps drive it; see service/jobs.py).
Steps = Generator[tuple[str, dict[str, Any]], "dict[str, Any] | None", T]

WHOLE_LIST = {"limit": None, "offset": 0}  # a list statement's LIMIT/OFFSET when the caller gives none


@dataclass(frozen=True)
class Scope:
    """Whom a statement runs for: the parameters every tenant-scoped statement takes.

    ``user_orgs``: the user's orgs (primary first); ``write_orgs``: those where its role may
    change projects. Both come from the token lookup (auth.user_for_token)."""

    all_orgs: bool
    user_orgs: Any = None
    user_id: Any = None
    write_orgs: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "all_orgs": self.all_orgs,
            "user_orgs": self.user_orgs,
            "write_orgs": self.write_orgs,
            "user_id": self.user_id,
        }


# The command line: an operator holding the database's credentials sees every org.
EVERY_ORG = Scope(all_orgs=True)


def bind(scope: Scope | None, params: dict[str, Any]) -> dict[str, Any]:
    """A statement's parameters: list defaults, then the scope (none: unscoped statements only,
    so a scoped statement run without one fails instead of seeing everything), then ``params``."""
    return {**WHOLE_LIST, **(scope.params() if scope is not None else {}), **params}


def split_total(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """A list statement's rows without their ``total`` column (count before LIMIT), and the total."""
    total = rows[0]["total"] if rows else 0
    for row in rows:
        row.pop("total", None)
    return rows, total


class Db:
    """The async face: one API request's connection (a transaction for a write), scoped to its
    user (``user.scope``)."""

    def __init__(self, conn: psycopg.AsyncConnection, user: Any = None) -> None:
        self.conn = conn
        self.user = user
        self.scope: Scope | None = user.scope if user is not None else None

    async def all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return await (await self.conn.execute(sql, bind(self.scope, params))).fetchall()

    async def one(self, sql: str, **params: Any) -> dict[str, Any] | None:
        return await (await self.conn.execute(sql, bind(self.scope, params))).fetchone()

    async def execute(self, sql: str, **params: Any) -> int:
        return (await self.conn.execute(sql, bind(self.scope, params))).rowcount

    async def listed(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """A list statement's rows without ``total``."""
        return split_total(await self.all(sql, **params))[0]

    async def steps(self, steps: Steps[T]) -> T:
        """Run a :data:`Steps` check: each statement it yields, its first row sent back."""
        row = None
        try:
            while True:
                statement, params = steps.send(row)
                row = await self.one(statement, **params)
        except StopIteration as done:
            return done.value


class SyncDb:
    """The sync face: the command line's transaction, scoped to every org by default."""

    def __init__(self, conn: psycopg.Connection, scope: Scope | None = EVERY_ORG) -> None:
        self.conn = conn
        self.scope = scope

    def all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return self.conn.execute(sql, bind(self.scope, params)).fetchall()

    def one(self, sql: str, **params: Any) -> dict[str, Any] | None:
        return self.conn.execute(sql, bind(self.scope, params)).fetchone()

    def execute(self, sql: str, **params: Any) -> int:
        return self.conn.execute(sql, bind(self.scope, params)).rowcount

    def listed(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """A list statement's rows without ``total``."""
        return split_total(self.all(sql, **params))[0]

    def steps(self, steps: Steps[T]) -> T:
        """Run a :data:`Steps` check: each statement it yields, its first row sent back."""
        row = None
        try:
            while True:
                statement, params = steps.send(row)
                row = self.one(statement, **params)
        except StopIteration as done:
            return done.value
