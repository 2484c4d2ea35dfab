"""The ``hierarchy`` command line (console script ``hierarchy = service.cli:main``).

Where things are:

    service/cli/__init__.py     main(): parse, run one command, map errors to exit codes
    service/cli/errors.py       exit codes and CliError
    service/cli/parser.py       the parser and argument types; each command adds its own arguments
    service/cli/output.py       Output: stdout (tables or --json), stderr (notes, progress bars)
    service/cli/context.py      Context: the database target, release checks, transactions
    service/cli/commands/       one module per command or group:

    run                 migrate to the newest release, ensure the admin, serve     commands/run.py
    migrate             upgrade or downgrade the schema (asks before deleting);    commands/migrate.py
                        --dry-run: the steps and the pre-upgrade check
    status              release, schedule, last job runs, orphans                  commands/status.py
    reconcile           run the background job now, in batches, with a bar         commands/reconcile.py
    tunable get|set     read or change a tunable (the database checks the value)   commands/tunable.py
    audit orphans       projects without a customer, per org                       commands/audit.py
    switch-mode         both documented manual transitions, one atomic step        commands/switch_mode.py
    user create|list    users of the API                                           commands/user.py

Every command reaches ``DATABASE_URL``, or the embedded cluster under ``HIERARCHY_DATA_DIR``.
Every statement is a named block of ``sql/queries/*.sql`` run through ``service.queries.SyncDb``,
the sync face of the query layer the API uses (``cli.sql`` holds those only the CLI runs); each
transaction first sets ``hierarchy.actor`` to ``cli:<OS user>`` so the audit log names the person
(``migrate`` passes it as a session option, since yoyo owns those transactions).

Output: tables for people (rich) on stdout; ``--json`` on every command prints one JSON document
on stdout and nothing else there (notes, progress bars and errors go to stderr). ``main`` takes
its streams, stdin and environment as arguments, so tests run commands in process.

Exit codes: 0 done, 1 failed (the database refused, unreachable, ...), 2 bad usage (arguments,
or input checked before anything is touched), 3 found a problem (orphans in ``audit orphans``;
overdue orphans or no usable database in ``status``; due orphans ``reconcile`` could not home;
blockers of an upgrade in ``migrate --dry-run``, or the upgrade refused by them; likewise users of
several orgs blocking a downgrade below release 6.4's memberships).

Releases come from ``service.releases`` (one table); which commands do what at which release
is a property there (``customers``, ``customers_final``), never a release name here.
Every error is one line on stderr; ``HIERARCHY_DEBUG=1`` adds a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from typing import TextIO

import psycopg

from service import migrations
from service.cli.context import Context, actor
from service.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, CliError, one_line
from service.cli.output import Output
from service.cli.parser import ParserExit, build_parser
from service.settings import Settings, SettingsError

__all__ = ["actor", "main"]


def main(
    argv: list[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run one command; the exit code. Streams and environment default to the process's own."""
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    environ = os.environ if environ is None else environ
    try:
        args = build_parser(out, err).parse_args(argv)
    except ParserExit as done:
        return done.status
    debug = bool(environ.get("HIERARCHY_DEBUG"))
    output = Output(out, err, json=getattr(args, "json", False), environ=environ)
    with _logging_to(err, debug, args.verbose):
        try:
            ctx = Context(Settings.from_env(dict(environ)), output, stdin, environ)
            return args.func(ctx, args)
        except KeyboardInterrupt:
            output.note("interrupted")
            return EXIT_INTERRUPTED
        except (CliError, migrations.MigrationError, SettingsError) as exc:
            _fail(output, debug, str(exc))
            return getattr(exc, "exit_code", EXIT_FAILED)
        except psycopg.Error as exc:
            _fail(output, debug, f"the database refused: {one_line(exc)}")
            return EXIT_FAILED
        except Exception as exc:
            from service.embedded import EmbeddedError

            if isinstance(exc, EmbeddedError):
                _fail(output, debug, one_line(exc))
            else:
                hint = "(set HIERARCHY_DEBUG=1 for a traceback)"
                _fail(output, debug, f"unexpected {type(exc).__name__}: {one_line(exc)} {hint}")
            return EXIT_FAILED


@contextlib.contextmanager
def _logging_to(err: TextIO, debug: bool, verbose: bool) -> Iterator[None]:
    """Log records go to this command's stderr while it runs (warnings only, unless -v or debug)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    before = root.level, logging.getLogger("yoyo").level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    if not (verbose or debug):
        logging.getLogger("yoyo").setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        logging.getLogger("yoyo").setLevel(before[1])


def _fail(output: Output, debug: bool, message: str) -> None:
    if debug:
        traceback.print_exc(file=output.err)
    output.note(f"hierarchy: {message}")


if __name__ == "__main__":
    sys.exit(main())
