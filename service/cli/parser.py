"""The argument parser: ``hierarchy [-v] COMMAND [ACTION] [--json] ...``.

Each module of :mod:`service.cli.commands` adds its own command (``add_to(sub)``) with
:func:`command` / :func:`group`, so a command's arguments sit beside the code that reads them.
Every command and group has ``--help`` with an example; every command takes ``--json``. Bad
usage is one line on stderr and exit 2; help goes to the injected stdout.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TextIO

from service.cli.errors import EXIT_USAGE

INT_MAX = 2**31 - 1


class ParserExit(Exception):
    """argparse finished (help shown, or bad usage reported): main returns ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse that writes to the command's streams and never exits the process."""

    def __init__(self, *args, out: TextIO, err: TextIO, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.out, self.err = out, err

    def print_help(self, file: TextIO | None = None) -> None:
        super().print_help(file or self.out)

    def print_usage(self, file: TextIO | None = None) -> None:
        super().print_usage(file or self.out)

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if message:
            self.err.write(message)
        raise ParserExit(status)

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")

    def subparsers(self, **kwargs) -> argparse._SubParsersAction:
        """Sub-commands that write to the same streams."""
        parser_class = functools.partial(Parser, out=self.out, err=self.err)
        return self.add_subparsers(parser_class=parser_class, required=True, **kwargs)


def _example(text: str) -> str:
    return "example:\n  " + text.replace("\n", "\n  ")


def _add(sub, name: str, help: str, example: str, **kwargs) -> Parser:
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=_example(example),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def command(sub, name: str, func: Callable, help: str, example: str, **kwargs) -> Parser:
    """A command ``name`` run by ``func(ctx, args)``, with ``--json`` and an example in its help."""
    p = _add(sub, name, help, example, **kwargs)
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout, for scripts")
    p.set_defaults(func=func)
    return p


def group(sub, name: str, help: str, example: str) -> argparse._SubParsersAction:
    """A group of commands (``hierarchy tunable get|set``)."""
    return _add(sub, name, help, example).subparsers(dest=f"{name}_command", metavar="ACTION")


def build_parser(out: TextIO, err: TextIO) -> Parser:
    from service.cli.commands import GROUPS

    parser = Parser(
        prog="hierarchy",
        description="Customer parallel hierarchy service: run, migrate, inspect.",
        epilog="exit codes: 0 done, 1 failed, 2 bad usage, 3 found a problem\n"
        "example:\n  DATABASE_URL=postgresql://u:p@db/config hierarchy status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        out=out,
        err=err,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.subparsers(dest="command", metavar="COMMAND")
    for module in GROUPS:
        module.add_to(sub)
    return parser


# -- argument types -------------------------------------------------------------------------------
def _whole_number(text: str, noun: str, low: int, high: int, label: str = "") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not {noun}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{label}{value} is out of range ({low}..{high})")
    return value


def port(text: str) -> int:
    return _whole_number(text, "a port number", 1, 65535, label="port ")


def positive(text: str) -> int:
    return _whole_number(text, "a whole number", 1, INT_MAX)
