"""``hierarchy switch-mode``: both documented manual transitions in one atomic step (rule 9)."""

from __future__ import annotations

from service import releases
from service.cli.context import Context
from service.cli.errors import EXIT_OK, CliError
from service.cli.parser import command
from service.queries import query

SWITCH_MODE = query("jobs.switch_mode")


def add_to(sub) -> None:
    p = command(
        sub,
        "switch-mode",
        switch_mode,
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


def switch_mode(ctx: Context, args) -> int:
    url, release = ctx.need_release(releases.FIRST_WITH_CUSTOMERS)
    if release.customers_final:
        raise CliError(
            f"associations are final from release {release.name}: a mode switch would move projects; nothing "
            f"changed (downgrade with `hierarchy migrate --to {releases.FIRST_WITH_CUSTOMERS}` to regroup)"
        )
    with ctx.connection(url) as conn, ctx.transaction(conn) as db:
        result = db.one(SWITCH_MODE, per_project=args.per_project, dry_run=args.dry_run)["result"]
    ctx.output.emit(result, lambda r: _print(ctx, r))
    return EXIT_OK


def _print(ctx: Context, result: dict) -> None:
    mode = "a customer per project" if result["per_project"] else "one default customer per org"
    title = f"switch to {mode}" + (" (dry run: nothing changed)" if result["dry_run"] else "")
    ctx.output.pairs(
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
        _print_plan(ctx, result)


def _print_plan(ctx: Context, result: dict) -> None:
    """What the dry run would change: the projects it moves and the customers it dissolves."""
    out = ctx.output
    moves = [
        [m["org_name"], m["project_name"], m["from_customer_name"] or "(orphan)", m["to"], m["reason"]]
        for m in result["moves"]
    ]
    dissolved = [[d["name"], d["origin"], d["projects"]] for d in result["dissolved"]]
    out.lists(
        [
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
        ]
    )
