"""``hierarchy orgs check|promote|demote``: the promotion of customers to orgs from the command
line, both modes and both directions, with its dry runs (table and JSON), the exit codes (3
when blocked, naming every blocker; 1 for a refused state) and the audit rows it leaves."""

from __future__ import annotations

import pytest

from tests.cli.conftest import ACTOR, one_line_error, parsed, sql
from tests.promotion_data import build

PROJECT_ORGS = "SELECT p.name, o.name AS org FROM config.projects p JOIN config.orgs o ON o.uuid = p.org_id"


def project_orgs(url):
    return {r["name"]: r["org"] for r in sql(url, PROJECT_ORGS)}


def memberships_of(url, email):
    return [
        (r["name"], r["role"], r["is_primary"])
        for r in sql(
            url,
            "SELECT o.name, m.role, m.is_primary FROM config.org_memberships m "
            "JOIN config.users u ON u.uuid = m.user_id JOIN config.orgs o ON o.uuid = m.org_id "
            "WHERE u.email = %s ORDER BY o.name",
            (email,),
        )
    ]


@pytest.mark.parametrize("per_project", [True, False], ids=["per-project", "single"])
def test_check_dry_run_promote_and_demote(cli, db_url, per_project):
    build(db_url, per_project=per_project)
    before = project_orgs(db_url)

    check = cli("orgs", "check", "--json")
    assert check.returncode == 0, check.stderr
    assert parsed(check) == {
        "promoted": False,
        "promotion": None,
        "checks": "promote",
        "blockers": [],
        "blockers_total": 0,
    }

    dry = cli("orgs", "promote", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = parsed(dry)
    assert plan["dry_run"] is True and plan["plan"]["orgs_total"] == 5  # single: 3 created, 2 mapped
    assert project_orgs(db_url) == before, "the dry run changed nothing"

    table = cli("orgs", "promote", "--dry-run")
    assert table.returncode == 0, table.stderr
    assert "promotion (dry run: nothing changed)" in table.stdout
    assert "orgs it creates or maps" in table.stdout and "bigco" in table.stdout
    assert "memberships it adds or changes" in table.stdout and "op@acme" in table.stdout

    done = cli("orgs", "promote", "--json")
    assert done.returncode == 0, done.stderr
    assert parsed(done)["dry_run"] is False
    assert project_orgs(db_url)["api"] == "bigco"
    # the audit log names the CLI's actor for the orgs it created
    assert (
        sql(
            db_url,
            "SELECT count(*) AS n FROM config.audit_log "
            "WHERE object_type = 'orgs' AND action = 'insert' AND actor = %s",
            (ACTOR,),
        )[0]["n"]
        == parsed(done)["orgs_created"]
    )

    promoted = parsed(cli("orgs", "check", "--json"))
    assert promoted["promoted"] is True and promoted["checks"] == "demote"
    assert promoted["promotion"]["summary"]["orgs_created"] == parsed(done)["orgs_created"]

    undo_plan = cli("orgs", "demote", "--dry-run")
    assert undo_plan.returncode == 0 and "orgs it deletes" in undo_plan.stdout
    undone = cli("orgs", "demote", "--json")
    assert undone.returncode == 0, undone.stderr
    assert project_orgs(db_url) == before
    assert memberships_of(db_url, "op@acme") == [("acme", "operator", True)]


def test_refusals_are_one_line_and_change_nothing(cli, db_url):
    # below 6.4 (db_url is at 6.1)
    below = cli("orgs", "promote")
    assert below.returncode == 1
    assert "needs release 6.4" in one_line_error(below) and "hierarchy migrate --to 6.4" in below.stderr

    build(db_url, per_project=True)
    not_promoted = cli("orgs", "demote")
    assert not_promoted.returncode == 1
    assert one_line_error(not_promoted) == (
        "hierarchy: the customers are not promoted to orgs: nothing to reverse, nothing changed"
    )
    assert cli("orgs", "promote").returncode == 0
    twice = cli("orgs", "promote", "--dry-run")
    assert twice.returncode == 1 and "already promoted" in one_line_error(twice)
    # a downgrade while promoted refuses, saying how, and changes nothing
    promoted = project_orgs(db_url)
    down = cli("migrate", "--to", "6.1", "--yes")
    assert down.returncode == 3
    assert "reverse it first with `hierarchy orgs demote`" in down.stderr and "Traceback" not in down.stderr
    assert project_orgs(db_url) == promoted
    assert sql(db_url, "SELECT config.schema_migration() AS m")[0]["m"] == "0005.org-promotion"
    assert cli("orgs", "demote").returncode == 0
    assert cli("migrate", "--to", "6.1", "--yes").returncode == 0


def test_blocked_promotion_exits_3_naming_every_blocker(cli, db_url):
    build(db_url, per_project=True, spanning=True)
    sql(db_url, "INSERT INTO config.orgs (name) VALUES ('web')")
    before = project_orgs(db_url)

    check = cli("orgs", "check", "--json")
    assert check.returncode == 3
    report = parsed(check)
    assert report["blockers_total"] == 2
    assert [(b["kind"], b["subject"]) for b in report["blockers"]] == [
        ("customer_spans_orgs", "bigco"),
        ("org_name_taken", "web"),
    ]
    assert all(b["remedy"] for b in report["blockers"])

    for args in (("--dry-run",), ()):
        blocked = cli("orgs", "promote", *args, "--json")
        assert blocked.returncode == 3
        body = parsed(blocked)
        assert body["blocked"] is True and body["blockers_total"] == 2
        assert "cannot promote customers to orgs: 2 blocker(s)" in blocked.stderr
    table = cli("orgs", "promote")
    assert table.returncode == 3 and "customer_spans_orgs" in table.stdout
    assert project_orgs(db_url) == before
    assert sql(db_url, "SELECT count(*) AS n FROM config.org_promotions")[0]["n"] == 0
