"""The command line and release 6.4: the dry run (pre-upgrade check), the refused upgrade,
status and reconcile at 6.4, and 6.2/6.3 naming the 6.1 schema."""

from __future__ import annotations

from service import migrations
from tests.cli.conftest import add_projects, one_line_error, orphan, parsed, sql
from tests.sql_checks import ROWS_CHECKSUM as CHECKSUM


def test_dry_run_lists_blockers_exits_3_and_changes_nothing(cli, db_url, org):
    add_projects(db_url, org, "stray")
    orphan(db_url, "stray", minutes_ago=3)
    before = sql(db_url, CHECKSUM)
    result = cli("migrate", "--to", "6.4", "--dry-run", "--json")
    assert result.returncode == 3, result.stderr
    report = parsed(result)
    assert (report["from"], report["release"], report["blocked"]) == ("6.1", "6.4", True)
    assert report["steps"] == [
        ["apply", "0003.customers-required"],
        ["apply", "0004.org-memberships"],
        ["apply", "0005.org-promotion"],
    ]
    [blocker] = report["blockers"]
    assert (blocker["org_name"], blocker["project_name"], blocker["blocker"]) == (
        "hydrolix",
        "stray",
        "orphan",
    )
    assert "reconcile --force" in blocker["remedy"]
    assert "hierarchy reconcile --force" in one_line_error(result)
    human = cli("migrate", "--to", "6.4", "--dry-run")
    assert human.returncode == 3 and "stray" in human.stdout and "1 blocker(s)" in human.stdout
    assert sql(db_url, CHECKSUM) == before and migrations.current_release(db_url) == "6.1"

    assert cli("reconcile", "--force").returncode == 0
    clear = cli("migrate", "--to", "6.4", "--dry-run", "--json")
    assert clear.returncode == 0 and parsed(clear)["blockers"] == []
    assert migrations.current_release(db_url) == "6.1"


def test_refused_upgrade_is_one_line_exit_3(cli, db_url, org):
    add_projects(db_url, org, "stray")
    orphan(db_url, "stray")
    result = cli("migrate", "--to", "6.4")
    assert result.returncode == 3
    line = one_line_error(result)
    assert (
        "cannot upgrade to release 6.4: 1 project(s) have no customer: hydrolix/stray (orphan since" in line
    )
    assert "hierarchy reconcile --force" in line and "the database is at release 6.1" in line
    assert migrations.current_release(db_url) == "6.1"


def test_status_and_reconcile_at_64(cli, db_url_64):
    status = cli("status", "--json", url=db_url_64)
    assert status.returncode == 0, status.stderr
    report = parsed(status)
    assert (report["release"], report["latest"], report["scheduler"]) == ("6.4", "6.4", "none")
    assert "6.4" in cli("status", url=db_url_64).stdout
    runs = sql(db_url_64, "SELECT count(*) AS n FROM config.job_runs")
    for args in (("reconcile",), ("reconcile", "--force", "--dry-run")):
        result = cli(*args, url=db_url_64)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("nothing to reconcile: at release 6.4")
    assert parsed(cli("reconcile", "--json", url=db_url_64))["nothing_to_reconcile"] is True
    assert sql(db_url_64, "SELECT count(*) AS n FROM config.job_runs") == runs
    switch = cli("switch-mode", "--per-project", url=db_url_64)
    assert switch.returncode == 1 and "associations are final" in one_line_error(switch)


def test_62_and_63_name_the_61_schema(cli, db_url):
    result = cli("migrate", "--to", "6.3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "already at release 6.1 (the schema of 6.1, 6.2 and 6.3); nothing to do"
    status = cli("status")
    assert "6.1 (the schema of 6.1, 6.2 and 6.3)" in status.stdout
    assert "--to 6.4 --dry-run" in status.stdout


def test_downgrade_from_64_deletes_nothing_and_asks_nothing(cli, db_url_64):
    before = sql(db_url_64, CHECKSUM)
    result = cli("migrate", "--to", "6.1", "--json", url=db_url_64)
    assert result.returncode == 0, result.stderr
    assert parsed(result)["customers_deleted"] == 0
    assert sql(db_url_64, CHECKSUM) == before and migrations.current_release(db_url_64) == "6.1"


def test_run_never_downgrades(cli, db_url_64):
    result = cli("run", "--to", "6.1", "--port", "1", url=db_url_64)
    assert result.returncode == 1
    assert "`hierarchy run` never downgrades" in one_line_error(result)
    assert migrations.current_release(db_url_64) == "6.4"
