"""Crash recovery: the server is SIGKILLed in the middle of a job run over 60,000 projects
(``HIERARCHY_FAULT_PROJECTS``; 200,000 for a deep run).

One scenario, one dedicated cluster (tests/faults/conftest.py): PROJECTS orphaned projects are
bulk-loaded at release 6.1 with ``session_replication_role = replica`` (no triggers: they are
never-associated orphans, due at once, as a bulk load that bypassed the rules leaves them) in
per-project mode, so the run creates a customer for each and associates every project; a thread
starts ``config.reconcile_customers(force => true)``; once that run is visibly writing
(WAL growing while its statement is active in ``pg_stat_activity``) the postmaster is SIGKILLed
(then its children: see ``FaultCluster.crash``) and the server restarted on the same port.

Per-project mode because it is the heavier run: a customer created as well as an association
for each project, all in the one transaction the crash interrupts. (This test first found that the
statement triggers' cached plans over transition tables went quadratic after an UPDATE that
changed no rows; those queries now run through EXECUTE and are planned with real sizes.)

Asserted: the run's changes are all there or none (orphans, customers, audit rows and job_runs
agree with one of the two); projects' own columns are untouched; the service, never restarted,
answers 503 (JSON) while the server is down and 200 on an authenticated endpoint less than 2 s
after the server accepts connections again; the next run completes with zero orphans.
"""

from __future__ import annotations

import os
import threading
import time

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from service import migrations
from tests.faults.conftest import MODE, ServiceProcess, record, scalar, wait_until
from tests.sql_checks import PROJECTS_CHECKSUM

# 60,000 keeps make test short; HIERARCHY_FAULT_PROJECTS=200000 is the deep run.
PROJECTS = int(os.environ.get("HIERARCHY_FAULT_PROJECTS", "60000"))
JOB_APP = "fault-crash-job"
WAL_BEFORE_KILL = 16 * 1024 * 1024  # the run must have written this much WAL when it is killed
JOB_TIMEOUT = "150s"  # statement_timeout of the runs: a test never hangs on a slow job

pytestmark = pytest.mark.slow

STATE = """
SELECT (SELECT count(*) FROM config.projects WHERE customer_id IS NULL) AS orphans,
       (SELECT count(*) FROM config.projects) AS projects,
       (SELECT array_agg(uuid::text ORDER BY uuid) FROM config.customers) AS customers,
       (SELECT count(*) FROM config.customers WHERE origin = 'project') AS project_customers,
       (SELECT count(*) FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id
         WHERE c.origin = 'project' AND c.created_for_project = p.uuid AND c.name = p.name) AS own_customers,
       (SELECT array_agg(id ORDER BY id) FROM config.job_runs) AS runs,
       (SELECT count(*) FROM config.audit_log WHERE id > %(audit)s AND object_type = 'projects'
                                                 AND action = 'update') AS project_updates,
       (SELECT count(*) FROM config.audit_log WHERE id > %(audit)s AND object_type = 'customers'
                                                 AND action = 'insert') AS customer_inserts,
       (SELECT count(*) FROM config.audit_log WHERE id > %(audit)s) AS audit_rows
"""


def state(url: str, audit_mark: int) -> dict:
    with psycopg.connect(url, autocommit=True, connect_timeout=10, row_factory=dict_row) as conn:
        return conn.execute(STATE, {"audit": audit_mark}).fetchone()


class Poller(threading.Thread):
    """Polls an authenticated endpoint of the service every 50 ms, recording every answer."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.answers: list[tuple[float, float, int | str, object]] = []  # (sent, seconds, status, body)
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(
            base_url=self.base, timeout=5.0, headers={"Authorization": f"Bearer {self.token}"}
        ) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    r = client.get("/config/v1/orgs/")
                    try:
                        body = r.json()
                    except ValueError:
                        body = r.text
                    self.answers.append((sent, time.monotonic() - sent, r.status_code, body))
                except httpx.HTTPError as exc:
                    self.answers.append((sent, time.monotonic() - sent, type(exc).__name__, None))
                self.stop.wait(0.05)

    def first_200_after(self, moment: float) -> float | None:
        for sent, seconds, status, _ in self.answers:
            if sent >= moment and status == 200:
                return sent + seconds
        return None


def test_kill_postmaster_mid_job_over_many_projects(fault_cluster, service_log, record_property):
    name = "crash mid-job"
    url = fault_cluster.create_database("crash")
    service = ServiceProcess(url, service_log)
    poller: Poller | None = None
    job: dict = {}
    try:
        migrations.migrate(url, "6.1")  # the release with orphans and the job
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE config.tunables SET value = 'true' WHERE name = %s", (MODE,))
            started = time.monotonic()
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                "INSERT INTO config.projects (org_id, name, description) "
                "SELECT (SELECT uuid FROM config.orgs ORDER BY created LIMIT 1), 'crash-' || g, 'row ' || g "
                "FROM generate_series(1, %s) g",
                (PROJECTS,),
            )
            conn.execute("RESET session_replication_role")
            conn.execute("VACUUM ANALYZE config.projects")
            record(record_property, name, f"load {PROJECTS} orphans (s)", time.monotonic() - started)
            checksum = conn.execute(PROJECTS_CHECKSUM).fetchone()[0]

        service.start()
        token = service.login(url)  # (creating the user writes an audit row: mark after it)
        poller = Poller(service.base, token)
        poller.start()
        wait_until(lambda: any(a[2] == 200 for a in poller.answers), 10, "a first 200 from the service")

        audit_mark = scalar(url, "SELECT coalesce(max(id), 0) FROM config.audit_log")
        before = state(url, audit_mark)
        assert before["orphans"] == PROJECTS and before["projects"] == PROJECTS + 2
        assert before["project_customers"] == 0 and len(before["customers"]) == 2  # hydro, sample_project
        assert before["audit_rows"] == 0

        def run_job() -> None:
            try:
                with psycopg.connect(url, autocommit=True, application_name=JOB_APP) as conn:
                    conn.execute(f"SET statement_timeout = '{JOB_TIMEOUT}'")
                    job["result"] = conn.execute(
                        "SELECT config.reconcile_customers(force => true)"
                    ).fetchone()[0]
            except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
                job["error"] = exc

        with psycopg.connect(url, autocommit=True) as watch:
            wal_start = watch.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
            thread = threading.Thread(target=run_job, daemon=True)
            thread.start()
            run_started = time.monotonic()

            def writing() -> bool:
                active = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active' "
                    "AND query LIKE '%%reconcile_customers%%'",
                    (JOB_APP,),
                ).fetchone()[0]
                written = watch.execute(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)", (wal_start,)
                ).fetchone()[0]
                assert not job, f"the job ended before it was killed: {job}"
                return active == 1 and written >= WAL_BEFORE_KILL

            wait_until(writing, 120, "the job to be running and writing")
        assert thread.is_alive() and not job, "the run must still be in progress when the server dies"
        killed_at = time.monotonic()
        pid, children = fault_cluster.crash()
        record(record_property, name, "job ran before the kill (s)", killed_at - run_started)
        record(record_property, name, "killed postmaster + children", f"{pid} + {len(children)}")
        thread.join(timeout=15)
        assert not thread.is_alive(), "the job's connection must fail when the server dies"
        assert isinstance(job.get("error"), psycopg.OperationalError), job

        time.sleep(0.5)  # the service meets a dead server for a moment
        start_invoked = time.monotonic()
        recovery = fault_cluster.start_server()
        ready_at = time.monotonic()
        record(record_property, name, "pg_ctl start incl. crash recovery (s)", recovery)
        server_log = fault_cluster.log_tail(200)
        assert "was interrupted" in server_log and "redo starts" in server_log, "crash recovery ran"

        # (the server accepts connections a moment before pg_ctl notices: count from the start)
        first_200 = wait_until(lambda: poller.first_200_after(start_invoked), 10, "a 200 after the restart")
        record(record_property, name, "server ready -> first authenticated 200 (s)", first_200 - ready_at)
        record(
            record_property,
            name,
            "pg_ctl start invoked -> first authenticated 200 (s)",
            first_200 - start_invoked,
        )
        assert first_200 - ready_at < 2.0
        assert service.alive(), "the service was never restarted"

        # while the server was down: 503 with a JSON body, never a 500 or a hang
        down = [a for a in poller.answers if killed_at + 0.05 <= a[0] and a[0] + a[1] <= start_invoked]
        assert down, "requests were made while the server was down"
        assert {a[2] for a in down} == {503}, {a[2] for a in down}
        assert all(a[3] == {"detail": "database unavailable"} for a in down)
        slowest = max(a[1] for a in poller.answers)
        record(record_property, name, "requests while down (all 503)", len(down))
        record(record_property, name, "slowest request (s)", slowest)
        assert slowest < 3.0
        assert {a[2] for a in poller.answers} <= {200, 503}

        # the killed run: all of it or none of it
        after = state(url, audit_mark)
        assert after["projects"] == PROJECTS + 2
        assert scalar(url, PROJECTS_CHECKSUM) == checksum, "projects' own columns are untouched"
        if after["orphans"] == PROJECTS:
            outcome = "none (rolled back by crash recovery)"
            assert after["customers"] == before["customers"], "no customer created by the killed run remains"
            assert after["project_customers"] == 0
            assert after["runs"] == before["runs"], "no job_runs row for the killed run"
            assert after["audit_rows"] == 0, "no audit row of the killed run"
        else:
            outcome = "all (committed before the crash)"
            assert after["orphans"] == 0, f"partial state: {after['orphans']} orphans of {PROJECTS}"
            assert after["project_customers"] == after["own_customers"] == PROJECTS
            assert len(after["runs"]) == len(before["runs"]) + 1
            assert after["project_updates"] == after["customer_inserts"] == PROJECTS
        record(record_property, name, "killed run's changes after recovery", outcome)

        # the next run completes
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"SET statement_timeout = '{JOB_TIMEOUT}'")
            started = time.monotonic()
            result = conn.execute("SELECT config.reconcile_customers(force => true)").fetchone()[0]
            record(record_property, name, f"next run over {PROJECTS} orphans (s)", time.monotonic() - started)
        assert result["error"] is None and result["skipped"] is False
        assert result["orphans_waiting"] == 0
        final = state(url, audit_mark)
        assert final["orphans"] == 0
        assert final["project_customers"] == final["own_customers"] == PROJECTS, "rule 3: one customer each"
        assert final["project_updates"] == PROJECTS, "one audit row per associated project, none twice"
        assert final["customer_inserts"] == PROJECTS
        if after["orphans"] == PROJECTS:
            assert result["projects_associated"] == PROJECTS and result["customers_created"] == PROJECTS
            assert len(final["runs"]) == len(before["runs"]) + 1
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=service.base, timeout=10, headers=auth) as c:
            org = c.get("/config/v1/orgs/").json()[0]["uuid"]
            r = c.get(f"/config/v1/orgs/{org}/projects/", params={"customer_id__isnull": "True"})
            assert r.status_code == 200 and r.json() == [], "the orphan audit is empty"
    finally:
        if poller is not None:
            poller.stop.set()
            poller.join(timeout=10)
        service.stop()
        fault_cluster.drop_database(url)
