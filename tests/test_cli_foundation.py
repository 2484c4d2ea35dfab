"""The `hierarchy` command line and the minimal app, against a real database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import TestClient

from service import migrations
from service.app import create_app

UNREACHABLE = "postgresql://postgres:s3cret@127.0.0.1:1/hierarchy"


def hierarchy(*args: str, url: str, tmp_path: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "HIERARCHY_DATA_DIR": str(tmp_path / "unused")}
    script = Path(sys.executable).with_name("hierarchy")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def test_status_json(db_url, tmp_path):
    result = hierarchy("status", "--json", url=db_url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["database"] == "ok"
    assert report["release"] == "6.1" and report["latest"] == migrations.LATEST
    assert report["error"] is None


def test_status_json_unreachable(tmp_path):
    result = hierarchy("status", "--json", url=UNREACHABLE, tmp_path=tmp_path)
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["database"] == "unreachable" and report["release"] is None
    assert "is the server running?" in report["error"] and "s3cret" not in result.stdout


def test_status_human(db_url, tmp_path):
    result = hierarchy("status", url=db_url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "release" in result.stdout and "6.1" in result.stdout


def test_migrate_up_then_down_with_confirmation(empty_db_url, tmp_path):
    url = empty_db_url
    result = hierarchy("migrate", url=url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "database at release 6.4"
    assert "Traceback" not in result.stderr

    again = hierarchy("migrate", url=url, tmp_path=tmp_path)
    assert again.returncode == 0 and "already at release 6.4" in again.stdout

    customers = migrations.count_customers(url)
    refused = hierarchy("migrate", "--to", "6.0", url=url, tmp_path=tmp_path)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert lines[0] == f"downgrading 6.4 -> 6.0 deletes all {customers} Customer(s); projects are kept"
    assert lines[1] == "hierarchy: refusing to downgrade without confirmation: not a terminal; pass --yes"
    assert migrations.current_release(url) == "6.4"

    done = hierarchy("migrate", "--to", "6.0", "--yes", url=url, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "database at release 6.0"
    assert migrations.current_release(url) == "6.0"


def test_bad_usage_and_bad_urls(tmp_path):
    usage = hierarchy("migrate", "--bogus", url=UNREACHABLE, tmp_path=tmp_path)
    assert usage.returncode == 2
    unreachable = hierarchy("migrate", url=UNREACHABLE, tmp_path=tmp_path)
    assert unreachable.returncode == 1
    assert len(unreachable.stderr.strip().splitlines()) == 1
    assert "is the server running? set DATABASE_URL" in unreachable.stderr
    bad_scheme = hierarchy("status", "--json", url="mysql://x@y/z", tmp_path=tmp_path)
    assert bad_scheme.returncode == 3
    assert "unsupported database URL scheme" in json.loads(bad_scheme.stdout)["error"]
    bad_port = hierarchy("run", "--port", "99999", url=UNREACHABLE, tmp_path=tmp_path)
    assert bad_port.returncode == 2


def test_health(db_url, monkeypatch):
    monkeypatch.setenv("HIERARCHY_DATABASE_URL", db_url)
    with TestClient(app=create_app()) as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["database"], body["release"]) == ("ok", "6.1")


def test_health_unreachable(monkeypatch):
    monkeypatch.setenv("HIERARCHY_DATABASE_URL", UNREACHABLE)
    with TestClient(app=create_app()) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_targets_exist():
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    for target in ("run:", "test:", "bench:", "schema:", "$(STAMP):"):
        assert target in makefile
