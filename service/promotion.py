"""The promotion of customers to orgs (migrations/0005), what the CLI (``hierarchy orgs``) and
the API (``/config/v1/orgs/promotion/``) share: the statements, the SQLSTATEs the database
refuses with, and the blockers a refusal carries (its DETAIL: every blocker as JSON).

The rules live in PostgreSQL (config.promote_customers, config.demote_orgs and their blockers);
this module only names them.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from service import releases
from service.errors import ALREADY_PROMOTED as ALREADY_PROMOTED_MESSAGE
from service.errors import NOT_PROMOTED as NOT_PROMOTED_MESSAGE
from service.errors import PROMOTION_NEEDS_RELEASE
from service.queries import query

SQL = {
    name: query(f"promotion.{name}")
    for name in ("state", "promotion_blockers", "demotion_blockers", "promote", "demote")
}
SHOWN = 1000  # rows of each list a report shows (with the total), as the mode switch's dry run

PROMOTION_BLOCKED = "HR070"
DEMOTION_BLOCKED = "HR071"
ALREADY_PROMOTED = "HR072"
NOT_PROMOTED = "HR073"
BLOCKED = (PROMOTION_BLOCKED, DEMOTION_BLOCKED)
STATE_REFUSALS = {ALREADY_PROMOTED: ALREADY_PROMOTED_MESSAGE, NOT_PROMOTED: NOT_PROMOTED_MESSAGE}


def needs_release(release: releases.Release) -> str | None:
    """Why the promotion cannot be asked for at ``release`` (None: it can)."""
    if release.customers_final and release.memberships:
        return None
    return PROMOTION_NEEDS_RELEASE.format(release.name, releases.LATEST)


def blocked(exc: psycopg.Error) -> dict[str, Any] | None:
    """For a refusal naming blockers: its message, the first SHOWN blockers and the total."""
    if exc.sqlstate not in BLOCKED:
        return None
    every = json.loads(exc.diag.message_detail or "[]")
    return {
        "detail": exc.diag.message_primary,
        "blocked": True,
        "blockers": every[:SHOWN],
        "blockers_total": len(every),
    }


def listed(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Blocker rows (each with the window's total) as {"blockers", "blockers_total"}."""
    total = rows[0]["total"] if rows else 0
    return {"blockers": [{k: v for k, v in r.items() if k != "total"} for r in rows], "blockers_total": total}
