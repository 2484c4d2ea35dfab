"""The promotion of customers to orgs over HTTP (super admins: ``all_orgs``; release 6.4,
migrations/0005; docs/api.md):

* ``GET /config/v1/org_promotion/``: the check -- whether the customers are promoted, and what
  blocks the promotion (or, once promoted, its reversal): the first 1,000 blockers and the total;
* ``POST /config/v1/org_promotion/promote/`` ``{"dry_run": bool}``: the promotion (dry run: the
  same work rolled back, with its plan);
* ``POST /config/v1/org_promotion/demote/`` ``{"dry_run": bool}``: its reversal.

Refusals change nothing: 409 ``{"detail", "blocked", "blockers", "blockers_total"}`` when
blocked; 400 ``{"non_field_errors": [...]}`` for a state that refuses (promoting twice, demoting
when not promoted, a release below 6.4), as the mode switch answers at 6.4.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import psycopg
from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from service import promotion
from service.api import READ, WRITE, strict_body
from service.errors import Conflict
from service.queries import Db
from service.request import run
from service.routes.upgrade import current_release


class StepRequest(msgspec.Struct, forbid_unknown_fields=True):
    dry_run: bool = False


class PromotionBlocker(msgspec.Struct):
    kind: str
    subject: str
    reason: str
    remedy: str


class PromotionState(msgspec.Struct):
    id: int
    promoted_at: datetime
    promoted_by: str
    per_project: bool
    summary: dict[str, Any]


class PromotionCheck(msgspec.Struct):
    promoted: bool
    promotion: PromotionState | None
    checks: str  # "promote" or "demote": which step the blockers are of
    blockers: list[PromotionBlocker]
    blockers_total: int


class Blocked(msgspec.Struct):
    detail: str
    blocked: bool
    blockers: list[PromotionBlocker]
    blockers_total: int


BLOCKED = {
    409: ResponseSpec(
        data_container=Blocked,
        description="Blocked: nothing changed; the first 1,000 blockers with the total",
        generate_examples=False,
    )
}


class _Refused(Exception):
    """A blocked step, answered 409 outside the (rolled back) transaction."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(report["detail"])
        self.report = report


async def _release_allows(db: Db) -> None:
    refused = promotion.needs_release(await current_release(db))
    if refused:
        raise Conflict({"non_field_errors": [refused]})


@get(
    "/config/v1/org_promotion",
    tags=["orgs"],
    responses=READ,
    summary="Check the promotion of customers to orgs (super admins): its state and every blocker",
)
async def check(request: Request) -> PromotionCheck:
    async def work(db: Db) -> PromotionCheck:
        await _release_allows(db)
        state = await db.one(promotion.SQL["state"])
        which = "demotion_blockers" if state else "promotion_blockers"
        found = promotion.listed(await db.all(promotion.SQL[which], limit=promotion.SHOWN))
        return msgspec.convert(
            {
                "promoted": state is not None,
                "promotion": state,
                "checks": "demote" if state else "promote",
                **found,
            },
            PromotionCheck,
        )

    return await run(request, "all_orgs", work)


async def _step(request: Request, name: str) -> Any:
    data = await strict_body(request, StepRequest, StepRequest())

    async def work(db: Db) -> Any:
        await _release_allows(db)
        try:
            row = await db.one(promotion.SQL[name], dry_run=data.dry_run)
        except psycopg.Error as exc:
            report = promotion.blocked(exc)
            if report is not None:
                raise _Refused(report) from None
            if exc.sqlstate in promotion.STATE_REFUSALS:
                raise Conflict({"non_field_errors": [promotion.STATE_REFUSALS[exc.sqlstate]]}) from None
            raise
        return row["result"]  # type: ignore[index]

    try:
        return await run(request, "all_orgs", work, default_field="dry_run")
    except _Refused as refused:
        return Response(refused.report, status_code=409)


@post(
    "/config/v1/org_promotion/promote",
    tags=["orgs"],
    status_code=200,
    responses={**WRITE, **BLOCKED},
    summary="Promote every customer to an org, atomically (super admins; dry_run: show the plan)",
)
async def promote(request: Request, data: JSONBody[StepRequest | None] = None) -> dict[str, Any]:
    return await _step(request, "promote")


@post(
    "/config/v1/org_promotion/demote",
    tags=["orgs"],
    status_code=200,
    responses={**WRITE, **BLOCKED},
    summary="Reverse the promotion: the layout before it, losslessly (super admins; dry_run: the plan)",
)
async def demote(request: Request, data: JSONBody[StepRequest | None] = None) -> dict[str, Any]:
    return await _step(request, "demote")


HANDLERS = [check, promote, demote]
