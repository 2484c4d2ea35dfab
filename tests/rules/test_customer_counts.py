"""config.customer_count (the paginated list's `count` for super admins) is count(*), per origin,
whatever writes the customers: inserts, the job, settle's deletions and re-labelling, two
sessions at once, compaction, TRUNCATE."""

from __future__ import annotations

import psycopg

from tests.rules.helpers import add_projects, scalar, set_mode

BY_ORIGIN = """
SELECT o.origin, config.customer_count(o.origin) AS counted,
       (SELECT count(*) FROM config.customers c WHERE c.origin = o.origin) AS actual
FROM unnest(ARRAY['system', 'default', 'project', 'manual']) AS o (origin)
"""


def assert_counts_exact(conn):
    rows = conn.execute(BY_ORIGIN).fetchall()
    assert [(o, counted) for o, counted, _ in rows] == [(o, actual) for o, _, actual in rows]
    assert scalar(conn, "SELECT config.customer_count(NULL)") == scalar(
        conn, "SELECT count(*) FROM config.customers"
    )


def test_customer_count_follows_every_kind_of_write(db, db_url):
    assert_counts_exact(db)
    set_mode(db, True)
    uuids = add_projects(db, [f"counted-{i}" for i in range(40)])
    for i in range(300):  # single-row statements: past several compaction points
        db.execute("INSERT INTO config.customers (name) VALUES (%s)", (f"manual-{i}",))
    assert_counts_exact(db)
    assert scalar(db, "SELECT count(*) FROM config.customer_counts") < 300  # compacted
    # projects moved away: their own customers are deleted (settle)
    db.execute(
        "UPDATE config.projects SET customer_id = "
        "(SELECT uuid FROM config.customers WHERE name = 'manual-0') WHERE uuid = ANY (%s)",
        (uuids[:10],),
    )
    # a project's own customer that keeps another project when its own leaves becomes manual
    own = scalar(db, "SELECT customer_id FROM config.projects WHERE uuid = %s", (uuids[20],))
    db.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (own, uuids[21]))
    db.execute("UPDATE config.projects SET customer_id = NULL WHERE uuid = %s", (uuids[20],))
    assert scalar(db, "SELECT origin FROM config.customers WHERE uuid = %s", (own,)) == "manual"
    assert_counts_exact(db)
    db.execute("DELETE FROM config.customers WHERE name LIKE 'manual-1%%'")
    set_mode(db, False)  # rule 7: the job runs, default customers appear
    db.execute("SELECT config.switch_customer_mode(false)")
    assert_counts_exact(db)
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        a.execute("INSERT INTO config.customers (name) SELECT 'a-' || i FROM generate_series(1, 5) i")
        b.execute("INSERT INTO config.customers (name) SELECT 'b-' || i FROM generate_series(1, 7) i")
        assert scalar(b, "SELECT config.customer_count('manual')") == scalar(
            b, "SELECT count(*) FROM config.customers WHERE origin = 'manual'"
        )
        a.commit()
        b.commit()
    assert_counts_exact(db)
    db.execute("TRUNCATE config.customers CASCADE")
    assert scalar(db, "SELECT config.customer_count(NULL)") == 0
