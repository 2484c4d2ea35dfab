"""Help, bad usage and a missing database: nothing touches a database, every error is one line."""

from __future__ import annotations

import pytest

from tests.cli.conftest import UNREACHABLE, one_line_error, run_cli

COMMANDS = [
    ["run"],
    ["migrate"],
    ["status"],
    ["reconcile"],
    ["tunable"],
    ["tunable", "get"],
    ["tunable", "set"],
    ["audit"],
    ["audit", "orphans"],
    ["switch-mode"],
    ["user"],
    ["user", "create"],
    ["user", "list"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_has_an_example(command, tmp_path):
    result = run_cli(UNREACHABLE, *command, "--help", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "example:\n  hierarchy " in result.stdout
    group = command in (["tunable"], ["audit"], ["user"])
    assert ("--json" in result.stdout) != group


BAD = [
    (["bogus"], "invalid choice: 'bogus'"),
    ([], "the following arguments are required: COMMAND"),
    (["reconcile", "--batch-size", "0"], "0 is out of range"),
    (["reconcile", "--batch-size", "many"], "'many' is not a whole number"),
    (["switch-mode"], "one of the arguments --per-project --single is required"),
    (["switch-mode", "--per-project", "--single"], "not allowed with argument"),
    (["tunable"], "the following arguments are required: ACTION"),
    (["tunable", "set", "customer_orphan_grace_seconds"], "the following arguments are required: VALUE"),
    (["audit", "customers"], "invalid choice: 'customers'"),
    (["user", "create", "--email", "a@b.c", "--role", "king"], "invalid choice: 'king'"),
    (["user", "create", "--role", "operator"], "the following arguments are required: --email"),
    (["run", "--port", "99999"], "port 99999 is out of range"),
    (["status", "--jsn"], "unrecognized arguments: --jsn"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_usage_exits_2_with_one_line(args, message, tmp_path):
    result = run_cli(UNREACHABLE, *args, tmp_path=tmp_path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert message in line and "--help" in line
    assert result.stdout == ""


def test_password_problems_are_usage_errors_checked_before_connecting(tmp_path):
    # no password source: stdin is not a terminal and --password-stdin is missing
    result = run_cli(
        UNREACHABLE, "user", "create", "--email", "a@b.c", "--role", "operator", tmp_path=tmp_path
    )
    assert result.returncode == 2
    assert "no password: pipe it in with --password-stdin" in one_line_error(result)
    short = run_cli(
        UNREACHABLE,
        "user",
        "create",
        "--email",
        "a@b.c",
        "--role",
        "operator",
        "--password-stdin",
        stdin="short\n",
        tmp_path=tmp_path,
    )
    assert short.returncode == 2
    assert "the password must have 8 to 1024 characters" in one_line_error(short)


DATABASE_COMMANDS = [
    ["migrate"],
    ["migrate", "--to", "6.0", "--yes"],
    ["reconcile"],
    ["reconcile", "--dry-run"],
    ["tunable", "get"],
    ["tunable", "set", "customer_orphan_grace_seconds", "60"],
    ["audit", "orphans"],
    ["switch-mode", "--single"],
    ["user", "list"],
    ["run", "--port", "1"],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_missing_database_is_one_line_exit_1(command, tmp_path):
    result = run_cli(UNREACHABLE, *command, "--json", tmp_path=tmp_path)
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith("hierarchy: cannot connect to postgresql://postgres@127.0.0.1:1/hierarchy")
    assert line.endswith("is the server running? set DATABASE_URL")
    assert "s3cret" not in result.stderr
    assert result.stdout == ""


def test_user_create_missing_database(tmp_path):
    result = run_cli(
        UNREACHABLE,
        "user",
        "create",
        "--email",
        "a@b.c",
        "--role",
        "operator",
        "--password-stdin",
        stdin="long enough\n",
        tmp_path=tmp_path,
    )
    assert result.returncode == 1
    assert "is the server running? set DATABASE_URL" in one_line_error(result)


def test_unknown_release_is_one_line(tmp_path):
    result = run_cli(UNREACHABLE, "migrate", "--to", "7.0", tmp_path=tmp_path)
    assert result.returncode == 1
    assert one_line_error(result) == "hierarchy: unknown release '7.0'; known: 6.0, 6.1, 6.2, 6.3, 6.4"
