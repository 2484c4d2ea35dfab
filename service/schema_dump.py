"""Regenerate (or check) ``sql/schema.sql`` from a fully migrated throwaway database.

    python -m service.schema_dump           # rewrite sql/schema.sql   (what `make schema` runs)
    python -m service.schema_dump --check   # exit 3 when sql/schema.sql is stale

The throwaway database is a scratch database on ``DATABASE_URL``'s server when that is set
(needs CREATEDB), otherwise on an ephemeral embedded cluster. It is created without the pg_cron
extension, like the test template, so the dump is the same whichever server produced it (the
dump covers schemas ``config`` and ``service_state``, the service's own state outside the
release ladder; pg_cron's schedule lives in schema ``cron``, yoyo's records in ``public``).

The dump is ``pg_dump --schema-only --no-owner --no-privileges --schema=config
--schema=service_state`` from the same
binary directory as the embedded server, normalised: the ``SET``/``set_config`` preamble, the
``-- Dumped from/by`` version lines and ``\\restrict``/``\\unrestrict`` lines are dropped and
runs of blank lines collapsed, so the file only changes when the schema does.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from service import migrations
from service.embedded import EmbeddedCluster, EmbeddedError, find_bindir

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "sql" / "schema.sql"
HEADER = (
    "-- GENERATED FILE: do not edit. Regenerate with `make schema` (python -m service.schema_dump).\n"
    "-- The schemas `config` and `service_state` of a database migrated to release {release}, from\n"
    "-- pg_dump --schema-only, normalised. Database logic is authored in migrations/ (and the\n"
    "-- service's own state in sql/service_state.sql); this file is the picture of the result.\n"
)

_DROP = re.compile(
    r"^(SET |SELECT pg_catalog\.set_config\(|-- Dumped from database version|-- Dumped by pg_dump version"
    r"|\\restrict|\\unrestrict)"
)


def normalise(dump: str) -> str:
    lines = [ln.rstrip() for ln in dump.splitlines() if not _DROP.match(ln)]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text + "\n"


def _pg_dump() -> str:
    return str(find_bindir() / "pg_dump")


def dump_schema(url: str) -> str:
    """The normalised schema-only dump of schema ``config`` at ``url``, with the header."""
    params = conninfo_to_dict(url.replace("postgresql+psycopg://", "postgresql://", 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)  # not on the command line, where ps would show it
    result = subprocess.run(
        [
            _pg_dump(),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--schema=config",
            "--schema=service_state",
            "--dbname",
            make_conninfo(**params),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if result.returncode != 0:
        err = result.stderr.strip().splitlines()
        raise RuntimeError(f"pg_dump failed: {err[0] if err else 'exit ' + str(result.returncode)}")
    release = migrations.current_release(url)
    return HEADER.format(release=release) + "\n" + normalise(result.stdout)


def _with_scratch_database(server_url: str, fn):
    """Create a scratch database on the server of ``server_url``, run fn(url), drop it."""
    name = f"hierarchy_schema_{uuid.uuid4().hex[:12]}"
    with migrations.connect(server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url.replace("postgresql+psycopg://", "postgresql://", 1))
    params["dbname"] = name
    url = make_conninfo(**params)
    try:
        return fn(url)
    finally:
        with migrations.connect(server_url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def generate(database_url: str | None = None) -> str:
    """Migrate a throwaway database to LATEST and return its normalised dump."""

    def work(url: str) -> str:
        migrations.migrate(url, migrations.LATEST)
        return dump_schema(url)

    if database_url:
        return _with_scratch_database(database_url, work)
    with EmbeddedCluster(None, ephemeral=True, dbname="postgres") as cluster:
        return _with_scratch_database(cluster.admin_url("postgres"), work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.schema_dump", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="exit 3 if sql/schema.sql is stale")
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE, help="default: sql/schema.sql")
    args = parser.parse_args(argv)
    try:
        text = generate(os.environ.get("DATABASE_URL") or None)
    except (migrations.MigrationError, EmbeddedError, RuntimeError) as exc:
        print(f"schema_dump: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run make schema", file=sys.stderr)
            return 3
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
