"""Where a command's output goes: one :class:`Output` per invocation, injected by ``main``.

stdout carries the result: a table for people (rich), or with ``--json`` one JSON document and
nothing else. Notes, progress and errors go to stderr. Tests hand ``main`` two ``StringIO``s and
read them; the console script hands it ``sys.stdout``/``sys.stderr``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

WIDE = 200  # columns of a table that is not on a terminal: piped tables keep their cells


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


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


@dataclass
class Output:
    """stdout and stderr of one command, and whether it prints JSON."""

    out: TextIO
    err: TextIO
    json: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)

    # -- results on stdout -------------------------------------------------------------------
    def emit(self, data: Any, human: Callable[[Any], None], indent: int | None = 2) -> None:
        """``--json``: one JSON document on stdout; otherwise ``human(data)`` draws it for people."""
        if self.json:
            json.dump(data, self.out, indent=indent, default=_json_default)
            self.out.write("\n")
        else:
            human(data)

    def print(self, text: str) -> None:
        print(text, file=self.out)

    def table(self, title: str | None, columns: list[str], body: list[list[Any]]) -> None:
        from rich.table import Table

        t = Table(title=title, title_justify="left")
        for column in columns:
            t.add_column(column)
        for row in body:
            t.add_row(*("" if v is None else str(v) for v in row))
        self._console().print(t)

    def lists(self, sections: list[tuple[str, list[str], list[list[Any]], int]]) -> None:
        """A dry run's lists: for each (title, columns, first rows, total) a table, "none" when
        empty, and a line saying how many of the total it shows when that is fewer."""
        for title, columns, found, total in sections:
            if not found:
                self.print(f"{title}: none")
                continue
            self.table(title, columns, found)
            if total > len(found):
                self.print(f"showing the first {len(found)} of {total} {title}")

    def pairs(self, title: str | None, items: list[tuple[str, Any]]) -> None:
        from rich.table import Table

        t = Table(show_header=False, box=None)
        for key, value in items:
            t.add_row(key, "" if value is None else str(value))
        if title:
            self._console().print(title)
        self._console().print(t)

    def _console(self):
        from rich.console import Console

        width = None if self.out.isatty() or self.environ.get("COLUMNS") else WIDE
        return Console(file=self.out, highlight=False, width=width)

    # -- notes and progress on stderr ---------------------------------------------------------
    def note(self, message: str) -> None:
        print(message, file=self.err)

    @property
    def on_terminal(self) -> bool:
        """Whether stderr is a terminal (progress bars) rather than a log or a pipe."""
        return self.err.isatty()

    @contextlib.contextmanager
    def progress(self, description: str) -> Iterator[_NoBar | _Bar]:
        """A rich progress bar on stderr when it is a terminal (sized once the total is known)."""
        if not self.on_terminal:
            yield _NoBar()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        with self.bar(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as bar:
            yield _Bar(bar, bar.add_task(description, total=None))

    def bar(self, *columns, **options):
        """A rich Progress on stderr with these columns."""
        from rich.console import Console
        from rich.progress import Progress

        return Progress(*columns, console=Console(file=self.err), **options)
