"""The ``hierarchy`` command line.

One function per subcommand (``cmd_<name>``), registered in ``build_parser``. Every subcommand
gets its database through ``connect_target``: ``DATABASE_URL`` when set, otherwise the embedded
cluster under ``HIERARCHY_DATA_DIR`` (started if needed, stopped on exit if this process started
it).

Exit codes: 0 done, 1 failed, 2 bad usage (argparse), 3 problem found (``status``: database
unreachable or schema not initialised). Every error is one line on stderr; set
``HIERARCHY_DEBUG=1`` for a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback

from service import migrations
from service.settings import Settings, SettingsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PROBLEM = 0, 1, 2, 3

log = logging.getLogger("hierarchy")


class CliError(Exception):
    """A one-line error for the operator."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def _progress_migrate(url: str, to: str | None, lock_timeout: float = 10.0) -> list:
    """migrate() with a rich progress bar on a terminal, one line per step otherwise."""
    if not _stderr_is_tty():
        def on_step(ev: migrations.StepEvent) -> None:
            if ev.finished:
                print(f"{ev.direction} {ev.migration_id}: done in {ev.seconds:.2f} s", file=sys.stderr)

        return migrations.migrate(url, to, on_step=on_step, lock_timeout=lock_timeout)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        task = None

        def on_step(ev: migrations.StepEvent) -> None:
            nonlocal task
            if task is None:
                task = progress.add_task("migrating", total=ev.total)
            verb = "applying" if ev.direction == "apply" else "rolling back"
            if ev.finished:
                progress.update(task, advance=1, description=f"{ev.migration_id} done")
            else:
                progress.update(task, description=f"{verb} {ev.migration_id}")

        return migrations.migrate(url, to, on_step=on_step, lock_timeout=lock_timeout)


# -- subcommands ----------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    url = connect_target(settings)
    steps = _progress_migrate(url, None)
    release = migrations.current_release(url)
    print(f"database at release {release}" + (f" ({len(steps)} migration steps run)" if steps else ""),
          file=sys.stderr)
    # The app reads its database from here (see service.app); same process, no reload.
    os.environ["HIERARCHY_DATABASE_URL"] = url
    host = args.host or settings.host
    port = args.port or settings.port
    try:
        uvicorn.run("service.app:create_app", factory=True, host=host, port=port, log_level="info")
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    target = migrations.check_release(args.to)
    url = connect_target(settings)
    if args.break_lock:
        holder = migrations.break_lock(url)
        print(f"removed the migration lock ({holder})" if holder else "there was no migration lock",
              file=sys.stderr)
    current = migrations.current_release(url)
    steps = migrations.plan(url, target)
    if not steps:
        print(f"already at release {target}; nothing to do")
        return EXIT_OK
    if any(direction == "rollback" for direction, _ in steps):
        n = migrations.count_customers(url)
        print(
            f"downgrading {current} -> {target} deletes all {n} Customer(s); projects are kept",
            file=sys.stderr,
        )
        if not args.yes:
            if not sys.stdin.isatty():
                raise CliError("refusing to downgrade without confirmation: not a terminal; pass --yes")
            answer = input(f"Delete {n} Customer(s) and downgrade to {target}? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                raise CliError("downgrade cancelled; nothing changed")
    _progress_migrate(url, target, args.lock_timeout)
    print(f"database at release {migrations.current_release(url)}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    report: dict = {"database": "unreachable", "release": None, "latest": migrations.LATEST, "error": None}
    try:
        url = connect_target(settings)
        report["url"] = migrations.redact(url)
        report["release"] = migrations.current_release(url)
        report["database"] = "ok"
    except (migrations.MigrationError, CliError) as exc:
        report["error"] = str(exc)
    except Exception as exc:  # embedded cluster could not start, etc.
        report["error"] = _one_line(exc)
    problem = report["database"] != "ok" or report["release"] is None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_status(report)
    return EXIT_PROBLEM if problem else EXIT_OK


def _print_status(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_row("database", report["database"])
    if report.get("url"):
        table.add_row("url", report["url"])
    release = report["release"] or "not initialised (run `hierarchy migrate`)"
    if report["release"] and report["release"] != report["latest"]:
        release += f" (latest is {report['latest']}: run `hierarchy migrate`)"
    table.add_row("release", release)
    if report["error"]:
        table.add_row("error", report["error"])
    Console().print(table)


# -- plumbing -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hierarchy", description="Customer parallel hierarchy service: run, migrate, inspect."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="migrate to the newest release and serve the API")
    p.add_argument("--host", help="listen address (default HIERARCHY_HOST or 127.0.0.1)")
    p.add_argument("--port", type=_port, help="listen port (default HIERARCHY_PORT or 8080)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("migrate", help="upgrade or downgrade the schema to a release")
    p.add_argument("--to", metavar="RELEASE", help=f"target release ({', '.join(migrations.RELEASES)}; "
                   f"default {migrations.LATEST})")
    p.add_argument("--yes", action="store_true", help="do not ask before a downgrade")
    p.add_argument("--break-lock", action="store_true",
                   help="remove a stale migration lock left by a killed migration, then migrate")
    p.add_argument("--lock-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for another migration's lock (default 10)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("status", help="database reachability and schema release")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range (1..65535)")
    return value


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(os.environ.get("HIERARCHY_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not (args.verbose or debug):
        logging.getLogger("yoyo").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        return args.func(args, settings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CliError, migrations.MigrationError, SettingsError) as exc:
        print(f"hierarchy: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_FAILED)
    except Exception as exc:
        from service.embedded import EmbeddedError

        if debug:
            traceback.print_exc()
        if isinstance(exc, EmbeddedError):
            print(f"hierarchy: {_one_line(exc)}", file=sys.stderr)
        else:
            print(f"hierarchy: unexpected {type(exc).__name__}: {_one_line(exc)} "
                  "(set HIERARCHY_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
