"""The API's pool behind PgBouncer in transaction pooling (Debian's 1.18).

A statement psycopg prepared on one server connection is unknown on the next one PgBouncer
hands out. The test makes that happen for sure: the pool's connection runs one statement until
psycopg has prepared it, a second client then holds that server connection in a transaction,
and the statement runs again on another server connection. With psycopg's default that fails
(SQLSTATE 26000); with ``HIERARCHY_PREPARED_STATEMENTS=off`` it works. Then the API itself runs
through PgBouncer and its audit rows name the right user (the per-transaction actor settings).
Without ``pgbouncer`` installed the tests skip, saying why.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from service import db, roles
from tests.cluster.conftest import wait_until
from tests.faults.conftest import _die_with_parent, free_port

STATEMENT = "SELECT count(*) FROM config.orgs WHERE name <> %s"


@pytest.fixture
def pgbouncer_url(db_url):
    """``db_url`` through a PgBouncer in transaction pooling with two server connections."""
    pgbouncer = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if pgbouncer is None:
        pytest.skip("pgbouncer is not installed (Debian package pgbouncer; .ci/run installs it)")
    server = conninfo_to_dict(db_url)
    base = Path(tempfile.mkdtemp(prefix="hierarchy-pgbouncer-"))
    port = free_port()
    # the superuser (arranging) and the service's runtime role (sql/privileges.sql)
    (base / "users.txt").write_text(f'"{server["user"]}" ""\n"{roles.from_env().app}" ""\n')
    (base / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server['host']} port={server['port']}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {base / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\n"
        f"logfile = {base / 'pgbouncer.log'}\n"
    )
    kwargs: dict = {}
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        user = pwd.getpwnam("postgres")
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        os.chmod(base, 0o755)
        for path in (base, *base.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
    proc = subprocess.Popen(
        [pgbouncer, str(base / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        **kwargs,
    )
    url = f"postgresql://{server['user']}@127.0.0.1:{port}/{server['dbname']}"

    def answers() -> bool:
        try:
            psycopg.connect(url, connect_timeout=1).close()
            return True
        except psycopg.OperationalError:
            return False

    try:
        wait_until(answers, 15, "pgbouncer to accept connections", interval=0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def _again_on_another_server_connection(url: str) -> None:
    async def main() -> None:
        database = db.Database(url)
        await database.pool.open(wait=True)  # no sweeper: nothing else may take a server connection
        try:
            async with database.pool.connection() as conn:
                for _ in range(8):  # psycopg prepares from the 6th execution (if allowed)
                    await conn.execute(STATEMENT, ("x",))
                with psycopg.connect(url, autocommit=True) as other, other.transaction():
                    other.execute("SELECT 1")  # holds the server connection conn just used
                    await conn.execute(STATEMENT, ("x",))
        finally:
            await database.pool.close()

    asyncio.run(main())


def test_prepared_statements_off_works_in_transaction_pooling(pgbouncer_url, monkeypatch):
    monkeypatch.delenv("HIERARCHY_PREPARED_STATEMENTS", raising=False)
    with pytest.raises(psycopg.errors.InvalidSqlStatementName):  # the failure the setting avoids
        _again_on_another_server_connection(pgbouncer_url)
    monkeypatch.setenv("HIERARCHY_PREPARED_STATEMENTS", "off")
    _again_on_another_server_connection(pgbouncer_url)


def test_the_api_through_pgbouncer_audits_the_right_actor(pgbouncer_url, db_url, monkeypatch):
    """The per-transaction actor settings and the transaction itself survive transaction pooling."""
    from litestar.testing import TestClient

    from service.app import create_app
    from tests.test_cluster_clients import _login, _projects_path

    monkeypatch.setenv("HIERARCHY_PREPARED_STATEMENTS", "off")
    # as the runtime role: row-level security applies, so every request (reads too) runs in one
    # transaction, whose signed-in user cannot be separated from its statements by the pooler
    runtime = roles.as_role(pgbouncer_url, roles.from_env().app, None)
    with TestClient(create_app(runtime, run_scheduler=False)) as client:
        headers = _login(client, db_url)
        for i in range(10):  # more than the prepare threshold, over both server connections
            r = client.post(_projects_path(db_url), json={"name": f"pooled-{i}"}, headers=headers)
            assert r.status_code == 201, r.text
        for _ in range(10):  # reads: the list sees the user's projects every time
            r = client.get(_projects_path(db_url), headers=headers)
            assert r.status_code == 200
            assert len([p for p in r.json() if p["name"].startswith("pooled-")]) == 10
    with psycopg.connect(db_url, autocommit=True) as conn:
        actors = conn.execute(
            "SELECT DISTINCT actor FROM config.audit_log WHERE object_type = 'projects' AND action = 'insert'"
            " AND after->>'name' LIKE 'pooled-%'"
        ).fetchall()
    assert len(actors) == 1 and actors[0][0].startswith("cluster-"), actors  # the user _login made
