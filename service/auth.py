"""Who is asking: bearer tokens, the user they belong to, and the failed-login throttle.

Tokens are ``secrets.token_urlsafe(32)``, shown once at login (service/routes/auth.py); the
database stores only their SHA-256 (``config.tokens.token_hash``), an expiry 24 h later, and
``revoked`` set by logout. A request's token is checked by the request's first statement, in
front of routing (service/front.py: 401 before any 400, 404, 405 or 413), together with the
user's ``is_active``, the permissions of its role (``config.role_permissions``) and, for a
path under ``/orgs/{org}/projects``, whether the user may see that org.

Failed logins are throttled in the database (``service_state.login_failures``,
sql/service_state.sql and sql/queries/throttle.sql), so every service process shares the
counts and a restart forgets nothing: after 5 attempts for one email (whether or not such a user
exists), or 20 from one client address, within 60 s, login answers 429 with ``Retry-After``
until the oldest of them is 60 s old, even with the right password. An attempt is counted
before its password is checked, in the statement that decides whether it may be made, so two
processes racing for the last try cannot both get it; a success forgets its account's
attempts (as the in-process throttle did) and takes back its own from the address. The address
is the client's as uvicorn gives it (``X-Forwarded-For`` only from ``--forwarded-allow-ips``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException

from service.queries import Db, Scope, query

TOKEN_TTL_SECONDS = 86400
FAILURE_LIMIT = 5  # attempts per account ...
ADDRESS_FAILURE_LIMIT = 20  # ... and per client address (shared: NAT, a proxy) ...
FAILURE_WINDOW_SECONDS = 60  # ... within this many seconds

USER_FOR_TOKEN = query("auth.user_for_token")
THROTTLE = {name: query(f"throttle.{name}") for name in ("attempt", "succeeded", "take_back")}

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
    return parse_bearer(request.headers.get("authorization"))


def parse_bearer(header: str | None) -> str:
    """The token of an ``Authorization`` header's value; 401 when missing or malformed."""
    if not header:
        raise unauthorized("Authentication credentials were not provided.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or not token.isascii():
        raise unauthorized("Invalid Authorization header: expected 'Bearer <token>'.")
    return token


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


async def lookup(conn: Any, token: str, org_id: Any = None, *, local: bool = True) -> dict[str, Any] | None:
    """The token lookup: one statement, on the request's connection (service.front runs it in
    front of routing); it reads either schema form. ``org_id``: the org of the path, whose
    visibility the row answers. ``local``:
    the request user it signs in (row-level security, sql/privileges.sql) holds for the
    transaction; else for the session (service.db.Database.connection signs it out for any
    use but the next lookup)."""
    return await Db(conn).one(USER_FOR_TOKEN, token=token, org_id=org_id, local=local)


def check_token(row: dict[str, Any] | None) -> dict[str, Any]:
    """The row of a token that authenticates (401 otherwise)."""
    if row is None:
        raise unauthorized("Invalid token.")
    if row["state"] != "ok":
        raise unauthorized(REFUSED[row["state"]])
    return row


def authorise(
    row: dict[str, Any] | None, permission: str | None = None, org_id: Any = None, *, memberships: bool = True
) -> User:
    """The token's user (401), holding ``permission`` (403; None: any user), allowed to see
    ``org_id`` when given (404, as orgs.get would answer): the token lookup's row answers all
    three, in that order. ``memberships``: the schema's form, for the statements that differ
    by it (service.db.Database.memberships)."""
    row = check_token(row)
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
@dataclass(frozen=True)
class LoginAttempt:
    """A login attempt as the throttle counted it (sql/queries/throttle.sql)."""

    email: str
    address: str | None
    at: Any  # names this attempt in the throttle's rows
    counted: bool  # by at least one scope
    retry_after: int | None  # seconds to wait when a scope refused it (429), else None

    @property
    def keys(self) -> dict[str, Any]:
        return {"email": self.email, "address": self.address, "at": self.at}


async def attempt_login(conn: Any, email: str, address: str | None) -> LoginAttempt:
    """Count a login attempt for ``email`` from ``address`` before its password is checked,
    unless either is throttled: then ``retry_after`` says for how long (one statement)."""
    rows = await Db(conn).all(
        THROTTLE["attempt"],
        email=email,
        address=address,
        account_limit=FAILURE_LIMIT,
        address_limit=ADDRESS_FAILURE_LIMIT,
        window=FAILURE_WINDOW_SECONDS,
    )
    waits = [row["retry_after"] for row in rows if not row["counted"]]
    counted = any(row["counted"] for row in rows)
    return LoginAttempt(email, address, rows[0]["at"], counted, max(waits) if waits else None)


async def login_succeeded(conn: Any, attempt: LoginAttempt) -> None:
    """The account's attempts are forgotten; the address takes back this one."""
    await Db(conn).execute(THROTTLE["succeeded"], **attempt.keys)


async def take_back(conn: Any, attempt: LoginAttempt) -> None:
    """This attempt was no failure (refused by one scope, or a disabled account's right password)."""
    await Db(conn).execute(THROTTLE["take_back"], **attempt.keys)
