"""`hierarchy tunable get|set`: the database checks values and names the CLI user."""

from __future__ import annotations

import pytest

from tests.cli.conftest import ACTOR, one_line_error, parsed, sql

MODE = "turbine_api_feature_migrate_projects_to_orgs"
GRACE = "customer_orphan_grace_seconds"


def value(url: str, name: str):
    return sql(url, "SELECT value FROM config.tunables WHERE name = %s", (name,))[0]["value"]


def test_get_one_and_all(cli):
    one = cli("tunable", "get", GRACE, "--json")
    assert one.returncode == 0, one.stderr
    row = parsed(one)
    assert (row["name"], row["value"], row["value_type"], row["minimum"]) == (GRACE, 120, "integer", 0)
    every = parsed(cli("tunable", "get", "--json"))
    assert {t["name"]: t["value"] for t in every} == {GRACE: 120, MODE: False}
    human = cli("tunable", "get")
    assert GRACE in human.stdout and MODE in human.stdout and "120" in human.stdout


def test_set_integer(cli, db_url):
    result = cli("tunable", "set", GRACE, "300", "--json")
    assert result.returncode == 0, result.stderr
    assert parsed(result)["value"] == 300 and parsed(result)["modified_by"] == ACTOR
    assert value(db_url, GRACE) == 300
    audit = sql(db_url, "SELECT actor, before, after FROM config.audit_log WHERE object_type = 'tunables'")
    assert audit == [
        {"actor": ACTOR, "before": {"name": GRACE, "value": 120}, "after": {"name": GRACE, "value": 300}}
    ]


def test_set_mode_runs_the_job_and_says_what_it_keeps(cli, db_url):
    result = cli("tunable", "set", MODE, "true")
    assert result.returncode == 0, result.stderr
    assert value(db_url, MODE) is True
    assert "`hierarchy switch-mode` also moves" in result.stderr
    runs = sql(db_url, "SELECT source FROM config.job_runs WHERE source = 'tunable'")
    assert runs == [{"source": "tunable"}]


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        (MODE, "120", f"tunable {MODE} must be boolean (got 120)"),
        (MODE, "yes", f'tunable {MODE} must be boolean (got "yes")'),
        (GRACE, "true", f"tunable {GRACE} must be integer (got true)"),
        (GRACE, "1.5", f"tunable {GRACE} must be integer (got 1.5)"),
        (GRACE, "-5", f"tunable {GRACE} must be at least 0 (got -5)"),
        (GRACE, "abc", f'tunable {GRACE} must be integer (got "abc")'),
    ],
)
def test_bad_value_is_refused_by_the_database(cli, db_url, name, bad, message):
    before = value(db_url, name)
    result = cli("tunable", "set", name, bad, "--json")
    assert result.returncode == 1
    assert one_line_error(result) == f"hierarchy: the database refused: {message}"
    assert result.stdout == ""
    assert value(db_url, name) == before
    audited = sql(db_url, "SELECT count(*) AS n FROM config.audit_log WHERE object_type = 'tunables'")
    assert audited == [{"n": 0}]


@pytest.mark.parametrize("command", [["get", "nope"], ["set", "nope", "1"]])
def test_unknown_tunable(cli, command):
    result = cli("tunable", *command)
    assert result.returncode == 1
    assert one_line_error(result) == f"hierarchy: unknown tunable 'nope'; known: {GRACE}, {MODE}"
