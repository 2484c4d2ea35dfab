"""Every rule holds through a failover under load: the leader dies amid the concurrent workload.

The seeded workload of the invariant test (tests/concurrent_workload.py: API writers, SQL
writers, mode switches, grace changes, job runs) runs against a Patroni cluster on loopback
(tests/cluster/conftest.py: etcd, two nodes, synchronous mode, pg_cron on both). The API
writers go through a real ``hierarchy run`` process (fallback scheduler on) and the SQL writers
connect directly, both on the cluster's multi-host URL with ``target_session_attrs=read-write``.
After WARMUP seconds the leader's Patroni and its PostgreSQL (postmaster and every child) get
SIGKILL at once, as on a crash of its machine: nothing hands the leader key over, and the
synchronous standby takes over when the key expires. The workload goes on against the new
leader until it has acknowledged writes for AFTER_FIRST_WRITE seconds and run the job.

Asserted on the new leader: every rule of the invariant test (after one forced run of the job)
and the audit log's replay; every acknowledged write of the whole run (before and after the
kill: a 2xx answer, a committed statement's RETURNING rows) has its audit row (0 lost); no
answer was a 5xx but a failover's 503 with Retry-After (none before the kill); no worker failed
otherwise; no deadlock on either node, none met and retried by the service (its log); a run of
the job that started after the promotion. A write whose answer the client never saw is not
acknowledged: it may or may not be there.

Recorded (terminal summary "cluster failover measurements"): the seed, writes acknowledged
(before the kill), lost, 5xx, 503s, lost SQL connections, the seconds from the kill to the
promotion and to the first acknowledged write on the new leader, the job's runs on the new
leader by source.

Seeded: HIERARCHY_TEST_SEED (default 15). Bounded: the workers stop by themselves after LIMIT
seconds whatever happens; every wait has a timeout. Loopback only. About 40 s with the
cluster's start (the TTL's 10 s to the promotion included): part of ``make test``.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from tests.cluster.conftest import HierarchyRun, record, wait_until
from tests.concurrent_workload import SEED, Workload, assert_every_rule, deadlocks, lost_acks

pytestmark = pytest.mark.slow

WARMUP = 5.0  # seconds of workload on the first leader before the kill
AFTER_FIRST_WRITE = 5.0  # seconds of workload on the new leader after its first acknowledged write
LIMIT = 120.0  # every worker stops by itself after this many seconds
CLIENT_TIMEOUT = 15.0  # an HTTP request taking longer is a hang: a failure

JOB_RUNS_SINCE = """
    SELECT source, count(*) FROM config.job_runs
    WHERE started > %s AND NOT skipped AND NOT dry_run AND error IS NULL
    GROUP BY source ORDER BY source
"""


def test_every_rule_holds_through_a_failover_under_load(patroni_cluster, tmp_path, record_property):
    cluster = patroni_cluster
    url = cluster.multi_host_url()
    service = HierarchyRun(url, tmp_path / "service.log").start()
    client = None
    workload = None
    try:
        service.wait_healthy()
        old = cluster.leader()
        (standby,) = [n for n in cluster.nodes if n is not old]
        with psycopg.connect(old.url(), autocommit=True) as conn:
            org = conn.execute("SELECT uuid::text FROM config.orgs ORDER BY created LIMIT 1").fetchone()[0]
        deadlocks_on_old = deadlocks(old.url())
        deadlocks_on_standby = deadlocks(standby.url())  # a standby's count: 0, it runs no writes
        client = httpx.Client(
            base_url=service.base,
            headers={"Authorization": f"Bearer {service.token()}"},
            timeout=CLIENT_TIMEOUT,
        )
        workload = Workload(
            seed=SEED,
            org=org,
            url=url,
            send=lambda method, path, body: client.request(method, path, json=body),
            grace_after=WARMUP / 2,
            limit=LIMIT,
            failover=True,
        ).start()
        tally = workload.tally
        time.sleep(WARMUP)

        time.sleep(1.1)  # backends report their statistics at most once a second
        deadlocks_on_old = deadlocks(old.url()) - deadlocks_on_old
        acked_before = len(tally.acks)
        kill_began = time.monotonic()  # a 503 may come while the victims are still being killed
        killed = cluster.kill_node(old)
        killed_at = time.monotonic()  # from here on only the new leader can acknowledge a write
        new = cluster.new_leader(old)
        promoted_at, promoted_wall = time.monotonic(), datetime.now(UTC)
        assert new is standby
        first_ack = wait_until(
            lambda: tally.first_ack_after(killed_at), 30, "an acknowledged write on the new leader"
        )
        time.sleep(AFTER_FIRST_WRITE)

        def job_ran_on_new_leader():
            with psycopg.connect(new.url(), autocommit=True, connect_timeout=5) as conn:
                return conn.execute(JOB_RUNS_SINCE, (promoted_wall,)).fetchall()

        wait_until(job_ran_on_new_leader, 30, "a run of the job on the new leader", interval=0.5)
        assert workload.stop(timeout=2 * CLIENT_TIMEOUT), f"seed {SEED}: a worker hung"
        statuses = Counter(tally.statuses)

        with psycopg.connect(new.url(), autocommit=True) as conn:
            runs_since_promotion = dict(conn.execute(JOB_RUNS_SINCE, (promoted_wall,)).fetchall())
            lost = lost_acks(conn, tally.acks)
            figures = tally.failover_figures(
                SEED,
                acked_before,
                lost,
                killed,
                {"killed_at": killed_at, "promoted_at": promoted_at, "first_ack": first_ack},
            )
            figures["job runs on the new leader since the promotion"] = runs_since_promotion
            for name, value in figures.items():
                record(record_property, name, value)

            assert tally.failures == [], f"seed {SEED}: " + "\n".join(tally.failures)
            assert lost == [], f"seed {SEED}: acknowledged but missing on the new leader: {lost}"
            assert all(t >= kill_began for t in tally.unavailable), f"seed {SEED}: a 503 before the kill"
            assert runs_since_promotion, f"seed {SEED}: the job did not run on the new leader"
            assert_every_rule(conn, SEED)
        assert len(tally.acks) > acked_before > 10, f"seed {SEED}: {statuses}"  # it ran, on both
        time.sleep(1.1)
        assert (deadlocks_on_old, deadlocks(new.url()) - deadlocks_on_standby) == (0, 0), f"seed {SEED}"
        assert service.alive(), "the service was never restarted"
        retried = [line for line in service.log_tail(100_000).splitlines() if "transaction attempt" in line]
        assert retried == [], f"seed {SEED}: the API met deadlocks or serialization failures"
    except BaseException:
        print(f"--- service ---\n{service.log_tail()}\n{cluster.log_tails()}")  # shown with the failure
        raise
    finally:
        if workload is not None:
            workload.stop(timeout=2 * CLIENT_TIMEOUT)
        if client is not None:
            client.close()
        service.stop()
