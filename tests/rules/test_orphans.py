"""Rules 6 and 8: deleting a customer orphans its projects; the job re-homes orphans only."""

import pytest

from tests.rules.helpers import add_projects, customers, orphans, pass_grace, run_job, scalar, set_mode


def test_deleted_customer_orphans_wait_the_grace_period_then_are_rehomed(db):
    add_projects(db, ["a1", "a2", "a3"])
    default = scalar(db, "SELECT uuid FROM config.customers WHERE origin = 'default'")
    db.execute("DELETE FROM config.customers WHERE uuid = %s", (default,))
    assert orphans(db) == ["a1", "a2", "a3"]
    assert scalar(
        db, "SELECT bool_and(orphaned_at IS NOT NULL) FROM config.projects WHERE customer_id IS NULL"
    )

    waiting = run_job(db)
    assert (waiting["projects_associated"], waiting["orphans_waiting"]) == (0, 3)
    assert orphans(db) == ["a1", "a2", "a3"]

    pass_grace(db)
    done = run_job(db)
    assert (done["projects_associated"], done["customers_created"], done["orphans_waiting"]) == (3, 1, 0)
    assert orphans(db) == []
    assert scalar(db, "SELECT count(*) FROM config.projects") == 5  # nothing was ever deleted


def test_a_forced_run_rehomes_at_once(db):
    set_mode(db, True)
    add_projects(db, ["f1"])
    db.execute("DELETE FROM config.customers WHERE name = 'f1'")
    assert orphans(db) == ["f1"]
    assert run_job(db, force=True)["projects_associated"] == 1
    assert customers(db)["f1"] == ("project", ["f1"])


def test_a_mode_change_after_orphaning_skips_the_grace_period(db):
    add_projects(db, ["m1", "m2"])
    db.execute("DELETE FROM config.customers WHERE origin = 'default'")
    set_mode(db, True)  # rule 7: the job runs in this statement's transaction
    assert orphans(db) == []
    assert customers(db)["m1"] == ("project", ["m1"])
    assert scalar(db, "SELECT source FROM config.job_runs ORDER BY id DESC LIMIT 1") == "tunable"


def test_the_job_never_moves_an_administrators_association(db):
    add_projects(db, ["x1", "x2", "x3", "x4"])
    grouping = scalar(db, "INSERT INTO config.customers (name) VALUES ('tenant') RETURNING uuid")
    db.execute("UPDATE config.projects SET customer_id = %s WHERE name IN ('x1', 'x2', 'x3')", (grouping,))
    for per_project in (True, False, True):
        set_mode(db, per_project)
        run_job(db, force=True)
        db.execute("SELECT config.switch_customer_mode(%s)", (not per_project,))
    assert customers(db)["tenant"] == ("manual", ["x1", "x2", "x3"])


def test_an_idle_run_changes_nothing_and_is_recorded(db):
    before = customers(db)
    result = run_job(db, source="cli")
    assert (result["projects_associated"], result["customers_created"], result["skipped"]) == (0, 0, False)
    assert customers(db) == before
    assert scalar(db, "SELECT source FROM config.job_runs WHERE id = %s", (result["run_id"],)) == "cli"


def test_dry_run_lists_the_plan_and_changes_nothing(db):
    set_mode(db, True)
    add_projects(db, ["d1", "d2"])
    db.execute("DELETE FROM config.customers WHERE name IN ('d1', 'd2')")
    before = customers(db)
    plan = run_job(db, dry_run=True, force=True)
    assert customers(db) == before and orphans(db) == ["d1", "d2"]
    assert plan["planned_total"] == 2 and plan["dry_run"] is True
    assert sorted((p["project_name"], p["customer_name"], p["action"]) for p in plan["planned"]) == [
        ("d1", "d1", "create"),
        ("d2", "d2", "create"),
    ]
    assert all("rule 3" in p["reason"] for p in plan["planned"])
    assert scalar(db, "SELECT dry_run FROM config.job_runs WHERE id = %s", (plan["run_id"],)) is True


def test_a_concurrent_run_returns_at_once_and_says_so(db_url):
    import psycopg

    with psycopg.connect(db_url) as holder, psycopg.connect(db_url, autocommit=True) as other:
        holder.execute("SELECT pg_advisory_xact_lock(hashtextextended('config.reconcile_customers', 0))")
        result = run_job(other)
        assert result["skipped"] is True and "another run" in result["detail"]


def test_unknown_job_source_is_refused(db):
    import psycopg

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown job source"):
        run_job(db, source="nonsense")


def test_every_customer_and_association_change_is_audited_with_its_actor(db):
    first = scalar(db, "SELECT coalesce(max(id), 0) FROM config.audit_log")
    db.execute("SELECT set_config('hierarchy.actor', 'ops@example.com', false)")
    add_projects(db, ["audited"])
    grouping = scalar(db, "INSERT INTO config.customers (name) VALUES ('aud') RETURNING uuid")
    db.execute("UPDATE config.projects SET customer_id = %s WHERE name = 'audited'", (grouping,))
    db.execute("DELETE FROM config.customers WHERE uuid = %s", (grouping,))
    rows = db.execute(
        "SELECT action, object_type, actor, changed FROM config.audit_log WHERE id > %s ORDER BY id", (first,)
    ).fetchall()
    kinds = [(a, t) for a, t, _, _ in rows]
    assert ("insert", "customers") in kinds and ("delete", "customers") in kinds
    moves = [c for a, t, _, c in rows if t == "projects" and a == "update"]
    assert ["customer_id", "orphaned_at"] in moves or ["customer_id"] in moves
    assert {actor for _, _, actor, _ in rows} == {"ops@example.com"}
    # a DBA's plain SQL is audited under the database role
    db.execute("SELECT set_config('hierarchy.actor', '', false)")
    db.execute("UPDATE config.customers SET description = 'by hand' WHERE name = 'hydro'")
    assert scalar(db, "SELECT actor FROM config.audit_log ORDER BY id DESC LIMIT 1") == scalar(
        db, "SELECT session_user"
    )


def test_an_update_is_audited_as_exactly_its_changed_columns_old_and_new(db):
    # NULLs, quotes, backslashes, non-ASCII and nested JSON keep their values and types
    [project] = add_projects(db, ["diffed"])
    db.execute(
        "UPDATE config.projects SET description = %s, settings = %s::jsonb WHERE uuid = %s",
        ('say "hi" \\ to \u00e9t\u00e9', '{"ttl_days": 30, "tags": ["a", 2.50, null]}', project),
    )
    first = scalar(db, "SELECT max(id) FROM config.audit_log")
    db.execute(
        "UPDATE config.projects SET description = NULL, settings = '{\"ttl_days\": 7}', customer_id = NULL"
        " WHERE uuid = %s",
        (project,),
    )
    # an UPDATE that changes no value writes no audit row
    db.execute("UPDATE config.projects SET description = description WHERE uuid = %s", (project,))
    rows = db.execute(
        "SELECT object_id, changed, before::text, after::text FROM config.audit_log"
        " WHERE id > %s AND object_type = 'projects' ORDER BY id",
        (first,),
    ).fetchall()
    [(object_id, changed, before, after)] = rows
    assert object_id == project and changed == ["customer_id", "description", "orphaned_at", "settings"]
    customer, orphaned_at = db.execute(
        "SELECT b.after->>'customer_id', p.orphaned_at FROM config.audit_log b, config.projects p"
        " WHERE b.object_type = 'projects' AND b.object_id = %s AND b.action = 'insert' AND p.uuid = %s",
        (project, project),
    ).fetchone()
    assert db.execute("SELECT %s::jsonb, %s::jsonb", (before, after)).fetchone() == (
        {
            "customer_id": customer,
            "description": 'say "hi" \\ to \u00e9t\u00e9',
            "orphaned_at": None,
            "settings": {"ttl_days": 30, "tags": ["a", 2.50, None]},
        },
        {
            "customer_id": None,
            "description": None,
            "orphaned_at": scalar(db, "SELECT to_jsonb(%s::timestamptz)", (orphaned_at,)),
            "settings": {"ttl_days": 7},
        },
    )
    assert '2.50' in before  # a jsonb numeric keeps its scale


def test_batched_runs_home_orphans_a_batch_at_a_time(db):
    set_mode(db, True)
    add_projects(db, [f"b{i}" for i in range(25)])
    db.execute("DELETE FROM config.customers WHERE origin = 'project'")
    sizes = []
    while True:
        result = scalar(
            db, "SELECT config.reconcile_customers(force => true, batch_size => %s::integer)", (10,)
        )
        if result["projects_associated"] == 0:
            break
        sizes.append((result["projects_associated"], result["orphans_due_remaining"]))
    assert sizes == [(10, 15), (10, 5), (5, 0)]
    assert orphans(db) == []


def test_a_batch_size_below_one_is_refused(db):
    import psycopg

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="batch_size must be at least 1"):
        db.execute("SELECT config.reconcile_customers(batch_size => 0)")


def test_orphans_due_before_is_the_rule_the_job_and_the_reports_share(db):
    add_projects(db, ["due1"])
    db.execute("DELETE FROM config.customers WHERE origin = 'default'")
    due = (
        "SELECT config.orphan_is_due(uuid, orphaned_at, false, config.orphans_due_before(), NULL)"
        " FROM config.projects WHERE name = 'due1'"
    )
    assert scalar(db, due) is False  # within the grace period
    db.execute("UPDATE config.tunables SET value = '0' WHERE name = 'customer_orphan_grace_seconds'")
    assert scalar(db, due) is True
    assert run_job(db)["projects_associated"] == 1  # and the job agrees
