"""``hierarchy migrate``: upgrade or downgrade the schema to a release (asks before deleting);
``--dry-run``: the steps and the pre-upgrade check (exit 3 when something blocks the upgrade)."""

from __future__ import annotations

from service import migrations, releases
from service.cli.context import Context
from service.cli.errors import EXIT_OK, EXIT_PROBLEM, CliError
from service.cli.parser import command


def add_to(sub) -> None:
    p = command(
        sub,
        "migrate",
        migrate,
        "upgrade or downgrade the schema to a release",
        "hierarchy migrate --to 6.4 --dry-run   # the pre-upgrade check (exit 3: blocked)\n"
        "hierarchy migrate                  # to the newest release\n"
        "hierarchy migrate --to 6.0 --yes   # downgrade: deletes every Customer",
    )
    p.add_argument(
        "--to",
        metavar="RELEASE",
        help=f"target release ({', '.join(migrations.RELEASES)}; default {migrations.LATEST})",
    )
    p.add_argument("--yes", action="store_true", help="do not ask before a downgrade")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show the steps and what blocks an upgrade (exit 3 when blocked); change nothing",
    )
    p.add_argument(
        "--break-lock",
        action="store_true",
        help="remove a stale migration lock left by a killed migration, then migrate",
    )
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for another migration's lock (default 10)",
    )


def migrate(ctx: Context, args) -> int:
    out = ctx.output
    target = migrations.check_release(args.to)
    url = ctx.url()
    with ctx.actor_as_session_option():
        if args.break_lock:
            holder = migrations.break_lock(url)
            out.note(f"removed the migration lock ({holder})" if holder else "there was no migration lock")
        current = migrations.current_release(url)
        steps = migrations.plan(url, target)
        report = {
            "from": current,
            "release": target,
            "steps": [list(s) for s in steps],
            "customers_deleted": 0,
        }
        if args.dry_run:
            return _dry_run(ctx, url, report)
        if not steps:
            out.emit(report, lambda r: out.print(f"already at release {schema_of(target)}; nothing to do"))
            return EXIT_OK
        if any(direction == "rollback" for direction, _ in steps) and not releases.BY_NAME[target].customers:
            report["customers_deleted"] = _confirm_downgrade(ctx, url, current, target, args.yes)
        migrate_with_progress(ctx, url, target, args.lock_timeout)
    report["release"] = migrations.current_release(url)
    out.emit(report, lambda r: out.print(f"database at release {schema_of(r['release'])}"))
    return EXIT_OK


def schema_of(release: str) -> str:
    """'6.1', or '6.1 (the schema of 6.1, 6.2 and 6.3)' where releases share it."""
    schema = releases.BY_NAME[release].schema
    sharing = releases.sharing_schema(schema)
    if len(sharing) == 1:
        return schema
    return f"{schema} (the schema of {', '.join(sharing[:-1])} and {sharing[-1]})"


def _dry_run(ctx: Context, url: str, report: dict) -> int:
    """The steps and the pre-upgrade check (config.upgrade_blockers); changes nothing."""
    upgrading = any(direction == "apply" for direction, _ in report["steps"])
    downgrading = any(direction == "rollback" for direction, _ in report["steps"])
    blockers = migrations.upgrade_blockers(url, report["release"]) if upgrading else []
    users = migrations.downgrade_blockers(url, report["release"]) if downgrading else []
    report.update(dry_run=True, blocked=bool(blockers or users), blockers=blockers, downgrade_blockers=users)
    if any(direction == "rollback" for direction, _ in report["steps"]):
        report["customers_deleted"] = (
            migrations.count_customers(url) if not releases.BY_NAME[report["release"]].customers else 0
        )
    ctx.output.emit(report, lambda r: _print_plan(ctx, r))
    if blockers:
        ctx.output.note(
            f"hierarchy: the upgrade to {report['release']} is blocked by {len(blockers)} orphaned "
            "project(s); `hierarchy reconcile --force` homes them"
        )
        return EXIT_PROBLEM
    if users:
        ctx.output.note(
            f"hierarchy: the downgrade to {report['release']} is blocked by {len(users)} user(s) of several "
            "orgs; `hierarchy user remove-org EMAIL --org NAME` leaves one org each"
        )
        return EXIT_PROBLEM
    return EXIT_OK


def _print_plan(ctx: Context, report: dict) -> None:
    out = ctx.output
    target = report["release"]
    if not report["steps"]:
        out.print(f"dry run: already at release {schema_of(target)}; nothing to do")
        return
    out.print(f"dry run: {report['from'] or 'empty'} -> {target}, nothing changed")
    for direction, migration in report["steps"]:
        out.print(f"  {'apply' if direction == 'apply' else 'roll back'} {migration}")
    if report["customers_deleted"]:
        out.print(
            f"the downgrade would delete all {report['customers_deleted']} Customer(s); projects are kept"
        )
    if report.get("downgrade_blockers"):
        out.table(
            f"downgrade check: {len(report['downgrade_blockers'])} user(s) of several orgs",
            ["user", "orgs", "reason", "what to do"],
            [
                [b["email"], ", ".join(b["orgs"]), b["reason"], b["remedy"]]
                for b in report["downgrade_blockers"]
            ],
        )
        return
    if not report["blockers"]:
        out.print("pre-upgrade check: nothing blocks it")
        return
    out.table(
        f"pre-upgrade check: {len(report['blockers'])} blocker(s)",
        ["org", "project", "since", "reason", "what to do"],
        [
            [b["org_name"], b["project_name"], f"{b['since']:%Y-%m-%d %H:%M:%S}", b["reason"], b["remedy"]]
            for b in report["blockers"]
        ],
    )


def _confirm_downgrade(ctx: Context, url: str, current: str | None, target: str, yes: bool) -> int:
    n = migrations.count_customers(url)
    ctx.output.note(f"downgrading {current} -> {target} deletes all {n} Customer(s); projects are kept")
    if not yes:
        if not ctx.stdin.isatty():
            raise CliError("refusing to downgrade without confirmation: not a terminal; pass --yes")
        ctx.output.out.write(f"Delete {n} Customer(s) and downgrade to {target}? [y/N] ")
        ctx.output.out.flush()
        if ctx.stdin.readline().strip().lower() not in ("y", "yes"):
            raise CliError("downgrade cancelled; nothing changed")
    return n


def migrate_with_progress(ctx: Context, url: str, to: str | None, lock_timeout: float = 10.0) -> list:
    """migrations.migrate() with a rich progress bar on a terminal, one line per step otherwise."""
    out = ctx.output
    if not out.on_terminal:

        def on_step(ev: migrations.StepEvent) -> None:
            if ev.finished:
                out.note(f"{ev.direction} {ev.migration_id}: done in {ev.seconds:.2f} s")

        return migrations.migrate(url, to, on_step=on_step, lock_timeout=lock_timeout)

    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with out.bar(*columns, TimeElapsedColumn(), transient=False) as bar:
        task = None

        def on_step(ev: migrations.StepEvent) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("migrating", total=ev.total)
            verb = "applying" if ev.direction == "apply" else "rolling back"
            if ev.finished:
                bar.update(task, advance=1, description=f"{ev.migration_id} done")
            else:
                bar.update(task, description=f"{verb} {ev.migration_id}")

        return migrations.migrate(url, to, on_step=on_step, lock_timeout=lock_timeout)
