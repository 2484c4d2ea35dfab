"""The container engine and the project's PostgreSQL image for the testcontainers tests.

:class:`ContainerSession` runs in a background thread from the session's start (when a test of
tests/containers is selected), so that bringing the engine up, the first image build and
pg_cron's wait for the minute overlap the rest of the suite:

1. an engine: one that already answers (``DOCKER_HOST``, or Docker's default socket), else
   ``scripts/container-engine.sh up`` (podman as root on Debian, image built there), whose
   printed environment is applied to this process; ``stop()`` then runs its ``down``;
2. the image ``HIERARCHY_POSTGRES_IMAGE`` (set by the script), or, on an engine the script did
   not start, the same source built there on ``HIERARCHY_POSTGRES_BASE`` (default the official
   ``postgres:15``), tagged with the same source hash as the script's;
3. one ``PostgresContainer`` of that image for the session, with pg_cron in database
   ``hierarchy`` (``cron.database_name``), and the real cron tick awaited in it
   (:class:`tests.conftest.RealCronTick`, as on the embedded cluster).

Where no engine can start at all, the script exits 3 with a one-line reason, and the tests skip
with it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "container-engine.sh"
SOURCE = REPO / "containers" / "postgres"
IMAGE_REPO = "localhost/hierarchy-postgres"
OFFICIAL_BASE = "postgres:15"
USER = "hierarchy"
PASSWORD = "container-secret"
CRON_DB = "hierarchy"  # POSTGRES_DB, so the entrypoint makes it pg_cron's database
CANNOT_RUN = 3  # the script's exit status for "no engine can run here"


def image_name(base: str) -> str:
    """What scripts/container-engine.sh names the image of the current source on ``base``."""
    digest = hashlib.sha256()
    for name in ("Containerfile", "entrypoint.sh"):
        digest.update((SOURCE / name).read_bytes())
    digest.update(base.encode())
    return f"{IMAGE_REPO}:{digest.hexdigest()[:12]}"


def engine_answers() -> bool:
    """True when DOCKER_HOST, or Docker's default socket, answers a ping."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def parse_exports(text: str) -> dict[str, str]:
    """``export NAME=value`` lines (values shell-quoted) as a dict."""
    env = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            env[name] = value
    return env


def ensure_image() -> str:
    """The image to run: ``HIERARCHY_POSTGRES_IMAGE`` (the script built it), or the current
    source built on the engine that answers, on ``HIERARCHY_POSTGRES_BASE`` (default the official
    postgres:15), unless an image of the same source hash is already there."""
    import docker

    name = os.environ.get("HIERARCHY_POSTGRES_IMAGE", "").strip()
    client = docker.from_env(timeout=600)
    try:
        if name:
            client.images.get(name)  # the script built it: a missing one is an error
            return name
        base = os.environ.get("HIERARCHY_POSTGRES_BASE", "").strip() or OFFICIAL_BASE
        name = image_name(base)
        try:
            client.images.get(name)
        except docker.errors.ImageNotFound:
            client.images.build(
                path=str(SOURCE),
                dockerfile="Containerfile",
                buildargs={"BASE": base},
                labels={"org.hierarchy.source-hash": name.rsplit(":", 1)[1]},
                tag=name,
                rm=True,
            )
        return name
    finally:
        client.close()


def postgres_container(image: str, dbname: str):
    """testcontainers' PostgresContainer of the project's image; pg_cron serves ``dbname``."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers before the community namespace
        from testcontainers.postgres import PostgresContainer
    return PostgresContainer(image, username=USER, password=PASSWORD, dbname=dbname, driver=None)


class ContainerSession:
    """Engine, image, one PostgreSQL container and its real cron tick, started in the background."""

    def __init__(self, cron_tick: bool = True) -> None:
        self.with_cron_tick = cron_tick  # whether a selected test waits for pg_cron's minute
        self.started_engine = False  # the script's `up` started it: `down` at the end
        self.skip_reason: str | None = None
        self.timings: list[tuple[str, float]] = []  # (step, seconds), for the terminal summary
        self.engine_log = ""  # the script's stderr: what it installed and built
        self.failure: BaseException | None = None
        self.image: str | None = None
        self.container = None
        self.cron_tick = None  # tests.conftest.RealCronTick in the container's cron database
        self._thread = threading.Thread(target=self._start, name="container-session", daemon=True)
        self._thread.start()

    # -- start ---------------------------------------------------------------------------------
    def _start(self) -> None:
        try:
            started = time.monotonic()
            if not self._engine():
                return
            self.timings.append(("engine up (install, image build, socket)", time.monotonic() - started))
            started = time.monotonic()
            self.image = self._image()
            self.timings.append(("image ready", time.monotonic() - started))
            started = time.monotonic()
            self._container()
            self.timings.append(("PostgresContainer started", time.monotonic() - started))
        except BaseException as exc:  # reported by the first test that asks for the container
            self.failure = exc

    def _engine(self) -> bool:
        if engine_answers():
            return True
        result = subprocess.run(
            ["bash", str(SCRIPT), "up"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=540,
        )
        self.engine_log = result.stderr
        if result.returncode == CANNOT_RUN:
            lines = result.stderr.strip().splitlines()
            self.skip_reason = lines[-1] if lines else "scripts/container-engine.sh up: no engine"
            return False
        if result.returncode != 0:
            raise RuntimeError(
                f"scripts/container-engine.sh up failed ({result.returncode}):\n{result.stderr[-3000:]}"
            )
        self.started_engine = True
        env = parse_exports(result.stdout)
        os.environ.update(env)  # as `eval "$(scripts/container-engine.sh up)"` would
        from testcontainers.core.config import ConnectionMode, testcontainers_config

        if env.get("TESTCONTAINERS_RYUK_DISABLED") == "true":
            testcontainers_config.ryuk_disabled = True
        if mode := env.get("TESTCONTAINERS_CONNECTION_MODE"):
            testcontainers_config.connection_mode_override = ConnectionMode(mode)
        if not engine_answers():
            raise RuntimeError(f"the engine the script started does not answer at {env.get('DOCKER_HOST')}")
        return True

    def _image(self) -> str:
        return ensure_image()

    def _container(self) -> None:
        from tests.conftest import RealCronTick

        container = postgres_container(self.image, CRON_DB)
        container.start()
        self.container = container
        if self.with_cron_tick:
            self.cron_tick = RealCronTick(self.url(CRON_DB))

    # -- use -----------------------------------------------------------------------------------
    def wait(self) -> ContainerSession:
        self._thread.join()
        return self

    def url(self, dbname: str) -> str:
        return self.container.get_connection_url().rsplit("/", 1)[0] + "/" + dbname

    def create_database(self) -> str:
        """A new empty database in the container (not pg_cron's: no tick runs in it)."""
        name = f"c_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    # -- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """The container, then the engine if the script started it: nothing is left running."""
        self._thread.join()
        try:
            if self.cron_tick is not None:
                self.cron_tick.wait()  # never stop the server under a migration in progress
            if self.container is not None:
                self.container.stop()
        finally:
            if self.started_engine:
                subprocess.run(
                    ["bash", str(SCRIPT), "down"],
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                    timeout=120,
                    check=False,
                )
