"""The runtime role cannot mint credentials or raise privileges (issue 23, sql/privileges.sql).

A leaked DATABASE_URL or one injected statement must not make a super admin: as the runtime
role (``runtime_url``), PostgreSQL refuses to show a password hash, insert a token, set a
password hash, un-revoke or extend a token, change a tunable or write users and memberships
without a signed request user holding the API's permission. A token comes only from
``service_state.log_in`` with the proof of the password; a wrong proof writes nothing.
Arranging and checking is done as the superuser, at 6.1 (users.org_id/role) and 6.4
(memberships).
"""

from __future__ import annotations

import hashlib
import secrets

import pytest
from argon2 import PasswordHasher
from psycopg import errors

from service import users
from service.names import MODE_TUNABLE
from tests.test_privileges import arrange, as_runtime, superuser, user_with_token

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # hashing is not under test
PASSWORD = "correct horse battery"
KNOWN_HASH = CHEAP.hash("attacker's password")


@pytest.fixture(params=["6.1", "6.4"])
def arranged(request, db_url: str, pg_server) -> tuple[str, dict]:
    url = db_url if request.param == "6.1" else request.getfixturevalue("db_url_64")
    made = arrange(url)
    with superuser(url) as conn:
        conn.execute("SELECT set_config('hierarchy.actor', 'test', false)")
        admin, admin_token = user_with_token(conn, "admin@example.com", made["a"]["org"], "super_admin")
        reader, reader_token = user_with_token(conn, "reader@example.com", made["a"]["org"], "read_only")
        conn.execute(
            "UPDATE config.users SET password_hash = %s WHERE uuid = %s", (CHEAP.hash(PASSWORD), admin)
        )
        revoked = secrets.token_urlsafe(16)
        conn.execute(
            "INSERT INTO config.tokens (token_hash, user_id, expires, revoked)"
            " VALUES (%s, %s, now() + interval '1 hour', now())",
            (hashlib.sha256(revoked.encode()).digest(), admin),
        )
    made["admin"] = {"user": admin, "token": admin_token, "revoked": revoked}
    made["reader"] = {"user": reader, "token": reader_token}
    return url, made


def snapshot(url: str) -> dict:
    """Everything a refused statement must leave as it was."""
    with superuser(url) as conn:
        return conn.execute(
            "SELECT (SELECT array_agg(u.password_hash || u.is_active::text ORDER BY u.uuid)"
            "        FROM config.users u) AS users,"
            " (SELECT array_agg(row(t.token_hash, t.expires, t.revoked)::text ORDER BY t.token_hash)"
            "        FROM config.tokens t) AS tokens,"
            " (SELECT jsonb_object_agg(t.name, t.value) FROM config.tunables t) AS tunables,"
            " (SELECT max(id) FROM config.audit_log) AS audit"
        ).fetchone()


ATTACKS = {
    "read the hashes": "SELECT password_hash FROM config.users",
    "read every column": "SELECT * FROM config.users",
    "mint a token": "INSERT INTO config.tokens (token_hash, user_id, expires)"
    " SELECT sha256('mine'), uuid, now() + interval '1 day' FROM config.users",
    "set a super admin's password": "UPDATE config.users SET password_hash = '" + KNOWN_HASH + "'",
    "un-revoke a token": "UPDATE config.tokens SET revoked = NULL WHERE revoked IS NOT NULL",
    "extend a token": "UPDATE config.tokens SET expires = now() + interval '10 years'",
    "re-date a revocation": "UPDATE config.tokens SET revoked = now() WHERE revoked IS NOT NULL",
    "change the mode without the switch": (
        f"UPDATE config.tunables SET value = 'true' WHERE name = '{MODE_TUNABLE}'"
    ),
    "create a user": "INSERT INTO config.users (email, password_hash) VALUES ('evil@example.com', '"
    + KNOWN_HASH
    + "')",
    "delete the users": "DELETE FROM config.users",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_unsigned_runtime_role_cannot_mint_credentials(arranged, attack: str) -> None:
    url, _ = arranged
    before = snapshot(url)
    with as_runtime(url) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(ATTACKS[attack])
    assert snapshot(url) == before


@pytest.mark.parametrize(
    "attack", ["mint a token", "set a super admin's password", "un-revoke a token", "extend a token"]
)
def test_even_a_signed_super_admin_cannot_mint_tokens_or_set_hashes_directly(arranged, attack: str) -> None:
    url, made = arranged
    before = snapshot(url)
    with as_runtime(url, made["admin"]["token"]) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(ATTACKS[attack])
    assert snapshot(url) == before


def test_a_signed_user_without_the_permission_cannot_write_users_memberships_or_tunables(arranged) -> None:
    url, made = arranged
    before = snapshot(url)
    # (statement, what the refusal names): the guard's permission, or the missing privilege
    statements = [(ATTACKS["change the mode without the switch"], "tunables.write")]
    if made["memberships"]:  # a read-only user making itself super admin of its own org
        statements += [
            (
                "INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)"
                f" VALUES ('{made['reader']['user']}', '{made['a']['org']}', 'super_admin', false)",
                "users.write",
            ),
            ("UPDATE config.org_memberships SET role = 'super_admin'", "permission denied"),
        ]
    else:
        statements.append(
            (
                "INSERT INTO config.users (email, password_hash, org_id, role)"
                f" VALUES ('evil@example.com', 'x', '{made['a']['org']}', 'super_admin')",
                "users.write",
            )
        )
    for statement, named in statements:
        with (
            as_runtime(url, made["reader"]["token"]) as conn,
            pytest.raises(errors.InsufficientPrivilege) as refused,
        ):
            conn.execute(statement)
        assert named in str(refused.value)
    with as_runtime(url, made["a"]["token"]) as conn, pytest.raises(errors.InsufficientPrivilege):  # operator
        conn.execute(ATTACKS["change the mode without the switch"])
    assert snapshot(url) == before


def test_a_signed_super_admin_still_sets_tunables_and_logs_out(arranged) -> None:
    url, made = arranged
    with as_runtime(url, made["admin"]["token"]) as conn:
        conn.execute("UPDATE config.tunables SET value = '30' WHERE name = 'customer_orphan_grace_seconds'")
        conn.execute(
            "UPDATE config.tokens SET revoked = now() WHERE token_hash = %s AND revoked IS NULL",
            (hashlib.sha256(made["admin"]["token"].encode()).digest(),),
        )
    with superuser(url) as conn:
        assert (
            conn.execute(
                "SELECT value FROM config.tunables WHERE name = 'customer_orphan_grace_seconds'"
            ).fetchone()["value"]
            == 30
        )
        assert (
            conn.execute(
                "SELECT state FROM service_state.user_for_token(%s, NULL, true)", (made["admin"]["token"],)
            ).fetchone()["state"]
            == "revoked"
        )


def _challenge(conn, email: str) -> tuple:
    row = conn.execute("SELECT * FROM service_state.login_challenge(%s)", (email,)).fetchone()
    return row["uuid"], row["params"], row["hash_len"]


def _log_in(conn, user, proof, token: str, new_hash: str | None = None) -> str:
    return conn.execute(
        "SELECT service_state.log_in(%s, %s, %s, 3600, %s) AS state",
        (user, proof, hashlib.sha256(token.encode()).digest(), new_hash),
    ).fetchone()["state"]


def test_log_in_issues_a_token_only_for_the_proof_of_the_password(arranged) -> None:
    url, _ = arranged
    before = snapshot(url)
    with as_runtime(url) as conn:
        user, params, hash_len = _challenge(conn, "admin@example.com")
        assert params.startswith("$argon2id$") and params.count("$") == 4  # parameters and salt only
        wrong = users.password_proof(params, hash_len, "not the password")
        assert _log_in(conn, user, wrong, "t1", KNOWN_HASH) == "wrong"
        assert _log_in(conn, user, b"", "t2") == "wrong"
        assert _log_in(conn, user, None, "t3") == "wrong"
        assert _log_in(conn, None, wrong, "t4") == "wrong"  # the service's call for an unknown email
    assert snapshot(url) == before  # no token, no hash, no audit row
    token = secrets.token_urlsafe(16)
    with as_runtime(url) as conn:
        proof = users.password_proof(params, hash_len, PASSWORD)
        assert _log_in(conn, user, proof, token) == "ok"
        assert (
            conn.execute(
                "SELECT state FROM service_state.user_for_token(%s, NULL, false)", (token,)
            ).fetchone()["state"]
            == "ok"
        )
    with superuser(url) as conn:
        conn.execute("UPDATE config.users SET is_active = false WHERE uuid = %s", (user,))
    before = snapshot(url)
    with as_runtime(url) as conn:
        assert _log_in(conn, user, proof, secrets.token_urlsafe(16)) == "inactive"
    assert snapshot(url) == before


def test_log_in_refuses_a_bad_fresh_hash_or_lifetime_and_writes_nothing(arranged) -> None:
    url, _ = arranged
    before = snapshot(url)
    with as_runtime(url) as conn:
        user, params, hash_len = _challenge(conn, "admin@example.com")
        proof = users.password_proof(params, hash_len, PASSWORD)
        with pytest.raises(errors.InvalidParameterValue):
            _log_in(conn, user, proof, "t", "plain text")
        with pytest.raises(errors.InvalidParameterValue):
            conn.execute("SELECT service_state.log_in(%s, %s, sha256('t'), 100000000, NULL)", (user, proof))
    assert snapshot(url) == before


def test_the_login_lookup_of_old_is_gone(arranged) -> None:
    url, _ = arranged
    with as_runtime(url) as conn, pytest.raises(errors.UndefinedFunction):
        conn.execute("SELECT * FROM service_state.user_for_login('admin@example.com')")
