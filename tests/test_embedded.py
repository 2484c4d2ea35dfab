"""The embedded cluster (service.embedded): the code path of `make run` and of the test server."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from service.embedded import INSTALL_COMMAND, EmbeddedCluster, EmbeddedError, PostgresNotInstalled


@pytest.fixture
def cluster_dir():
    """A directory the server user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="hierarchy-test-"))
    os.chmod(path, 0o711)
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    """True while the process runs (a zombie nobody reaped counts as gone)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state not in ("Z", "X")


def test_ephemeral_cluster_starts_and_stops_cleanly(pg_binaries):
    cluster = EmbeddedCluster(None, ephemeral=True, dbname="emb_app", install_signal_handlers=False)
    with cluster:
        assert cluster.url.startswith("postgresql://postgres@127.0.0.1:")
        assert cluster.url.endswith("/emb_app")
        with psycopg.connect(cluster.url) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "emb_app"
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('fsync', 'synchronous_commit', 'full_page_writes', 'listen_addresses')"
                ).fetchall()
            )
        assert settings == {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "listen_addresses": "127.0.0.1",
        }
        socket_mode = stat.S_IMODE(cluster.socket_dir.stat().st_mode)
        assert socket_mode == 0o700
        base, pidfile = cluster.base_dir, cluster.pgdata / "postmaster.pid"
        pid = int(pidfile.read_text().split()[0])
    assert not _pid_alive(pid)
    assert not base.exists(), "an ephemeral cluster's directory is removed on stop"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url, connect_timeout=2)


def test_pg_cron_extension_is_created(pg_binaries):
    cluster = EmbeddedCluster(None, ephemeral=True, dbname="emb_cron", install_signal_handlers=False)
    if not cluster.has_pg_cron:
        pytest.skip(f"pg_cron is not installed for {pg_binaries}: `{INSTALL_COMMAND}`")
    with cluster, psycopg.connect(cluster.url) as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'").fetchone()
        assert version is not None
        assert "pg_cron" in conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        assert conn.execute("SHOW cron.database_name").fetchone()[0] == "emb_cron"
        assert conn.execute("SHOW cron.use_background_workers").fetchone()[0] == "off"
        assert conn.execute("SHOW cron.host").fetchone()[0] == str(cluster.socket_dir)


def test_missing_binaries_give_the_install_command(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    cluster = EmbeddedCluster(None, ephemeral=True, bindir_candidates=[empty], install_signal_handlers=False)
    with pytest.raises(PostgresNotInstalled) as info:
        cluster.start()
    message = str(info.value)
    assert INSTALL_COMMAND in message
    assert str(empty) in message
    assert "\n" not in message
    assert not cluster.has_pg_cron


def test_persistent_cluster_password_port_and_data_survive(pg_binaries, cluster_dir):
    first = EmbeddedCluster(cluster_dir, install_signal_handlers=False).start()
    try:
        password_file = cluster_dir / "password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        assert f":{password}@127.0.0.1:" in first.url
        with psycopg.connect(first.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
        no_password = first.url.replace(f":{password}@", "@")
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(no_password, connect_timeout=5)
        port = first.port
    finally:
        first.stop()
    second = EmbeddedCluster(cluster_dir, install_signal_handlers=False).start()
    try:
        assert second.port == port, "a persistent cluster reuses its port while it is free"
        with psycopg.connect(second.url) as conn:
            assert conn.execute("SELECT to_regclass('kept') IS NOT NULL").fetchone()[0]
    finally:
        second.stop()


def test_running_cluster_is_adopted_not_stopped(pg_binaries, cluster_dir):
    owner = EmbeddedCluster(cluster_dir, install_signal_handlers=False).start()
    try:
        guest = EmbeddedCluster(cluster_dir, install_signal_handlers=False).start()
        assert not guest.started_here
        assert guest.url == owner.url
        guest.stop()
        with psycopg.connect(owner.url) as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
    finally:
        owner.stop()


def test_stale_postmaster_pid_is_recovered(pg_binaries, cluster_dir):
    cluster = EmbeddedCluster(cluster_dir, install_signal_handlers=False).start()
    pidfile = cluster.pgdata / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    cluster.stop()
    # A pid file left by a crash, whose pid now belongs to an unrelated live process: PostgreSQL
    # itself would refuse to start ("Is another postmaster running?").
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        pidfile.write_text("\n".join([str(unrelated.pid)] + lines[1:]) + "\n")
        again = EmbeddedCluster(cluster_dir, install_signal_handlers=False).start()
        try:
            assert again.started_here
            with psycopg.connect(again.url) as conn:
                assert conn.execute("SELECT 1").fetchone()[0] == 1
        finally:
            again.stop()
    finally:
        unrelated.kill()
        unrelated.wait()


def test_killed_server_is_recovered(pg_binaries, cluster_dir):
    cluster = EmbeddedCluster(cluster_dir, install_signal_handlers=False).start()
    pid = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster._running = False  # it died behind our back
    again = EmbeddedCluster(cluster_dir, install_signal_handlers=False)
    for attempt in range(50):  # the dead postmaster's children exit within a moment
        try:
            again.start()
            break
        except EmbeddedError:
            if attempt == 49:
                raise
            time.sleep(0.2)
    try:
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
    finally:
        again.stop()


def test_sigterm_stops_the_cluster(pg_binaries, cluster_dir):
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from service.embedded import EmbeddedCluster
        c = EmbeddedCluster({str(cluster_dir)!r}).start()
        print(int((c.pgdata / "postmaster.pid").read_text().split()[0]), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    pid = int(proc.stdout.split()[0])
    assert not (cluster_dir / "pgdata" / "postmaster.pid").exists(), "server stopped cleanly"
    assert not _pid_alive(pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands directories to the postgres user")
def test_unreachable_data_dir_is_explained(pg_binaries, tmp_path):
    os.chmod(tmp_path, 0o700)  # pytest's tmp dirs are private to root; postgres cannot get in
    with pytest.raises(EmbeddedError, match="cannot write to .*HIERARCHY_DATA_DIR"):
        EmbeddedCluster(tmp_path / "data", install_signal_handlers=False).start()
