"""What every command is given: its settings, its output, its stdin, and the database.

:class:`Context` finds the database (``DATABASE_URL``, or the embedded cluster under
``HIERARCHY_DATA_DIR``: started if needed, stopped at exit if this process started it),
checks its release, and opens transactions that act as ``cli:<OS user>`` and run named
statements through :class:`service.queries.SyncDb`, the same query layer as the API's, scoped
to every org (an operator holding the database's credentials sees everything).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from psycopg.rows import dict_row

from service import migrations, releases, roles
from service.cli.errors import CliError
from service.cli.output import Output
from service.queries import SyncDb, query
from service.settings import Settings

SET_ACTOR = query("auth.set_actor")
log = logging.getLogger("hierarchy")


def actor() -> str:
    """``cli:<OS user>``: who the audit log names for what this process changes."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


@dataclass
class Context:
    settings: Settings
    output: Output
    stdin: TextIO
    environ: Mapping[str, str]
    _cluster: Any = field(default=None, repr=False)

    def url(self) -> str:
        """The database URL the commands work on, as the schema's owner: HIERARCHY_OWNER_URL,
        else DATABASE_URL, else the embedded cluster's superuser (the cluster started if needed)."""
        if self.settings.owner_url or self.settings.database_url:
            return self.settings.owner_url or self.settings.database_url
        return self._embedded().url

    def runtime_url(self) -> str:
        """The URL the API serves with: DATABASE_URL, else the embedded cluster's runtime role
        (sql/privileges.sql; its password generated once into the data directory). Call after
        migrating: the privileges file creates the role."""
        if self.settings.database_url:
            return self.settings.database_url
        return self._embedded().role_url(roles.from_env(dict(self.environ)).app)

    def _embedded(self):
        if self._cluster is None:
            from service.embedded import EmbeddedCluster

            cluster = EmbeddedCluster(self.settings.data_dir, dbname=self.settings.db_name)
            cluster.start()  # stopped at exit (atexit) when this process started it
            self._cluster = cluster
            if cluster.started_here:
                log.info("started the embedded PostgreSQL in %s", self.settings.data_dir)
        return self._cluster

    def need_release(self, minimum: str) -> tuple[str, releases.Release]:
        """The database's URL and release, or a CliError saying how to get to release ``minimum``."""
        url = self.url()
        release = migrations.current_release(url)
        if release is None:
            raise CliError("the database has no schema yet: run `hierarchy migrate`")
        order = list(migrations.RELEASES)
        if order.index(release) < order.index(minimum):
            raise CliError(
                f"the database is at release {release}; this needs {minimum} (customers): "
                "run `hierarchy migrate`"
            )
        return url, releases.BY_NAME[release]

    @contextlib.contextmanager
    def connection(self, url: str) -> Iterator[Any]:
        """An autocommit connection (DatabaseUnreachable when the server does not answer)."""
        with migrations.connect(url, row_factory=dict_row) as conn:
            yield conn

    @contextlib.contextmanager
    def transaction(self, conn: Any) -> Iterator[SyncDb]:
        """One transaction acting as ``cli:<OS user>``; an exception rolls everything back."""
        with conn.transaction():
            db = SyncDb(conn)
            db.execute(SET_ACTOR, actor=actor(), user_id="")
            yield db

    @contextlib.contextmanager
    def database(self, minimum: str) -> Iterator[SyncDb]:
        """One transaction on a database at release ``minimum`` or later."""
        url, _ = self.need_release(minimum)
        with self.connection(url) as conn, self.transaction(conn) as db:
            yield db

    @contextlib.contextmanager
    def actor_as_session_option(self) -> Iterator[None]:
        """yoyo runs the migrations in its own transactions: name the actor for the whole session
        (libpq reads PGOPTIONS); restored afterwards, so an in-process caller keeps its own."""
        value = actor().replace("\\", "\\\\").replace(" ", "\\ ")
        before = os.environ.get("PGOPTIONS")
        os.environ["PGOPTIONS"] = f"{before or ''} -c hierarchy.actor={value}".strip()
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("PGOPTIONS", None)
            else:
                os.environ["PGOPTIONS"] = before
