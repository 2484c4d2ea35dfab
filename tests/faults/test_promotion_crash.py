"""Crash mid-promotion: the postmaster (and its children) SIGKILLed while
``config.promote_customers()`` is writing leaves the layout before the promotion, and running it
again works (issue 21).

PROMOTIONS customers, one project each, are bulk-loaded at release 6.4 (replica mode: no rule
triggers, as a bulk load that bypassed them), so the promotion creates as many orgs and moves as
many projects in its one transaction; once it is visibly writing (WAL growing while its
statement is active) the server is killed and restarted on the same port.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest

from service import migrations, users
from tests.faults.conftest import record, wait_until

PROMOTIONS = int(os.environ.get("HIERARCHY_FAULT_PROMOTIONS", "30000"))
APP = "fault-crash-promotion"
WAL_BEFORE_KILL = 4 * 1024 * 1024

pytestmark = pytest.mark.slow

STATE = """
SELECT (SELECT count(*) FROM config.orgs) AS orgs,
       (SELECT md5(string_agg(p.uuid::text || p.org_id::text, ',' ORDER BY p.uuid))
          FROM config.projects p) AS projects,
       (SELECT md5(string_agg(concat_ws('|', m.user_id, m.org_id, m.role, m.is_primary), ','
                               ORDER BY m.user_id, m.org_id))
          FROM config.org_memberships m) AS members,
       (SELECT count(*) FROM config.org_promotions) AS promotions,
       (SELECT count(*) FROM config.promoted_orgs) AS promoted,
       (SELECT coalesce(max(id), 0) FROM config.audit_log) AS audit
"""


def state(url):
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(STATE)
        return dict(zip([c.name for c in cur.description], cur.fetchone(), strict=True))


def test_kill_postmaster_mid_promotion(fault_cluster, record_property):
    url = fault_cluster.create_database("promotion")
    migrations.migrate(url, "6.4")
    with psycopg.connect(url, autocommit=True) as conn:
        org = conn.execute("INSERT INTO config.orgs (name) VALUES ('tenants') RETURNING uuid").fetchone()[0]
        users.create_user(conn, "op@tenants", "s3cret-pass", org, "operator")
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "WITH c AS (INSERT INTO config.customers (name, origin) "
            " SELECT 't' || g, 'manual' FROM generate_series(1, %s) g RETURNING uuid, name)"
            " INSERT INTO config.projects (org_id, name, customer_id) SELECT %s, c.name, c.uuid FROM c",
            (PROMOTIONS, org),
        )
        conn.execute("RESET session_replication_role")
        conn.execute("VACUUM ANALYZE config.projects, config.customers")
    before = state(url)
    assert before["promotions"] == 0

    outcome: dict = {}

    def promote() -> None:
        try:
            with psycopg.connect(url, autocommit=True, application_name=APP) as conn:
                outcome["result"] = conn.execute("SELECT config.promote_customers()").fetchone()[0]
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            outcome["error"] = exc

    with psycopg.connect(url, autocommit=True) as watch:
        wal_start = watch.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        thread = threading.Thread(target=promote, daemon=True)
        thread.start()
        started = time.monotonic()

        def writing() -> bool:
            assert not outcome, f"the promotion ended before it was killed: {outcome}"
            active = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
                (APP,),
            ).fetchone()[0]
            written = watch.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)", (wal_start,)
            ).fetchone()[0]
            return active == 1 and written >= WAL_BEFORE_KILL

        wait_until(writing, 120, "the promotion to be running and writing")
    fault_cluster.crash()
    record(
        record_property,
        "crash mid-promotion",
        "promotion ran before the kill (s)",
        time.monotonic() - started,
    )
    thread.join(timeout=15)
    assert isinstance(outcome.get("error"), psycopg.OperationalError), outcome

    fault_cluster.start_server()
    assert state(url) == before, "the layout before the promotion, untouched"

    with psycopg.connect(url, autocommit=True) as conn:
        result = conn.execute("SELECT config.promote_customers()").fetchone()[0]
        # and hydro, sample_project: new orgs of their own
        assert result["orgs_created"] == PROMOTIONS + 2 and result["projects_moved"] == PROMOTIONS + 2
        assert (
            conn.execute(
                "SELECT count(*) FROM config.projects p "
                "JOIN config.promoted_orgs po ON po.customer_id = p.customer_id "
                "WHERE po.org_id <> p.org_id"
            ).fetchone()[0]
            == 0
        )
        # op@tenants: its primary org kept no project: the new org with most (ties: the name)
        assert (
            conn.execute(
                "SELECT o.name FROM config.org_memberships m JOIN config.orgs o ON o.uuid = m.org_id "
                "JOIN config.users u ON u.uuid = m.user_id WHERE u.email = 'op@tenants' AND m.is_primary"
            ).fetchone()[0]
            == "t1"
        )
        conn.execute("SELECT config.demote_orgs()")
    after = state(url)
    assert (after["orgs"], after["projects"], after["members"]) == (
        before["orgs"],
        before["projects"],
        before["members"],
    )
    fault_cluster.drop_database(url)
