"""The command line and org memberships (release 6.4): user orgs, add-org, remove-org, set-role,
set-primary (--json, one-line refusals, exit codes, nothing changed on refusal, audited as
cli:<OS user>), and the downgrade's check and refusal while a user has several orgs."""

from __future__ import annotations

import pytest

from service import migrations
from tests.cli.conftest import ACTOR, one_line_error, parsed, sql

PASSWORD = "correct horse battery"
MEMBERSHIPS = (
    "SELECT md5(string_agg(m::text, ',' ORDER BY m.user_id, m.org_id)) AS m FROM config.org_memberships m"
)


@pytest.fixture
def db_url(db_url_64):
    return db_url_64


@pytest.fixture
def ops(cli, db_url):
    sql(db_url, "INSERT INTO config.orgs (name) VALUES ('acme'), ('beta')")
    made = cli(
        "user",
        "create",
        "--email",
        "ops@example.com",
        "--role",
        "operator",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    return "ops@example.com"


def rows(result):
    return [(m["org_name"], m["role"], m["is_primary"]) for m in parsed(result)["memberships"]]


def test_add_set_role_set_primary_remove(cli, db_url, ops):
    r = cli("user", "add-org", ops, "--org", "acme", "--role", "read_only", "--json")
    assert r.returncode == 0, r.stderr
    assert rows(r) == [("hydrolix", "operator", True), ("acme", "read_only", False)]
    r = cli("user", "set-role", ops, "--org", "acme", "--role", "operator", "--json")
    assert r.returncode == 0 and rows(r)[1] == ("acme", "operator", False)
    r = cli("user", "set-primary", ops, "--org", "acme", "--json")
    assert r.returncode == 0 and rows(r)[0] == ("acme", "operator", True)
    r = cli("user", "remove-org", ops, "--org", "hydrolix", "--json")
    assert r.returncode == 0 and rows(r) == [("acme", "operator", True)]
    human = cli("user", "orgs", ops)
    assert human.returncode == 0 and "acme" in human.stdout and "yes" in human.stdout
    actors = sql(db_url, "SELECT DISTINCT actor FROM config.audit_log WHERE object_type = 'org_memberships'")
    assert actors == [{"actor": ACTOR}]
    r = cli("user", "add-org", ops, "--org", "beta", "--role", "read_only", "--primary", "--json")
    assert r.returncode == 0 and rows(r)[0] == ("beta", "read_only", True)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("add-org", "nobody@example.com", "--org", "acme", "--role", "operator"), 1, "no user with email"),
        (
            ("add-org", "ops@example.com", "--org", "nowhere", "--role", "operator"),
            1,
            "no org named 'nowhere'",
        ),
        (("add-org", "ops@example.com", "--org", "hydrolix", "--role", "operator"), 1, "already a member"),
        (("add-org", "ops@example.com", "--org", "acme", "--role", "boss"), 2, "invalid choice"),
        (("remove-org", "ops@example.com", "--org", "hydrolix"), 1, "only org"),
        (("remove-org", "ops@example.com", "--org", "acme"), 1, "not a member"),
        (("set-role", "ops@example.com", "--org", "acme", "--role", "operator"), 1, "not a member"),
        (("set-primary", "ops@example.com", "--org", "beta"), 1, "not a member"),
        (("orgs", "nobody@example.com"), 1, "no user with email"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(cli, db_url, ops, args, code, message):
    before = sql(db_url, MEMBERSHIPS)
    r = cli("user", *args)
    assert r.returncode == code, r.stderr
    assert message in (one_line_error(r) if code == 1 else r.stderr)
    assert sql(db_url, MEMBERSHIPS) == before


def test_a_super_admin_keeps_one_org(cli, db_url):
    sql(db_url, "INSERT INTO config.orgs (name) VALUES ('acme')")
    cli(
        "user",
        "create",
        "--email",
        "root@example.com",
        "--role",
        "super_admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    r = cli("user", "add-org", "root@example.com", "--org", "acme", "--role", "read_only")
    assert r.returncode == 1 and "super admin belongs to exactly one org" in one_line_error(r)


def test_the_downgrade_check_names_users_of_several_orgs(cli, db_url, ops):
    assert cli("user", "add-org", ops, "--org", "acme", "--role", "read_only").returncode == 0
    dry = cli("migrate", "--to", "6.1", "--dry-run", "--json")
    assert dry.returncode == 3
    [blocker] = parsed(dry)["downgrade_blockers"]
    assert (blocker["email"], blocker["orgs"]) == (ops, ["hydrolix", "acme"])
    assert "remove-org" in blocker["remedy"]
    human = cli("migrate", "--to", "6.1", "--dry-run")
    assert human.returncode == 3 and "downgrade check: 1 user(s) of several orgs" in human.stdout
    assert "ops@example.com" in human.stdout and "user remove-org" in human.stderr
    refused = cli("migrate", "--to", "6.1", "--yes")
    assert refused.returncode == 3
    assert "ops@example.com (hydrolix, acme)" in one_line_error(refused)
    assert migrations.current_release(db_url) == "6.4"
    assert cli("user", "remove-org", ops, "--org", "acme").returncode == 0
    assert cli("migrate", "--to", "6.1", "--yes").returncode == 0
    r = cli("user", "add-org", ops, "--org", "acme", "--role", "read_only")
    assert r.returncode == 1 and "release 6.4" in one_line_error(r)
    r = cli("user", "orgs", ops, "--json")
    assert r.returncode == 0 and rows(r) == [("hydrolix", "operator", True)]
