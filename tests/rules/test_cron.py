"""pg_cron schedules the job in the database where the extension lives."""

import psycopg
import pytest

from service.migrations import migrate
from tests.rules.helpers import scalar, scheduled


def test_upgrade_schedules_and_downgrade_unschedules(cron_db_url):
    migrate(cron_db_url, to="6.0")
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        assert scheduled(conn) == []
    migrate(cron_db_url, to="6.1")
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        assert scheduled(conn) == ["prune-cron-history", "reconcile-customers"]
        assert (
            scalar(conn, "SELECT schedule FROM cron.job WHERE jobname = 'reconcile-customers'") == "* * * * *"
        )
    migrate(cron_db_url, to="6.0")
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        assert scheduled(conn) == []
    migrate(cron_db_url, to="6.0")  # a second downgrade must not trip over the missing job
    migrate(cron_db_url, to="6.1")


@pytest.mark.cron
def test_a_real_tick_runs_the_job(real_cron_tick):
    # The tick was awaited in the background from the session's start (tests/conftest.py,
    # RealCronTick): the cron database migrated to 6.1, then pg_cron's own run on the minute.
    if real_cron_tick.failure is not None:
        raise real_cron_tick.failure
    if real_cron_tick.outcome is None:
        pytest.fail(f"no cron run within 75 s; cron.job_run_details: {real_cron_tick.details}")
    assert real_cron_tick.outcome == ("cron", None)


def test_64_parks_the_job_and_the_downgrade_restores_it_exactly(cron_db_url):
    columns = "jobname, schedule, command, nodename, nodeport, database, username, active"
    migrate(cron_db_url, to="6.1")
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        jobid = scalar(conn, "SELECT jobid FROM cron.job WHERE jobname = 'reconcile-customers'")
        conn.execute("SELECT cron.alter_job(%s, schedule => '*/5 * * * *')", (jobid,))  # an operator's edit
        at_61 = conn.execute(f"SELECT {columns} FROM cron.job ORDER BY jobname").fetchall()
    migrate(cron_db_url, to="6.4")
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        assert scheduled(conn) == ["prune-cron-history"]
        parked = conn.execute(f"SELECT {columns} FROM config.parked_cron_jobs").fetchall()
        assert parked == [row for row in at_61 if row[0] == "reconcile-customers"]
    migrate(cron_db_url, to="6.1")
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        assert conn.execute(f"SELECT {columns} FROM cron.job ORDER BY jobname").fetchall() == at_61
        assert scalar(conn, "SELECT to_regclass('config.parked_cron_jobs')") is None
