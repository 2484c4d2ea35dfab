"""`hierarchy audit orphans` (exit 3 when any) and `hierarchy switch-mode`."""

from __future__ import annotations

from tests.cli.conftest import ACTOR, add_projects, one_line_error, orphan_names, parsed, sql
from tests.conftest import runtime_url

MODE = "turbine_api_feature_migrate_projects_to_orgs"


def homes(url: str) -> dict[str, tuple[str, str]]:
    """project name -> (customer name, origin)."""
    found = sql(
        url,
        "SELECT p.name, c.name AS customer, c.origin FROM config.projects p "
        "JOIN config.customers c ON c.uuid = p.customer_id",
    )
    return {r["name"]: (r["customer"], r["origin"]) for r in found}


def test_healthy_cluster_has_no_orphans(cli):
    result = cli("audit", "orphans", "--json")
    assert result.returncode == 0, result.stderr
    assert parsed(result) == []
    human = cli("audit", "orphans")
    assert human.returncode == 0 and "no orphaned projects" in human.stdout


def test_deleting_a_customer_makes_orphans_exit_3(cli, db_url, org):
    add_projects(db_url, org, "o1", "o2")
    sql(db_url, "DELETE FROM config.customers WHERE origin = 'default'")
    result = cli("audit", "orphans", "--json")
    assert result.returncode == 3
    found = parsed(result)
    assert [(o["org_name"], o["name"], o["past_grace"]) for o in found] == [
        ("hydrolix", "o1", False),
        ("hydrolix", "o2", False),
    ]
    assert all(o["orphaned_at"] for o in found)
    assert "2 orphaned project(s)" in one_line_error(result)

    human = cli("audit", "orphans", "--org", "hydrolix")
    assert human.returncode == 3
    assert "o1" in human.stdout and "in its grace period" in human.stdout

    other = sql(db_url, "INSERT INTO config.orgs (name) VALUES ('other') RETURNING uuid")
    assert other
    assert cli("audit", "orphans", "--org", "other").returncode == 0
    unknown = cli("audit", "orphans", "--org", "nope")
    assert unknown.returncode == 1
    assert one_line_error(unknown) == "hierarchy: no org named 'nope'"


def test_switch_modes_both_ways(cli, db_url, org):
    add_projects(db_url, org, "s1", "s2", "s3")
    manual = sql(db_url, "INSERT INTO config.customers (name) VALUES ('acme') RETURNING uuid")[0]["uuid"]
    sql(db_url, "UPDATE config.projects SET customer_id = %s WHERE name IN ('s3')", (manual,))
    start = homes(db_url)
    assert start["s1"] == ("hydrolix-default", "default") == start["s2"]

    dry = cli("switch-mode", "--per-project", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = parsed(dry)
    assert (
        report["dry_run"],
        report["per_project"],
        report["customers_dissolved"],
        report["projects_freed"],
    ) == (True, True, 1, 2)
    assert homes(db_url) == start
    assert sql(db_url, "SELECT value FROM config.tunables WHERE name = %s", (MODE,)) == [{"value": False}]

    done = cli("switch-mode", "--per-project", "--json")
    assert done.returncode == 0, done.stderr
    assert parsed(done)["projects_associated"] == 2
    now = homes(db_url)
    assert now["s1"] == ("s1", "project") and now["s2"] == ("s2", "project")
    assert now["s3"] == ("s3", "manual")  # rule 4 names it after its only project; never moved
    assert orphan_names(db_url) == []
    assert sql(db_url, "SELECT value, modified_by FROM config.tunables WHERE name = %s", (MODE,)) == [
        {"value": True, "modified_by": ACTOR}
    ]

    back = cli("switch-mode", "--single")
    assert back.returncode == 0, back.stderr
    assert "switch to one default customer per org" in back.stdout
    final = homes(db_url)
    assert final["s1"] == ("hydrolix-default", "default") == final["s2"]
    assert final["s3"][1] == "manual"
    deleted = sql(
        db_url,
        "SELECT DISTINCT actor FROM config.audit_log WHERE object_type = 'customers' AND action = 'delete'",
    )
    assert deleted == [{"actor": ACTOR}]


def test_switch_dry_run_names_the_moves(cli, db_url, org):
    add_projects(db_url, org, "s1", "s2")
    start = homes(db_url)
    dry = cli("switch-mode", "--per-project", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout
    assert "projects it would move" in out and "customers it would dissolve" in out
    for project in ("s1", "s2"):
        line = next(row for row in out.splitlines() if f" {project} " in row and "new customer" in row)
        assert "hydrolix-default" in line and f"new customer {project}" in line, line
    assert "its default customer hydrolix-default is dissolved" in out
    assert homes(db_url) == start


def test_the_runtime_role_cannot_switch_or_force_the_job_from_the_command_line(cli, db_url, org):
    """DATABASE_URL naming the service's runtime role (no HIERARCHY_OWNER_URL): the functions'
    own guard refuses what needs a signed-in user (sql/service_state.sql), one line, nothing changed."""
    add_projects(db_url, org, "r1")
    sql(db_url, "DELETE FROM config.customers WHERE origin = 'default'")  # r1 waits its grace period

    def seen() -> tuple:
        return (
            homes(db_url),
            orphan_names(db_url),
            sql(db_url, "SELECT value FROM config.tunables ORDER BY name"),
        )

    before = seen()
    for args, function in (
        (("switch-mode", "--per-project"), "config.switch_customer_mode"),
        (("reconcile", "--force"), "config.reconcile_customers"),
    ):
        result = cli(*args, url=runtime_url(db_url))
        assert result.returncode == 1
        line = one_line_error(result)
        assert line.startswith(
            f"hierarchy: the database refused: {function} needs a signed-in request user"
        ), line
        assert "connect as the owner" in line
    assert seen() == before and before[1] == ["r1"]
    assert cli("reconcile", "--force").returncode == 0  # the owner's (here the superuser's) URL
    assert orphan_names(db_url) == []
