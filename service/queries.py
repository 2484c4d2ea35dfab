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
"""

from __future__ import annotations

import re
from pathlib import Path

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
