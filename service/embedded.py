"""An embedded PostgreSQL cluster run from the machine's own binaries.

One code path serves ``make run`` (a persistent cluster under ``.data/``) and the tests (an
ephemeral cluster in a temporary directory, removed on stop).

Layout of a cluster directory::

    <dir>/pgdata/        the cluster (owned by the server user, mode 0700)
    <dir>/sock/          private Unix socket directory (server user, mode 0700)
    <dir>/postgres.log   server log (pg_ctl -l)
    <dir>/password       persistent clusters only: the superuser password (mode 0600)
    <dir>/port           persistent clusters only: the last port, reused while it is free

Authentication: local (Unix socket) connections are trusted -- the socket directory is private
to the server user (and root), so only they can reach it; pg_cron's own libpq connections go
through it (``cron.host``). TCP is bound to 127.0.0.1 only. A persistent cluster requires
SCRAM on TCP with a password generated once and stored in ``<dir>/password``; ``.url`` carries
it. An ephemeral test cluster trusts loopback TCP too: it lives for one test session in a
private temporary directory.

PostgreSQL refuses to run as root: when we are root the server runs as the ``postgres`` OS user
(created by the Debian package) and the directories are handed to it.
"""

from __future__ import annotations

import atexit
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

INSTALL_COMMAND = "apt-get install -y postgresql-15 postgresql-15-cron"
DEFAULT_BINDIRS = ("/usr/lib/postgresql/15/bin",)
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "postgres"
RUNTIME_CONF = "hierarchy_runtime.conf"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.65535.lock"


class EmbeddedError(RuntimeError):
    """The embedded cluster could not be prepared or started; the message says what to do."""


class PostgresNotInstalled(EmbeddedError):
    """The PostgreSQL server binaries were not found."""


def find_bindir(candidates: list[str | os.PathLike] | None = None) -> Path:
    """Return the directory holding initdb, pg_ctl and postgres.

    ``candidates`` replaces the default search (``/usr/lib/postgresql/15/bin`` then
    ``pg_config --bindir``).
    """
    if candidates is None:
        search: list[Path] = [Path(d) for d in DEFAULT_BINDIRS]
        pg_config = shutil.which("pg_config")
        if pg_config:
            try:
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
                ).stdout.strip()
                if out:
                    search.append(Path(out))
            except (OSError, subprocess.SubprocessError):
                pass
    else:
        search = [Path(c) for c in candidates]
    for d in search:
        if all(os.access(d / b, os.X_OK) and (d / b).is_file() for b in REQUIRED_BINARIES):
            return d
    where = ", ".join(str(d) for d in search) or "(nowhere)"
    raise PostgresNotInstalled(
        f"PostgreSQL server binaries ({', '.join(REQUIRED_BINARIES)}) not found in {where}; "
        f"install them with `{INSTALL_COMMAND}` (as root) or set DATABASE_URL to an existing server"
    )


def _pg_config(bindir: Path, flag: str, fallback: Path) -> Path:
    exe = bindir / "pg_config"
    if exe.is_file():
        try:
            out = subprocess.run([exe, flag], capture_output=True, text=True, timeout=10, check=True)
            if out.stdout.strip():
                return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return fallback


def pg_cron_available(bindir: Path) -> bool:
    """True when pg_cron's library and extension control file are installed for these binaries."""
    libdir = _pg_config(bindir, "--pkglibdir", bindir.parent / "lib")
    sharedir = _pg_config(bindir, "--sharedir", Path("/usr/share/postgresql") / bindir.parent.name)
    return (libdir / "pg_cron.so").is_file() and (sharedir / "extension" / "pg_cron.control").is_file()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # PostgreSQL binds with SO_REUSEADDR, so a port in TIME_WAIT is free for it too.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf_quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _pid_is_postgres(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # alive but unreadable: assume it is a server, do not touch its files
    return b"postgres" in cmdline or b"postmaster" in cmdline


class EmbeddedCluster:
    """A PostgreSQL cluster initialised and started from the local binaries.

    ``data_dir``: the cluster directory (persistent), or for an ephemeral cluster the parent of
    its temporary directory (``None``: the system temp dir). ``dbname``: the application
    database, created after start; where pg_cron is installed it is also pg_cron's database.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None,
        *,
        dbname: str = "hierarchy",
        ephemeral: bool = False,
        bindir_candidates: list[str | os.PathLike] | None = None,
        install_signal_handlers: bool = True,
    ) -> None:
        if data_dir is None and not ephemeral:
            raise ValueError("a persistent cluster needs a data_dir")
        self._given_dir = Path(data_dir).absolute() if data_dir is not None else None
        self.dbname = dbname
        self.ephemeral = ephemeral
        self._bindir_candidates = bindir_candidates
        self._install_signal_handlers = install_signal_handlers
        self._bindir: Path | None = None
        self._has_pg_cron: bool | None = None
        self.base_dir: Path | None = None if ephemeral else self._given_dir
        self.port: int | None = None
        self.socket_dir: Path | None = None
        self._password: str | None = None
        self._running = False
        self._started_here = False
        self._lock = threading.RLock()
        self._prev_handlers: dict[int, object] = {}
        self._tmp_socket_dir: Path | None = None

    # -- paths and identity -------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "pgdata"

    @property
    def log_path(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "postgres.log"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir(self._bindir_candidates)
        return self._bindir

    @property
    def has_pg_cron(self) -> bool:
        """True when pg_cron is installed for these binaries (then it is preloaded and created)."""
        if self._has_pg_cron is None:
            try:
                self._has_pg_cron = pg_cron_available(self.bindir)
            except PostgresNotInstalled:
                self._has_pg_cron = False
        return self._has_pg_cron

    @property
    def running(self) -> bool:
        return self._running

    @property
    def started_here(self) -> bool:
        """False when start() found this cluster already running and adopted it."""
        return self._started_here

    def admin_url(self, dbname: str = "postgres") -> str:
        """A TCP conninfo URL for the superuser on database ``dbname``."""
        if self.port is None:
            raise EmbeddedError("the embedded cluster is not started")
        auth = SUPERUSER if self._password is None else f"{SUPERUSER}:{quote(self._password, safe='')}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    @property
    def url(self) -> str:
        """The conninfo URL of the application database."""
        return self.admin_url(self.dbname)

    # -- running commands as the server user ---------------------------------------------------
    def _server_user(self) -> pwd.struct_passwd:
        if os.geteuid() != 0:
            return pwd.getpwuid(os.geteuid())
        try:
            return pwd.getpwnam(SUPERUSER)
        except KeyError:
            raise EmbeddedError(
                "running as root needs the 'postgres' OS user to run the server (the postgresql-15 "
                f"package creates it: `{INSTALL_COMMAND}`)"
            ) from None

    def _run(self, args: list, *, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        if os.geteuid() == 0:
            user = self._server_user()
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            env.update(HOME=user.pw_dir or "/", USER=user.pw_name, LOGNAME=user.pw_name)
        return subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            text=True,
            cwd="/",
            env=env,
            timeout=timeout,
            **kwargs,
        )

    def _give_to_server(self, path: Path, mode: int) -> None:
        os.chmod(path, mode)
        if os.geteuid() == 0:
            user = self._server_user()
            os.chown(path, user.pw_uid, user.pw_gid)

    def _log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(text[-lines:]) or "(server log is empty)"

    # -- lifecycle -----------------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        if self.ephemeral:
            parent = self._given_dir
            if parent is not None:
                parent.mkdir(parents=True, exist_ok=True)
            self.base_dir = Path(tempfile.mkdtemp(prefix="hierarchy-pg-", dir=parent))
        assert self.base_dir is not None
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # The server user must traverse the base dir but need not list it.
        os.chmod(self.base_dir, 0o711)
        if not self.pgdata.exists():
            self.pgdata.mkdir(mode=0o700)
        self._give_to_server(self.pgdata, 0o700)
        sock = self.base_dir / "sock"
        self._tmp_socket_dir = None
        if len(str(sock)) > _SOCKET_PATH_MAX:
            sock = self._tmp_socket_dir = Path(tempfile.mkdtemp(prefix="hierarchy-sock-"))
        sock.mkdir(mode=0o700, exist_ok=True)
        self._give_to_server(sock, 0o700)
        self.socket_dir = sock
        if not self.log_path.exists():
            self.log_path.touch()
        self._give_to_server(self.log_path, 0o640)
        probe = self._run(["test", "-w", self.pgdata, "-a", "-w", sock, "-a", "-w", self.log_path])
        if probe.returncode != 0:
            who = self._server_user().pw_name
            raise EmbeddedError(
                f"the server user '{who}' cannot write to {self.base_dir}: make its parent directories "
                "traversable (chmod o+x) or set HIERARCHY_DATA_DIR to a directory it can reach"
            )

    def _initdb(self) -> None:
        auth_host = "trust" if self.ephemeral else "scram-sha-256"
        args = [
            self.bindir / "initdb",
            "-D",
            self.pgdata,
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            "--locale=C",
            "--auth-local=trust",
            f"--auth-host={auth_host}",
        ]
        if self.ephemeral:
            args.append("--no-sync")
        result = self._run(args, timeout=300)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise EmbeddedError(f"initdb failed in {self.pgdata}: " + " | ".join(detail))
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# Managed by service.embedded: per-start settings live in the included file.\n"
                f"include_if_exists = '{RUNTIME_CONF}'\n"
            )
        log.info("initialised PostgreSQL cluster in %s", self.pgdata)

    def _write_runtime_conf(self) -> None:
        assert self.socket_dir is not None and self.port is not None
        lines = [
            "# Rewritten by service.embedded on every start; do not edit.",
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = {_conf_quote(str(self.socket_dir))}",
            "unix_socket_permissions = 0700",
        ]
        if self.has_pg_cron:
            lines += [
                "shared_preload_libraries = 'pg_cron'",
                f"cron.database_name = {_conf_quote(self.dbname)}",
                "cron.use_background_workers = off",
                f"cron.host = {_conf_quote(str(self.socket_dir))}",
            ]
        if self.ephemeral:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        path = self.pgdata / RUNTIME_CONF
        path.write_text("\n".join(lines) + "\n")
        self._give_to_server(path, 0o600)

    def _running_postmaster(self) -> tuple[int, int, Path] | None:
        """(pid, port, socket dir) of a live server on this data dir; removes a stale pid file."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except FileNotFoundError:
            return None
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            pid = -1
        if pid > 0 and _pid_is_postgres(pid):
            try:
                return pid, int(lines[3]), Path(lines[4])
            except (IndexError, ValueError):
                raise EmbeddedError(
                    f"a server (pid {pid}) is starting or stopping in {self.pgdata}; try again"
                ) from None
        log.warning("removing stale %s (pid %s is not a running server)", pidfile, pid)
        pidfile.unlink(missing_ok=True)
        if self.socket_dir is not None:
            for stale in self.socket_dir.glob(".s.PGSQL.*"):
                stale.unlink(missing_ok=True)
        return None

    def _pick_port(self) -> int:
        if not self.ephemeral:
            try:
                previous = int((self.base_dir / "port").read_text().strip())
                if 1024 <= previous <= 65535 and _port_is_free(previous):
                    return previous
            except (OSError, ValueError):
                pass
        return _free_port()

    def _ensure_password(self) -> None:
        if self.ephemeral:
            return
        path = self.base_dir / "password"
        if path.exists():
            self._password = path.read_text().strip()
        if not self._password:
            self._password = secrets.token_urlsafe(24)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self._password + "\n")
        os.chmod(path, 0o600)

    def _socket_connect(self, dbname: str):
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
        )

    def _after_start(self) -> None:
        from psycopg import sql

        with self._socket_connect("postgres") as conn:
            if self._password is not None:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(SUPERUSER), sql.Literal(self._password)
                    )
                )
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))
        if self.has_pg_cron:
            with self._socket_connect(self.dbname) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")

    def role_url(self, role: str) -> str:
        """A TCP URL of the application database for ``role`` (a login role the migrations
        created: the runtime role), with a password generated once into ``<dir>/<role>-password``
        (mode 0600) and set on the role at every call (roles are the cluster's)."""
        from psycopg import sql

        path = self.base_dir / f"{role}-password"
        password = path.read_text().strip() if path.exists() else ""
        if not password:
            password = secrets.token_urlsafe(24)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
        with self._socket_connect("postgres") as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
        host = f"127.0.0.1:{self.port}/{quote(self.dbname, safe='')}"
        return f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{host}"

    def start(self) -> EmbeddedCluster:
        """Initialise (first time) and start the cluster; adopt it when it is already running."""
        with self._lock:
            if self._running:
                return self
            self.bindir  # noqa: B018 -- fail early with the install hint
            self._prepare_dirs()
            try:
                if not (self.pgdata / "PG_VERSION").exists():
                    self._initdb()
                self._ensure_password()
                live = None if self.ephemeral else self._running_postmaster()
                if live is not None:
                    self._drop_tmp_socket_dir()
                    pid, self.port, self.socket_dir = live
                    log.info("using the PostgreSQL server already running (pid %s) on %s", pid, self.pgdata)
                    self._running = True
                    self._started_here = False
                    self._after_start()
                    return self
                self._start_server()
                self._running = True
                self._started_here = True
                self._register_shutdown()
                self._after_start()
            except BaseException:
                if self._started_here:
                    self.stop()
                elif self.ephemeral and self.base_dir is not None:
                    shutil.rmtree(self.base_dir, ignore_errors=True)
                raise
            return self

    def _start_server(self) -> None:
        last_error = ""
        for _attempt in range(3):
            self.port = self._pick_port()
            self._write_runtime_conf()
            result = self._run(
                [self.bindir / "pg_ctl", "start", "-w", "-t", "60", "-D", self.pgdata, "-l", self.log_path],
                timeout=90,
            )
            if result.returncode == 0:
                if not self.ephemeral:
                    (self.base_dir / "port").write_text(f"{self.port}\n")
                log.info("PostgreSQL started on 127.0.0.1:%s (data %s)", self.port, self.pgdata)
                return
            tail = self._log_tail()
            last_error = (result.stderr.strip() + "\n" + tail).strip()
            if "could not bind" not in tail and "Address already in use" not in tail:
                break
        fatal = [ln for ln in last_error.splitlines() if "FATAL" in ln or "ERROR" in ln or "PANIC" in ln]
        first = fatal[-1].strip() if fatal else "see the log"
        raise EmbeddedError(
            f"PostgreSQL failed to start in {self.pgdata}: {first} (log: {self.log_path}); log tail:\n"
            f"{last_error}"
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown) if this object started it; remove an ephemeral dir."""
        with self._lock:
            if self._running and self._started_here:
                result = self._run([self.bindir / "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.pgdata])
                if result.returncode != 0 and (self.pgdata / "postmaster.pid").exists():
                    log.warning("pg_ctl stop failed: %s", result.stderr.strip())
                else:
                    log.info("PostgreSQL stopped (%s)", self.pgdata)
            self._running = False
            self._started_here = False
            if self.ephemeral and self.base_dir is not None and self.base_dir.exists():
                shutil.rmtree(self.base_dir, ignore_errors=True)
            self._drop_tmp_socket_dir()
            atexit.unregister(self.stop)

    def _drop_tmp_socket_dir(self) -> None:
        if self._tmp_socket_dir is not None:
            shutil.rmtree(self._tmp_socket_dir, ignore_errors=True)
            self._tmp_socket_dir = None

    # -- shutdown on exit and on signals -------------------------------------------------------
    def _register_shutdown(self) -> None:
        atexit.register(self.stop)
        if not self._install_signal_handlers or threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._prev_handlers[signum] = signal.signal(signum, self._on_signal)
            except (ValueError, OSError):
                pass

    def _on_signal(self, signum: int, frame) -> None:
        self.stop()
        prev = self._prev_handlers.pop(signum, signal.SIG_DFL)
        signal.signal(signum, prev if prev is not None else signal.SIG_DFL)
        if callable(prev):
            prev(signum, frame)
        elif prev == signal.SIG_IGN:
            return
        else:
            signal.raise_signal(signum)

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the server accepts connections (it normally does once start() returns)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self._socket_connect("postgres"):
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
