"""Upgrade and downgrade: the init job, and customers following the tunable."""

import psycopg

from service.migrations import migrate
from tests.rules.helpers import MODE, add_projects, customers, orphans, projects_checksum, scalar, set_mode

USER_PROJECTS = [f"proj_{i:03d}" for i in range(40)]


def at_60_with_projects(url, per_project=None):
    migrate(url, to="6.0")
    with psycopg.connect(url, autocommit=True) as conn:
        add_projects(conn, USER_PROJECTS)
        if per_project is not None:
            set_mode(conn, per_project)


def test_upgrade_single_mode_makes_system_and_one_default_customer(empty_db_url):
    at_60_with_projects(empty_db_url)
    migrate(empty_db_url, to="6.1")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        got = customers(conn)
        assert got.pop("hydro") == ("system", ["hydro"])
        assert got.pop("sample_project") == ("system", ["sample_project"])
        assert list(got.values()) == [("default", sorted(USER_PROJECTS))]
        assert orphans(conn) == []
        run = conn.execute("SELECT source, forced, projects_associated FROM config.job_runs").fetchall()
        assert run == [("upgrade", True, len(USER_PROJECTS) + 2)]


def test_upgrade_per_project_mode_names_each_customer_after_its_project(empty_db_url):
    at_60_with_projects(empty_db_url, per_project=True)
    migrate(empty_db_url, to="6.1")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        got = customers(conn)
        assert got.pop("hydro")[0] == got.pop("sample_project")[0] == "system"
        assert got == {name: ("project", [name]) for name in USER_PROJECTS}
        assert orphans(conn) == []


def test_downgrade_deletes_customers_keeps_projects_and_reupgrade_follows_new_tunable(empty_db_url):
    at_60_with_projects(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        before = projects_checksum(conn)
    migrate(empty_db_url, to="6.1")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        manual = scalar(conn, "INSERT INTO config.customers (name) VALUES ('acme corp') RETURNING uuid")
        conn.execute(
            "UPDATE config.projects SET customer_id = %s WHERE name IN ('proj_000', 'proj_001')", (manual,)
        )
    migrate(empty_db_url, to="6.0")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert scalar(conn, "SELECT to_regclass('config.customers')") is None
        assert projects_checksum(conn) == before
        assert scalar(conn, "SELECT value FROM config.tunables WHERE name = %s", (MODE,)) is False
        deleted = scalar(conn, "SELECT before FROM config.audit_log WHERE action = 'downgrade'")
        assert deleted["customers_deleted"] == 4  # hydro, sample_project, the default, acme-corp
        set_mode(conn, True)
    migrate(empty_db_url, to="6.1")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        got = customers(conn)
        assert {name for name, (origin, _) in got.items() if origin == "project"} == set(USER_PROJECTS)
        assert "acme-corp" not in got  # manual groupings do not come back
        assert orphans(conn) == []
        assert projects_checksum(conn) == before  # associations never touch a project's own columns
