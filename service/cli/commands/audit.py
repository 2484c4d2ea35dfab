"""``hierarchy audit orphans``: projects without a customer, per org (exit 3 when there is any)."""

from __future__ import annotations

from service import releases
from service.cli.context import Context
from service.cli.errors import EXIT_OK, EXIT_PROBLEM, CliError
from service.cli.parser import command, group
from service.queries import query

SQL = {"orphans": query("cli.orphans"), "org_by_name": query("cli.org_by_name")}


def add_to(sub) -> None:
    audit = group(sub, "audit", "audits before a later upgrade", "hierarchy audit orphans")
    p = command(
        audit,
        "orphans",
        orphans,
        "projects without a customer, per org (exit 3 when there is any)",
        "hierarchy audit orphans --org hydrolix || hierarchy reconcile --force",
    )
    p.add_argument("--org", metavar="NAME", help="only this org")


def orphans(ctx: Context, args) -> int:
    with ctx.database(releases.FIRST_WITH_CUSTOMERS) as db:
        if args.org is not None and db.one(SQL["org_by_name"], name=args.org) is None:
            raise CliError(f"no org named '{args.org}'")
        found = db.all(SQL["orphans"], org=args.org)
    ctx.output.emit(found, lambda f: _print(ctx, f))
    if found:
        ctx.output.note(
            f"hierarchy: {len(found)} orphaned project(s); `hierarchy reconcile --force` homes them now"
        )
        return EXIT_PROBLEM
    return EXIT_OK


def _print(ctx: Context, found: list[dict]) -> None:
    if not found:
        ctx.output.print("no orphaned projects: every project has a customer")
        return
    ctx.output.table(
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
