"""Users: password hashing, creation, and the administrator ensured at start.

Passwords are hashed with argon2id (argon2-cffi's default parameters); the hash is a PHC
string in ``config.users.password_hash``, which the runtime role cannot read: a login proves
the password with :func:`password_proof` (argon2's raw output under the parameters and salt
``service_state.login_challenge`` gives), which ``service_state.log_in`` compares with the
stored hash in the database (sql/privileges.sql). ``ensure_admin`` is what ``hierarchy run`` calls:
it creates a ``super_admin`` in the first org when no active super_admin exists, with
``HIERARCHY_ADMIN_EMAIL`` / ``HIERARCHY_ADMIN_PASSWORD`` or a generated password that it
returns so the caller can print it once.
"""

from __future__ import annotations

import base64
import os
import secrets
from typing import Any

import psycopg
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION, hash_secret_raw
from psycopg.rows import dict_row

from service.conninfo import for_primary
from service.names import SUPER_ADMIN
from service.queries import by_form, query

HASHER = PasswordHasher()
DEFAULT_ADMIN_EMAIL = "admin@localhost"

CREATE = by_form("users.create")  # the user with its primary membership from release 6.4
HAS_MEMBERSHIPS = query("users.has_memberships")
LOCK = query("users.lock_admin_bootstrap")
ANY_SUPER_ADMIN = by_form("users.any_super_admin")
FIRST_ORG = query("users.first_org")
SET_ACTOR = query("auth.set_actor")

# A real hash of a random password: verifying against it when the email is unknown makes a
# failed login take as long whether or not the user exists.
_DUMMY_HASH: str | None = None


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; never raises for a bad or missing hash."""
    global _DUMMY_HASH
    if password_hash is None:
        _DUMMY_HASH = _DUMMY_HASH or HASHER.hash(secrets.token_urlsafe(16))
        password_hash = _DUMMY_HASH
    try:
        return HASHER.verify(password_hash, password) and password_hash is not _DUMMY_HASH
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


def _challenge_hash(params: str, hash_len: int) -> str:
    """A PHC string with the challenge's parameters and salt and a hash part of the right
    length (zeros): what argon2-cffi's parameter functions take."""
    return f"{params}${base64.b64encode(bytes(hash_len)).decode().rstrip('=')}"


def password_proof(params: str | None, hash_len: int | None, password: str) -> bytes | None:
    """argon2's raw output for ``password`` under the parameters and salt of a login challenge
    (``service_state.login_challenge``: the PHC string without its hash part), which
    ``service_state.log_in`` compares with the stored hash. None when there is no usable
    challenge (unknown email, a stored hash that is no argon2 PHC string): the same work is
    done against a random salt, so a failed login takes as long whether or not the user exists."""
    try:
        if not params or not hash_len:
            raise InvalidHashError
        found = extract_parameters(_challenge_hash(params, hash_len))
        salt_text = params.rsplit("$", 1)[1]
        salt = base64.b64decode(salt_text + "=" * (-len(salt_text) % 4))
    except (InvalidHashError, ValueError):
        found, salt = None, secrets.token_bytes(HASHER.salt_len)
    used = found or HASHER  # no challenge: HASHER's own parameters
    raw = hash_secret_raw(
        password.encode(), salt, used.time_cost, used.memory_cost, used.parallelism, used.hash_len, used.type,
        found.version if found else ARGON2_VERSION,
    )
    return raw if found else None


def challenge_needs_rehash(params: str | None, hash_len: int | None) -> bool:
    """Whether the hash behind a login challenge was made with other argon2 parameters."""
    return bool(params and hash_len) and needs_rehash(_challenge_hash(params, hash_len))  # type: ignore[arg-type]


def _params(email: str, password: str, org_id: Any, role: str) -> dict[str, Any]:
    return {"email": email, "password_hash": hash_password(password), "org_id": org_id, "role": role}


def create_user(
    conn: psycopg.Connection, email: str, password: str, org_id: Any, role: str
) -> dict[str, Any]:
    """Insert a user (synchronous connection, e.g. the CLI); returns its row without the hash.

    Database errors (duplicate email: UniqueViolation on users_email_unique; unknown org or
    role: ForeignKeyViolation) propagate to the caller.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        memberships = cur.execute(HAS_MEMBERSHIPS).fetchone()["present"]  # type: ignore[index]
        # one statement (from 6.4 the user and its primary membership): atomic in autocommit too
        cur.execute(CREATE[memberships], _params(email, password, org_id, role))  # type: ignore[arg-type]
        row = cur.fetchone()
    assert row is not None
    return row


async def create_user_async(
    conn: psycopg.AsyncConnection, email: str, password: str, org_id: Any, role: str
) -> dict[str, Any]:
    """:func:`create_user` for the API's async connections (inside the request's transaction)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        memberships = (await (await cur.execute(HAS_MEMBERSHIPS)).fetchone())["present"]  # type: ignore[index]
        await cur.execute(CREATE[memberships], _params(email, password, org_id, role))  # type: ignore[arg-type]
        row = await cur.fetchone()
    assert row is not None
    return row


def ensure_admin(url: str, email: str | None = None, password: str | None = None) -> tuple[str, str | None]:
    """Create a super_admin in the first org unless an active one exists.

    Returns ``(email, generated_password)``; the password is None when it was given (argument or
    ``HIERARCHY_ADMIN_PASSWORD``) or when nothing was created. An advisory lock makes two
    processes starting at once create one admin, not two.
    """
    email = email or os.environ.get("HIERARCHY_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
    given = password or os.environ.get("HIERARCHY_ADMIN_PASSWORD")
    with psycopg.connect(for_primary(url), autocommit=True, row_factory=dict_row) as conn, conn.transaction():
        conn.execute(SET_ACTOR, {"actor": "ensure_admin", "user_id": ""})  # type: ignore[arg-type]
        conn.execute(LOCK)  # type: ignore[arg-type]
        memberships = conn.execute(HAS_MEMBERSHIPS).fetchone()["present"]  # type: ignore[index]
        present = conn.execute(ANY_SUPER_ADMIN[memberships]).fetchone()  # type: ignore[arg-type]
        if present and present["present"]:
            return email, None
        org = conn.execute(FIRST_ORG).fetchone()  # type: ignore[arg-type]
        if org is None:
            raise RuntimeError("no org exists: migrate the database first (`hierarchy migrate`)")
        generated = None if given else secrets.token_urlsafe(18)
        create_user(conn, email, given or generated, org["uuid"], SUPER_ADMIN)  # type: ignore[arg-type]
    return email, generated
