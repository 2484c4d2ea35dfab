"""Helpers for the command-line tests: ``hierarchy`` run in process, a real database.

``cli(*args)`` calls ``service.cli.main`` with ``DATABASE_URL`` set to the test's database clone,
stdout and stderr captured in ``StringIO``s and stdin empty (not a terminal), and returns a
CompletedProcess as a subprocess would. ``run_cli_subprocess`` runs the installed console script
itself, for the few end-to-end tests (tests/test_cli_foundation.py, ``hierarchy run``).
``sql(url, statement, params)`` arranges and checks rows directly.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from service.cli import actor, main

UNREACHABLE = "postgresql://postgres:s3cret@127.0.0.1:1/hierarchy"
ACTOR = actor()  # what the CLI names itself in the audit log: cli:<OS user>


def _environment(url: str, tmp_path: Path, env: dict[str, str] | None) -> dict[str, str]:
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "HIERARCHY_DATA_DIR": str(tmp_path / "unused"),
        "HIERARCHY_SCHEDULER": "off",
        **(env or {}),
    }
    environment.pop("HIERARCHY_DEBUG", None)
    return environment


def run_cli(
    url: str, *args: str, stdin: str | None = None, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``hierarchy *args`` in this process: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = main(
        list(args), out=out, err=err, stdin=io.StringIO(stdin or ""), environ=_environment(url, tmp_path, env)
    )
    return subprocess.CompletedProcess(["hierarchy", *args], code, out.getvalue(), err.getvalue())


def run_cli_subprocess(
    url: str, *args: str, stdin: str | None = None, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``hierarchy *args`` as the installed console script (stdin closed unless given)."""
    environment = _environment(url, tmp_path, env)
    script = Path(sys.executable).with_name("hierarchy")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def sql(url: str, statement: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (asserts there is exactly one, no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def parsed(result: subprocess.CompletedProcess) -> Any:
    """stdout as JSON: the whole of stdout must be one JSON document."""
    return json.loads(result.stdout)


@pytest.fixture
def cli(db_url, tmp_path):
    """``cli(*args, stdin=None)``: the command line against this test's database clone."""

    def call(*args: str, stdin: str | None = None, url: str | None = None, env: dict | None = None):
        return run_cli(url or db_url, *args, stdin=stdin, tmp_path=tmp_path, env=env)

    return call


@pytest.fixture
def org(db_url) -> str:
    return str(sql(db_url, "SELECT uuid FROM config.orgs WHERE name = 'hydrolix'")[0]["uuid"])


def add_projects(url: str, org: str, *names: str) -> dict[str, str]:
    """Insert projects (the trigger associates them); returns name -> uuid."""
    found = sql(
        url,
        "INSERT INTO config.projects (org_id, name) SELECT %s, unnest(%s::text[]) RETURNING name, uuid",
        (org, list(names)),
    )
    return {r["name"]: str(r["uuid"]) for r in found}


def orphan(url: str, *names: str, minutes_ago: float = 0) -> None:
    """Orphan the named projects (as removing them from their customer does), optionally back-dated."""
    sql(url, "UPDATE config.projects SET customer_id = NULL WHERE name = ANY (%s)", (list(names),))
    if minutes_ago:
        sql(
            url,
            "UPDATE config.projects SET orphaned_at = now() - make_interval(mins => %s) "
            "WHERE name = ANY (%s)",
            (minutes_ago, list(names)),
        )


def orphan_names(url: str) -> list[str]:
    found = sql(url, "SELECT name FROM config.projects WHERE customer_id IS NULL ORDER BY name")
    return [r["name"] for r in found]
