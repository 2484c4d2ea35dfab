"""Release 6.4 (migrations/0003) from SQL: the upgrade's refusal, every 6.4 rule, and the round
trip 6.0 -> 6.1 -> 6.4 -> 6.1 -> 6.4 keeping projects, customers and associations exactly."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from service import migrations
from service.migrations import UpgradeBlocked, migrate
from tests.rules.helpers import MODE, add_projects, org_id, orphans, projects_checksum, scalar, set_mode
from tests.sql_checks import ASSOCIATIONS, CUSTOMER_ROWS, PROJECT_ROWS

STATE = {"projects": PROJECT_ROWS, "customers": CUSTOMER_ROWS, "associations": ASSOCIATIONS}


def state(url):
    with psycopg.connect(url, autocommit=True) as conn:
        return {key: scalar(conn, statement) for key, statement in STATE.items()}


def not_null(conn) -> bool:
    return scalar(
        conn,
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'config.projects'::regclass"
        " AND attname = 'customer_id'",
    )


@pytest.fixture
def db64(db_url_64):
    with psycopg.connect(db_url_64, autocommit=True) as conn:
        yield conn


def manual_customer(conn, name, projects):
    customer = scalar(conn, "INSERT INTO config.customers (name) VALUES (%s) RETURNING uuid", (name,))
    conn.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = ANY (%s)", (customer, projects))
    return customer


# -- the round trip -------------------------------------------------------------------------------
def test_60_61_64_61_64_keeps_every_project_customer_and_association(empty_db_url):
    url = empty_db_url
    migrate(url, "6.0")
    with psycopg.connect(url, autocommit=True) as conn:
        add_projects(conn, [f"p{i:04d}" for i in range(1000)])
        before = projects_checksum(conn)
    migrate(url, "6.1")
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT uuid FROM config.projects WHERE name LIKE 'p00%'")]
        manual_customer(conn, "acme", ids)  # 100 projects grouped by an administrator
        at_61 = state(url)
        assert orphans(conn) == [] and projects_checksum(conn) == before
    for release in ("6.4", "6.1", "6.4"):
        migrate(url, release)
        assert migrations.current_release(url) == release
        assert state(url) == at_61, f"at {release}"
        with psycopg.connect(url, autocommit=True) as conn:
            assert projects_checksum(conn) == before
            assert not_null(conn) is (release == "6.4")
            assert (
                scalar(
                    conn,
                    "SELECT count(*) FROM config.projects WHERE customer_id = "
                    "(SELECT uuid FROM config.customers WHERE name = 'acme')",
                )
                == 100
            )


# -- the refusal ----------------------------------------------------------------------------------
def test_upgrade_with_one_orphan_refuses_names_it_and_changes_nothing(db, db_url):
    url = db_url
    [lost] = add_projects(db, ["lost_project"])
    db.execute("UPDATE config.projects SET customer_id = NULL WHERE uuid = %s", (lost,))
    before = state(url), scalar(db, "SELECT count(*) FROM config.audit_log")
    with pytest.raises(UpgradeBlocked) as info:
        migrate(url, "6.4")
    message = str(info.value)
    assert info.value.exit_code == 3 and "\n" not in message
    assert "1 project(s) have no customer: hydrolix/lost_project (orphan since 20" in message
    assert "hierarchy reconcile --force" in message and "release 6.1" in message
    assert migrations.current_release(url) == "6.1"
    assert (state(url), scalar(db, "SELECT count(*) FROM config.audit_log")) == before
    assert not not_null(db)
    assert scalar(db, "SELECT to_regclass('config.parked_cron_jobs')") is None
    assert scalar(db, "SELECT count(*) FROM _yoyo_migration WHERE migration_id LIKE '0003%'") == 0
    [blocker] = db.execute(
        "SELECT project_name, org_name, reason, remedy FROM config.upgrade_blockers('6.4')"
    )
    assert blocker[:2] == ("lost_project", "hydrolix") and "reconcile --force" in blocker[3]
    # what the message says to do is enough
    scalar(db, "SELECT config.reconcile_customers(force => true)")
    assert migrate(url, "6.4") == [
        ("apply", "0003.customers-required"),
        ("apply", "0004.org-memberships"),
        ("apply", "0005.org-promotion"),
    ]


def test_the_refusal_lists_the_first_five_and_counts_the_rest(db, db_url):
    ids = add_projects(db, [f"o{i}" for i in range(7)])
    db.execute("UPDATE config.projects SET customer_id = NULL WHERE uuid = ANY (%s)", (ids,))
    with pytest.raises(UpgradeBlocked, match=r"7 project\(s\) have no customer: .* and 2 more; home them"):
        migrate(db_url, "6.4")


def test_upgrade_blockers_before_64_and_bad_input(db):
    add_projects(db, ["x"])
    db.execute("UPDATE config.projects SET customer_id = NULL WHERE name = 'x'")
    assert scalar(db, "SELECT count(*) FROM config.upgrade_blockers('6.3')") == 0
    assert scalar(db, "SELECT count(*) FROM config.upgrade_blockers('6.4')") == 1
    assert scalar(db, "SELECT count(*) FROM config.upgrade_blockers('7.0')") == 1
    with pytest.raises(errors.InvalidParameterValue, match="a release looks like 6.4"):
        db.execute("SELECT * FROM config.upgrade_blockers('latest')")


# -- the rules at 6.4 -----------------------------------------------------------------------------
def test_a_project_is_created_with_its_customer(db64):
    org = org_id(db64)
    with pytest.raises(errors.NotNullViolation):
        db64.execute("INSERT INTO config.projects (org_id, name) VALUES (%s, 'nobody')", (org,))
    with (
        pytest.raises(errors.NotNullViolation),
        db64.cursor().copy("COPY config.projects (org_id, name) FROM STDIN") as copy,
    ):
        copy.write_row((org, "bulk"))
    customer = scalar(db64, "INSERT INTO config.customers (name) VALUES ('acme') RETURNING uuid")
    made = scalar(
        db64,
        "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'given', %s)"
        " RETURNING customer_id",
        (org, customer),
    )
    assert made == customer
    assert orphans(db64) == []


def test_a_projects_customer_cannot_change_whoever_writes(db64, db_url_64):
    other = scalar(db64, "INSERT INTO config.customers (name) VALUES ('other') RETURNING uuid")
    before = state(db_url_64)
    for role in ("origin", "replica"):  # replica: a bulk load with triggers off
        db64.execute(f"SET session_replication_role = {role}")
        for value in (other, None):
            with pytest.raises(errors.CheckViolation) as info:
                db64.execute("UPDATE config.projects SET customer_id = %s WHERE name = 'hydro'", (value,))
            assert info.value.diag.constraint_name == "projects_customer_final"
            assert "project hydro belongs to customer hydro for good" in info.value.diag.message_primary
    db64.execute("SET session_replication_role = origin")
    assert state(db_url_64) == before
    # the same value, and every other column, still change freely; rule 4 still names the customer
    db64.execute("UPDATE config.projects SET customer_id = customer_id, description = 'x'")
    db64.execute("UPDATE config.projects SET name = 'sample' WHERE name = 'sample_project'")
    assert (
        scalar(
            db64,
            "SELECT c.name FROM config.customers c JOIN config.projects p ON p.customer_id = c.uuid"
            " WHERE p.name = 'sample'",
        )
        == "sample"
    )


def test_a_customer_holding_projects_cannot_be_deleted(db64, db_url_64):
    before = state(db_url_64)
    with pytest.raises(errors.CheckViolation, match=r"customer hydro holds 1 project\(s\)") as info:
        db64.execute("DELETE FROM config.customers WHERE name = 'hydro'")
    assert info.value.diag.constraint_name == "customers_keep_projects"
    assert state(db_url_64) == before
    db64.execute("INSERT INTO config.customers (name) VALUES ('empty')")
    assert db64.execute("DELETE FROM config.customers WHERE name = 'empty'").rowcount == 1
    # deleting the project, then its emptied customer, still works
    db64.execute("DELETE FROM config.projects WHERE name = 'hydro'")
    assert scalar(db64, "SELECT count(*) FROM config.customers WHERE name = 'hydro'") == 0


def test_the_job_has_nothing_to_do_and_a_mode_change_does_not_run_it(db64):
    runs = scalar(db64, "SELECT count(*) FROM config.job_runs")
    set_mode(db64, True)
    assert scalar(db64, "SELECT value FROM config.tunables WHERE name = %s", (MODE,)) is True
    assert scalar(db64, "SELECT count(*) FROM config.job_runs") == runs
    assert scalar(db64, "SELECT count(*) FROM config.upgrade_blockers('6.4')") == 0


def test_downgrade_restores_the_61_rules(db_url_64):
    migrate(db_url_64, "6.1")
    with psycopg.connect(db_url_64, autocommit=True) as conn:
        [fresh] = add_projects(conn, ["fresh"])  # rule 5 again: associated on insert
        assert scalar(conn, "SELECT customer_id FROM config.projects WHERE uuid = %s", (fresh,)) is not None
        conn.execute("DELETE FROM config.customers WHERE name = 'hydro'")  # rule 6: an orphan again
        assert orphans(conn) == ["hydro"]
        assert scalar(conn, "SELECT orphaned_at IS NOT NULL FROM config.projects WHERE name = 'hydro'")
        set_mode(conn, True)  # rule 7: the mode change runs the job
        assert scalar(conn, "SELECT source FROM config.job_runs ORDER BY id DESC LIMIT 1") == "tunable"
