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
        k: preview[k] for k in result if k != "dry_run"
    }
    assert preview["moves_total"] == len(USER)
    assert preview["dissolved_total"] == expected_dissolved(target)
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


def expected_dissolved(per_project: bool) -> int:
    return 1 if per_project else len(USER)


def test_switch_dry_run_names_what_it_would_change(db):
    """1,005 projects of the default customer and an orphan: the dry run lists the first 1,000
    moves (from, to, why) with the total and the dissolved customer, and changes nothing."""
    names = [f"p{i:04d}" for i in range(1005)]
    add_projects(db, names)
    default, default_name = db.execute(
        "SELECT uuid, name FROM config.customers WHERE origin = 'default'"
    ).fetchone()
    db.execute("UPDATE config.projects SET customer_id = NULL WHERE name = 'p0000'")  # an orphan
    before = snapshot(db)

    plan = scalar(db, "SELECT config.switch_customer_mode(true, dry_run => true)")
    assert snapshot(db) == before
    assert plan["moves_total"] == 1005 and len(plan["moves"]) == 1000
    assert [m["project_name"] for m in plan["moves"]] == names[:1000]
    orphan, first = plan["moves"][0], plan["moves"][1]
    assert orphan["from_customer"] is None and orphan["reason"].startswith("an orphan")
    assert first["from_customer"] == str(default) and first["from_customer_name"] == default_name
    assert first["to"] == "new customer p0001" and first["new_customer"] is True
    assert first["to_customer"] is None  # made in the rolled-back rehearsal: no uuid to show
    assert first["reason"] == (
        f"its default customer {default_name} is dissolved: per-project mode: a customer of its own (rule 3)"
    )
    assert plan["dissolved"] == [
        {"customer": str(default), "name": default_name, "origin": "default", "projects": 1004}
    ]
    assert plan["dissolved_total"] == 1

    scalar(db, "SELECT config.switch_customer_mode(true)")
    homes = dict(
        db.execute(
            "SELECT p.name, c.name FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id"
        ).fetchall()
    )
    assert {m["project_name"]: m["to_customer_name"] for m in plan["moves"]} == {
        n: homes[n] for n in names[:1000]
    }

    # and back: every per-project customer would go, the projects join a new default customer
    plan = scalar(db, "SELECT config.switch_customer_mode(false, dry_run => true)")
    assert plan["moves_total"] == 1005 and plan["dissolved_total"] == 1005
    assert plan["moves"][0]["to"] == f"new customer {default_name}"
    assert plan["moves"][0]["reason"] == (
        "its per-project customer p0000 is dissolved: single mode: the org's default customer (rule 2)"
    )
    assert plan["dissolved"][0] == {
        "customer": plan["moves"][0]["from_customer"],
        "name": "p0000",
        "origin": "project",
        "projects": 1,
    }


def test_switch_mode_refuses_null(db):
    import psycopg

    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="per_project must be"):
        db.execute("SELECT config.switch_customer_mode(NULL)")
