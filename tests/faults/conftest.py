"""Harness for the fault-injection and migration-stress tests (tests/faults).

These tests kill and stop PostgreSQL servers and migration processes, so they never touch the
shared session server of the other tests: each module starts its own ephemeral cluster from the
local binaries (``service.embedded.EmbeddedCluster(None, ephemeral=True)``), wrapped in
:class:`FaultCluster`, which adds what the tests need and ``EmbeddedCluster`` deliberately does
not offer: a crash (SIGKILL), a stop and a restart *of the same data directory on the same port*
(``EmbeddedCluster.stop()`` removes an ephemeral cluster, and its ``start()`` makes a new one).
Without the local binaries (``TEST_DATABASE_URL`` or Docker only) the tests skip, saying why.
A watchdog process per cluster stops and removes it if the test process dies without its
teardown; the service subprocess gets SIGTERM then too (PR_SET_PDEATHSIG).

The service runs as it does in production: uvicorn in a subprocess (:class:`ServiceProcess`),
so that a request that hangs is seen as a client timeout and the service is never restarted.

Every figure a test measures goes through :func:`record` (``record_property`` for the JUnit
report, stdout for ``-s``) and is printed again in the terminal summary ("fault-injection
measurements"), so a plain ``make test`` shows them.

Test databases are created in the cluster next to (not in) the database pg_cron serves, so no
pg_cron tick runs the job behind a test's back.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from argon2 import PasswordHasher
from psycopg import sql

from service import users
from service.embedded import EmbeddedCluster, PostgresNotInstalled, find_bindir
from tests.conftest import runtime_login

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
MODE = "turbine_api_feature_migrate_projects_to_orgs"
CRON_DB = "faults_cron"  # pg_cron's database in the dedicated clusters; tests use others

_MEASUREMENTS: list[tuple[str, str, str]] = []


def record(record_property, test: str, name: str, value) -> None:
    """A measured figure: JUnit property, a stdout line, and a line in the terminal summary."""
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    record_property(name, text)
    print(f"[faults] {test}: {name} = {text}")
    _MEASUREMENTS.append((test, name, text))


def pytest_terminal_summary(terminalreporter):
    if not _MEASUREMENTS:
        return
    terminalreporter.section("fault-injection measurements")
    for test, name, text in _MEASUREMENTS:
        terminalreporter.write_line(f"{test}: {name} = {text}")


# -- the dedicated cluster ----------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# Runs next to each dedicated cluster: when the test process dies without its teardown (killed
# by `timeout`, SIGKILL, a closed terminal), its end of the pipe closes, and this stops the server
# (SIGINT: fast shutdown) and removes the directory, so no large test cluster is left behind
# on a shared machine. After a normal teardown it finds the directory gone and just exits.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
base = sys.argv[1]
sys.stdin.buffer.read()  # returns at EOF: the test process closed the pipe or died
pidfile = os.path.join(base, "pgdata", "postmaster.pid")
try:
    pid = int(open(pidfile).read().split()[0])
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        os.kill(pid, 0)
        time.sleep(0.2)
    os.kill(pid, signal.SIGQUIT)
except (OSError, ValueError, IndexError):
    pass
if os.path.isdir(base):
    shutil.rmtree(base, ignore_errors=True)
"""


class FaultCluster:
    """An ephemeral cluster that tests may crash, stop and restart (same data dir, same port)."""

    def __init__(self) -> None:
        self.cluster = EmbeddedCluster(None, ephemeral=True, dbname=CRON_DB, install_signal_handlers=False)
        self._server_pids: set[int] = set()  # every postmaster and child seen: killed on close
        self._watchdog: subprocess.Popen | None = None

    def start(self) -> FaultCluster:
        self.cluster.start()
        self._server_pids.add(self.postmaster_pid())
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.cluster.base_dir)],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        return self

    @property
    def log_path(self) -> Path:
        return self.cluster.log_path

    def url(self, dbname: str) -> str:
        return self.cluster.admin_url(dbname)

    def create_database(self, name: str | None = None) -> str:
        name = name or f"fault_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn,
        ):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- the server process -----------------------------------------------------------------
    def postmaster_pid(self) -> int:
        return int((self.cluster.pgdata / "postmaster.pid").read_text().split()[0])

    def crash(self) -> tuple[int, list[int]]:
        """SIGKILL the postmaster (pid from postmaster.pid), then its surviving children.

        A postmaster killed alone leaves its backends running: a backend notices the death only
        when it next waits, so a busy backend would finish (and commit) its statement, and no new
        postmaster can start while they hold the old shared memory. Killing them too is what a
        crash of the server (OOM killer, power loss of the process tree) does; the test then
        sees exactly what PostgreSQL's crash recovery makes of an interrupted transaction.
        """
        pid = self.postmaster_pid()
        children = _children(pid)
        self._server_pids.update([pid, *children])
        os.kill(pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        wait_until(
            lambda: not any(_alive(p) for p in [pid, *children]), 15, "the killed server processes to exit"
        )
        # Until init reaps it, the dead postmaster is a zombie whose pid still "exists", and a new
        # postmaster refuses the lock file naming it. Give init a moment, then treat the file as
        # stale, as EmbeddedCluster does for a persistent cluster.
        deadline = time.monotonic() + 5
        while _exists(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _exists(pid):
            (self.cluster.pgdata / "postmaster.pid").unlink(missing_ok=True)
        return pid, children

    def stop_server(self) -> float:
        """``pg_ctl stop -m fast`` (sessions are terminated); returns its duration."""
        started = time.monotonic()
        result = self.cluster._run(
            [
                self.cluster.bindir / "pg_ctl",
                "stop",
                "-w",
                "-t",
                "30",
                "-m",
                "fast",
                "-D",
                self.cluster.pgdata,
            ],
            timeout=45,
        )
        assert result.returncode == 0, f"pg_ctl stop failed: {result.stderr}"
        return time.monotonic() - started

    def start_server(self) -> float:
        """``pg_ctl start -w`` on the same data directory and port (after a crash: crash recovery
        runs first); returns its duration, i.e. until the server accepts connections."""
        started = time.monotonic()
        result = self.cluster._run(
            [
                self.cluster.bindir / "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                self.cluster.pgdata,
                "-l",
                self.cluster.log_path,
            ],
            timeout=90,
        )
        assert result.returncode == 0, f"pg_ctl start failed: {result.stderr}\n{self.log_tail()}"
        self._server_pids.add(self.postmaster_pid())
        return time.monotonic() - started

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        """Stop the server if it runs, kill anything of it left over, remove the directory."""
        try:
            pidfile = self.cluster.pgdata / "postmaster.pid"
            if pidfile.exists() and _alive(self.postmaster_pid()):
                self._server_pids.update(_children(self.postmaster_pid()))
        except (OSError, ValueError, IndexError):
            pass
        try:
            self.cluster.stop()
        finally:
            for pid in self._server_pids:
                if _alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            if self._watchdog is not None:
                self._watchdog.stdin.close()  # the directory is gone: it exits at once
                try:
                    self._watchdog.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._watchdog.kill()
                    self._watchdog.wait(timeout=5)


@pytest.fixture(scope="module")
def fault_cluster():
    """A dedicated ephemeral cluster for one test module: crash it, stop it, kill its clients."""
    try:
        find_bindir()
    except PostgresNotInstalled as exc:
        pytest.skip(f"fault tests need the local PostgreSQL binaries to crash and restart a server: {exc}")
    cluster = FaultCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


# -- the service ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class ServiceProcess:
    """``uvicorn service.app:create_app --factory`` in a subprocess against ``url``."""

    def __init__(self, url: str, log_path: Path) -> None:
        self.url = url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> ServiceProcess:
        # the service runs as the runtime role (sql/privileges.sql); self.url stays the superuser's
        env = {**os.environ, "HIERARCHY_DATABASE_URL": runtime_login(self.url), "HIERARCHY_SCHEDULER": "off"}
        env.pop("DATABASE_URL", None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "service.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 60, interval: float = 0.1) -> None:
        """Until /health answers 200; fails with the log's tail if the process exits first."""

        def answers() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"the service exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                return httpx.get(self.base + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        what = f"the service on port {self.port} to answer /health with 200"
        wait_until(answers, timeout, what, interval=interval)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def login(self, db_url: str, role: str = "super_admin") -> str:
        """Create a user and log it in; its token."""
        email = make_user(db_url, role)
        r = httpx.post(
            self.base + "/config/v1/login", json={"username": email, "password": PASSWORD}, timeout=10
        )
        assert r.status_code == 200, r.text
        return r.json()["auth_token"]["access_token"]


def make_user(db_url: str, role: str = "super_admin") -> str:
    """A user of the first org with PASSWORD (cheap argon2: hashing is not under test); its email."""
    email = f"fault-{role}-{uuid.uuid4().hex[:8]}@example.com"
    saved = users.HASHER
    users.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            org = conn.execute("SELECT uuid FROM config.orgs ORDER BY created LIMIT 1").fetchone()[0]
            users.create_user(conn, email, PASSWORD, org, role)
    finally:
        users.HASHER = saved
    return email


@pytest.fixture
def service_log(tmp_path) -> Path:
    return tmp_path / "service.log"


# -- database helpers -----------------------------------------------------------------------------
def scalar(url: str, query: str, params=None):
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def execute(url: str, query: str, params=None) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(query, params)


def hierarchy(
    *args: str, url: str, tmp_path: Path, timeout: float = 120, **popen
) -> subprocess.CompletedProcess:
    """Run ``python -m service ARGS`` against ``url``; bounded by ``timeout``."""
    env = {**os.environ, "DATABASE_URL": url, "HIERARCHY_DATA_DIR": str(tmp_path / "unused-embedded")}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        **popen,
    )


ADMIN_EMAIL, ADMIN_PASSWORD = "service-admin@example.com", "correct horse battery"


class HierarchyRun(ServiceProcess):
    """``hierarchy run`` in a subprocess (migrate, ensure the admin, serve), fallback scheduler on:
    the production entry point, as an operator starts it. It migrates as the superuser (the
    owner's URL) and serves as the runtime role.

    Unlike :class:`ServiceProcess` (plain uvicorn, whose log, liveness and stop it shares), it is
    started without waiting, so several start at once (``wait_healthy`` then). ``to``: the release
    it migrates to (None: the newest); the cluster tests serve 6.1, where the job has work and a
    project is created without a customer.
    """

    def __init__(
        self, url: str, log_path: Path, reconcile_interval: float = 2.0, to: str | None = "6.1"
    ) -> None:
        super().__init__(url, log_path)
        self.reconcile_interval = reconcile_interval
        self.to = to

    def start(self) -> HierarchyRun:
        env = {
            **os.environ,
            "HIERARCHY_OWNER_URL": self.url,
            "DATABASE_URL": runtime_login(self.url),
            "HIERARCHY_ADMIN_EMAIL": ADMIN_EMAIL,
            "HIERARCHY_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "HIERARCHY_SCHEDULER": "on",
            "RECONCILE_INTERVAL": str(self.reconcile_interval),
            "HIERARCHY_DATA_DIR": str(self.log_path.parent / "unused-embedded"),
        }
        env.pop("HIERARCHY_DATABASE_URL", None)
        release = ["--to", self.to] if self.to else []
        listen = ["--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", "run", *release, *listen],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        return self

    def token(self) -> str:
        body = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        r = httpx.post(self.base + "/config/v1/login", json=body, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["auth_token"]["access_token"]
