"""Row-level helpers shared by the rule tests."""

from __future__ import annotations

import psycopg

from tests.sql_checks import PROJECTS_CHECKSUM

MODE = "turbine_api_feature_migrate_projects_to_orgs"
# Release 6.4's migrations, in order: the one list a test of whole-release steps names
MIGRATIONS_64 = ("0003.customers-required", "0004.org-memberships", "0005.org-promotion")


def scalar(conn, query, params=None):
    return conn.execute(query, params).fetchone()[0]


def org_id(conn):
    return scalar(conn, "SELECT uuid FROM config.orgs ORDER BY created LIMIT 1")


def add_projects(conn, names, org=None):
    """Inserts projects in one multi-row INSERT and returns their uuids."""
    org = org or org_id(conn)
    rows = conn.execute(
        "INSERT INTO config.projects (org_id, name) SELECT %s::uuid, unnest(%s::text[]) RETURNING uuid",
        (org, list(names)),
    ).fetchall()
    return [r[0] for r in rows]


def set_mode(conn, per_project: bool):
    conn.execute(
        "UPDATE config.tunables SET value = to_jsonb(%s::boolean) WHERE name = %s", (per_project, MODE)
    )


def customers(conn):
    """{customer name: (origin, sorted project names)} for the whole database."""
    rows = conn.execute(
        """SELECT c.name, c.origin,
                  coalesce(array_agg(p.name ORDER BY p.name) FILTER (WHERE p.uuid IS NOT NULL), '{}')
           FROM config.customers c LEFT JOIN config.projects p ON p.customer_id = c.uuid
           GROUP BY c.uuid, c.name, c.origin"""
    ).fetchall()
    return {name: (origin, list(projects)) for name, origin, projects in rows}


def orphans(conn):
    return [
        r[0]
        for r in conn.execute(
            "SELECT name FROM config.projects WHERE customer_id IS NULL ORDER BY name"
        ).fetchall()
    ]


def snapshot(conn):
    """Every customer and project row, to prove an operation changed nothing."""
    return (
        conn.execute("SELECT c::text FROM config.customers c ORDER BY uuid").fetchall(),
        conn.execute("SELECT p::text FROM config.projects p ORDER BY uuid").fetchall(),
    )


def projects_checksum(conn):
    """md5 over the project columns that exist at both releases."""
    return scalar(conn, PROJECTS_CHECKSUM)


def run_job(conn, *, dry_run=False, force=False, source="sql"):
    return scalar(
        conn,
        "SELECT config.reconcile_customers(dry_run => %s::boolean, force => %s::boolean, source => %s::text)",
        (dry_run, force, source),
    )


def pass_grace(conn):
    """Lets the grace period elapse for the current orphans, as waiting would."""
    conn.execute(
        "UPDATE config.projects SET orphaned_at = orphaned_at - interval '1 day' WHERE customer_id IS NULL"
    )


def yoyo_marked(url: str) -> set[str]:
    """The migrations yoyo records as applied."""
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()}


def scheduled(conn):
    """The project's pg_cron jobs in this database, by name."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT jobname FROM cron.job"
            " WHERE jobname IN ('reconcile-customers', 'prune-cron-history') ORDER BY 1"
        )
    ]
