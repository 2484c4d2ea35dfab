"""The per-request transaction every route runs its work in (:func:`run`).

Every request that touches the database runs in exactly one transaction on one pooled
connection: the bearer token is checked (service.auth), which also sets the actor settings
(``hierarchy.actor``, ``hierarchy.user_id``, read by the audit triggers and
``customers.created_by``), the role's permission is checked (403), then the handler's work
runs with a :class:`service.queries.Db` scoped to the user. Deadlocks and serialization
failures re-run the whole transaction (service.db.transaction: 3 attempts, then 503); other
database errors become DRF-style 4xx bodies (service.db_errors).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request
from litestar.exceptions import PermissionDeniedException

from service.auth import authenticate, bearer_token
from service.db import Database, transaction
from service.queries import Db

T = TypeVar("T")


def database(request: Request) -> Database:
    """The app's pool (opened by the lifespan in service.app)."""
    return request.app.state.database


async def run(
    request: Request,
    permission: str | None,
    work: Callable[[Db], Awaitable[T]],
    *,
    default_field: str = "non_field_errors",
) -> T:
    """Authenticate, authorise and run ``work`` in the request's one transaction.

    ``permission`` is a ``config.role_permissions`` name (None: any authenticated user). The
    token lookup also sets the actor settings, so every audit row the work causes names the user.
    """
    token = bearer_token(request)

    async def in_transaction(conn: Any) -> T:
        user = await authenticate(conn, token)
        if permission is not None and permission not in user.permissions:
            raise PermissionDeniedException(
                f"You do not have permission to perform this action (role {user.role} lacks {permission})."
            )
        request.state.user = user
        return await work(Db(conn, user))

    return await transaction(database(request), in_transaction, default_field=default_field)
