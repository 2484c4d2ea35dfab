"""Who is asking: bearer tokens, the user they belong to, and the failed-login throttle.

Tokens are ``secrets.token_urlsafe(32)``, shown once at login (service/routes/auth.py); the
database stores only their SHA-256 (``config.tokens.token_hash``), an expiry 24 h later, and
``revoked`` set by logout. A request's token is checked by the request's first statement
(service/request.py), together with the user's ``is_active``, the permissions of its role
(``config.role_permissions``) and, for a path under ``/orgs/{org}/``, whether the user may see
that org.

Failed logins are throttled in process: after 5 failures for one email within 60 s, login for
that email answers 429 with ``Retry-After`` until the oldest of them is 60 s old. The counter
is a bounded dict (10 000 emails, least recently failed evicted first), so it is per process
and lost on restart; a table would make it cluster-wide (see the report / README).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from service.queries import Db, Scope, by_form

TOKEN_TTL_SECONDS = 86400
FAILURE_LIMIT = 5
FAILURE_WINDOW_SECONDS = 60.0
THROTTLE_MAX_EMAILS = 10_000

USER_FOR_TOKEN = by_form("auth.user_for_token")

REFUSED = {
    "revoked": "Token has been revoked (logged out); log in again.",
    "expired": "Token has expired; log in again.",
    "inactive": "User account is disabled.",
}


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def unauthorized(detail: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail, headers={"WWW-Authenticate": 'Bearer realm="config"'})


def bearer_token(request: Request | ASGIConnection) -> str:
    """The token of ``Authorization: Bearer <token>``; 401 when missing or malformed."""
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized("Authentication credentials were not provided.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or not token.isascii():
        raise unauthorized("Invalid Authorization header: expected 'Bearer <token>'.")
    return token


async def require_bearer(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    """Guard of every protected route: a missing or malformed ``Authorization`` header is 401
    before the path, query and body are parsed, so a caller without a token learns nothing
    from validation errors. The token itself is checked in the request's transaction.
    Async on purpose: Litestar runs a sync guard in a worker thread (a hop per request)."""
    bearer_token(connection)


@dataclass(frozen=True)
class User:
    """The user a request's token belongs to, and what its role allows."""

    uuid: Any
    email: str
    orgs: tuple[Any, ...]  # primary first
    role: str  # in the org of the path, else in the primary org
    permissions: frozenset[str]
    write_orgs: tuple[Any, ...] = ()
    memberships: bool = True  # the schema's form (release 6.4's org_memberships, or before)

    @property
    def org_id(self) -> Any:
        """The primary org."""
        return self.orgs[0] if self.orgs else None

    @property
    def all_orgs(self) -> bool:
        return "all_orgs" in self.permissions

    @property
    def scope(self) -> Scope:
        """Whom this user's statements run for (service.queries binds it to every statement)."""
        return Scope(
            all_orgs=self.all_orgs,
            user_orgs=list(self.orgs),
            user_id=self.uuid,
            write_orgs=list(self.write_orgs),
        )


async def authenticate(
    conn: Any, token: str, permission: str | None = None, org_id: Any = None, *, memberships: bool = True
) -> User:
    """The token's user (401), holding ``permission`` (403; None: any user), allowed to see
    ``org_id`` when given (404, as orgs.get would answer): one statement, the token lookup,
    answers all three, in that order. ``memberships``: the schema's form (release 6.4's
    memberships or the one before; service.db.Database.memberships knows which)."""
    row = await Db(conn).one(USER_FOR_TOKEN[memberships], token_hash=hash_token(token), org_id=org_id)
    if row is None:
        raise unauthorized("Invalid token.")
    if row["state"] != "ok":
        raise unauthorized(REFUSED[row["state"]])
    if permission is not None and permission not in row["permissions"]:
        raise PermissionDeniedException(
            f"You do not have permission to perform this action (role {row['role']} lacks {permission})."
        )
    if not row["org_visible"]:
        raise NotFoundException(f"Org {org_id} not found.")
    return User(
        uuid=row["uuid"],
        email=row["email"],
        orgs=tuple(row["orgs"] or ()),
        role=row["role"],
        permissions=frozenset(row["permissions"]),
        write_orgs=tuple(row["write_orgs"] or ()),
        memberships=memberships,
    )


# -- failed-login throttle -----------------------------------------------------------------------
class LoginThrottle:
    """Recent failed logins per email, bounded in size."""

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW_SECONDS,
        max_emails: int = THROTTLE_MAX_EMAILS,
    ) -> None:
        self.limit, self.window, self.max_emails = limit, window, max_emails
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, email: str) -> int | None:
        """Seconds to wait when ``email`` is throttled, else None."""
        failures = self._recent(email.lower())
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[-self.limit] + self.window - time.monotonic()))

    def failed(self, email: str) -> None:
        key = email.lower()
        failures = self._recent(key)
        failures.append(time.monotonic())
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_emails:
            self._failures.popitem(last=False)

    def succeeded(self, email: str) -> None:
        self._failures.pop(email.lower(), None)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key, deque(maxlen=self.limit))
        horizon = time.monotonic() - self.window
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures
