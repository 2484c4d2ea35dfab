"""`hierarchy reconcile`: the job from the command line, batched, with dry runs."""

from __future__ import annotations

import uuid

from service import migrations
from tests.cli.conftest import ACTOR, add_projects, one_line_error, orphan, orphan_names, parsed, sql


def per_project(url: str) -> None:
    sql(
        url,
        "UPDATE config.tunables SET value = 'true' "
        "WHERE name = 'turbine_api_feature_migrate_projects_to_orgs'",
    )


def test_grace_period_then_force(cli, db_url, org):
    add_projects(db_url, org, "a1", "a2", "a3")
    orphan(db_url, "a1", "a2", "a3")

    waiting = cli("reconcile", "--json")
    assert waiting.returncode == 0, waiting.stderr
    summary = parsed(waiting)
    assert (summary["projects_associated"], summary["orphans_waiting"]) == (0, 3)
    assert orphan_names(db_url) == ["a1", "a2", "a3"]

    forced = cli("reconcile", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    summary = parsed(forced)
    assert (summary["projects_associated"], summary["orphans_waiting"], summary["source"]) == (3, 0, "cli")
    assert orphan_names(db_url) == []
    homes = sql(
        db_url,
        "SELECT DISTINCT c.origin FROM config.projects p JOIN config.customers c "
        "ON c.uuid = p.customer_id WHERE p.name LIKE 'a_'",
    )
    assert homes == [{"origin": "default"}]
    # the association changes name the CLI user in the audit log
    actors = sql(
        db_url,
        "SELECT DISTINCT a.actor FROM config.audit_log a JOIN config.projects p "
        "ON p.uuid = a.object_id AND p.name LIKE 'a_' WHERE a.action = 'update' "
        "AND a.after ->> 'customer_id' IS NOT NULL",
    )
    assert actors == [{"actor": ACTOR}]


def test_batches_each_their_own_run(cli, db_url, org):
    names = [f"b{i}" for i in range(7)]
    add_projects(db_url, org, *names)
    orphan(db_url, *names)
    result = cli("reconcile", "--force", "--batch-size", "3", "--json")
    assert result.returncode == 0, result.stderr
    summary = parsed(result)
    # 3 + 3 + 1, then a call that homes nothing ends the loop
    assert (summary["projects_associated"], summary["runs"]) == (7, 4)
    runs = sql(db_url, "SELECT projects_associated FROM config.job_runs WHERE source = 'cli' ORDER BY id")
    assert [r["projects_associated"] for r in runs] == [3, 3, 1, 0]
    assert summary["run_ids"] == [
        r["id"] for r in sql(db_url, "SELECT id FROM config.job_runs WHERE source = 'cli' ORDER BY id")
    ]
    assert orphan_names(db_url) == []


def test_dry_run_lists_the_plan_and_changes_nothing(cli, db_url, org):
    per_project(db_url)
    add_projects(db_url, org, "d1", "d2")
    orphan(db_url, "d1", "d2")
    customers_before = sql(db_url, "SELECT count(*) AS n FROM config.customers")[0]["n"]

    result = cli("reconcile", "--dry-run", "--force", "--json")
    assert result.returncode == 0, result.stderr
    plan = parsed(result)
    assert plan["dry_run"] is True and plan["planned_total"] == 2
    assert sorted((p["project_name"], p["customer_name"], p["action"]) for p in plan["planned"]) == [
        ("d1", "d1", "create"),
        ("d2", "d2", "create"),
    ]
    assert all("rule 3" in p["reason"] for p in plan["planned"])
    assert orphan_names(db_url) == ["d1", "d2"]
    assert sql(db_url, "SELECT count(*) AS n FROM config.customers")[0]["n"] == customers_before

    human = cli("reconcile", "--dry-run", "--force")
    assert human.returncode == 0
    for text in (
        "planned changes (dry run: nothing changed)",
        "project",
        "customer",
        "action",
        "reason",
        "d1",
        "d2",
        "create",
        "would create 2 customer(s) and associate 2 project(s)",
    ):
        assert text in human.stdout
    assert orphan_names(db_url) == ["d1", "d2"]


def test_nothing_to_do(cli):
    human = cli("reconcile", "--dry-run")
    assert human.returncode == 0 and "dry run: nothing to do" in human.stdout
    done = cli("reconcile")
    assert done.returncode == 0
    assert "projects associated" in done.stdout and "job runs" in done.stdout


def test_unresolvable_orphan_exits_3(cli, db_url, org):
    """Per-project mode, and all three candidate names of project 'taken' are held by others."""
    per_project(db_url)
    key = uuid.uuid4()
    sql(
        db_url,
        "INSERT INTO config.customers (name) SELECT unnest(config.customer_name_candidates('taken', %s))",
        (key,),
    )
    sql(db_url, "INSERT INTO config.projects (uuid, org_id, name) VALUES (%s, %s, 'taken')", (key, org))
    assert orphan_names(db_url) == ["taken"]
    result = cli("reconcile", "--json")
    assert result.returncode == 3
    assert parsed(result)["orphans_unresolved"] == 1
    assert "1 due orphan(s) could not be homed" in one_line_error(result)


def test_needs_release_6_1(cli, db_url):
    migrations.migrate(db_url, "6.0")
    result = cli("reconcile")
    assert result.returncode == 1
    assert one_line_error(result) == (
        "hierarchy: the database is at release 6.0; this needs 6.1 (customers): run `hierarchy migrate`"
    )
