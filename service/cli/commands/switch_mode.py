"""``hierarchy switch-mode``: both documented manual transitions in one atomic step (rule 9)."""

from __future__ import annotations

from service.cli.context import Context
from service.cli.errors import EXIT_OK
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
    with ctx.database("6.1") as db:
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
