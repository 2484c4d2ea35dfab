"""`hierarchy status`: release, schedule, last runs, orphans; exit 3 for overdue orphans."""

from __future__ import annotations

from service import migrations
from tests.cli.conftest import add_projects, one_line_error, orphan, parsed, run_cli, sql


def test_healthy_json(cli):
    result = cli("status", "--json")
    assert result.returncode == 0, result.stderr
    report = parsed(result)
    assert (report["database"], report["release"], report["mode"]) == ("ok", "6.1", "single")
    assert report["orphans"] == {"total": 0, "in_grace": 0, "overdue": 0}
    assert report["grace_seconds"] == 120
    # the test clones have no pg_cron: the service's scheduler runs the job
    assert (report["scheduler"], report["pg_cron_scheduled"]) == ("service", False)
    assert [r["source"] for r in report["last_runs"]] == ["upgrade"]  # the upgrade's init job


def test_orphan_in_grace_is_not_a_problem_but_overdue_is(cli, db_url, org):
    add_projects(db_url, org, "fresh", "stale")
    orphan(db_url, "fresh")
    orphan(db_url, "stale", minutes_ago=10)
    result = cli("status", "--json")
    assert result.returncode == 3
    assert parsed(result)["orphans"] == {"total": 2, "in_grace": 1, "overdue": 1}

    sql(db_url, "SELECT config.reconcile_customers(force => true)")
    orphan(db_url, "fresh")
    ok = cli("status", "--json")
    assert ok.returncode == 0
    assert parsed(ok)["orphans"] == {"total": 1, "in_grace": 1, "overdue": 0}


def test_human_output_lists_runs(cli, db_url):
    sql(db_url, "SELECT config.reconcile_customers(source => 'cli')")
    result = cli("status")
    assert result.returncode == 0, result.stderr
    for text in (
        "release",
        "6.1",
        "mode",
        "single",
        "grace period",
        "120 s",
        "orphans",
        "0 (0 in their grace period, 0 overdue)",
        "last job runs",
        "upgrade",
        "cli",
    ):
        assert text in result.stdout


def test_release_6_0(cli, db_url):
    migrations.migrate(db_url, "6.0")
    result = cli("status", "--json")
    assert result.returncode == 0
    report = parsed(result)
    assert report["release"] == "6.0" and "orphans" not in report
    human = cli("status")
    assert "6.0 (latest is 6.4: `hierarchy migrate --to 6.4 --dry-run` checks what blocks it)" in human.stdout


def test_pg_cron_schedule_is_reported(cron_db_url, tmp_path):
    migrations.migrate(cron_db_url, "6.1")  # the fixture empties this database again for the next test
    result = run_cli(cron_db_url, "status", "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    report = parsed(result)
    assert (report["scheduler"], report["pg_cron_scheduled"]) == ("pg_cron", True)
    # the job is the cron role's (sql/privileges.sql): unscheduled by id
    sql(cron_db_url, "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = 'reconcile-customers'")
    assert parsed(run_cli(cron_db_url, "status", "--json", tmp_path=tmp_path))["scheduler"] == "service"


def test_bad_url_is_a_problem(tmp_path):
    result = run_cli("mysql://x@y/z", "status", tmp_path=tmp_path)
    assert result.returncode == 3
    assert "unsupported database URL scheme" in result.stdout
    assert result.stderr == "" or one_line_error(result)
