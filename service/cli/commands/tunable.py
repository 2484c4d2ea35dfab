"""``hierarchy tunable get|set``: read or change a tunable (the database checks the value)."""

from __future__ import annotations

import json

from service import releases
from service.cli.context import Context
from service.cli.errors import EXIT_OK, CliError
from service.cli.parser import command, group
from service.names import GRACE_TUNABLE, MODE_TUNABLE
from service.queries import SyncDb, query

SQL = {name: query(f"tunables.{name}") for name in ("list", "get", "set")}


def add_to(sub) -> None:
    tunable = group(sub, "tunable", "read or change a tunable", f"hierarchy tunable set {MODE_TUNABLE} true")
    p = command(
        tunable,
        "get",
        get,
        "show one tunable, or all of them",
        f"hierarchy tunable get {GRACE_TUNABLE}",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the tunable (default: all)")
    p = command(
        tunable,
        "set",
        set_,
        "change a tunable; VALUE is JSON (true, false, 120)",
        f"hierarchy tunable set {GRACE_TUNABLE} 300",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("value", metavar="VALUE")


def get(ctx: Context, args) -> int:
    with ctx.database(releases.FIRST) as db:
        found = [_tunable(db, args.name)] if args.name else db.listed(SQL["list"])
    ctx.output.emit(found[0] if args.name else found, lambda _: _print(ctx, found))
    return EXIT_OK


def set_(ctx: Context, args) -> int:
    value = parse_value(args.value)
    url, release = ctx.need_release(releases.FIRST)
    with ctx.connection(url) as conn, ctx.transaction(conn) as db:
        _tunable(db, args.name)
        row = db.one(SQL["set"], name=args.name, value=value)
    ctx.output.emit(row, lambda r: _print(ctx, [r]))
    if args.name == MODE_TUNABLE and release.customers_final:
        ctx.output.note(
            f"at release {release.name} associations are final: the mode only matters after a downgrade"
        )
    elif args.name == MODE_TUNABLE:
        ctx.output.note(
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


def _tunable(db: SyncDb, name: str) -> dict:
    row = db.one(SQL["get"], name=name)
    if row is None:
        known = ", ".join(t["name"] for t in db.listed(SQL["list"]))
        raise CliError(f"unknown tunable '{name}'; known: {known}")
    return row


def _print(ctx: Context, found: list[dict]) -> None:
    ctx.output.table(
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
