"""The migrations up and down in a real PostgreSQL container started by testcontainers.

What a team adopting the project runs in its CI: the project's image (containers/postgres,
PostgreSQL 15 + pg_cron) in a throwaway container, data loaded at 6.0, then 6.0 -> 6.1 -> 6.4,
down to 6.0 and up again, checked as the embedded-cluster tests check it (tests/test_migrations.py,
tests/rules/test_upgrade.py, tests/rules/test_cron.py: their helpers, not copies); pg_cron
running the job inside the container; and ``hierarchy run`` serving from it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import httpx
import psycopg
import pytest
from argon2 import PasswordHasher

from service import users
from service.migrations import count_customers, migrate, plan
from tests.containers.engine import CRON_DB, SCRIPT, image_name
from tests.faults.conftest import HierarchyRun
from tests.rules.helpers import (
    MIGRATIONS_64,
    MODE,
    add_projects,
    customers,
    orphans,
    scalar,
    scheduled,
    set_mode,
    yoyo_marked,
)
from tests.sql_checks import PROJECTS_CHECKSUM

GRACE = "customer_orphan_grace_seconds"
ORGS = ["acme", "globex", "initech"]
PROJECTS_PER_ORG = 6
USERS_PER_ORG = 2
PASSWORD = "correct horse battery"

# Every row a 6.0 database holds besides projects: none may change across an up-and-down trip.
# Compared by column name (to_jsonb), without users.org_id and role: release 6.4 moves them into
# org_memberships (compared by USER_ORGS at every release) and its rollback adds them back at
# the end of the table
ROWS_60 = {
    table: f"SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) "
    f"FROM (SELECT to_jsonb(t) - 'org_id' - 'role' AS r FROM config.{table} t) s"
    for table in ("orgs", "users", "roles", "role_permissions")
}
USER_ORGS = {  # each user's (primary) org and role, wherever the release keeps them
    False: "SELECT md5(string_agg(concat_ws(':', u.email, u.org_id, u.role), ',' ORDER BY u.email)) "
    "FROM config.users u",
    True: "SELECT md5(string_agg(concat_ws(':', u.email, m.org_id, m.role), ',' ORDER BY u.email)) "
    "FROM config.users u JOIN config.org_memberships m ON m.user_id = u.uuid AND m.is_primary",
}


def load_at_60(url: str, *, per_project: bool, grace: int) -> dict[str, list[str]]:
    """Migrate to 6.0 and load orgs, projects, users and both tunables; {org: its project names}."""
    assert migrate(url, "6.0") == [("apply", "0001.baseline")]
    loaded = {}
    saved = users.HASHER
    users.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # hashing is not under test
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for org in ORGS:
                org_id = scalar(conn, "INSERT INTO config.orgs (name) VALUES (%s) RETURNING uuid", (org,))
                loaded[org] = [f"{org}_p{i}" for i in range(PROJECTS_PER_ORG)]
                add_projects(conn, loaded[org], org=org_id)
                for i in range(USERS_PER_ORG):
                    users.create_user(conn, f"{org}-{i}@example.com", PASSWORD, org_id, "super_admin")
            set_mode(conn, per_project)
            conn.execute(
                "UPDATE config.tunables SET value = to_jsonb(%s::int) WHERE name = %s", (grace, GRACE)
            )
    finally:
        users.HASHER = saved
    return loaded


def rows_60(url: str) -> dict[str, str]:
    """Checksums of everything loaded at 6.0 (projects: the columns both releases have)."""
    with psycopg.connect(url, autocommit=True) as conn:
        sums = {table: scalar(conn, query) for table, query in ROWS_60.items()}
        sums["projects"] = scalar(conn, PROJECTS_CHECKSUM)
        memberships = scalar(conn, "SELECT to_regclass('config.org_memberships') IS NOT NULL")
        sums["user_orgs"] = scalar(conn, USER_ORGS[memberships])
        sums["tunables"] = conn.execute(
            "SELECT name, value FROM config.tunables WHERE name IN (%s, %s) ORDER BY name", (MODE, GRACE)
        ).fetchall()
    return sums


def release(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return scalar(conn, "SELECT config.schema_release()")


def assert_single_mode_customers(url: str, loaded: dict[str, list[str]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        got = customers(conn)
        assert got.pop("hydro") == ("system", ["hydro"])
        assert got.pop("sample_project") == ("system", ["sample_project"])
        assert sorted(got.values()) == sorted(("default", sorted(names)) for names in loaded.values())
        assert orphans(conn) == []


def assert_per_project_customers(url: str, loaded: dict[str, list[str]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        got = customers(conn)
        assert got.pop("hydro")[0] == got.pop("sample_project")[0] == "system"
        assert got == {name: ("project", [name]) for names in loaded.values() for name in names}
        assert orphans(conn) == []


def upgrade_runs(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT source, forced, projects_associated FROM config.job_runs").fetchall()


def test_the_image_is_named_by_its_source_as_the_script_names_it(container_session):
    import docker

    for base in ("localhost/hierarchy-bookworm:latest", "postgres:15"):
        named = subprocess.run(
            ["bash", str(SCRIPT), "image"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "HIERARCHY_POSTGRES_BASE": base},
        ).stdout.strip()
        assert named == image_name(base)
    client = docker.from_env()
    try:
        labels = client.images.get(container_session.image).labels
    finally:
        client.close()
    assert labels["org.hierarchy.source-hash"] == container_session.image.rsplit(":", 1)[1]


def test_up_down_up_with_data_loaded_at_60(container_db):
    url = container_db
    loaded = load_at_60(url, per_project=False, grace=300)
    at_60 = rows_60(url)
    total = sum(map(len, loaded.values())) + 2  # hydro and sample_project came with 6.0

    # 6.0 -> 6.1: the upgrade's own job run groups every project under its org's default customer
    assert plan(url, "6.1") == [("apply", "0002.customers")]
    assert migrate(url, "6.1") == [("apply", "0002.customers")]
    assert release(url) == "6.1"
    assert_single_mode_customers(url, loaded)
    assert upgrade_runs(url) == [("upgrade", True, total)]
    assert yoyo_marked(url) == {"0001.baseline", "0002.customers"}
    assert rows_60(url) == at_60, "the upgrade changes no row of 6.0"

    # 6.1 -> 6.4: customers required, nothing regrouped
    with psycopg.connect(url, autocommit=True) as conn:
        at_61 = customers(conn)
    assert migrate(url, "6.4") == [("apply", m) for m in MIGRATIONS_64]
    assert release(url) == "6.4"
    with psycopg.connect(url, autocommit=True) as conn:
        assert customers(conn) == at_61
    assert yoyo_marked(url) == {"0001.baseline", "0002.customers", *MIGRATIONS_64}

    # 6.4 -> 6.0: every customer deleted, nothing else
    assert migrate(url, "6.0") == [
        *(("rollback", m) for m in reversed(MIGRATIONS_64)),
        ("rollback", "0002.customers"),
    ]
    assert release(url) == "6.0"
    assert count_customers(url) == 0
    with psycopg.connect(url, autocommit=True) as conn:
        assert scalar(conn, "SELECT to_regclass('config.customers')") is None
        deleted = scalar(conn, "SELECT before FROM config.audit_log WHERE action = 'downgrade'")
    assert deleted["customers_deleted"] == len(at_61)
    assert rows_60(url) == at_60, "the downgrade deletes customers and nothing else"
    assert yoyo_marked(url) == {"0001.baseline"}

    # up again with the tunable's other value: a customer per project, straight to 6.4
    with psycopg.connect(url, autocommit=True) as conn:
        set_mode(conn, True)
    at_60 = rows_60(url)
    assert migrate(url, "6.4") == [("apply", "0002.customers"), *(("apply", m) for m in MIGRATIONS_64)]
    assert release(url) == "6.4"
    assert_per_project_customers(url, loaded)
    assert upgrade_runs(url) == [("upgrade", True, total)]
    assert rows_60(url) == at_60
    assert yoyo_marked(url) == {"0001.baseline", "0002.customers", *MIGRATIONS_64}


def test_pg_cron_runs_the_job_inside_the_container(container_session, container_cron_tick):
    # The container's cron database was migrated to 6.1 when the container started, and
    # pg_cron's run on the minute awaited in the background since (RealCronTick).
    tick = container_cron_tick
    if tick.failure is not None:
        raise tick.failure
    if tick.outcome is None:
        pytest.fail(f"no cron run within {tick.TIMEOUT:.0f} s; cron.job_run_details: {tick.details}")
    assert tick.outcome == ("cron", None)
    url = container_session.url(CRON_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        assert scalar(conn, "SHOW cron.database_name") == CRON_DB
        assert scheduled(conn) == ["prune-cron-history", "reconcile-customers"]
        assert conn.execute(
            "SELECT DISTINCT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
            " WHERE j.jobname = 'reconcile-customers'"
        ).fetchall() == [("succeeded",)]
    migrate(url, "6.0")
    with psycopg.connect(url, autocommit=True) as conn:
        assert scheduled(conn) == []


def test_hierarchy_run_against_the_container_answers_the_orphan_audit(container_db, tmp_path):
    loaded = load_at_60(container_db, per_project=True, grace=0)
    service = HierarchyRun(container_db, tmp_path / "service.log", to=None)  # the newest release
    try:
        service.start().wait_healthy(90)
        assert release(container_db) == "6.4", "hierarchy run upgraded 6.0 to the newest release"
        token = httpx.post(
            service.base + "/config/v1/login",
            json={"username": f"{ORGS[0]}-0@example.com", "password": PASSWORD},  # loaded at 6.0
            timeout=10,
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['auth_token']['access_token']}"}
        with psycopg.connect(container_db, autocommit=True) as conn:
            org_ids = dict(conn.execute("SELECT name, uuid FROM config.orgs").fetchall())
            homes = {org: {} for org in loaded}  # {org: {project: the customer named after it}}
            for org, project, customer in conn.execute(
                "SELECT o.name, p.name, c.uuid::text FROM config.projects p"
                " JOIN config.orgs o ON o.uuid = p.org_id JOIN config.customers c ON c.name = p.name"
                " WHERE o.name = ANY(%s)",
                (list(loaded),),
            ):
                homes[org][project] = customer
        assert {org: sorted(projects) for org, projects in homes.items()} == loaded
        with httpx.Client(base_url=service.base, headers=headers, timeout=10) as client:
            for org in loaded:
                projects = f"/config/v1/orgs/{org_ids[org]}/projects/"
                audit = client.get(projects, params={"customer_id__isnull": "True"})
                assert audit.status_code == 200, audit.text
                assert audit.json() == [], f"no orphan in {org}"
                every = client.get(projects)
                assert every.status_code == 200, every.text
                assert {p["name"]: p["customer"] for p in every.json()} == homes[org], "each in its own"
    finally:
        with contextlib.suppress(Exception):
            service.stop()
    assert service.proc.returncode is not None
