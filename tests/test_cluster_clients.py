"""What the clients of a replicated cluster need, against the session's real PostgreSQL.

Multi-host URLs (URI and key=value) in migrations, the CLI and the service's pool; a pooled
connection that turns out read-only (a standby, a demoted primary) answering 503 with
Retry-After and being replaced; the failover error classes from real server errors; server-side
prepares off for PgBouncer; the fallback scheduler standing down only for a pg_cron run that
succeeded. The real failover (Patroni, kill -9 of the primary) is tests/cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import psycopg
import pytest
from argon2 import PasswordHasher
from litestar.testing import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from yoyo.connections import parse_uri

from service import db, db_errors, jobs, migrations, scheduler, users
from service.app import create_app
from service.conninfo import for_primary
from service.errors import ServiceUnavailable
from service.settings import Settings, SettingsError
from tests.cli.conftest import run_cli
from tests.conftest import runtime_url

PASSWORD = "correct horse battery"
DEAD_PORT = 1  # nothing listens there: libpq is refused at once and tries the next host


def multi_host(url: str, form: str = "uri") -> str:
    """``url`` as a two-host string whose first host is down (the real server is second)."""
    params = conninfo_to_dict(url)
    host, port = params.pop("host"), params.pop("port")
    if form == "uri":
        auth = params.pop("user") + (f":{params.pop('password')}" if "password" in params else "")
        return f"postgresql://{auth}@{host}:{DEAD_PORT},{host}:{port}/{params.pop('dbname')}"
    return make_conninfo(**params, host=f"{host},{host}", port=f"{DEAD_PORT},{port}")


def test_several_hosts_get_read_write_unless_they_say_otherwise():
    uri = "postgresql://u:p@h1:5432,h2:5433/db"
    assert conninfo_to_dict(for_primary(uri))["target_session_attrs"] == "read-write"
    assert conninfo_to_dict(for_primary("host=h1,h2 dbname=db"))["target_session_attrs"] == "read-write"
    assert for_primary(uri + "?target_session_attrs=any") == uri + "?target_session_attrs=any"
    assert for_primary("postgresql://u@h/db") == "postgresql://u@h/db"  # one host: as given


def test_yoyo_gets_a_url_it_can_parse_for_several_hosts():
    for url in (
        "postgresql://u:p@h1:5432,h2:5433/db",
        "host=h1,h2 port=5432,5433 dbname=db user=u password=p",
    ):
        parsed = parse_uri(migrations.yoyo_url(url))  # yoyo's own parser: no ValueError on the port
        assert parsed.hostname is None and parsed.port is None and parsed.database == "db"
        assert parsed.args["host"] == "h1,h2" and parsed.args["port"] == "5432,5433"
        assert parsed.args["target_session_attrs"] == "read-write"


def test_migrate_and_cli_with_multi_host_urls(empty_db_url, tmp_path):
    uri, keyvalue = multi_host(empty_db_url, "uri"), multi_host(empty_db_url, "keyvalue")
    result = run_cli(uri, "migrate", "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["release"] == migrations.LATEST
    assert migrations.current_release(keyvalue) == migrations.LATEST
    result = run_cli(keyvalue, "status", "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["release"] == migrations.LATEST
    assert migrations.migrate(keyvalue) == []  # nothing left to do, through yoyo with both hosts


def _login(client: TestClient, url: str) -> dict[str, str]:
    email = f"cluster-{uuid.uuid4().hex[:8]}@example.com"
    saved, users.HASHER = users.HASHER, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            org = conn.execute("SELECT uuid FROM config.orgs ORDER BY created LIMIT 1").fetchone()[0]
            users.create_user(conn, email, PASSWORD, org, "super_admin")
    finally:
        users.HASHER = saved
    r = client.post("/config/v1/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['auth_token']['access_token']}"}


def _projects_path(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        org = conn.execute("SELECT uuid FROM config.orgs ORDER BY created LIMIT 1").fetchone()[0]
    return f"/config/v1/orgs/{org}/projects/"


def _stored(url: str, name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM config.projects WHERE name = %s", (name,)).fetchone()[0]


def test_the_service_pool_takes_a_multi_host_url(db_url):
    with TestClient(create_app(multi_host(runtime_url(db_url), "uri"), run_scheduler=False)) as client:
        headers = _login(client, db_url)
        r = client.post(_projects_path(db_url), json={"name": "via-two-hosts"}, headers=headers)
        assert r.status_code == 201, r.text
    assert _stored(db_url, "via-two-hosts") == 1


async def _make_pooled_connections_read_only(database: db.Database) -> int:
    """Every pooled connection as a demoted primary's would be: read-only for the session."""
    size = database.pool.get_stats()["pool_size"]
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(size):
            conn = await stack.enter_async_context(database.pool.connection())
            await conn.execute("SET SESSION default_transaction_read_only = on")
    return size


def test_a_read_only_connection_is_503_with_retry_after_then_replaced(db_url):
    app = create_app(runtime_url(db_url), run_scheduler=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = _login(client, db_url)
        path = _projects_path(db_url)
        assert client.blocking_portal.call(_make_pooled_connections_read_only, app.state.database) >= 1
        r = client.post(path, json={"name": "on-a-standby"}, headers=headers)
        assert r.status_code == 503, r.text
        assert r.json() == {"detail": db_errors.STANDBY} and r.headers["Retry-After"] == "1"
        assert _stored(db_url, "on-a-standby") == 0
        # every read-only connection was replaced: the very next request writes
        r = client.post(path, json={"name": "on-a-standby"}, headers=headers)
        assert r.status_code == 201, r.text
        assert _stored(db_url, "on-a-standby") == 1


def test_failover_errors_from_a_real_server(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = on")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as read_only:
            conn.execute("CREATE TABLE standby_probe (x int)")
        with pytest.raises(psycopg.errors.UniqueViolation) as duplicate:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute("INSERT INTO config.orgs (name) SELECT name FROM config.orgs LIMIT 1")
    victim = psycopg.connect(db_url, autocommit=True)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError) as shutdown:
        victim.execute("SELECT 1")
    victim.close()
    assert shutdown.value.sqlstate in ("57P01", None)  # admin shutdown, or the lost connection
    for exc in (read_only.value, shutdown.value):
        assert db_errors.failover_error(exc)
        mapped = db_errors.map_error(exc)
        assert isinstance(mapped, ServiceUnavailable) and mapped.headers == {"Retry-After": "1"}
    assert db_errors.map_error(read_only.value).detail == db_errors.STANDBY
    assert not db_errors.failover_error(duplicate.value)


def _prepared_after_repeats(url: str) -> int:
    async def main() -> int:
        database = db.Database(url)
        await database.open()
        try:
            async with database.connection() as conn:
                for _ in range(8):  # psycopg prepares a statement from its 6th execution
                    await conn.execute("SELECT count(*) FROM config.orgs WHERE name <> %s", ("x",))
                cur = await conn.execute("SELECT count(*) AS n FROM pg_prepared_statements")
                return (await cur.fetchone())["n"]
        finally:
            await database.close()

    return asyncio.run(main())


def test_prepared_statements_can_be_turned_off_for_pgbouncer(db_url, monkeypatch):
    monkeypatch.delenv("HIERARCHY_PREPARED_STATEMENTS", raising=False)
    assert _prepared_after_repeats(db_url) >= 1
    monkeypatch.setenv("HIERARCHY_PREPARED_STATEMENTS", "off")
    assert _prepared_after_repeats(db_url) == 0
    assert Settings.from_env({"HIERARCHY_PREPARED_STATEMENTS": "off"}).prepared_statements is False
    with pytest.raises(SettingsError, match="HIERARCHY_PREPARED_STATEMENTS"):
        Settings.from_env({"HIERARCHY_PREPARED_STATEMENTS": "sometimes"})


def test_fallback_scheduler_stands_down_only_for_a_recent_successful_cron_run(cron_db_url):
    migrations.migrate(cron_db_url, to="6.1")  # schedules reconcile-customers

    def cron_run(status: str, seconds_ago: int) -> None:
        with psycopg.connect(cron_db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM cron.job_run_details")
            conn.execute(
                "INSERT INTO cron.job_run_details (jobid, database, username, command, status,"
                " start_time, end_time) SELECT jobid, database, username, command, %s,"
                " now() - make_interval(secs => %s), now() - make_interval(secs => %s)"
                " FROM cron.job WHERE jobname = 'reconcile-customers'",
                (status, seconds_ago, seconds_ago),
            )

    async def tick():
        database = db.Database(cron_db_url)
        await database.open()
        try:
            return await scheduler.tick(database)
        finally:
            await database.close()

    def service_runs() -> int:
        with psycopg.connect(cron_db_url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM config.job_runs WHERE source = 'service'").fetchone()[0]

    before = service_runs()
    cron_run("failed", 5)  # scheduled, but every run fails (e.g. it names another node's port)
    assert asyncio.run(tick()) is not None and service_runs() == before + 1
    cron_run("succeeded", 5)
    assert asyncio.run(tick()) is None and service_runs() == before + 1
    cron_run("succeeded", int(jobs.CRON_RECENT_SECONDS) + 30)  # pg_cron stopped running it
    assert asyncio.run(tick()) is not None and service_runs() == before + 2
