"""Migrations under stress, on a dedicated cluster (tests/faults/conftest.py).

- CYCLES downgrade/upgrade cycles (8; 20 in a deep run) over 5,000 projects with manual
  customers, the data checked after every step: each cycle goes 6.1 -> 6.4 (every project,
  customer and association row identical) -> 6.0 -> 6.1; the project rows over the columns
  both releases have are identical, a downgrade deletes every customer (manual ones included,
  as documented) and says how many in its audit row, an upgrade brings customers back
  according to the tunable as it is then.
- ``hierarchy migrate`` SIGKILLed while the 6.1 init job runs: the next ``hierarchy migrate``
  explains the stale lock (exit 1, names the dead pid and ``--break-lock``) and
  ``--break-lock`` completes it (release 6.1, zero orphans, projects intact).
- ``hierarchy migrate --to 6.0`` SIGKILLed half-way through the rollback (held on a table lock,
  so the kill lands inside the migration's transaction for certain): same recovery, and the
  downgrade happens exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from service import migrations
from tests.faults.conftest import MODE, REPO, hierarchy, record, scalar, wait_until
from tests.sql_checks import PROJECTS_CHECKSUM, ROWS_CHECKSUM

pytestmark = pytest.mark.slow

# 8 cycles over 5,000 projects keep make test short; the deep run is
# HIERARCHY_STRESS_CYCLES=20 HIERARCHY_STRESS_PROJECTS=10000.
CYCLES = int(os.environ.get("HIERARCHY_STRESS_CYCLES", "8"))
PROJECTS = int(os.environ.get("HIERARCHY_STRESS_PROJECTS", "5000"))
KILLED_PROJECTS = 30_000  # enough for the init job to run a visible moment
MIGRATE_APP = "fault-migrate"


def load_projects_60(url: str, n: int) -> None:
    """n projects at release 6.0 (plain INSERT ... SELECT, triggers and audit on)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO config.projects (org_id, name, description, settings) "
            "SELECT (SELECT uuid FROM config.orgs ORDER BY created LIMIT 1), 'proj-' || g, "
            "       CASE WHEN g %% 3 = 0 THEN NULL ELSE 'project number ' || g END, "
            "       jsonb_build_object('n', g, 'tags', jsonb_build_array('t' || (g %% 7))) "
            "FROM generate_series(1, %s) g",
            (n,),
        )
        conn.execute("VACUUM ANALYZE config.projects")


def set_mode(url: str, per_project: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE config.tunables SET value = to_jsonb(%s::boolean) WHERE name = %s", (per_project, MODE)
        )


CUSTOMERS = """
SELECT (SELECT count(*) FROM config.customers) AS total,
       (SELECT count(*) FROM config.customers WHERE origin = 'system') AS system,
       (SELECT count(*) FROM config.customers WHERE origin = 'default') AS "default",
       (SELECT count(*) FROM config.customers WHERE origin = 'project') AS project,
       (SELECT count(*) FROM config.customers WHERE origin = 'manual') AS manual,
       (SELECT count(*) FROM config.projects WHERE customer_id IS NULL) AS orphans,
       (SELECT count(*) FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id
         WHERE c.origin = 'project' AND c.created_for_project = p.uuid AND c.name = p.name) AS own,
       (SELECT max(n) FROM (SELECT count(*) AS n
                            FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id
                            WHERE c.origin = 'default' GROUP BY c.uuid) d) AS in_default
"""


def customers(url: str) -> dict:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(CUSTOMERS).fetchone()


def assert_customers_follow_tunable(url: str, per_project: bool, user_projects: int) -> dict:
    got = customers(url)
    assert got["orphans"] == 0
    assert got["system"] == 2, "hydro and sample_project, whatever the tunable (rule 1)"
    assert got["manual"] == 0, "manual customers do not come back"
    if per_project:
        assert got["project"] == got["own"] == user_projects, "rule 3: one customer per project, its name"
        assert got["default"] == 0
    else:
        assert got["default"] == 1 and got["in_default"] == user_projects, "rule 2: one default customer"
        assert got["project"] == 0
    assert got["total"] == got["system"] + got["default"] + got["project"]
    return got


def test_twenty_down_up_cycles_with_manual_customers(fault_cluster, record_property):
    name = f"{CYCLES} down/up cycles, {PROJECTS} projects"
    url = fault_cluster.create_database("cycles")
    try:
        migrations.migrate(url, "6.0")
        load_projects_60(url, PROJECTS)
        checksum = scalar(url, PROJECTS_CHECKSUM)
        tunables = scalar(
            url,
            "SELECT md5(string_agg(name || '=' || value::text, ',' ORDER BY name)) "
            "FROM config.tunables WHERE name <> %s",
            (MODE,),
        )
        assert migrations.migrate(url, "6.1") == [("apply", "0002.customers")]
        assert_customers_follow_tunable(url, False, PROJECTS)
        per_project = False
        times = []
        for cycle in range(1, CYCLES + 1):
            started = time.monotonic()
            # manual customers: two per cycle, three projects each (moved by a DBA's SQL)
            with psycopg.connect(url, autocommit=True) as conn:
                for k in range(2):
                    manual = conn.execute(
                        "INSERT INTO config.customers (name) VALUES (%s) RETURNING uuid",
                        (f"manual {cycle} {k}",),
                    ).fetchone()[0]
                    conn.execute(
                        "UPDATE config.projects SET customer_id = %s WHERE name = ANY (%s)",
                        (manual, [f"proj-{cycle * 10 + k * 3 + j}" for j in range(3)]),
                    )
                assert (
                    conn.execute("SELECT count(*) FROM config.customers WHERE origin = 'manual'").fetchone()[
                        0
                    ]
                    == 2
                )
                before_down = conn.execute("SELECT count(*) FROM config.customers").fetchone()[0]

            at_61 = scalar(url, ROWS_CHECKSUM)
            assert migrations.migrate(url, "6.4") == [
                ("apply", "0003.customers-required"),
                ("apply", "0004.org-memberships"),
                ("apply", "0005.org-promotion"),
            ]
            assert scalar(url, ROWS_CHECKSUM) == at_61, f"cycle {cycle}: 6.4 changed a project or customer"
            assert migrations.migrate(url, "6.0") == [
                ("rollback", "0005.org-promotion"),
                ("rollback", "0004.org-memberships"),
                ("rollback", "0003.customers-required"),
                ("rollback", "0002.customers"),
            ]
            assert migrations.current_release(url) == "6.0"
            assert scalar(url, "SELECT to_regclass('config.customers') IS NULL")
            assert scalar(url, PROJECTS_CHECKSUM) == checksum, f"cycle {cycle}: downgrade changed projects"
            deleted = scalar(
                url,
                "SELECT before -> 'customers_deleted' FROM config.audit_log "
                "WHERE action = 'downgrade' ORDER BY id DESC LIMIT 1",
            )
            assert deleted == before_down, "the downgrade deletes every customer, manual ones included"
            assert scalar(url, "SELECT count(*) FROM config.audit_log WHERE action = 'downgrade'") == cycle

            per_project = cycle % 2 == 1  # the tunable changes while at 6.0: the upgrade follows it
            set_mode(url, per_project)
            assert migrations.migrate(url, "6.1") == [("apply", "0002.customers")]
            assert scalar(url, PROJECTS_CHECKSUM) == checksum, f"cycle {cycle}: upgrade changed projects"
            assert_customers_follow_tunable(url, per_project, PROJECTS)
            assert scalar(url, "SELECT count(*) FROM config.customers WHERE name LIKE 'manual-%'") == 0
            assert scalar(url, "SELECT count(*) FROM config.job_runs WHERE source = 'upgrade'") == 1
            times.append(time.monotonic() - started)
            print(
                f"[faults] cycle {cycle}: upgrade in {'per-project' if per_project else 'single'} mode, "
                f"{times[-1]:.2f} s"
            )

        assert (
            scalar(
                url,
                "SELECT md5(string_agg(name || '=' || value::text, ',' ORDER BY name)) "
                "FROM config.tunables WHERE name <> %s",
                (MODE,),
            )
            == tunables
        )
        assert len(times) == CYCLES
        record(record_property, name, "cycles run", len(times))
        record(
            record_property,
            name,
            "cycle time min/median/max (s)",
            f"{min(times):.2f}/{sorted(times)[len(times) // 2]:.2f}/{max(times):.2f}",
        )
        per = {
            mode: [t for i, t in enumerate(times, 1) if (i % 2 == 1) == (mode == "per-project")]
            for mode in ("per-project", "single")
        }
        for mode, ts in per.items():
            record(record_property, name, f"mean cycle, upgrade in {mode} mode (s)", sum(ts) / len(ts))
        record(record_property, name, "total (s)", sum(times))
    finally:
        fault_cluster.drop_database(url)


def _spawn_migrate(url: str, tmp_path, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "HIERARCHY_DATA_DIR": str(tmp_path / "unused-embedded"),
        "PGAPPNAME": MIGRATE_APP,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service", "migrate", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)


def _backend(url: str, condition: str) -> dict | None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
            f"WHERE application_name = %s AND {condition}",
            (MIGRATE_APP,),
        ).fetchone()


def _assert_explains_stale_lock(url: str, tmp_path, killed_pid: int, *args: str) -> str:
    result = hierarchy("migrate", *args, "--lock-timeout", "1", url=url, tmp_path=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hierarchy: another migration holds the lock"), result.stderr
    assert f"pid {killed_pid} since" in last and "hierarchy migrate --break-lock" in last
    assert "Traceback" not in result.stderr
    return last


def test_migrate_killed_during_init_job_is_completed(fault_cluster, tmp_path, record_property):
    name = "migrate killed in the init job"
    url = fault_cluster.create_database("killed_up")
    proc = None
    try:
        migrations.migrate(url, "6.0")
        load_projects_60(url, KILLED_PROJECTS)
        set_mode(url, True)
        checksum = scalar(url, PROJECTS_CHECKSUM)

        proc = _spawn_migrate(url, tmp_path, "--to", "6.1")
        started = time.monotonic()
        job = wait_until(
            lambda: (
                proc.poll() is None
                and _backend(url, "state = 'active' AND query LIKE '%%reconcile_customers%%upgrade%%'")
            ),
            60,
            "the 6.1 init job to run",
        )
        assert proc.poll() is None, "the migration must still run when it is killed"
        time.sleep(0.2)
        _kill(proc)
        record(record_property, name, "killed after (s)", time.monotonic() - started)
        assert proc.returncode == -signal.SIGKILL

        assert migrations.current_release(url) == "6.0", "the killed migration's transaction never commits"
        message = _assert_explains_stale_lock(url, tmp_path, proc.pid, "--to", "6.1")
        record(record_property, name, "next migrate says", message)
        assert migrations.current_release(url) == "6.0"

        started = time.monotonic()
        result = hierarchy("migrate", "--break-lock", "--to", "6.1", url=url, tmp_path=tmp_path)
        record(record_property, name, "migrate --break-lock (s)", time.monotonic() - started)
        assert result.returncode == 0, result.stderr
        assert f"removed the migration lock (pid {proc.pid}" in result.stderr
        assert "database at release 6.1" in result.stdout
        assert migrations.current_release(url) == "6.1"
        assert scalar(url, "SELECT count(*) FROM yoyo_lock") == 0
        assert {r for r in scalar(url, "SELECT array_agg(migration_id) FROM _yoyo_migration")} == {
            "0001.baseline",
            "0002.customers",
        }
        assert scalar(url, PROJECTS_CHECKSUM) == checksum
        assert_customers_follow_tunable(url, True, KILLED_PROJECTS)
        assert scalar(url, "SELECT count(*) FROM config.job_runs WHERE source = 'upgrade'") == 1, (
            "the killed attempt's init job left no job_runs row"
        )
        wait_until(
            lambda: _backend(url, f"pid = {job['pid']}") is None, 30, "the killed client's backend to end"
        )
    finally:
        if proc is not None and proc.poll() is None:
            _kill(proc)
        fault_cluster.drop_database(url)


def test_migrate_killed_during_rollback_is_completed(fault_cluster, tmp_path, record_property):
    name = "migrate --to 6.0 killed mid-rollback"
    url = fault_cluster.create_database("killed_down")
    proc = None
    blocker = None
    try:
        migrations.migrate(url, "6.0")
        load_projects_60(url, 1000)
        migrations.migrate(url, "6.1")
        checksum = scalar(url, PROJECTS_CHECKSUM)
        customers_before = scalar(url, "SELECT count(*) FROM config.customers")

        # hold the rollback inside its transaction: it must drop a trigger on config.tunables
        blocker = psycopg.connect(url)
        blocker.execute("SELECT count(*) FROM config.tunables").fetchone()
        proc = _spawn_migrate(url, tmp_path, "--to", "6.0", "--yes")
        waiting = wait_until(
            lambda: (
                proc.poll() is None
                and _backend(url, "wait_event_type = 'Lock' AND query LIKE '%%tunables%%'")
            ),
            60,
            "the rollback to wait on the lock",
        )
        _kill(proc)
        assert proc.returncode == -signal.SIGKILL
        # the rollback had written its downgrade audit row, uncommitted, before it was killed
        blocker.rollback()
        blocker.close()
        blocker = None
        wait_until(
            lambda: _backend(url, f"pid = {waiting['pid']}") is None, 30, "the killed client's backend to end"
        )
        assert migrations.current_release(url) == "6.1"
        assert scalar(url, "SELECT count(*) FROM config.customers") == customers_before
        assert scalar(url, "SELECT count(*) FROM config.audit_log WHERE action = 'downgrade'") == 0

        message = _assert_explains_stale_lock(url, tmp_path, proc.pid, "--to", "6.0", "--yes")
        record(record_property, name, "next migrate says", message)
        result = hierarchy("migrate", "--break-lock", "--to", "6.0", "--yes", url=url, tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "database at release 6.0" in result.stdout
        assert migrations.current_release(url) == "6.0"
        assert scalar(url, "SELECT count(*) FROM yoyo_lock") == 0
        assert scalar(url, PROJECTS_CHECKSUM) == checksum
        assert scalar(url, "SELECT to_regclass('config.customers') IS NULL")
        deleted = scalar(
            url,
            "SELECT array_agg(before -> 'customers_deleted') FROM config.audit_log "
            "WHERE action = 'downgrade'",
        )
        assert deleted == [customers_before], "the downgrade happened exactly once"
        result = hierarchy("migrate", "--to", "6.1", url=url, tmp_path=tmp_path)
        assert result.returncode == 0 and migrations.current_release(url) == "6.1"
        assert scalar(url, "SELECT count(*) FROM config.projects WHERE customer_id IS NULL") == 0
    finally:
        if blocker is not None:
            blocker.close()
        if proc is not None and proc.poll() is None:
            _kill(proc)
        fault_cluster.drop_database(url)
