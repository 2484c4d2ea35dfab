"""The console script itself, in a subprocess: what in-process tests cannot see (the entry point,
real exit statuses, a closed stdin). Most CLI tests call ``service.cli.main`` in process."""

from __future__ import annotations

from tests.cli.conftest import UNREACHABLE, one_line_error, parsed, run_cli_subprocess


def test_tunable_get_json_and_bad_usage(db_url, tmp_path):
    result = run_cli_subprocess(
        db_url, "tunable", "get", "customer_orphan_grace_seconds", "--json", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert parsed(result)["value"] == 120
    bad = run_cli_subprocess(db_url, "reconcile", "--batch-size", "0", tmp_path=tmp_path)
    assert bad.returncode == 2 and "0 is out of range" in one_line_error(bad)


def test_missing_database_is_one_line_exit_1(tmp_path):
    result = run_cli_subprocess(UNREACHABLE, "user", "list", "--json", tmp_path=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert one_line_error(result).endswith("is the server running? set DATABASE_URL")
