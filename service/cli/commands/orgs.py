"""``hierarchy orgs check|promote|demote``: the promotion of customers to orgs and its reversal
(release 6.4, migrations/0005; docs/operators.md "Promote customers to orgs").

Exit codes as the other commands: 0 done, 1 refused (promoting twice, demoting when not
promoted, below 6.4), 3 blocked (every blocker listed: the first 1,000 and the total; nothing
changed). ``--dry-run`` runs the same work rolled back and shows what it did.
"""

from __future__ import annotations

from typing import Any

import psycopg

from service import promotion, releases
from service.cli.context import Context
from service.cli.errors import EXIT_OK, EXIT_PROBLEM, CliError, one_line
from service.cli.parser import command, group


def add_to(sub) -> None:
    orgs = group(sub, "orgs", "promote customers to orgs, and reverse it", "hierarchy orgs promote --dry-run")
    command(
        orgs,
        "check",
        check,
        "what blocks the promotion (or, once promoted, its reversal); exit 3 when anything does",
        "hierarchy orgs check --json",
    )
    for name, func, help_ in (
        ("promote", promote, "promote every customer to an org, atomically (release 6.4)"),
        ("demote", demote, "reverse the promotion: the layout before it, losslessly"),
    ):
        p = command(orgs, name, func, help_, f"hierarchy orgs {name} --dry-run")
        p.add_argument("--dry-run", action="store_true", help="show what it would do; change nothing")


def _url(ctx: Context) -> str:
    url, release = ctx.need_release(releases.FIRST_WITH_CUSTOMERS)
    refused = promotion.needs_release(release)
    if refused:
        raise CliError(f"{refused}: run `hierarchy migrate --to {releases.LATEST}` first")
    return url


def check(ctx: Context, args) -> int:
    url = _url(ctx)
    with ctx.connection(url) as conn, ctx.transaction(conn) as db:
        state = db.one(promotion.SQL["state"])
        which = "demotion_blockers" if state else "promotion_blockers"
        report: dict[str, Any] = {
            "promoted": state is not None,
            "promotion": state,
            "checks": "demote" if state else "promote",
            **promotion.listed(db.all(promotion.SQL[which], limit=promotion.SHOWN)),
        }
    ctx.output.emit(report, lambda r: _print_blockers(ctx, r))
    return EXIT_PROBLEM if report["blockers_total"] else EXIT_OK


def promote(ctx: Context, args) -> int:
    return _step(ctx, args, "promote", "promote customers to orgs")


def demote(ctx: Context, args) -> int:
    return _step(ctx, args, "demote", "reverse the promotion")


def _step(ctx: Context, args, name: str, what: str) -> int:
    url = _url(ctx)
    try:
        with ctx.output.progress(what + (" (dry run)" if args.dry_run else "")) as bar:
            bar.size(1)
            with ctx.connection(url) as conn, ctx.transaction(conn) as db:
                result = db.one(promotion.SQL[name], dry_run=args.dry_run)["result"]
            bar.advance(1)
    except psycopg.Error as exc:
        report = promotion.blocked(exc)
        if report is None:
            raise CliError(one_line(exc)) from None
        ctx.output.emit(report, lambda r: _print_blockers(ctx, r))
        ctx.output.note(f"hierarchy: {one_line(exc)}")
        return EXIT_PROBLEM
    ctx.output.emit(result, lambda r: _print_result(ctx, name, r))
    return EXIT_OK


def _print_blockers(ctx: Context, report: dict) -> None:
    out = ctx.output
    if "checks" in report:
        out.print(
            "promoted: checking the reversal (hierarchy orgs demote)"
            if report["promoted"]
            else "not promoted: checking the promotion (hierarchy orgs promote)"
        )
    if not report["blockers_total"]:
        out.print("nothing blocks it")
        return
    rows = [[b["kind"], b["subject"], b["reason"], b["remedy"]] for b in report["blockers"]]
    out.lists([("blockers", ["kind", "subject", "reason", "remedy"], rows, report["blockers_total"])])


def _print_result(ctx: Context, name: str, result: dict) -> None:
    out = ctx.output
    title = ("promotion" if name == "promote" else "reversal") + (
        " (dry run: nothing changed)" if result["dry_run"] else ""
    )
    out.pairs(title, [(k.replace("_", " "), v) for k, v in result.items() if k not in ("plan", "dry_run")])
    plan = result.get("plan")
    if not plan:
        return
    orgs = [
        [
            o["org"],
            o["customer"],
            o.get("origin", ""),
            o.get("from_org") or o.get("to_org") or "",
            o["projects"],
        ]
        + ([] if name == "promote" else [o["members"]])
        for o in plan["orgs"]
    ]
    moves = [[m["project"], m["from_org"], m["to_org"] or "(none)"] for m in plan["moves"]]
    sections = [
        (
            "orgs it creates or maps" if name == "promote" else "orgs it deletes",
            [
                "org",
                "customer",
                "origin",
                "projects from" if name == "promote" else "projects return to",
                "projects",
            ]
            + ([] if name == "promote" else ["members"]),
            orgs,
            plan["orgs_total"],
        ),
        ("projects it moves", ["project", "from org", "to org"], moves, plan["moves_total"]),
    ]
    if name == "promote":
        members = [
            [
                m["email"],
                m["org"],
                m["role"],
                "yes" if m["is_primary"] else "",
                "added" if m["added"] else "primary moved",
            ]
            for m in plan["memberships"]
        ]
        sections.append(
            (
                "memberships it adds or changes",
                ["user", "org", "role", "primary", "change"],
                members,
                plan["memberships_total"],
            )
        )
    out.lists(sections)
