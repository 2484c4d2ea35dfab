"""Schema releases on top of yoyo migrations.

A *release* (6.0, 6.1, 6.2, 6.3, 6.4) is the state after a given migration; ``RELEASES`` maps
each release to its last migration, in order (from ``service.releases``, the one table of
releases: 6.2 and 6.3 share the 6.1 schema, and a database at it reports 6.1). Migrations live
in ``<repo>/migrations`` as ``NNNN.slug.sql`` plus ``NNNN.slug.rollback.sql``; each one runs
in a single transaction, and each one (re)defines the SQL function ``config.schema_release()``
returning its release.

A release may span several migrations (6.4: ``0003.customers-required`` then
``0004.org-memberships``). Where a database stands is then the pair the database reports: its
release, and ``config.schema_migration()``, which every migration from 0004 on (re)defines to
return its own id, and its rollback drops it again (or, from 0005 on, redefines it to return
the id of the migration before, which defines it too). Absent, it means the *first* migration of the
reported release (0001 to 0003 never defined it, and are never edited: they are applied
migrations). :func:`_position_of` reads that pair; the steps and yoyo's reconciliation work on
it, so a migration killed between its commit and yoyo's record is reconciled at any step.

The truth about where a database stands is the database itself (``config.schema_release()``),
not yoyo's bookkeeping: yoyo applies a migration in one transaction and records it in another,
so a process killed between the two leaves a migration applied but unrecorded (and the reverse
for roll-backs). ``migrate`` therefore first reconciles yoyo's records with the release the
database reports, under yoyo's migration lock, and only then plans and applies the steps.

yoyo has no "roll back to a release" command; ``migrate`` computes both directions itself and
drives ``backend.apply_one`` / ``backend.rollback_one`` one migration at a time.

Every failure is one of the ``MigrationError`` subclasses below, with a one-line message that
says what to do.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from service import releases
from service.conninfo import for_primary
from service.queries import query

log = logging.getLogger(__name__)

RELEASES: dict[str, str] = {r.name: r.migration for r in releases.TABLE}
LATEST = releases.LATEST
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SERVICE_STATE_SQL = Path(__file__).resolve().parent.parent / "sql" / "service_state.sql"
CONNECT_TIMEOUT = 10


class MigrationError(Exception):
    """Base class: a one-line message for the operator, and the CLI's exit code."""

    exit_code = 1


class BadDatabaseUrl(MigrationError):
    pass


class UnknownRelease(MigrationError):
    def __init__(self, release: str) -> None:
        super().__init__(f"unknown release '{release}'; known: {', '.join(RELEASES)}")
        self.release = release


class DatabaseUnreachable(MigrationError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot connect to {redact(url)}: {reason}; is the server running? set DATABASE_URL"
        )


class MigrationLocked(MigrationError):
    pass


class MigrationFailed(MigrationError):
    pass


class UpgradeBlocked(MigrationError):
    """The upgrade refused before changing anything (config.upgrade_blockers found blockers)."""

    exit_code = 3
    sqlstates = ("HR064",)  # raised by migrations/0003 when projects have no customer


class DowngradeBlocked(MigrationError):
    """The downgrade refused before changing anything: a promotion of customers to orgs is in
    force (demote it first), or config.downgrade_blockers found users of several orgs, which
    the release below memberships cannot hold."""

    exit_code = 3
    # HR062: raised by migrations/0005's rollback (promoted); HR061: by 0004's (several orgs)
    sqlstates = ("HR062", "HR061")


class SchemaStateError(MigrationError):
    """The database or the migrations directory is in a state this program cannot handle."""


@dataclass(frozen=True)
class StepEvent:
    """Passed to ``migrate(on_step=...)`` before (``finished=False``) and after each step."""

    direction: str  # "apply" or "rollback"
    migration_id: str
    index: int  # 1-based
    total: int
    finished: bool
    seconds: float = 0.0


# -- connection strings ---------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc) or type(exc).__name__
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def redact(url: str) -> str:
    """The connection string without its password."""
    try:
        if "://" in url:
            parts = urlsplit(url)
            netloc = parts.netloc
            if "@" in netloc:
                userinfo, hostport = netloc.rsplit("@", 1)
                netloc = userinfo.split(":", 1)[0] + "@" + hostport
            query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
            return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
        params = conninfo_to_dict(url)
        params.pop("password", None)
        return make_conninfo(**params)
    except Exception:
        return "<unparseable connection string>"


def _check_url(url: str) -> None:
    if not url or not url.strip():
        raise BadDatabaseUrl("the database URL is empty; set DATABASE_URL to a postgresql:// URL")
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise BadDatabaseUrl(
                f"unsupported database URL scheme '{scheme}'; use postgresql://user:password@host:port/db"
            )
    try:
        conninfo_to_dict(url.replace("postgresql+psycopg://", "postgresql://", 1))
    except psycopg.Error as exc:
        raise BadDatabaseUrl(f"invalid database URL {redact(url)}: {_one_line(exc)}") from None


def yoyo_url(url: str) -> str:
    """Convert a libpq URL or key=value string into yoyo's ``postgresql+psycopg://`` form.

    yoyo parses its URL with ``urlsplit`` (one host, an integer port) and hands the query
    parameters to ``psycopg.connect`` as keywords. So a single-host URI keeps its form, and
    everything else (key=value strings, socket directories, several hosts) goes into the query
    (``?host=h1,h2&port=5432,5433&target_session_attrs=read-write``), which libpq resolves to
    the current primary on every connection yoyo opens.
    """
    _check_url(url)
    url = for_primary(url)
    if "://" in url and "," not in urlsplit(url).netloc:
        rest = url.split("://", 1)[1]
        out = "postgresql+psycopg://" + rest
    else:
        params = {
            k: str(v)
            for k, v in conninfo_to_dict(url.replace("postgresql+psycopg://", "postgresql://", 1)).items()
        }
        user = params.pop("user", "")
        password = params.pop("password", "")
        host = params.pop("host", "")
        port = params.pop("port", "")
        dbname = params.pop("dbname", "")
        auth = ""
        if user:
            auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@"
        elif password:
            params["password"] = password
        hostpart = ""
        if host and not host.startswith("/") and "," not in host:
            hostpart = host + (f":{port}" if port else "")
        else:
            if host:
                params["host"] = host
            if port:
                params["port"] = port
        out = f"postgresql+psycopg://{auth}{hostpart}/{quote(dbname, safe='')}"
        if params:
            out += "?" + urlencode(params)
    parts = urlsplit(out)
    query = dict(parse_qsl(parts.query))
    query.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def connect(url: str, **kwargs) -> psycopg.Connection:
    """psycopg connection (autocommit) or DatabaseUnreachable; several hosts: the primary."""
    _check_url(url)
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    try:
        return psycopg.connect(
            for_primary(url.replace("postgresql+psycopg://", "postgresql://", 1)), **kwargs
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable(url, _one_line(exc)) from None


# -- the migrations on disk -----------------------------------------------------------------------
def check_release(release: str | None) -> str:
    if release is None:
        return LATEST
    if release not in RELEASES:
        raise UnknownRelease(release)
    return release


# A line ``\ir ../sql/udfs/<function>/<migration>.sql`` in a migration (or its rollback) takes in
# a frozen copy of one function (the Citus layout, docs/design.md section 11): psql's
# include-relative syntax, so ``psql -f`` runs the file as it is, and resolved here when the
# migrations are loaded, so yoyo applies the whole text. A frozen copy never changes once a
# database may have applied it; yoyo's hash is the migration's id, so records stay valid.
INCLUDE = re.compile(r"^\\ir[ \t]+(\S+)[ \t]*$", re.MULTILINE)
_resolved: list[Path] = []  # this process's directory of migrations with their includes taken in


def resolve_includes(path: Path) -> str:
    """The text of a migration file with each ``\\ir FILE`` line replaced by FILE (relative to the
    migration's directory; one level: a frozen copy includes nothing)."""

    def take(match: re.Match) -> str:
        target = path.parent / match.group(1)
        if not target.is_file():
            raise SchemaStateError(f"migration {path.name} takes in {match.group(1)}, which does not exist")
        return target.read_text(encoding="utf-8").rstrip("\n")

    return INCLUDE.sub(take, path.read_text(encoding="utf-8"))


def _resolved_dir() -> Path:
    if not _resolved:
        made = Path(tempfile.mkdtemp(prefix="hierarchy-migrations-"))
        atexit.register(shutil.rmtree, made, True)
        _resolved.append(made)
    return _resolved[0]


def _take_in_includes(migration) -> None:
    """Point a yoyo migration whose file (or rollback) has includes at a resolved copy of both."""
    path = Path(migration.path)
    rollback = path.with_name(path.name[: -len(".sql")] + ".rollback.sql")
    texts = {p: p.read_text(encoding="utf-8") for p in (path, rollback) if p.is_file()}
    if not any(INCLUDE.search(text) for text in texts.values()):
        return
    out = _resolved_dir()
    for original in texts:
        (out / original.name).write_text(resolve_includes(original), encoding="utf-8")
    migration.path = str(out / path.name)


def load_migrations(migrations_dir: str | Path | None = None) -> list:
    """The yoyo migrations in apply order, their includes taken in; every release's migration
    must be present."""
    from yoyo import read_migrations
    from yoyo.exceptions import BadMigration, MigrationConflict
    from yoyo.migrations import topological_sort

    directory = Path(migrations_dir) if migrations_dir is not None else MIGRATIONS_DIR
    if not directory.is_dir():
        raise SchemaStateError(f"migrations directory {directory} does not exist")
    try:
        migrations = list(read_migrations(str(directory)))
        migrations.sort(key=lambda m: m.id)
        for m in migrations:
            _take_in_includes(m)
            m.load()  # resolve "-- depends:" against this directory's migrations
        ordered = list(topological_sort(migrations))
    except (BadMigration, MigrationConflict) as exc:
        raise SchemaStateError(f"bad migration in {directory}: {_one_line(exc)}") from None
    ids = [m.id for m in ordered]
    for release, mid in RELEASES.items():
        if mid not in ids:
            raise SchemaStateError(
                f"release {release} needs migration {directory / (mid + '.sql')}, which is missing"
            )
    return ordered


def first_migration(release: str, ids: list[str]) -> str:
    """The first migration of ``release``'s schema: the one after the last migration of the
    schema before it (``ids``: the migration ids in apply order)."""
    index = releases.TABLE.index(releases.BY_NAME[release])
    schema = releases.TABLE[index].schema
    earlier = [r.migration for r in releases.TABLE[:index] if r.schema != schema]
    return ids[ids.index(earlier[-1]) + 1] if earlier else ids[0]


def _ids_through(position: str | None, migrations: list) -> list[str]:
    """The ids of the migrations up to and including ``position`` (a migration id)."""
    if position is None:
        return []
    ids = [m.id for m in migrations]
    return ids[: ids.index(position) + 1]


def _steps(position: str | None, target: str, migrations: list) -> list[tuple[str, object]]:
    have = set(_ids_through(position, migrations))
    want = set(_ids_through(RELEASES[target], migrations))
    ups = [("apply", m) for m in migrations if m.id in want and m.id not in have]
    downs = [("rollback", m) for m in reversed(migrations) if m.id in have and m.id not in want]
    return downs + ups


# -- where the database stands --------------------------------------------------------------------
def _release_of(conn: psycopg.Connection) -> str | None:
    has_schema, has_function = conn.execute(
        "SELECT to_regnamespace('config') IS NOT NULL, to_regprocedure('config.schema_release()') IS NOT NULL"
    ).fetchone()
    if not has_schema:
        return None
    if not has_function:
        raise SchemaStateError(
            "schema config exists but config.schema_release() does not; "
            "this database was not created by these migrations"
        )
    release = conn.execute("SELECT config.schema_release()").fetchone()[0]
    if release not in RELEASES:
        raise SchemaStateError(
            f"the database is at release '{release}', which this program does not know "
            f"(known: {', '.join(RELEASES)}); use the hierarchy version that matches it"
        )
    return release


def _position_of(conn: psycopg.Connection, migrations: list) -> str | None:
    """The id of the last migration applied, as the database says (see the module's docstring):
    ``config.schema_migration()`` when defined, else the first migration of its release."""
    release = _release_of(conn)
    if release is None:
        return None
    defined = conn.execute("SELECT to_regprocedure('config.schema_migration()') IS NOT NULL").fetchone()[0]
    ids = [m.id for m in migrations]
    position = (
        conn.execute("SELECT config.schema_migration()").fetchone()[0]
        if defined
        else first_migration(release, ids)
    )
    if position not in ids:
        raise SchemaStateError(
            f"the database reports migration '{position}', which {MIGRATIONS_DIR} does not have; "
            "use the hierarchy version that matches it"
        )
    return position


def current_release(url: str) -> str | None:
    """The release the database reports, or None when schema ``config`` does not exist."""
    with connect(url) as conn:
        return _release_of(conn)


def count_customers(url: str) -> int:
    """Number of Customers (0 when the table does not exist): what a downgrade would delete."""
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('config.customers') IS NULL").fetchone()[0]:
            return 0
        return conn.execute("SELECT count(*) FROM config.customers").fetchone()[0]


def plan(url: str, to: str | None = None, migrations_dir: str | Path | None = None) -> list[tuple[str, str]]:
    """The (direction, migration id) steps ``migrate`` would run to reach release ``to``."""
    target = check_release(to)
    migrations = load_migrations(migrations_dir)
    with connect(url) as conn:
        position = _position_of(conn, migrations)
    return [(d, m.id) for d, m in _steps(position, target, migrations)]


# -- yoyo -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _backend(url: str) -> Iterator:
    from yoyo import get_backend

    yurl = yoyo_url(url)
    try:
        backend = get_backend(yurl)
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable(url, _one_line(exc)) from None
    try:
        yield backend
    finally:
        with contextlib.suppress(Exception):
            backend.connection.close()


def _lock_holder(backend) -> tuple[int, object] | None:
    row = backend.connection.execute(
        sql.SQL("SELECT pid, ctime FROM {} LIMIT 1").format(sql.Identifier(backend.lock_table))
    ).fetchone()
    return (row[0], row[1]) if row else None


def _describe_holder(holder: tuple[int, object] | None) -> str:
    if holder is None:
        return "unknown holder"
    pid, ctime = holder
    since = f"{ctime:%Y-%m-%d %H:%M:%S} UTC" if ctime is not None else "an unknown time"
    return f"pid {pid} since {since}"


@contextlib.contextmanager
def _locked(backend, timeout: float) -> Iterator[None]:
    from yoyo.exceptions import LockTimeout

    try:
        with backend.lock(timeout=max(timeout, 0.01)):
            yield
    except LockTimeout:
        holder = _lock_holder(backend)
        raise MigrationLocked(
            f"another migration holds the lock ({_describe_holder(holder)}); if no migration is running, "
            "run `hierarchy migrate --break-lock`"
        ) from None


def break_lock(url: str) -> str | None:
    """Remove yoyo's migration lock; returns a description of the removed holder, if any."""
    with _backend(url) as backend:
        holder = _lock_holder(backend)
        backend.break_lock()
        if holder is not None:
            log.warning("removed the migration lock held by %s", _describe_holder(holder))
            return _describe_holder(holder)
        return None


def _reconcile(backend, migrations: list, position: str | None) -> tuple[list[str], list[str]]:
    """Make yoyo's records agree with where the database reports it stands (a migration id)."""
    applied = set(backend.get_applied_migration_hashes())
    expected = set(_ids_through(position, migrations))
    to_mark = [m for m in migrations if m.id in expected and m.hash not in applied]
    to_unmark = [m for m in migrations if m.id not in expected and m.hash in applied]
    if to_mark:
        log.warning(
            "database reports migration %s but yoyo had not recorded %s; marking applied",
            position,
            ", ".join(m.id for m in to_mark),
        )
        backend.mark_migrations(to_mark)
    if to_unmark:
        log.warning(
            "database reports migration %s but yoyo recorded %s as applied; unmarking",
            position,
            ", ".join(m.id for m in to_unmark),
        )
        backend.unmark_migrations(to_unmark)
    return [m.id for m in to_mark], [m.id for m in to_unmark]


def migrate(
    url: str,
    to: str | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
    *,
    migrations_dir: str | Path | None = None,
    lock_timeout: float = 10.0,
) -> list[tuple[str, str]]:
    """Bring the database to release ``to`` (None: LATEST), up or down; returns the steps run."""
    target = check_release(to)
    migrations = load_migrations(migrations_dir)
    with _backend(url) as backend, _locked(backend, lock_timeout):
        backend.ensure_internal_schema_updated()
        position = _position_of(backend.connection, migrations)
        _reconcile(backend, migrations, position)
        steps = _steps(position, target, migrations)
        if steps:
            _before_steps(backend)
        done: list[tuple[str, str]] = []
        for index, (direction, migration) in enumerate(steps, start=1):
            if on_step:
                on_step(StepEvent(direction, migration.id, index, len(steps), False))
            started = time.monotonic()
            output = io.StringIO()
            try:
                # yoyo prints the rows of any SELECT in a migration to stdout; keep stdout clean.
                with contextlib.redirect_stdout(output):
                    if direction == "apply":
                        backend.apply_one(migration)
                    else:
                        backend.rollback_one(migration)
            except backend.DatabaseError as exc:
                with contextlib.suppress(Exception):
                    backend.rollback()
                with contextlib.suppress(MigrationError):  # the policies _before_steps removed
                    _apply_service_state(backend)
                now = _release_of(backend.connection)
                for blocked in (UpgradeBlocked, DowngradeBlocked):
                    if getattr(exc, "sqlstate", None) in blocked.sqlstates:
                        raise blocked(
                            f"{_one_line(exc)} (nothing changed: the database is at release {now})"
                        ) from None
                verb = "applied" if direction == "apply" else "rolled back"
                raise MigrationFailed(
                    f"{'applying' if direction == 'apply' else 'rolling back'} migration {migration.id} "
                    f"failed: {_one_line(exc)}; nothing of it was {verb} (each migration is one "
                    f"transaction); the database is at release {now or 'none'}: fix the cause and run "
                    "`hierarchy migrate` again"
                ) from None
            if output.getvalue().strip():
                log.debug("output of %s:\n%s", migration.id, output.getvalue())
            seconds = time.monotonic() - started
            done.append((direction, migration.id))
            log.info("%s %s (%.2f s)", direction, migration.id, seconds)
            if on_step:
                on_step(StepEvent(direction, migration.id, index, len(steps), True, seconds))
        _apply_service_state(backend)
        now = _release_of(backend.connection)
        if now != releases.BY_NAME[target].schema:
            raise SchemaStateError(
                f"after migrating, config.schema_release() reports {now or 'no release'} instead of "
                f"{releases.BY_NAME[target].schema}; a migration does not set its release"
            )
        return done


def _before_steps(backend) -> None:
    """Before the steps: sql/service_state.sql (idempotent; it holds the guard of the SECURITY
    DEFINER functions, service_state.require_request_permission, which a step may run: the 6.1
    step ends with a forced run of the job), then drop the row-level policies of schema config
    (sql/privileges.sql puts them back after the steps). They name columns a rollback drops
    (projects.customer_id), and a migration should meet the schema its authors wrote. Meanwhile
    the runtime role sees no row of a protected table (row-level security stays enabled, with no
    policy: fail closed)."""
    with backend.connection.transaction():
        backend.connection.execute(SERVICE_STATE_SQL.read_text())
        backend.connection.execute(
            """DO $drop$
            DECLARE
                p record;
            BEGIN
                FOR p IN SELECT policyname, tablename FROM pg_policies WHERE schemaname = 'config' LOOP
                    EXECUTE format('DROP POLICY %I ON config.%I', p.policyname, p.tablename);
                END LOOP;
            END
            $drop$"""
        )


def _apply_service_state(backend) -> None:
    """What must hold at every release, outside the release ladder: the service's own state
    (sql/service_state.sql: the login throttle), then the roles, grants, row-level security and
    SECURITY DEFINER settings (sql/privileges.sql, role names from HIERARCHY_ROLE_PREFIX,
    service.roles). Idempotent, applied after the steps of every migration, at every release,
    in one transaction under the migration lock, so a table or function a migration added or
    redefined is covered at once; no downgrade removes it."""
    from service import roles

    conn = backend.connection  # autocommit: the files' statements in one transaction of their own
    name = SERVICE_STATE_SQL.name
    try:
        with conn.transaction():
            conn.execute(SERVICE_STATE_SQL.read_text())  # no parameters: psycopg sends it as one
            name = roles.PRIVILEGES_SQL.name
            conn.execute(roles.from_env().privileges_sql())
    except psycopg.Error as exc:
        raise MigrationFailed(
            f"applying {name} failed: {_one_line(exc)}; the release's migrations are "
            "applied: fix the cause and run `hierarchy migrate` again"
        ) from None


# -- the pre-upgrade check ------------------------------------------------------------------------
def upgrade_blockers(url: str, to: str | None = None) -> list[dict]:
    """What blocks an upgrade to release ``to`` (None: LATEST), from ``config.upgrade_blockers``.

    The function exists from 6.1 on; a database below 6.1 has none to report yet (the 6.1
    step's init job homes every project before the 6.4 step checks again). The migration to
    6.4 calls the same function first and refuses while it returns rows.
    """
    target = check_release(to)
    with connect(url, row_factory=dict_row) as conn:
        if conn.execute(query("releases.has_upgrade_blockers")).fetchone()["present"]:
            return conn.execute(query("releases.upgrade_blockers"), {"release": target}).fetchall()
    return []


def downgrade_blockers(url: str, to: str) -> list[dict]:
    """What blocks a downgrade to release ``to``, from ``config.downgrade_blockers``: the users
    of several orgs, when ``to`` has no memberships (one org per user there). The rollback of
    migrations/0004 calls the same function first and refuses (HR061) while it returns rows."""
    if releases.BY_NAME[check_release(to)].memberships:
        return []
    with connect(url, row_factory=dict_row) as conn:
        if conn.execute(query("releases.has_downgrade_blockers")).fetchone()["present"]:
            return conn.execute(query("releases.downgrade_blockers")).fetchall()
    return []
