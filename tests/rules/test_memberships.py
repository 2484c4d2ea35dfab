"""Org memberships (release 6.4, migrations/0004) from SQL: the table's rules, the functions a
DBA calls, their refusals (nothing changed), the audit rows, and the downgrade to 6.1, which
refuses while a user belongs to several orgs and otherwise round-trips losslessly."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from service import users
from service.migrations import DowngradeBlocked, migrate
from tests.rules.test_two_sessions import wait_until_blocked

# the columns by name: the rollback adds org_id and role back at the end of the table
USERS_ROWS = (
    "SELECT md5(string_agg(concat_ws('|', u.uuid, u.email, u.password_hash, u.org_id, u.role, u.is_active, "
    "u.created, u.modified), ',' ORDER BY u.uuid)) FROM config.users u"
)


@pytest.fixture
def db(db_url_64):
    with psycopg.connect(db_url_64, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def one(conn, statement, params=None):
    row = conn.execute(statement, params).fetchone()
    return None if row is None else next(iter(row.values()))


def org(conn, name):
    return one(conn, "INSERT INTO config.orgs (name) VALUES (%s) RETURNING uuid", (name,))


def hydrolix(conn):
    return one(conn, "SELECT uuid FROM config.orgs WHERE name = 'hydrolix'")


def user(conn, email, role="operator", org_id=None):
    return users.create_user(conn, email, "s3cret-pass", org_id or hydrolix(conn), role)["uuid"]


def memberships(conn, user_id):
    return [
        (r["name"], r["role"], r["is_primary"])
        for r in conn.execute(
            "SELECT o.name, m.role, m.is_primary FROM config.org_memberships m "
            "JOIN config.orgs o ON o.uuid = m.org_id WHERE m.user_id = %s ORDER BY o.name",
            (user_id,),
        )
    ]


def state(conn):
    """Every membership and the audit high-water mark: 'nothing changed' means equal."""
    return (
        conn.execute("SELECT * FROM config.org_memberships ORDER BY user_id, org_id").fetchall(),
        one(conn, "SELECT coalesce(max(id), 0) FROM config.audit_log"),
    )


def test_the_upgrade_made_one_primary_membership_per_user_and_dropped_the_columns(db):
    u = user(db, "ops@example.com")
    assert memberships(db, u) == [("hydrolix", "operator", True)]
    columns = {
        r["column_name"]
        for r in db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'config' AND table_name = 'users'"
        )
    }
    assert "org_id" not in columns and "role" not in columns
    assert one(db, "SELECT config.schema_migration()") == "0005.org-promotion"


def test_add_set_role_set_primary_remove_and_their_audit_rows(db):
    u = user(db, "ops@example.com")
    a, b = org(db, "alpha"), org(db, "beta")
    mark = one(db, "SELECT coalesce(max(id), 0) FROM config.audit_log")
    db.execute("SELECT config.add_membership(%s, %s, 'read_only')", (u, a))
    db.execute("SELECT config.add_membership(%s, %s, 'operator', true)", (u, b))
    assert memberships(db, u) == [
        ("alpha", "read_only", False),
        ("beta", "operator", True),
        ("hydrolix", "operator", False),
    ]
    db.execute("SELECT config.set_membership_role(%s, %s, 'operator')", (u, a))
    db.execute("SELECT config.set_primary_org(%s, %s)", (u, a))
    db.execute("SELECT config.remove_membership(%s, %s)", (u, b))
    assert memberships(db, u) == [("alpha", "operator", True), ("hydrolix", "operator", False)]
    audit = db.execute(
        "SELECT action, object_type, object_id, changed, before, after FROM config.audit_log "
        "WHERE id > %s ORDER BY id",
        (mark,),
    ).fetchall()
    assert {r["object_type"] for r in audit} == {"org_memberships"} and {r["object_id"] for r in audit} == {u}
    assert [r["action"] for r in audit] == [
        "insert",
        "update",
        "insert",
        "update",
        "update",
        "update",
        "delete",
    ]
    assert audit[0]["after"]["org_id"] == str(a) and audit[0]["after"]["role"] == "read_only"
    # the old primary lost it, the new one got it
    assert audit[1]["changed"] == ["is_primary"] and audit[1]["before"] == {
        "org_id": str(hydrolix(db)),
        "is_primary": True,
    }
    assert audit[3]["changed"] == ["role"] and audit[3]["after"] == {"org_id": str(a), "role": "operator"}
    assert audit[-1]["before"]["org_id"] == str(b)


@pytest.mark.parametrize(
    ("call", "constraint", "message"),
    [
        (
            "SELECT config.add_membership(%(u)s, gen_random_uuid(), 'operator')",
            "org_memberships_org_id_fkey",
            "no org",
        ),
        (
            "SELECT config.add_membership(gen_random_uuid(), %(a)s, 'operator')",
            "org_memberships_user_id_fkey",
            "no user",
        ),
        (
            "SELECT config.add_membership(%(u)s, %(a)s, 'boss')",
            "org_memberships_role_fkey",
            "unknown role boss",
        ),
        (
            "SELECT config.add_membership(%(u)s, %(h)s, 'operator')",
            "org_memberships_pkey",
            "already a member",
        ),
        (
            "SELECT config.add_membership(%(s)s, %(a)s, 'read_only')",
            "org_memberships_super_admin_single",
            "super admin belongs to exactly one org",
        ),
        (
            "SELECT config.add_membership(%(u)s, %(a)s, 'super_admin')",
            "org_memberships_super_admin_single",
            "super admin belongs to exactly one org",
        ),
        ("SELECT config.remove_membership(%(u)s, %(h)s)", "org_memberships_primary_kept", "only org"),
        (
            "SELECT config.remove_membership(%(w)s, %(h)s)",
            "org_memberships_primary_kept",
            "make another of its orgs primary first",
        ),
        ("SELECT config.remove_membership(%(u)s, %(a)s)", "org_memberships_member", "not a member"),
        (
            "SELECT config.set_membership_role(%(u)s, %(a)s, 'operator')",
            "org_memberships_member",
            "not a member",
        ),
        (
            "SELECT config.set_membership_role(%(w)s, %(h)s, 'super_admin')",
            "org_memberships_super_admin_single",
            "belongs to 2 orgs",
        ),
        (
            "SELECT config.set_membership_role(%(u)s, %(h)s, 'boss')",
            "org_memberships_role_fkey",
            "unknown role",
        ),
        ("SELECT config.set_primary_org(%(u)s, %(a)s)", "org_memberships_member", "not a member"),
        # the table itself, whoever writes: at most one primary (at once), at least one (at commit)
        (
            "UPDATE config.org_memberships SET is_primary = true WHERE user_id = %(w)s",
            "org_memberships_one_primary",
            "duplicate key",
        ),
        (
            "UPDATE config.org_memberships SET is_primary = false WHERE user_id = %(u)s",
            "org_memberships_primary_kept",
            "exactly one primary org",
        ),
        (
            "DELETE FROM config.org_memberships WHERE user_id = %(u)s",
            "org_memberships_primary_kept",
            "exactly one primary org",
        ),
        (
            "INSERT INTO config.users (email, password_hash) VALUES ('lost@example.com', 'x')",
            "org_memberships_primary_kept",
            "exactly one primary org",
        ),
        (
            "INSERT INTO config.org_memberships (user_id, org_id, role) VALUES (%(s)s, %(a)s, 'read_only')",
            "org_memberships_super_admin_single",
            "super admin",
        ),
    ],
)
def test_refusals_change_nothing(db, call, constraint, message):
    h, a = hydrolix(db), org(db, "alpha")
    ids = {
        "u": user(db, "one@example.com"),
        "s": user(db, "root@example.com", "super_admin"),
        "w": user(db, "two@example.com"),
        "h": h,
        "a": a,
    }
    db.execute("SELECT config.add_membership(%s, %s, 'read_only')", (ids["w"], a))
    before = state(db)
    with pytest.raises(psycopg.Error) as failed:
        with db.transaction():
            db.execute(call, ids)
    assert failed.value.diag.constraint_name == constraint
    assert message in failed.value.diag.message_primary
    assert state(db) == before


def test_deleting_a_user_deletes_its_memberships(db):
    u = user(db, "gone@example.com")
    db.execute("SELECT config.add_membership(%s, %s, 'read_only')", (u, org(db, "alpha")))
    db.execute("DELETE FROM config.users WHERE uuid = %s", (u,))
    assert one(db, "SELECT count(*) FROM config.org_memberships WHERE user_id = %s", (u,)) == 0
    assert (
        one(
            db,
            "SELECT count(*) FROM config.audit_log WHERE object_type = 'org_memberships' "
            "AND action = 'delete' AND object_id = %s",
            (u,),
        )
        == 2
    )


def test_an_org_with_members_cannot_be_deleted(db):
    a = org(db, "alpha")
    user(db, "ops@example.com", org_id=a)
    with pytest.raises(errors.ForeignKeyViolation):
        db.execute("DELETE FROM config.orgs WHERE uuid = %s", (a,))


def test_downgrade_refuses_while_a_user_has_several_orgs_then_round_trips(db_url):
    # 6.1: users of every role in several orgs
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        orgs = {n: org(conn, n) for n in ("alpha", "beta")} | {"hydrolix": hydrolix(conn)}
        for i, (role, name) in enumerate(
            [(r, o) for r in ("super_admin", "operator", "read_only") for o in ("alpha", "beta", "hydrolix")]
        ):
            user(conn, f"u{i}-{role}@example.com", role, orgs[name])
        conn.execute("UPDATE config.users SET is_active = false WHERE email LIKE 'u4-%'")
        at_61 = one(conn, USERS_ROWS)
        count = one(conn, "SELECT count(*) FROM config.users")

    assert migrate(db_url, "6.4")[-2:] == [("apply", "0004.org-memberships"), ("apply", "0005.org-promotion")]
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        assert one(conn, "SELECT count(*) FROM config.org_memberships WHERE is_primary") == count
        pairs = conn.execute(
            "SELECT u.email, o.name, m.role FROM config.org_memberships m "
            "JOIN config.users u ON u.uuid = m.user_id "
            "JOIN config.orgs o ON o.uuid = m.org_id ORDER BY u.email"
        ).fetchall()
        assert ("u1-super_admin@example.com", "beta", "super_admin") in [tuple(p.values()) for p in pairs]
        ops = one(conn, "SELECT uuid FROM config.users WHERE email = 'u3-operator@example.com'")
        conn.execute("SELECT config.add_membership(%s, %s, 'read_only')", (ops, orgs["beta"]))
        before = state(conn)

    with pytest.raises(DowngradeBlocked) as blocked:
        migrate(db_url, "6.1")
    message = str(blocked.value)
    assert (
        "1 user(s) belong to several orgs" in message and "u3-operator@example.com (alpha, beta)" in message
    )
    assert "hierarchy user remove-org" in message and "nothing changed" in message
    assert blocked.value.exit_code == 3
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        assert state(conn) == before
        # 0005's rollback refused already: nothing changed at all
        assert one(conn, "SELECT config.schema_migration()") == "0005.org-promotion"
        assert [r["email"] for r in conn.execute("SELECT * FROM config.downgrade_blockers()")] == [
            "u3-operator@example.com"
        ]
        conn.execute("SELECT config.remove_membership(%s, %s)", (ops, orgs["beta"]))

    assert migrate(db_url, "6.1")[:2] == [
        ("rollback", "0005.org-promotion"),
        ("rollback", "0004.org-memberships"),
    ]
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        assert one(conn, USERS_ROWS) == at_61, "every user row as it was at 6.1"
        assert one(conn, "SELECT to_regclass('config.org_memberships')") is None
    assert migrate(db_url, "6.4")[-2:] == [("apply", "0004.org-memberships"), ("apply", "0005.org-promotion")]
    assert migrate(db_url, "6.1")[:2] == [
        ("rollback", "0005.org-promotion"),
        ("rollback", "0004.org-memberships"),
    ]
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        assert one(conn, USERS_ROWS) == at_61, "twice round"


def test_two_sessions_changing_one_users_primary_org_run_one_after_the_other(db, db_url_64):
    """Each function locks the user's row first: a second session waits, then sees the first's
    change (without the lock it would clear a stale primary and meet the unique index)."""
    u = user(db, "ops@example.com")
    a, b = org(db, "alpha"), org(db, "beta")
    for o in (a, b):
        db.execute("SELECT config.add_membership(%s, %s, 'read_only')", (u, o))
    errors_seen: list[BaseException] = []
    with (
        psycopg.connect(db_url_64) as first,
        psycopg.connect(db_url_64, autocommit=True) as other,
        psycopg.connect(db_url_64, autocommit=True) as watcher,
    ):
        first.execute("SELECT config.set_primary_org(%s, %s)", (u, a))  # holds the user's row

        def second() -> None:
            try:
                other.execute("SELECT config.set_primary_org(%s, %s)", (u, b))
            except BaseException as exc:  # reported below
                errors_seen.append(exc)

        waiting = threading.Thread(target=second)
        waiting.start()
        wait_until_blocked(watcher, other.info.backend_pid, "the second session")
        first.commit()
    waiting.join(10)
    assert errors_seen == []
    assert memberships(db, u) == [
        ("alpha", "read_only", False),
        ("beta", "read_only", True),
        ("hydrolix", "operator", False),
    ]
