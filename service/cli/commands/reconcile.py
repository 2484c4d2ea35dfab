"""``hierarchy reconcile``: run the background job now, in batches, with a progress bar.

Exit 3 when due orphans are left that the job could not home.
"""

from __future__ import annotations

from service import releases
from service.cli.context import Context
from service.cli.errors import EXIT_OK, EXIT_PROBLEM, CliError
from service.cli.parser import command, positive
from service.queries import query

SQL = {"reconcile": query("cli.reconcile"), "reconcile_batch": query("cli.reconcile_batch")}
DEFAULT_BATCH_SIZE = 10_000


def add_to(sub) -> None:
    p = command(
        sub,
        "reconcile",
        reconcile,
        "run the background job now (exit 3: orphans it could not home)",
        "hierarchy reconcile --dry-run          # the planned changes, nothing changed\n"
        "hierarchy reconcile --force            # also orphans within their grace period",
    )
    p.add_argument("--dry-run", action="store_true", help="show the planned changes; change nothing")
    p.add_argument("--force", action="store_true", help="ignore the orphans' grace period")
    p.add_argument(
        "--batch-size",
        type=positive,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"home at most N orphans per transaction (default {DEFAULT_BATCH_SIZE})",
    )


def reconcile(ctx: Context, args) -> int:
    out = ctx.output
    url, release = ctx.need_release(releases.FIRST_WITH_CUSTOMERS)
    if release.customers_final:
        result = {
            "release": release.name,
            "nothing_to_reconcile": True,
            "detail": f"nothing to reconcile: at release {release.name} every project keeps its customer "
            "for good, so there are no orphans and the job does not run",
        }
        out.emit(result, lambda r: out.print(r["detail"]))
        return EXIT_OK
    with ctx.connection(url) as conn:
        if args.dry_run:
            with ctx.transaction(conn) as db:
                result = db.one(SQL["reconcile"], dry_run=True, force=args.force)["result"]
            out.emit(result, lambda r: _print_plan(ctx, r))
        else:
            result = _in_batches(ctx, conn, args.force, args.batch_size)
            out.emit(result, lambda r: _print_summary(ctx, r))
    if result.get("error"):
        raise CliError(f"the job failed and changed nothing: {result['error']}")
    if result.get("orphans_unresolved"):
        out.note(
            f"hierarchy: {result['orphans_unresolved']} due orphan(s) could not be homed; "
            "see `hierarchy audit orphans`"
        )
        return EXIT_PROBLEM
    return EXIT_OK


def _in_batches(ctx: Context, conn, force: bool, batch_size: int) -> dict:
    """Batches of at most batch_size orphans, each its own transaction, until one homes nothing."""
    runs: list[dict] = []
    with ctx.output.progress("homing orphans") as bar:
        while True:
            with ctx.transaction(conn) as db:
                run = db.one(SQL["reconcile_batch"], force=force, batch_size=batch_size)["result"]
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


def _print_summary(ctx: Context, result: dict) -> None:
    ctx.output.pairs(
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


def _print_plan(ctx: Context, result: dict) -> None:
    out = ctx.output
    planned = result.get("planned") or []
    if not planned:
        out.print("dry run: nothing to do (no due orphans)")
        return
    out.table(
        "planned changes (dry run: nothing changed)",
        ["project", "customer", "action", "reason"],
        [[p["project_name"], p["customer_name"], p["action"], p["reason"]] for p in planned],
    )
    if result.get("planned_total", 0) > len(planned):
        out.print(f"showing the first {len(planned)} of {result['planned_total']} planned changes")
    out.print(
        f"would create {result['customers_created']} customer(s) and associate "
        f"{result['projects_associated']} project(s)"
    )
