"""The ``hierarchy`` command line.

Commands, one ``cmd_*`` function each, registered in ``build_parser``:

    run                 migrate to the newest release, ensure the admin, serve     cmd_run
    migrate             upgrade or downgrade the schema (asks before deleting);    cmd_migrate
                        --dry-run: the steps and the pre-upgrade check
    status              release, schedule, last job runs, orphans                  cmd_status
    reconcile           run the background job now, in batches, with a bar         cmd_reconcile
    tunable get|set     read or change a tunable (the database checks the value)   cmd_tunable_get/set
    audit orphans       projects without a customer, per org                       cmd_audit_orphans
    switch-mode         both documented manual transitions, one atomic step        cmd_switch_mode
    user create|list    users of the API                                           cmd_user_create/list

Every command reaches ``DATABASE_URL``, or the embedded cluster under ``HIERARCHY_DATA_DIR``
(``connect_target``: started if needed, stopped on exit if this process started it). Every
statement is a named block of ``sql/queries/*.sql`` (``cli.sql`` for those only the CLI runs);
each transaction first sets ``hierarchy.actor`` to ``cli:<OS user>`` so the audit log names the
person (``migrate`` passes it as a session option, since yoyo owns those transactions).

Output: tables for people (rich) on stdout; ``--json`` on every command prints one JSON document
on stdout and nothing else there (notes, progress bars and errors go to stderr).

Exit codes: 0 done, 1 failed (the database refused, unreachable, ...), 2 bad usage (arguments,
or input checked before anything is touched), 3 found a problem (orphans in ``audit orphans``;
overdue orphans or no usable database in ``status``; due orphans ``reconcile`` could not home;
blockers of an upgrade in ``migrate --dry-run``, or the upgrade refused by them).

Releases come from ``service.releases`` (one table); which commands do what at which release
is a property there (``customers``, ``customers_final``), never a release name here.
Every error is one line on stderr; ``HIERARCHY_DEBUG=1`` adds a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import getpass
import json
import logging
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import errors
from psycopg.rows import dict_row

from service import migrations, releases
from service.queries import query
from service.settings import Settings, SettingsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PROBLEM = 0, 1, 2, 3
DEFAULT_BATCH_SIZE = 10_000
MODE_TUNABLE = "turbine_api_feature_migrate_projects_to_orgs"
PASSWORD_LENGTH = (8, 1024)  # the API's rule (service/routes/users.py)

log = logging.getLogger("hierarchy")

SQL = {
    "set_actor": query("auth.set_actor"),
    "release": query("health.release"),
    "orphan_counts": query("cli.orphan_counts"),
    "orphans": query("cli.orphans"),
    "org_by_name": query("cli.org_by_name"),
    "mode": query("cli.mode"),
    "reconcile": query("cli.reconcile"),
    "reconcile_batch": query("cli.reconcile_batch"),
    "list_runs": query("jobs.list_runs"),
    "cron_table_exists": query("jobs.cron_table_exists"),
    "cron_scheduled": query("jobs.cron_scheduled"),
    "switch_mode": query("jobs.switch_mode"),
    "tunables": query("tunables.list"),
    "tunable": query("tunables.get"),
    "tunable_set": query("tunables.set"),
    "users": query("users.list"),
    "orgs": query("orgs.list"),
    "first_org": query("users.first_org"),
}


class CliError(Exception):
    """A one-line error for the operator."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- the database ---------------------------------------------------------------------------------
_cluster = None  # the embedded cluster started by connect_target, if any


def connect_target(settings: Settings) -> str:
    """The database URL to work on: DATABASE_URL, or the embedded cluster (started if needed)."""
    global _cluster
    if settings.database_url:
        return settings.database_url
    if _cluster is None:
        from service.embedded import EmbeddedCluster

        cluster = EmbeddedCluster(settings.data_dir, dbname=settings.db_name)
        cluster.start()
        _cluster = cluster
        if cluster.started_here:
            log.info("started the embedded PostgreSQL in %s", settings.data_dir)
    return _cluster.url


def actor() -> str:
    """``cli:<OS user>``: who the audit log names for what this process changes."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


def need_release(url: str, minimum: str) -> releases.Release:
    """The database's release, or a CliError saying how to get to ``minimum``."""
    release = migrations.current_release(url)
    if release is None:
        raise CliError("the database has no schema yet: run `hierarchy migrate`")
    order = list(migrations.RELEASES)
    if order.index(release) < order.index(minimum):
        raise CliError(
            f"the database is at release {release}; this needs {minimum} (customers): run `hierarchy migrate`"
        )
    return releases.BY_NAME[release]


@contextlib.contextmanager
def database(url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection (DatabaseUnreachable when the server does not answer)."""
    with migrations.connect(url, row_factory=dict_row) as conn:
        yield conn


@contextlib.contextmanager
def transaction(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """One transaction, acting as ``cli:<OS user>``; an exception rolls everything back."""
    with conn.transaction():
        conn.execute(SQL["set_actor"], {"actor": actor(), "user_id": ""})
        yield conn


def one(conn: psycopg.Connection, statement: str, /, **params: Any) -> dict[str, Any] | None:
    """The first row of the named statement (``SQL[statement]``) run with ``params``."""
    return conn.execute(SQL[statement], params).fetchone()


def rows(conn: psycopg.Connection, statement: str, /, **params: Any) -> list[dict[str, Any]]:
    return conn.execute(SQL[statement], params).fetchall()


def _db_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# -- output ---------------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def emit(args: argparse.Namespace, data: Any, human: Callable[[Any], None], indent: int | None = 2) -> None:
    """``--json``: one JSON document on stdout; otherwise ``human(data)`` draws it for people."""
    if args.json:
        json.dump(data, sys.stdout, indent=indent, default=_json_default)
        sys.stdout.write("\n")
    else:
        human(data)


def console():
    """A rich console on stdout; not on a terminal it is wide, so piped tables keep their cells."""
    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, width=width)


def table(title: str | None, columns: list[str], body: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in body:
        t.add_row(*("" if v is None else str(v) for v in row))
    console().print(t)


def pairs(title: str | None, items: list[tuple[str, Any]]) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None)
    for key, value in items:
        t.add_row(key, "" if value is None else str(value))
    if title:
        console().print(title)
    console().print(t)


def note(message: str) -> None:
    print(message, file=sys.stderr)


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


class _NoBar:
    def advance(self, n: int) -> None:
        pass

    def size(self, total: int) -> None:
        pass


class _Bar:
    def __init__(self, bar, task) -> None:
        self.bar, self.task = bar, task

    def advance(self, n: int) -> None:
        self.bar.update(self.task, advance=n)

    def size(self, total: int) -> None:
        self.bar.update(self.task, total=max(total, 1))


@contextlib.contextmanager
def progress(description: str) -> Iterator[_NoBar | _Bar]:
    """A rich progress bar on stderr when it is a terminal (sized once the total is known)."""
    if not _stderr_is_tty():
        yield _NoBar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        yield _Bar(bar, bar.add_task(description, total=None))


def _progress_migrate(url: str, to: str | None, lock_timeout: float = 10.0) -> list:
    """migrate() with a rich progress bar on a terminal, one line per step otherwise."""
    if not _stderr_is_tty():

        def on_step(ev: migrations.StepEvent) -> None:
            if ev.finished:
                note(f"{ev.direction} {ev.migration_id}: done in {ev.seconds:.2f} s")

        return migrations.migrate(url, to, on_step=on_step, lock_timeout=lock_timeout)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = None

        def on_step(ev: migrations.StepEvent) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("migrating", total=ev.total)
            verb = "applying" if ev.direction == "apply" else "rolling back"
            if ev.finished:
                bar.update(task, advance=1, description=f"{ev.migration_id} done")
            else:
                bar.update(task, description=f"{verb} {ev.migration_id}")

        return migrations.migrate(url, to, on_step=on_step, lock_timeout=lock_timeout)


# -- run ------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service import users

    url = connect_target(settings)
    target = migrations.check_release(args.to)
    if any(direction == "rollback" for direction, _ in migrations.plan(url, target)):
        raise CliError(
            f"the database is at release {migrations.current_release(url)}, past {target}: "
            f"`hierarchy run` never downgrades; run `hierarchy migrate --to {target}` first"
        )
    steps = _progress_migrate(url, target)
    email, password = users.ensure_admin(url, settings.admin_email, settings.admin_password)
    host, port = args.host or settings.host, args.port or settings.port
    info = {
        "release": migrations.current_release(url),
        "migration_steps": len(steps),
        "url": f"http://{host}:{port}",
        "admin_email": email if password else None,
        "admin_password": password,
    }
    emit(args, info, _print_run, indent=None)  # one line: the server's lifetime follows
    sys.stdout.flush()
    # The app reads its database from here (see service.app); same process, no reload.
    os.environ["HIERARCHY_DATABASE_URL"] = url
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run("service.app:create_app", factory=True, host=host, port=port, log_level="info")
    return EXIT_OK


def _print_run(info: dict) -> None:
    print(f"database at release {info['release']}; serving on {info['url']}")
    if info["admin_password"]:
        print(
            f"created administrator {info['admin_email']} with password {info['admin_password']} "
            "(shown once: store it now)"
        )


# -- migrate --------------------------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    target = migrations.check_release(args.to)
    url = connect_target(settings)
    _actor_as_session_option()
    if args.break_lock:
        holder = migrations.break_lock(url)
        note(f"removed the migration lock ({holder})" if holder else "there was no migration lock")
    current = migrations.current_release(url)
    steps = migrations.plan(url, target)
    report = {"from": current, "release": target, "steps": [list(s) for s in steps], "customers_deleted": 0}
    if args.dry_run:
        return _migrate_dry_run(args, url, report)
    if not steps:
        emit(args, report, lambda r: print(f"already at release {_schema_of(target)}; nothing to do"))
        return EXIT_OK
    if any(direction == "rollback" for direction, _ in steps) and not releases.BY_NAME[target].customers:
        report["customers_deleted"] = _confirm_downgrade(url, current, target, args.yes)
    _progress_migrate(url, target, args.lock_timeout)
    report["release"] = migrations.current_release(url)
    emit(args, report, lambda r: print(f"database at release {_schema_of(r['release'])}"))
    return EXIT_OK


def _schema_of(release: str) -> str:
    """'6.1', or '6.1 (the schema of 6.1, 6.2 and 6.3)' where releases share it."""
    schema = releases.BY_NAME[release].schema
    sharing = releases.sharing_schema(schema)
    if len(sharing) == 1:
        return schema
    return f"{schema} (the schema of {', '.join(sharing[:-1])} and {sharing[-1]})"


def _migrate_dry_run(args: argparse.Namespace, url: str, report: dict) -> int:
    """The steps and the pre-upgrade check (config.upgrade_blockers); changes nothing."""
    upgrading = any(direction == "apply" for direction, _ in report["steps"])
    blockers = migrations.upgrade_blockers(url, report["release"]) if upgrading else []
    report.update(dry_run=True, blocked=bool(blockers), blockers=blockers)
    if any(direction == "rollback" for direction, _ in report["steps"]):
        report["customers_deleted"] = (
            migrations.count_customers(url) if not releases.BY_NAME[report["release"]].customers else 0
        )
    emit(args, report, _print_migrate_plan)
    if blockers:
        note(
            f"hierarchy: the upgrade to {report['release']} is blocked by {len(blockers)} orphaned "
            "project(s); `hierarchy reconcile --force` homes them"
        )
        return EXIT_PROBLEM
    return EXIT_OK


def _print_migrate_plan(report: dict) -> None:
    target = report["release"]
    if not report["steps"]:
        print(f"dry run: already at release {_schema_of(target)}; nothing to do")
        return
    print(f"dry run: {report['from'] or 'empty'} -> {target}, nothing changed")
    for direction, migration in report["steps"]:
        print(f"  {'apply' if direction == 'apply' else 'roll back'} {migration}")
    if report["customers_deleted"]:
        print(f"the downgrade would delete all {report['customers_deleted']} Customer(s); projects are kept")
    if not report["blockers"]:
        print("pre-upgrade check: nothing blocks it")
        return
    table(
        f"pre-upgrade check: {len(report['blockers'])} blocker(s)",
        ["org", "project", "since", "reason", "what to do"],
        [
            [b["org_name"], b["project_name"], f"{b['since']:%Y-%m-%d %H:%M:%S}", b["reason"], b["remedy"]]
            for b in report["blockers"]
        ],
    )


def _confirm_downgrade(url: str, current: str | None, target: str, yes: bool) -> int:
    n = migrations.count_customers(url)
    note(f"downgrading {current} -> {target} deletes all {n} Customer(s); projects are kept")
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("refusing to downgrade without confirmation: not a terminal; pass --yes")
        answer = input(f"Delete {n} Customer(s) and downgrade to {target}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise CliError("downgrade cancelled; nothing changed")
    return n


def _actor_as_session_option() -> None:
    """yoyo runs the migrations in its own transactions: name the actor for the whole session."""
    value = actor().replace("\\", "\\\\").replace(" ", "\\ ")
    os.environ["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} -c hierarchy.actor={value}".strip()


# -- status ---------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    report: dict = {"database": "unreachable", "release": None, "latest": migrations.LATEST, "error": None}
    try:
        url = connect_target(settings)
        report["url"] = migrations.redact(url)
        report["release"] = migrations.current_release(url)
        report["database"] = "ok"
        release = releases.get(report["release"])
        if release is not None and release.customers:
            report["releases_sharing_schema"] = releases.sharing_schema(release.schema)
            with database(url) as conn, transaction(conn):
                report.update(_customer_status(conn, release))
    except (migrations.MigrationError, CliError) as exc:
        report["error"] = str(exc)
    except psycopg.Error as exc:
        report["error"] = _db_message(exc)
    except Exception as exc:  # embedded cluster could not start, etc.
        report["error"] = _one_line(exc)
    emit(args, report, _print_status)
    if report["database"] != "ok" or report["release"] is None or report["error"]:
        return EXIT_PROBLEM
    return EXIT_PROBLEM if report.get("orphans", {}).get("overdue") else EXIT_OK


def _customer_status(conn: psycopg.Connection, release: releases.Release) -> dict:
    counts = one(conn, "orphan_counts")
    cron = bool(one(conn, "cron_table_exists")["present"]) and bool(one(conn, "cron_scheduled")["scheduled"])
    scheduler = "pg_cron" if cron else "service" if release.job_runs else "none"
    runs = rows(conn, "list_runs", limit=5, offset=0)
    return {
        "mode": "per_project" if one(conn, "mode")["per_project"] else "single",
        "scheduler": scheduler,
        "pg_cron_scheduled": cron,
        "grace_seconds": counts["grace_seconds"],
        "orphans": {k: counts[k] for k in ("total", "in_grace", "overdue")},
        "last_runs": [{k: v for k, v in r.items() if k != "total"} for r in runs],
    }


def _print_status(report: dict) -> None:
    release = report["release"] or "not initialised (run `hierarchy migrate`)"
    if len(report.get("releases_sharing_schema", [])) > 1:
        release = _schema_of(report["release"])
    if report["release"] and report["release"] != report["latest"]:
        release += (
            f" (latest is {report['latest']}: `hierarchy migrate --to {report['latest']} --dry-run` "
            "checks what blocks it)"
        )
    items = [("database", report["database"]), ("url", report.get("url")), ("release", release)]
    if "mode" in report:
        orphans = report["orphans"]
        schedule = {
            "pg_cron": "pg_cron job reconcile-customers, every minute",
            "service": "not in pg_cron: `hierarchy run` runs the job every RECONCILE_INTERVAL seconds",
            "none": f"none: at release {report['release']} every project keeps its customer, no job runs",
        }[report["scheduler"]]
        items += [
            ("mode", report["mode"]),
            ("schedule", schedule),
            ("grace period", f"{report['grace_seconds']} s"),
            (
                "orphans",
                f"{orphans['total']} ({orphans['in_grace']} in their grace period, "
                f"{orphans['overdue']} overdue)",
            ),
        ]
    if report["error"]:
        items.append(("error", report["error"]))
    pairs(None, [(k, v) for k, v in items if v is not None])
    if report.get("last_runs"):
        table(
            "last job runs",
            ["id", "source", "started", "created", "associated", "waiting", "outcome"],
            [
                [
                    r["id"],
                    r["source"],
                    f"{r['started']:%Y-%m-%d %H:%M:%S}",
                    r["customers_created"],
                    r["projects_associated"],
                    r["orphans_waiting"],
                    _outcome(r),
                ]
                for r in report["last_runs"]
            ],
        )


def _outcome(run: dict) -> str:
    if run["error"]:
        return f"failed: {run['error']}"
    return "skipped (locked)" if run["skipped"] else "dry run" if run["dry_run"] else "ok"


# -- reconcile ------------------------------------------------------------------------------------
def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    url = connect_target(settings)
    release = need_release(url, releases.FIRST_WITH_CUSTOMERS)
    if release.customers_final:
        result = {
            "release": release.name,
            "nothing_to_reconcile": True,
            "detail": f"nothing to reconcile: at release {release.name} every project keeps its customer "
            "for good, so there are no orphans and the job does not run",
        }
        emit(args, result, lambda r: print(r["detail"]))
        return EXIT_OK
    with database(url) as conn:
        if args.dry_run:
            with transaction(conn):
                result = one(conn, "reconcile", dry_run=True, force=args.force)["result"]
            emit(args, result, _print_plan)
        else:
            result = _reconcile(conn, args.force, args.batch_size)
            emit(args, result, _print_summary)
    if result.get("error"):
        raise CliError(f"the job failed and changed nothing: {result['error']}")
    if result.get("orphans_unresolved"):
        note(
            f"hierarchy: {result['orphans_unresolved']} due orphan(s) could not be homed; "
            "see `hierarchy audit orphans`"
        )
        return EXIT_PROBLEM
    return EXIT_OK


def _reconcile(conn: psycopg.Connection, force: bool, batch_size: int) -> dict:
    """Batches of at most batch_size orphans, each its own transaction, until one homes nothing."""
    runs: list[dict] = []
    with progress("homing orphans") as bar:
        while True:
            with transaction(conn):
                run = one(conn, "reconcile_batch", force=force, batch_size=batch_size)["result"]
            runs.append(run)
            if len(runs) == 1:
                bar.size(run.get("projects_associated", 0) + run.get("orphans_due_remaining", 0))
            bar.advance(run.get("projects_associated", 0))
            if run.get("error") or run.get("skipped") or not run.get("projects_associated"):
                return _sum_runs(runs)


def _sum_runs(runs: list[dict]) -> dict:
    total = dict(runs[-1])
    for key in ("customers_created", "projects_associated", "customers_renamed"):
        total[key] = sum(r.get(key, 0) for r in runs)
    total["runs"] = len(runs)
    total["run_ids"] = [r.get("run_id") for r in runs]
    return total


def _print_summary(result: dict) -> None:
    pairs(
        "reconcile",
        [
            ("mode", result.get("mode")),
            ("customers created", result.get("customers_created")),
            ("projects associated", result.get("projects_associated")),
            ("customers renamed", result.get("customers_renamed")),
            ("orphans waiting", result.get("orphans_waiting")),
            ("orphans unresolved", result.get("orphans_unresolved")),
            ("job runs", result.get("runs")),
        ],
    )


def _print_plan(result: dict) -> None:
    planned = result.get("planned") or []
    if not planned:
        print("dry run: nothing to do (no due orphans)")
        return
    table(
        "planned changes (dry run: nothing changed)",
        ["project", "customer", "action", "reason"],
        [[p["project_name"], p["customer_name"], p["action"], p["reason"]] for p in planned],
    )
    if result.get("planned_total", 0) > len(planned):
        print(f"showing the first {len(planned)} of {result['planned_total']} planned changes")
    print(
        f"would create {result['customers_created']} customer(s) and associate "
        f"{result['projects_associated']} project(s)"
    )


# -- tunable --------------------------------------------------------------------------------------
def cmd_tunable_get(args: argparse.Namespace, settings: Settings) -> int:
    url = connect_target(settings)
    need_release(url, releases.FIRST)
    with database(url) as conn, transaction(conn):
        found = [_tunable(conn, args.name)] if args.name else rows(conn, "tunables", limit=None, offset=0)
    found = [{k: v for k, v in t.items() if k != "total"} for t in found]
    emit(args, found[0] if args.name else found, lambda _: _print_tunables(found))
    return EXIT_OK


def cmd_tunable_set(args: argparse.Namespace, settings: Settings) -> int:
    value = parse_value(args.value)
    url = connect_target(settings)
    release = need_release(url, releases.FIRST)
    with database(url) as conn, transaction(conn):
        _tunable(conn, args.name)
        row = one(conn, "tunable_set", name=args.name, value=value)
    emit(args, row, lambda r: _print_tunables([r]))
    if args.name == MODE_TUNABLE and release.customers_final:
        note(f"at release {release.name} associations are final: the mode only matters after a downgrade")
    elif args.name == MODE_TUNABLE:
        note(
            "the job ran in the same transaction; associations already made are kept "
            "(`hierarchy switch-mode` also moves the projects of auto-created customers)"
        )
    return EXIT_OK


def parse_value(text: str) -> str:
    """VALUE as JSON text (``true``, ``120``); anything that is not JSON is taken as a JSON string,
    so the database's type check gives its own message."""
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return json.dumps(text)


def _tunable(conn: psycopg.Connection, name: str) -> dict:
    row = one(conn, "tunable", name=name)
    if row is None:
        known = ", ".join(t["name"] for t in rows(conn, "tunables", limit=None, offset=0))
        raise CliError(f"unknown tunable '{name}'; known: {known}")
    return row


def _print_tunables(found: list[dict]) -> None:
    table(
        None,
        ["name", "value", "type", "range", "modified", "by", "description"],
        [
            [
                t["name"],
                json.dumps(t["value"]),
                t["value_type"],
                _range(t),
                f"{t['modified']:%Y-%m-%d %H:%M:%S}",
                t["modified_by"],
                t["description"],
            ]
            for t in found
        ],
    )


def _range(tunable: dict) -> str:
    low, high = tunable.get("minimum"), tunable.get("maximum")
    if low is None and high is None:
        return ""
    return f"{'' if low is None else low}..{'' if high is None else high}"


# -- audit orphans --------------------------------------------------------------------------------
def cmd_audit_orphans(args: argparse.Namespace, settings: Settings) -> int:
    url = connect_target(settings)
    need_release(url, releases.FIRST_WITH_CUSTOMERS)
    with database(url) as conn, transaction(conn):
        if args.org is not None and one(conn, "org_by_name", name=args.org) is None:
            raise CliError(f"no org named '{args.org}'")
        found = rows(conn, "orphans", org=args.org)
    emit(args, found, _print_orphans)
    if found:
        note(f"hierarchy: {len(found)} orphaned project(s); `hierarchy reconcile --force` homes them now")
        return EXIT_PROBLEM
    return EXIT_OK


def _print_orphans(found: list[dict]) -> None:
    if not found:
        print("no orphaned projects: every project has a customer")
        return
    table(
        "orphaned projects (no customer)",
        ["org", "project", "uuid", "orphaned at", "state"],
        [
            [
                o["org_name"],
                o["name"],
                o["uuid"],
                f"{o['orphaned_at']:%Y-%m-%d %H:%M:%S}" if o["orphaned_at"] else "never associated",
                "due: the next job run homes it" if o["past_grace"] else "in its grace period",
            ]
            for o in found
        ],
    )


# -- switch-mode ----------------------------------------------------------------------------------
def cmd_switch_mode(args: argparse.Namespace, settings: Settings) -> int:
    url = connect_target(settings)
    release = need_release(url, releases.FIRST_WITH_CUSTOMERS)
    if release.customers_final:
        raise CliError(
            f"associations are final from release {release.name}: a mode switch would move projects; nothing "
            f"changed (downgrade with `hierarchy migrate --to {releases.FIRST_WITH_CUSTOMERS}` to regroup)"
        )
    with database(url) as conn, transaction(conn):
        result = one(conn, "switch_mode", per_project=args.per_project, dry_run=args.dry_run)["result"]
    emit(args, result, _print_switch)
    return EXIT_OK


def _print_switch(result: dict) -> None:
    mode = "a customer per project" if result["per_project"] else "one default customer per org"
    title = f"switch to {mode}" + (" (dry run: nothing changed)" if result["dry_run"] else "")
    pairs(
        title,
        [
            ("customers dissolved", result["customers_dissolved"]),
            ("projects freed", result["projects_freed"]),
            ("customers created", result["customers_created"]),
            ("projects associated", result["projects_associated"]),
            ("orphans waiting", result["orphans_waiting"]),
        ],
    )
    if result["dry_run"]:
        _print_switch_plan(result)


def _print_switch_plan(result: dict) -> None:
    """What the dry run would change: the projects it moves and the customers it dissolves."""
    moves = [
        [m["org_name"], m["project_name"], m["from_customer_name"] or "(orphan)", m["to"], m["reason"]]
        for m in result["moves"]
    ]
    dissolved = [[d["name"], d["origin"], d["projects"]] for d in result["dissolved"]]
    for title, columns, found, total in (
        (
            "projects it would move",
            ["org", "project", "from customer", "to customer", "why"],
            moves,
            result["moves_total"],
        ),
        (
            "customers it would dissolve",
            ["customer", "origin", "projects"],
            dissolved,
            result["dissolved_total"],
        ),
    ):
        if not found:
            print(f"{title}: none")
            continue
        table(title, columns, found)
        if total > len(found):
            print(f"showing the first {len(found)} of {total} {title}")


# -- user -----------------------------------------------------------------------------------------
def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    from service import users

    password = read_password(args.password_stdin)
    url = connect_target(settings)
    need_release(url, releases.FIRST)
    with database(url) as conn, transaction(conn):
        org = _org(conn, args.org)
        try:
            row = users.create_user(conn, args.email, password, org["uuid"], args.role)
        except errors.UniqueViolation:
            raise CliError(f"a user with email {args.email} already exists") from None
        except errors.CheckViolation:
            raise CliError(
                f"'{args.email}' is not an email address (name@domain, at most 254 characters)"
            ) from None
    row["org_name"] = org["name"]
    emit(args, row, lambda r: print(f"created {r['role']} {r['email']} in org {r['org_name']} ({r['uuid']})"))
    return EXIT_OK


def read_password(from_stdin: bool) -> str:
    """The new user's password: one line of stdin, or asked twice on a terminal."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the passwords differ; nothing changed", EXIT_USAGE)
    else:
        raise CliError("no password: pipe it in with --password-stdin, or run on a terminal", EXIT_USAGE)
    low, high = PASSWORD_LENGTH
    if not low <= len(password) <= high:
        raise CliError(f"the password must have {low} to {high} characters", EXIT_USAGE)
    return password


def _org(conn: psycopg.Connection, name: str | None) -> dict:
    if name is None:
        first = one(conn, "first_org")
        if first is None:
            raise CliError("no org exists: run `hierarchy migrate`")
        return next(
            o
            for o in rows(conn, "orgs", all_orgs=True, user_org=None, limit=None, offset=0)
            if o["uuid"] == first["uuid"]
        )
    org = one(conn, "org_by_name", name=name)
    if org is None:
        raise CliError(f"no org named '{name}'")
    return org


def cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    url = connect_target(settings)
    need_release(url, releases.FIRST)
    with database(url) as conn, transaction(conn):
        names = {
            o["uuid"]: o["name"]
            for o in rows(conn, "orgs", all_orgs=True, user_org=None, limit=None, offset=0)
        }
        found = rows(conn, "users", limit=None, offset=0)
    found = [{**{k: v for k, v in u.items() if k != "total"}, "org_name": names.get(u["org"])} for u in found]
    emit(
        args,
        found,
        lambda us: table(
            None,
            ["email", "role", "org", "active", "created", "uuid"],
            [
                [
                    u["email"],
                    u["role"],
                    u["org_name"],
                    "yes" if u["is_active"] else "no",
                    f"{u['created']:%Y-%m-%d %H:%M:%S}",
                    u["uuid"],
                ]
                for u in us
            ],
        ),
    )
    return EXIT_OK


# -- the parser -----------------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _command(sub, name: str, func: Callable, help: str, example: str, **kwargs) -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout, for scripts")
    p = sub.add_parser(
        name,
        help=help,
        description=help,
        parents=[common],
        epilog=_example(example),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    p.set_defaults(func=func)
    return p


def _example(text: str) -> str:
    return "example:\n  " + text.replace("\n", "\n  ")


def _group(sub, name: str, help: str, example: str) -> argparse._SubParsersAction:
    p = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=_example(example),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return p.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hierarchy",
        description="Customer parallel hierarchy service: run, migrate, inspect.",
        epilog="exit codes: 0 done, 1 failed, 2 bad usage, 3 found a problem\n"
        "example:\n  DATABASE_URL=postgresql://u:p@db/config hierarchy status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(
        sub,
        "run",
        cmd_run,
        "migrate to the newest release, ensure the admin user, serve the API",
        "hierarchy run --host 0.0.0.0 --port 8080",
    )
    p.add_argument("--host", help="listen address (default HIERARCHY_HOST or 127.0.0.1)")
    p.add_argument("--port", type=_port, help="listen port (default HIERARCHY_PORT or 8080)")
    p.add_argument(
        "--to",
        metavar="RELEASE",
        help=f"upgrade to this release first (default {migrations.LATEST}; never downgrades)",
    )

    p = _command(
        sub,
        "migrate",
        cmd_migrate,
        "upgrade or downgrade the schema to a release",
        "hierarchy migrate --to 6.4 --dry-run   # the pre-upgrade check (exit 3: blocked)\n"
        "hierarchy migrate                  # to the newest release\n"
        "hierarchy migrate --to 6.0 --yes   # downgrade: deletes every Customer",
    )
    p.add_argument(
        "--to",
        metavar="RELEASE",
        help=f"target release ({', '.join(migrations.RELEASES)}; default {migrations.LATEST})",
    )
    p.add_argument("--yes", action="store_true", help="do not ask before a downgrade")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show the steps and what blocks an upgrade (exit 3 when blocked); change nothing",
    )
    p.add_argument(
        "--break-lock",
        action="store_true",
        help="remove a stale migration lock left by a killed migration, then migrate",
    )
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for another migration's lock (default 10)",
    )

    _command(
        sub,
        "status",
        cmd_status,
        "release, schedule, last job runs, orphans (exit 3: no usable database or overdue orphans)",
        "hierarchy status --json | jq .orphans",
    )

    p = _command(
        sub,
        "reconcile",
        cmd_reconcile,
        "run the background job now (exit 3: orphans it could not home)",
        "hierarchy reconcile --dry-run          # the planned changes, nothing changed\n"
        "hierarchy reconcile --force            # also orphans within their grace period",
    )
    p.add_argument("--dry-run", action="store_true", help="show the planned changes; change nothing")
    p.add_argument("--force", action="store_true", help="ignore the orphans' grace period")
    p.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"home at most N orphans per transaction (default {DEFAULT_BATCH_SIZE})",
    )

    tunable = _group(sub, "tunable", "read or change a tunable", f"hierarchy tunable set {MODE_TUNABLE} true")
    p = _command(
        tunable,
        "get",
        cmd_tunable_get,
        "show one tunable, or all of them",
        "hierarchy tunable get customer_orphan_grace_seconds",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the tunable (default: all)")
    p = _command(
        tunable,
        "set",
        cmd_tunable_set,
        "change a tunable; VALUE is JSON (true, false, 120)",
        "hierarchy tunable set customer_orphan_grace_seconds 300",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("value", metavar="VALUE")

    audit = _group(sub, "audit", "audits before a later upgrade", "hierarchy audit orphans")
    p = _command(
        audit,
        "orphans",
        cmd_audit_orphans,
        "projects without a customer, per org (exit 3 when there is any)",
        "hierarchy audit orphans --org hydrolix || hierarchy reconcile --force",
    )
    p.add_argument("--org", metavar="NAME", help="only this org")

    p = _command(
        sub,
        "switch-mode",
        cmd_switch_mode,
        "switch customer mode in one atomic step (both documented manual transitions)",
        "hierarchy switch-mode --per-project --dry-run\nhierarchy switch-mode --single",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--per-project",
        dest="per_project",
        action="store_const",
        const=True,
        help="a customer of its own for every project (tunable true)",
    )
    mode.add_argument(
        "--single",
        dest="per_project",
        action="store_const",
        const=False,
        help="one default customer per org (tunable false)",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")

    user = _group(sub, "user", "users of the API", "hierarchy user list")
    p = _command(
        user,
        "create",
        cmd_user_create,
        "create a user (asks for the password on a terminal)",
        "hierarchy user create --email ops@example.com --role operator   # asks twice\n"
        "printf '%s\\n' \"$PW\" | hierarchy user create --email ci@example.com --role read_only "
        "--password-stdin",
    )
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=("super_admin", "operator", "read_only"))
    p.add_argument("--org", metavar="NAME", help="the user's org (default: the first org)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    _command(user, "list", cmd_user_list, "list users", "hierarchy user list --json")
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range (1..65535)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 1 <= value <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range (1..{2**31 - 1})")
    return value


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(os.environ.get("HIERARCHY_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not (args.verbose or debug):
        logging.getLogger("yoyo").setLevel(logging.WARNING)
    try:
        return args.func(args, Settings.from_env())
    except KeyboardInterrupt:
        note("interrupted")
        return 130
    except (CliError, migrations.MigrationError, SettingsError) as exc:
        _fail(debug, str(exc))
        return getattr(exc, "exit_code", EXIT_FAILED)
    except psycopg.Error as exc:
        _fail(debug, f"the database refused: {_db_message(exc)}")
        return EXIT_FAILED
    except Exception as exc:
        from service.embedded import EmbeddedError

        if isinstance(exc, EmbeddedError):
            _fail(debug, _one_line(exc))
        else:
            _fail(
                debug,
                f"unexpected {type(exc).__name__}: {_one_line(exc)} (set HIERARCHY_DEBUG=1 for a traceback)",
            )
        return EXIT_FAILED


def _fail(debug: bool, message: str) -> None:
    if debug:
        traceback.print_exc()
    note(f"hierarchy: {message}")


if __name__ == "__main__":
    sys.exit(main())
