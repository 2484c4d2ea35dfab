"""service/names.py against the migrated database: every shared name is the database's."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from service import names


def rows(url: str, statement: str, params: tuple = ()) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(statement, params).fetchall()


def check_values(url: str, constraint: str) -> set[str]:
    """The quoted values of a CHECK (column IN (...)) constraint of schema config."""
    definition = rows(
        url,
        "SELECT pg_get_constraintdef(c.oid) AS d FROM pg_constraint c "
        "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'config' AND c.conname = %s",
        (constraint,),
    )[0]["d"]
    return set(definition.split("'")[1::2]) - {"text"}


def test_tunables_and_roles_are_the_databases(db_url):
    tunables = {r["name"] for r in rows(db_url, "SELECT name FROM config.tunables")}
    assert {names.MODE_TUNABLE, names.GRACE_TUNABLE} <= tunables
    assert {r["name"] for r in rows(db_url, "SELECT name FROM config.roles")} == set(names.ROLES)


def test_origins_and_job_sources_are_the_databases(db_url):
    assert check_values(db_url, "customers_origin_known") == set(names.ORIGINS)
    sources = rows(db_url, "SELECT config.job_sources() AS s")[0]["s"]
    assert tuple(sources) == names.JOB_SOURCES
    assert "config.job_sources()" in rows(
        db_url,
        "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conname = 'job_runs_source_known'",
    )[0]["d"]


def test_the_mode_tunable_is_the_databases(db_url):
    assert rows(db_url, "SELECT config.mode_tunable() AS m")[0]["m"] == names.MODE_TUNABLE


def test_one_of():
    assert names.one_of(names.ROLES) == "super_admin, operator or read_only"
