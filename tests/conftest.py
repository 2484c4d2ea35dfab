"""Test fixtures: a real PostgreSQL, never a mock.

The server is chosen once per session, in this order:

1. ``TEST_DATABASE_URL`` (a superuser URL) when set;
2. an ephemeral embedded cluster from the local binaries (``service.embedded``, the same code
   ``make run`` uses), with pg_cron preloaded for database ``hierarchy_cron`` where installed;
3. without local binaries, a Docker engine when one answers: a testcontainers
   ``PostgresContainer`` of the project's image (containers/postgres, pg_cron in
   ``hierarchy_cron``; tests/containers/engine.py builds it there if missing).

The migration tests of tests/containers always run in a container of that image, started by
their own session fixture (tests/containers/conftest.py), so the rest of the suite is never
slowed by the container engine.

The schema is migrated once into the template database ``hierarchy_template`` at release 6.1
(the parallel hierarchy most suites test); ``db_url`` gives each test its own clone (``CREATE
DATABASE ... TEMPLATE``), dropped afterwards. ``db_url_64`` does the same from a second template
at release 6.4 (customers required, associations final).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from service import migrations, roles
from service.embedded import EmbeddedCluster, PostgresNotInstalled, find_bindir
from tests.containers.engine import engine_answers, ensure_image, postgres_container

TEMPLATE_DB = "hierarchy_template"
TEMPLATE_DB_64 = "hierarchy_template_64"
TEMPLATE_RELEASE = "6.1"  # what db_url is at: the release with orphans and the background job
CRON_DB = "hierarchy_cron"


def with_dbname(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@dataclass
class PgServer:
    kind: str  # "TEST_DATABASE_URL", "docker" or "embedded"
    admin_url: str  # superuser, maintenance database
    description: str
    cron_db: str | None = None  # database where pg_cron is created, if usable
    cron_reason: str = ""  # why pg_cron is not usable
    _created: list[str] = field(default_factory=list)

    def url_for(self, dbname: str) -> str:
        return with_dbname(self.admin_url, dbname)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.admin() as conn:
            if template:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
            else:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


_chosen: PgServer | None = None


def _probe_cron(server: PgServer, preferred_db: str | None) -> None:
    """Find the database where pg_cron runs on an external server, or say why there is none."""
    with server.admin() as conn:
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron'").fetchone()
        preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
        cron_db = conn.execute("SELECT current_setting('cron.database_name', true)").fetchone()[0]
        if not available:
            server.cron_reason = "the pg_cron extension is not available (package postgresql-15-cron)"
            return
        if "pg_cron" not in preload:
            server.cron_reason = "pg_cron is not in shared_preload_libraries"
            return
        cron_db = cron_db or preferred_db or "postgres"
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (cron_db,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cron_db)))
    with psycopg.connect(server.url_for(cron_db), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    server.cron_db = cron_db


@pytest.fixture(scope="session")
def pg_server():
    global _chosen
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        server = PgServer("TEST_DATABASE_URL", url, f"TEST_DATABASE_URL ({migrations.redact(url)})")
        _probe_cron(server, None)
        _chosen = server
        yield server
        return
    try:
        find_bindir()
    except PostgresNotInstalled as exc:
        if not engine_answers():
            pytest.exit(
                f"no PostgreSQL for the tests: TEST_DATABASE_URL unset, no Docker engine, and {exc}", 1
            )
        # No local server binaries (a laptop with Docker only): the project's image, pg_cron in it
        with postgres_container(ensure_image(), CRON_DB) as container:
            server = PgServer(
                "docker", container.get_connection_url(), f"container of {container.image} (testcontainers)"
            )
            _probe_cron(server, CRON_DB)
            _chosen = server
            yield server
        return
    cluster = EmbeddedCluster(None, ephemeral=True, dbname=CRON_DB, install_signal_handlers=False)
    cluster.start()
    try:
        server = PgServer(
            "embedded",
            cluster.admin_url("postgres"),
            f"ephemeral embedded cluster ({cluster.bindir}, port {cluster.port})",
        )
        if cluster.has_pg_cron:
            server.cron_db = CRON_DB
        else:
            server.cron_reason = (
                f"pg_cron is not installed for {cluster.bindir} (apt-get install -y postgresql-15-cron)"
            )
        _chosen = server
        yield server
    finally:
        cluster.stop()


def pytest_terminal_summary(terminalreporter):
    if _chosen is not None:
        if _chosen.cron_db:
            cron = f"pg_cron in database {_chosen.cron_db}"
        else:
            cron = f"no pg_cron: {_chosen.cron_reason}"
        terminalreporter.write_line(f"PostgreSQL for tests: {_chosen.description}; {cron}")


APP_PASSWORD = "app-role-password"  # the runtime role's, on the tests' server


def runtime_url(url: str) -> str:
    """``url`` (a superuser's, on the tests' server) as the service's runtime role: what the
    service under test connects as (sql/privileges.sql; its password is set by _template)."""
    return roles.as_role(url, roles.from_env().app, APP_PASSWORD)


def runtime_login(url: str) -> str:
    """The runtime role of the server at ``url`` (a superuser's) made able to log in with the
    tests' password, created first when the migrations have not yet (a ``hierarchy run`` about
    to migrate and serve); its URL on the same database."""
    app = roles.from_env().app
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app,)).fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                create = "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT"
                conn.execute(sql.SQL(create).format(sql.Identifier(app)))
        conn.execute(
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(app), sql.Literal(APP_PASSWORD))
        )
    return runtime_url(url)


def _template(pg_server: PgServer, name: str, release: str):
    pg_server.drop_database(name)
    url = pg_server.create_database(name)
    migrations.migrate(url, release)
    runtime_login(url)  # roles are the cluster's: the runtime role may log in
    return url


def _clone(pg_server: PgServer, template: str):
    name = f"test_{uuid.uuid4().hex}"
    url = pg_server.create_database(name, template=template)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture(scope="session")
def template_url(pg_server: PgServer):
    """A database migrated to release 6.1, used only as a template."""
    yield _template(pg_server, TEMPLATE_DB, TEMPLATE_RELEASE)
    pg_server.drop_database(TEMPLATE_DB)


@pytest.fixture(scope="session")
def template_url_64(pg_server: PgServer):
    """A database migrated to release 6.4, used only as a template."""
    yield _template(pg_server, TEMPLATE_DB_64, "6.4")
    pg_server.drop_database(TEMPLATE_DB_64)


@pytest.fixture
def db_url(pg_server: PgServer, template_url: str):
    """A private clone of the template at release 6.1."""
    yield from _clone(pg_server, TEMPLATE_DB)


@pytest.fixture
def db_url_64(pg_server: PgServer, template_url_64: str):
    """A private clone of the template at release 6.4."""
    yield from _clone(pg_server, TEMPLATE_DB_64)


@pytest.fixture
def empty_db_url(pg_server: PgServer):
    """A fresh empty database (for migration tests)."""
    name = f"test_{uuid.uuid4().hex}"
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


def _empty_cron_db(url: str) -> None:
    """No schemas but cron, no jobs, no run history: the cron database as a test starts it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        conn.execute("SELECT cron.unschedule(jobid) FROM cron.job")
        conn.execute("DELETE FROM cron.job_run_details")
        # pg_cron's extension lives in schema public: empty public, do not drop it.
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT IN"
            " ('cron', 'public', 'pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'"
        ).fetchall()
        for (schema,) in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        relations = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            " AND c.relkind IN ('r', 'p') AND NOT EXISTS (SELECT 1 FROM pg_depend d"
            " WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
        ).fetchall()
        for (name,) in relations:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier("public", name)))


class RealCronTick:
    """A real pg_cron tick of the 6.1 job, awaited in a background thread from the session's
    start: pg_cron runs a job on the minute, so waiting for one costs up to 60 s, which the
    session spends running other tests instead. The cron database is migrated to 6.1 and left
    alone until the first cron job run (source 'cron') is recorded, or 75 s have passed;
    ``cron_db_url`` waits for this to end before it empties the database for a test."""

    TIMEOUT = 75.0

    def __init__(self, url: str) -> None:
        self.url = url
        self.outcome: tuple | None = None  # (source, error) of the cron run
        self.details: list = []  # cron.job_run_details when there was none
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._wait_for_tick, name="real-cron-tick", daemon=True)
        self._thread.start()

    def _wait_for_tick(self) -> None:
        try:
            _empty_cron_db(self.url)
            migrations.migrate(self.url, to="6.1")
            with psycopg.connect(self.url, autocommit=True) as conn:
                deadline = time.monotonic() + self.TIMEOUT
                while time.monotonic() < deadline:
                    self.outcome = conn.execute(
                        "SELECT source, error FROM config.job_runs WHERE source = 'cron' ORDER BY id LIMIT 1"
                    ).fetchone()
                    if self.outcome:
                        return
                    time.sleep(1)
                self.details = conn.execute(
                    "SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 3"
                ).fetchall()
        except BaseException as exc:  # reported by the test that asks for the tick
            self.failure = exc

    def wait(self) -> RealCronTick:
        self._thread.join()
        return self


_cron_tick: RealCronTick | None = None


@pytest.fixture(scope="session", autouse=True)
def _start_real_cron_tick(request):
    """Starts the wait for a real tick when a selected test needs one (marker ``cron``); a
    session without one does not even start the server for it."""
    global _cron_tick
    if any(item.get_closest_marker("cron") for item in request.session.items):
        pg_server = request.getfixturevalue("pg_server")
        if pg_server.cron_db:
            _cron_tick = RealCronTick(pg_server.url_for(pg_server.cron_db))
    yield
    if _cron_tick is not None:
        _cron_tick.wait()  # never stop the server under a migration in progress


@pytest.fixture
def real_cron_tick(pg_server: PgServer) -> RealCronTick:
    """The background tick's result (see RealCronTick), or a skip saying why there is none."""
    if not pg_server.cron_db:
        pytest.skip(f"pg_cron is not installed in this server: {pg_server.cron_reason}")
    assert _cron_tick is not None, "the session did not start the real cron tick"
    return _cron_tick.wait()


@pytest.fixture
def cron_db_url(pg_server: PgServer):
    """The database pg_cron runs in, emptied (no schemas but cron, no jobs), or a skip saying why.

    pg_cron serves one database per server (``cron.database_name``), so it cannot be cloned per
    test: tests using it run in it one at a time and it is reset before each (after the
    session's real tick, RealCronTick, has been seen).
    """
    if not pg_server.cron_db:
        pytest.skip(f"pg_cron is not installed in this server: {pg_server.cron_reason}")
    if _cron_tick is not None:
        _cron_tick.wait()
    url = pg_server.url_for(pg_server.cron_db)
    _empty_cron_db(url)
    yield url


@pytest.fixture
def pg_binaries():
    """The local PostgreSQL bin dir, or a skip saying why (tests of the embedded cluster)."""
    try:
        return find_bindir()
    except PostgresNotInstalled as exc:
        pytest.skip(str(exc))
