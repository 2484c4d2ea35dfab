"""Many writers at once: no orphan left, no project lost, no deadlock reaching a caller.

Bounded: every thread stops after DURATION seconds; nothing here measures speed.
"""

import random
import threading
import time

import psycopg
import pytest

from tests.rules.helpers import orphans, run_job, scalar, set_mode

DURATION = 3.0
INSERTERS = 8


def _insert_loop(url, worker, inserted, errors, stop):
    org_query = "SELECT uuid FROM config.orgs LIMIT 1"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            org = scalar(conn, org_query)
            i = 0
            while not stop.is_set():
                names = [f"w{worker}_{i}_{k}" for k in range(random.choice((1, 1, 5)))]
                rows = conn.execute(
                    "INSERT INTO config.projects (org_id, name) SELECT %s::uuid, unnest(%s::text[]) "
                    "RETURNING uuid::text, name",
                    (org, names),
                ).fetchall()
                inserted.extend(rows)
                i += 1
    except Exception as exc:  # noqa: BLE001 - every failure is reported by the test
        errors.append(("insert", repr(exc)))


def _delete_loop(url, errors, stop):
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("""DELETE FROM config.customers WHERE uuid = (
                                    SELECT uuid FROM config.customers WHERE origin <> 'system'
                                    ORDER BY random() LIMIT 1)""")
                time.sleep(0.02)
    except Exception as exc:  # noqa: BLE001
        errors.append(("delete", repr(exc)))


def _job_loop(url, errors, stop):
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                result = run_job(conn, force=True)
                if result.get("error"):
                    errors.append(("job", result["error"]))
    except Exception as exc:  # noqa: BLE001
        errors.append(("job", repr(exc)))


@pytest.mark.parametrize("per_project", [False, True])
def test_writers_deleters_and_the_job_together(db_url, per_project):
    with psycopg.connect(db_url, autocommit=True) as conn:
        set_mode(conn, per_project)
    inserted, errors, stop = [], [], threading.Event()
    threads = [
        threading.Thread(target=_insert_loop, args=(db_url, w, inserted, errors, stop))
        for w in range(INSERTERS)
    ]
    threads += [
        threading.Thread(target=_delete_loop, args=(db_url, errors, stop)),
        threading.Thread(target=_job_loop, args=(db_url, errors, stop)),
    ]
    for t in threads:
        t.start()
    time.sleep(DURATION)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert errors == []

    with psycopg.connect(db_url, autocommit=True) as conn:
        run_job(conn, force=True)
        assert orphans(conn) == []
        rows = conn.execute(
            "SELECT uuid::text, name FROM config.projects WHERE name NOT IN ('hydro', 'sample_project')"
        ).fetchall()
        assert sorted(rows) == sorted(inserted)  # count and content: no project lost or added
        assert (
            scalar(
                conn,
                """SELECT count(*) FROM (SELECT created_for_project FROM config.customers
                                WHERE created_for_project IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d""",
            )
            == 0
        )
        if per_project:
            assert (
                scalar(
                    conn,
                    """SELECT count(*) FROM config.projects p JOIN config.customers c
                                   ON c.uuid = p.customer_id WHERE c.origin = 'default'""",
                )
                == 0
            )
        else:
            assert scalar(conn, "SELECT count(*) FROM config.customers WHERE origin = 'default'") == 1
        assert scalar(conn, "SELECT count(*) FROM config.job_runs WHERE error IS NOT NULL") == 0
    assert len(inserted) > 50  # the workers really ran
