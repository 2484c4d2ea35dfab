"""A real Patroni cluster on loopback for the failover tests (tests/cluster).

:class:`PatroniCluster` starts, in a private temporary directory, one etcd (v3 API) and two
Patroni-managed PostgreSQL 15 nodes on 127.0.0.1, set up the way docs/operators.md ("Running on
a cluster") tells operators to:

- ``synchronous_mode: true``: a commit is acknowledged only once the synchronous standby has it,
  so a promotion loses no acknowledged write;
- ``primary_start_timeout: 0``: a crashed primary fails over at once instead of being restarted
  in place (safe with synchronous mode), so the test sees a real promotion;
- ``ttl`` 10 s, ``loop_wait`` 1 s, ``retry_timeout`` 4 s: short, to keep the test short;
- pg_cron preloaded on every node with the same ``cron.database_name`` and
  ``cron.use_background_workers = on``: a job runs in a worker of whichever node is primary,
  not through a libpq connection to the host and port recorded when it was scheduled (the nodes
  here listen on different ports, so that connection would fail after a failover);
- ``wal_log_hints`` and ``use_pg_rewind`` so the crashed node can come back as a standby.

Authentication is ``trust`` on loopback: a throwaway cluster living for one test in a private
directory. As root, Patroni (and so PostgreSQL) runs as the ``postgres`` OS user, which owns the
node directories. The tests install nothing: without ``patroni`` or ``etcd`` on PATH (Debian
packages ``patroni`` and ``etcd-server``, which ``.ci/run`` installs) they skip, saying so.
Every process gets SIGTERM when the test process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from service.embedded import PostgresNotInstalled, find_bindir, pg_cron_available
from tests.faults.conftest import (
    HierarchyRun,
    _alive,
    _children,
    _die_with_parent,
    free_port,
    wait_until,
)

__all__ = ["HierarchyRun", "PatroniCluster", "record", "wait_until"]

DBNAME = "hierarchy"  # the application's database, and pg_cron's
SCOPE = "hierarchy-test"
TTL, LOOP_WAIT, RETRY_TIMEOUT = 10, 1, 4


_MEASUREMENTS: list[str] = []


def record(record_property, name: str, value) -> None:
    """A measured figure: JUnit property, stdout (``-s``) and the terminal summary."""
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    record_property(name, text)
    print(f"[cluster] {name} = {text}")
    _MEASUREMENTS.append(f"{name} = {text}")


def pytest_terminal_summary(terminalreporter):
    if _MEASUREMENTS:
        terminalreporter.section("cluster failover measurements")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)


def missing_tools() -> str | None:
    """Why a Patroni cluster cannot run here, or None."""
    absent = [tool for tool in ("patroni", "etcd") if shutil.which(tool) is None]
    if absent:
        return (
            f"{' and '.join(absent)} not on PATH: install the Debian packages `patroni etcd-server` "
            "(.ci/run does) to run the failover test"
        )
    try:
        bindir = find_bindir()
    except PostgresNotInstalled as exc:
        return str(exc)
    if not pg_cron_available(bindir):
        return "pg_cron is not installed (apt-get install -y postgresql-15-cron)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs the 'postgres' OS user (package postgresql-15)"
    return None


class Node:
    def __init__(self, name: str, base: Path) -> None:
        self.name = name
        self.dir = base / name
        self.port = free_port()
        self.api_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "patroni.log"

    def url(self, dbname: str = DBNAME) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def api(self, path: str) -> int | None:
        """Status of Patroni's REST API ``GET path`` (``/primary``, ``/sync``...), None when down."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.api_port}{path}", timeout=1).status_code
        except httpx.HTTPError:
            return None

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def config(self, bindir: Path, etcd_port: int) -> str:
        # YAML is a superset of JSON: write the config as JSON, no YAML library needed.
        import json

        return json.dumps(
            {
                "scope": SCOPE,
                "name": self.name,
                "restapi": {
                    "listen": f"127.0.0.1:{self.api_port}",
                    "connect_address": f"127.0.0.1:{self.api_port}",
                },
                "etcd3": {"hosts": [f"127.0.0.1:{etcd_port}"]},
                "bootstrap": {
                    "dcs": {
                        "ttl": TTL,
                        "loop_wait": LOOP_WAIT,
                        "retry_timeout": RETRY_TIMEOUT,
                        "primary_start_timeout": 0,
                        "synchronous_mode": True,
                        "postgresql": {
                            "use_pg_rewind": True,
                            "parameters": {
                                "shared_preload_libraries": "pg_cron",
                                "cron.database_name": DBNAME,
                                "cron.use_background_workers": "on",
                                "max_worker_processes": 16,
                                "wal_log_hints": "on",
                                "max_connections": 100,
                                # Only processes are killed here, never the machine: what a
                                # process wrote is in the OS cache, fsync or not. Off saves
                                # seconds of the test's time budget on a slow disk.
                                "fsync": "off",
                            },
                        },
                    },
                    "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
                },
                "postgresql": {
                    "listen": f"127.0.0.1:{self.port}",
                    "connect_address": f"127.0.0.1:{self.port}",
                    "data_dir": str(self.data_dir),
                    "bin_dir": str(bindir),
                    "pgpass": str(self.dir / "pgpass"),
                    "authentication": {
                        "superuser": {"username": "postgres", "password": "unused-trust"},
                        "replication": {"username": "replicator", "password": "unused-trust"},
                        "rewind": {"username": "postgres", "password": "unused-trust"},
                    },
                    "parameters": {"unix_socket_directories": str(self.dir)},
                    # pg_basebackup's default spread checkpoint would keep the standby waiting
                    "basebackup": [{"checkpoint": "fast"}, "no-sync"],
                    "pg_hba": [
                        "local all all trust",
                        "host all all 127.0.0.1/32 trust",
                        "host replication all 127.0.0.1/32 trust",
                    ],
                },
            }
        )


class PatroniCluster:
    """One etcd and two Patroni nodes on loopback; see the module docstring."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="hierarchy-patroni-"))
        os.chmod(self.base, 0o755)  # the postgres user must traverse it
        self.bindir = find_bindir()
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.etcd: subprocess.Popen | None = None
        self.nodes = [Node("node1", self.base), Node("node2", self.base)]
        self._server_pids: set[int] = set()

    # -- processes ----------------------------------------------------------------------------
    def _popen(self, args: list[str], log_path: Path, *, as_server: bool) -> subprocess.Popen:
        kwargs: dict = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if as_server and os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            env.update(HOME=user.pw_dir or "/", USER="postgres", LOGNAME="postgres")
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                args,
                cwd=self.base,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                **kwargs,
            )

    def _give_to_server(self, path: Path) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(path, user.pw_uid, user.pw_gid)

    def start_etcd(self) -> None:
        client, peer = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{self.etcd_peer_port}"
        self.etcd = self._popen(
            [
                "etcd",
                "--name=etcd1",
                f"--data-dir={self.base / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=etcd1={peer}",
                "--initial-cluster-state=new",
            ],
            self.base / "etcd.log",
            as_server=False,
        )

        def healthy() -> bool:
            try:
                return httpx.get(f"{client}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 20, "etcd to answer /health", interval=0.1)

    def start_node(self, node: Node) -> None:
        node.dir.mkdir(mode=0o700)
        self._give_to_server(node.dir)
        config = node.dir / "patroni.yml"
        config.write_text(node.config(self.bindir, self.etcd_port))
        self._give_to_server(config)
        node.proc = self._popen(["patroni", str(config)], node.log_path, as_server=True)

    def start(self) -> PatroniCluster:
        """etcd, then both nodes at once: one bootstraps, the other clones it and follows."""
        self.start_etcd()
        for node in self.nodes:
            self.start_node(node)
        leader = wait_until(self.leader, 60, "a node to bootstrap and lead", interval=0.2)
        # pg_cron's database and extension, created once on the primary as an operator does
        # (the standby gets them by replication)
        with psycopg.connect(leader.url("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DBNAME)))
        with psycopg.connect(leader.url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE EXTENSION pg_cron")
        (standby,) = [n for n in self.nodes if n is not leader]
        wait_until(lambda: standby.api("/sync") == 200, 60, "the synchronous standby", interval=0.2)
        for node in self.nodes:
            self._track(node)
        return self

    def _track(self, node: Node) -> None:
        pid = node.postmaster_pid()
        if pid:
            self._server_pids.update([pid, *_children(pid)])

    # -- what the test uses ---------------------------------------------------------------------
    def multi_host_url(self, dbname: str = DBNAME) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return f"postgresql://postgres@{hosts}/{dbname}?target_session_attrs=read-write"

    def leader(self) -> Node | None:
        for node in self.nodes:
            if node.api("/primary") == 200:
                return node
        return None

    def new_leader(self, old: Node, timeout: float = 45.0) -> Node:
        """Wait for a node other than ``old`` to lead (the standby's promotion after a kill) and
        return it. The default covers the TTL (10 s), loop_wait and slack on a busy machine."""
        return wait_until(
            lambda: (lambda n: n if n is not None and n is not old else None)(self.leader()),
            timeout,
            "the standby to be promoted",
            interval=0.05,
        )

    def kill_postgres(self, node: Node) -> list[int]:
        """SIGKILL the node's postmaster and every child of it (its Patroni stays up)."""
        pid = node.postmaster_pid()
        assert pid, f"{node.name} has no postmaster"
        victims = [pid, *_children(pid)]
        self._server_pids.update(victims)
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        return victims

    def kill_node(self, node: Node) -> list[int]:
        """SIGKILL the node's Patroni, then its postmaster and every child of it: the whole node
        dies at once, as on a crash of its machine (nothing hands the leader key over; the
        standby takes over when the key expires, TTL seconds later). Returns the killed pids."""
        assert node.proc is not None and node.proc.poll() is None, f"{node.name}'s Patroni is not running"
        node.proc.kill()
        node.proc.wait(timeout=10)
        return [node.proc.pid, *self.kill_postgres(node)]

    def log_tails(self, lines: int = 25) -> str:
        out = []
        for node in self.nodes:
            with contextlib.suppress(OSError):
                text = node.log_path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {node.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def close(self) -> None:
        for node in self.nodes:
            self._track(node)
            if node.proc and node.proc.poll() is None:
                node.proc.terminate()  # Patroni stops its PostgreSQL, then exits
        for node in self.nodes:
            if node.proc:
                try:
                    node.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(timeout=5)
        for pid in self._server_pids:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.etcd and self.etcd.poll() is None:
            self.etcd.terminate()
            try:
                self.etcd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.etcd.kill()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def patroni_cluster():
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    cluster = PatroniCluster()
    try:
        try:
            cluster.start()
        except BaseException:
            print(cluster.log_tails(60))  # shown with the failure; the directory goes below
            raise
        yield cluster
    finally:
        cluster.close()


# -- the service ----------------------------------------------------------------------------------
