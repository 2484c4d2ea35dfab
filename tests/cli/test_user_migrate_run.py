"""`hierarchy user create|list`, `hierarchy migrate` and `hierarchy run`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from service import migrations, users
from tests.cli.conftest import ACTOR, one_line_error, parsed, sql

PASSWORD = "correct horse battery"


def create(cli, *extra: str, email: str = "ops@example.com", stdin: str = PASSWORD + "\n"):
    return cli(
        "user", "create", "--email", email, "--role", "operator", "--password-stdin", *extra, stdin=stdin
    )


def test_user_create_and_list(cli, db_url):
    result = create(cli, "--json")
    assert result.returncode == 0, result.stderr
    made = parsed(result)
    assert (made["email"], made["role"], made["org_name"]) == ("ops@example.com", "operator", "hydrolix")
    row = sql(
        db_url,
        "SELECT u.role, o.name AS org, u.password_hash FROM config.users u "
        "JOIN config.orgs o ON o.uuid = u.org_id WHERE u.email = 'ops@example.com'",
    )[0]
    assert (row["role"], row["org"]) == ("operator", "hydrolix")
    assert users.verify_password(row["password_hash"], PASSWORD)
    assert sql(db_url, "SELECT actor FROM config.audit_log WHERE object_type = 'users'") == [{"actor": ACTOR}]

    listed = cli("user", "list", "--json")
    assert listed.returncode == 0
    assert [(u["email"], u["role"], u["org_name"]) for u in parsed(listed)] == [
        ("ops@example.com", "operator", "hydrolix")
    ]
    assert all("password_hash" not in u for u in parsed(listed))
    assert "ops@example.com" in cli("user", "list").stdout


def test_user_create_refusals_change_nothing(cli, db_url):
    assert create(cli).returncode == 0
    duplicate = create(cli, email="OPS@example.com")
    assert duplicate.returncode == 1
    assert one_line_error(duplicate) == "hierarchy: a user with email OPS@example.com already exists"
    bad_email = create(cli, email="not-an-email")
    assert bad_email.returncode == 1
    assert "'not-an-email' is not an email address" in one_line_error(bad_email)
    no_org = create(cli, "--org", "nope", email="x@example.com")
    assert no_org.returncode == 1
    assert one_line_error(no_org) == "hierarchy: no org named 'nope'"
    assert sql(db_url, "SELECT count(*) AS n FROM config.users") == [{"n": 1}]


def test_user_create_in_named_org(cli, db_url):
    sql(db_url, "INSERT INTO config.orgs (name) VALUES ('other')")
    result = create(cli, "--org", "other", "--json", email="o@example.com")
    assert result.returncode == 0, result.stderr
    assert parsed(result)["org_name"] == "other"


def test_migrate_json_down_and_up(cli, db_url):
    customers = migrations.count_customers(db_url)
    assert customers > 0
    refused = cli("migrate", "--to", "6.0", "--json")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.strip().splitlines()[-1] == (
        "hierarchy: refusing to downgrade without confirmation: not a terminal; pass --yes"
    )
    assert migrations.current_release(db_url) == "6.1"
    assert migrations.count_customers(db_url) == customers

    down = cli("migrate", "--to", "6.0", "--yes", "--json")
    assert down.returncode == 0, down.stderr
    assert parsed(down) == {
        "from": "6.1",
        "release": "6.0",
        "steps": [["rollback", "0002.customers"]],
        "customers_deleted": customers,
    }
    audit = sql(db_url, "SELECT actor FROM config.audit_log WHERE action = 'downgrade'")
    assert audit == [{"actor": ACTOR}]

    up = cli("migrate", "--to", "6.1", "--json")
    assert up.returncode == 0, up.stderr
    assert parsed(up)["steps"] == [["apply", "0002.customers"]]
    newest = cli("migrate", "--json")
    assert parsed(newest)["steps"] == [
        ["apply", "0003.customers-required"],
        ["apply", "0004.org-memberships"],
        ["apply", "0005.org-promotion"],
    ]
    assert parsed(cli("migrate", "--json"))["steps"] == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(url: str, port: int, tmp_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "HIERARCHY_DATA_DIR": str(tmp_path / "unused"),
        "HIERARCHY_SCHEDULER": "off",
    }
    for name in ("HIERARCHY_ADMIN_EMAIL", "HIERARCHY_ADMIN_PASSWORD"):
        env.pop(name, None)
    script = Path(sys.executable).with_name("hierarchy")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service"]
    return subprocess.Popen(
        [*command, "run", "--port", str(port), "--json"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def _serve_once(url: str, tmp_path: Path) -> dict:
    port = _free_port()
    process = _start(url, port, tmp_path)
    try:
        info = json.loads(process.stdout.readline())
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer /health"
                time.sleep(0.2)
        return info
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_run_ensures_the_admin_and_prints_the_password_once(empty_db_url, tmp_path):
    first = _serve_once(empty_db_url, tmp_path)
    assert first["release"] == "6.4" and first["migration_steps"] == 5
    assert first["admin_email"] == "admin@localhost" and len(first["admin_password"]) >= 16
    row = sql(
        empty_db_url,
        "SELECT m.role, m.is_primary, u.password_hash FROM config.users u "
        "JOIN config.org_memberships m ON m.user_id = u.uuid WHERE u.email = 'admin@localhost'",
    )
    assert len(row) == 1, "a super admin has exactly one membership"
    row = row[0]
    assert (row["role"], row["is_primary"]) == ("super_admin", True)
    assert users.verify_password(row["password_hash"], first["admin_password"])

    second = _serve_once(empty_db_url, tmp_path)
    assert (second["migration_steps"], second["admin_email"], second["admin_password"]) == (0, None, None)
    assert sql(empty_db_url, "SELECT count(*) AS n FROM config.users") == [{"n": 1}]
