"""Exit codes and the one error type a command raises for the operator."""

from __future__ import annotations

EXIT_OK = 0  # done
EXIT_FAILED = 1  # failed: the database refused, is unreachable, ...
EXIT_USAGE = 2  # bad usage: arguments, or input checked before anything is touched
EXIT_PROBLEM = 3  # found a problem (orphans, overdue orphans, no usable database)
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A one-line error for the operator, and the exit code it means."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(exc: BaseException) -> str:
    """The first line of an error: a database error's primary message, else its text or type."""
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag is not None else None) or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
