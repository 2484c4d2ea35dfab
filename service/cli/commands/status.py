"""``hierarchy status``: release, schedule, last job runs, orphans.

Exit 3 when there is no usable database or orphans are overdue (the job is not doing its work).
"""

from __future__ import annotations

from service import jobs, migrations, releases
from service.cli.commands.migrate import schema_of
from service.cli.context import Context
from service.cli.errors import EXIT_OK, EXIT_PROBLEM, CliError, one_line
from service.cli.parser import command
from service.queries import SyncDb, query

SQL = {
    "orphan_counts": query("cli.orphan_counts"),
    "mode": query("cli.mode"),
    "list_runs": query("jobs.list_runs"),
}
LAST_RUNS = 5


def add_to(sub) -> None:
    command(
        sub,
        "status",
        status,
        "release, schedule, last job runs, orphans (exit 3: no usable database or overdue orphans)",
        "hierarchy status --json | jq .orphans",
    )


def status(ctx: Context, args) -> int:
    report: dict = {"database": "unreachable", "release": None, "latest": migrations.LATEST, "error": None}
    try:
        url = ctx.url()
        report["url"] = migrations.redact(url)
        report["release"] = migrations.current_release(url)
        report["database"] = "ok"
        release = releases.get(report["release"])
        if release is not None and release.customers:
            report["releases_sharing_schema"] = releases.sharing_schema(release.schema)
            with ctx.connection(url) as conn, ctx.transaction(conn) as db:
                report.update(_customer_status(db, release))
    except (migrations.MigrationError, CliError) as exc:
        report["error"] = str(exc)
    except Exception as exc:  # the database refused, the embedded cluster could not start, etc.
        report["error"] = one_line(exc)
    ctx.output.emit(report, lambda r: _print(ctx, r))
    if report["database"] != "ok" or report["release"] is None or report["error"]:
        return EXIT_PROBLEM
    return EXIT_PROBLEM if report.get("orphans", {}).get("overdue") else EXIT_OK


def _customer_status(db: SyncDb, release: releases.Release) -> dict:
    counts = db.one(SQL["orphan_counts"])
    cron = db.steps(jobs.cron_schedules_job())
    return {
        "mode": "per_project" if db.one(SQL["mode"])["per_project"] else "single",
        "scheduler": "pg_cron" if cron else "service" if release.job_runs else "none",
        "pg_cron_scheduled": cron,
        "grace_seconds": counts["grace_seconds"],
        "orphans": {k: counts[k] for k in ("total", "in_grace", "overdue")},
        "last_runs": db.listed(SQL["list_runs"], limit=LAST_RUNS),
    }


def _print(ctx: Context, report: dict) -> None:
    release = report["release"] or "not initialised (run `hierarchy migrate`)"
    if len(report.get("releases_sharing_schema", [])) > 1:
        release = schema_of(report["release"])
    if report["release"] and report["release"] != report["latest"]:
        release += (
            f" (latest is {report['latest']}: `hierarchy migrate --to {report['latest']} --dry-run` "
            "checks what blocks it)"
        )
    items = [("database", report["database"]), ("url", report.get("url")), ("release", release)]
    if "mode" in report:
        orphans = report["orphans"]
        schedule = {
            "pg_cron": "pg_cron job reconcile-customers, every minute",
            "service": "not in pg_cron: `hierarchy run` runs the job every RECONCILE_INTERVAL seconds",
            "none": f"none: at release {report['release']} every project keeps its customer, no job runs",
        }[report["scheduler"]]
        items += [
            ("mode", report["mode"]),
            ("schedule", schedule),
            ("grace period", f"{report['grace_seconds']} s"),
            (
                "orphans",
                f"{orphans['total']} ({orphans['in_grace']} in their grace period, "
                f"{orphans['overdue']} overdue)",
            ),
        ]
    if report["error"]:
        items.append(("error", report["error"]))
    ctx.output.pairs(None, [(k, v) for k, v in items if v is not None])
    if report.get("last_runs"):
        ctx.output.table(
            "last job runs",
            ["id", "source", "started", "created", "associated", "waiting", "outcome"],
            [
                [
                    r["id"],
                    r["source"],
                    f"{r['started']:%Y-%m-%d %H:%M:%S}",
                    r["customers_created"],
                    r["projects_associated"],
                    r["orphans_waiting"],
                    _outcome(r),
                ]
                for r in report["last_runs"]
            ],
        )


def _outcome(run: dict) -> str:
    if run["error"]:
        return f"failed: {run['error']}"
    return "skipped (locked)" if run["skipped"] else "dry run" if run["dry_run"] else "ok"
