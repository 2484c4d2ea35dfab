"""The source document's two manual procedures, and the one-step switch (rule 9)."""

import pytest

from tests.rules.helpers import (
    MODE,
    add_projects,
    customers,
    orphans,
    pass_grace,
    run_job,
    scalar,
    set_mode,
    snapshot,
)

USER = ["t1", "t2", "t3", "t4"]


def per_project_layout():
    return {name: ("project", [name]) for name in USER}


def test_procedure_switch_to_many_customers(db):
    add_projects(db, USER)
    # 1. find the default customer ID
    default = scalar(db, "SELECT uuid FROM config.customers WHERE origin = 'default'")
    # 2. delete it: its projects are orphans and, within the grace period, stay so
    db.execute("DELETE FROM config.customers WHERE uuid = %s", (default,))
    run_job(db)  # a tick between steps 2 and 3 must not put them back into a new default customer
    assert orphans(db) == USER
    # 3. set the tunable to true; 4. the job runs (here: in the same transaction)
    set_mode(db, True)
    # 5. one customer per project
    got = customers(db)
    assert {k: v for k, v in got.items() if v[0] != "system"} == per_project_layout()
    assert orphans(db) == []


def test_procedure_switch_to_one_customer(db):
    set_mode(db, True)
    add_projects(db, USER)
    # 1. set the tunable to false (the published text says true; false is what makes it work)
    set_mode(db, False)
    # 2. let the job run: nothing to do, every project still has its own customer
    run_job(db)
    assert {k: v for k, v in customers(db).items() if v[0] != "system"} == per_project_layout()
    # 3. delete all customers created from projects
    db.execute("DELETE FROM config.customers WHERE origin = 'project'")
    assert orphans(db) == USER
    # 4. once the grace period has passed, the job assigns them all to the default customer
    pass_grace(db)
    run_job(db)
    got = {k: v for k, v in customers(db).items() if v[0] != "system"}
    assert list(got.values()) == [("default", USER)]


@pytest.mark.parametrize("start_per_project", [False, True])
def test_switch_customer_mode_both_ways(db, start_per_project):
    set_mode(db, start_per_project)
    add_projects(db, USER)
    grouping = scalar(db, "INSERT INTO config.customers (name) VALUES ('manual-group') RETURNING uuid")
    add_projects(db, ["g1", "g2", "g3"])
    db.execute("UPDATE config.projects SET customer_id = %s WHERE name IN ('g1', 'g2', 'g3')", (grouping,))

    target = not start_per_project
    before = snapshot(db)
    preview = scalar(db, "SELECT config.switch_customer_mode(%s, dry_run => true)", (target,))
    assert snapshot(db) == before and preview["dry_run"] is True
    assert scalar(db, "SELECT value FROM config.tunables WHERE name = %s", (MODE,)) is start_per_project

    result = scalar(db, "SELECT config.switch_customer_mode(%s)", (target,))
    assert {k: v for k, v in result.items() if k != "dry_run"} == {
        k: v for k, v in preview.items() if k != "dry_run"
    }
    assert scalar(db, "SELECT value FROM config.tunables WHERE name = %s", (MODE,)) is target
    # per-project: the default customer dissolved, four made; single: four dissolved, one made
    expected = (1, 4, 4, 4) if target else (4, 4, 1, 4)
    assert (
        tuple(
            result[k]
            for k in ("customers_dissolved", "projects_freed", "customers_created", "projects_associated")
        )
        == expected
    )
    got = customers(db)
    assert got.pop("manual-group") == ("manual", ["g1", "g2", "g3"])
    got = {k: v for k, v in got.items() if v[0] != "system"}
    if target:
        assert got == per_project_layout()
    else:
        assert list(got.values()) == [("default", USER)]
    assert orphans(db) == []

    again = snapshot(db)
    second = scalar(db, "SELECT config.switch_customer_mode(%s)", (target,))
    assert snapshot(db) == again
    assert (second["customers_dissolved"], second["projects_freed"]) == (0, 0)


def test_switch_mode_refuses_null(db):
    import psycopg

    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="per_project must be"):
        db.execute("SELECT config.switch_customer_mode(NULL)")
