"""Only the roles that should call them can run the SECURITY DEFINER functions that do more than
their caller may (issue 23): the check is inside each function (its first statement calls
``service_state.require_request_permission``, sql/service_state.sql), not only in the API.

As the runtime role (a real connection, ``runtime_url``): without a signed request user every
guarded function is refused with 42501 and changes nothing; signed in through the real token
lookup (``service_state.user_for_token``) as a user whose roles lack the permission the API
demands for that operation, refused the same way; with it, it works. A superuser, the owner (or
a member of it: a DBA) and pg_cron's role keep working as before. A definer function granted to
the runtime role that is neither guarded nor deliberately open fails
``test_every_definer_function_the_runtime_role_may_run_is_classified``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg import errors, sql

from service import roles
from tests.test_privileges import arrange, as_runtime, superuser, user_with_token

ROLES = roles.from_env()
GUARD = "service_state.require_request_permission"

# Guarded: the permission its guard demands, the one the API's route checks before calling it
# (service/routes/jobs.py, users.py, promotion.py).
GUARDED = {
    "config.switch_customer_mode": "mode.switch",  # POST /customers/switch_mode
    "config.reconcile_customers": "jobs.run",  # its dry and forced runs: POST /customers/reconcile
    "config.add_membership": "users.write",  # POST /users/{id}/add_orgs
    "config.remove_membership": "users.write",  # remove_orgs
    "config.set_membership_role": "users.write",  # add_roles, remove_roles
    "config.set_primary_org": "users.write",  # set_primary_org
    "config.promotion_blockers": "all_orgs",  # GET /org_promotion
    "config.demotion_blockers": "all_orgs",  # GET /org_promotion (once promoted)
    "config.promote_customers": "all_orgs",  # POST /org_promotion/promote
    "config.demote_orgs": "all_orgs",  # POST /org_promotion/demote
}
# Deliberately open to the runtime role, and why.
OPEN = {
    "service_state.user_for_token": "the token lookup: runs before anyone is signed in, and signs in",
    "service_state.login_challenge": "the login's first step: argon2 parameters and salt, never the hash",
    "service_state.log_in": "the login's second step: a token only for the proof of the password",
    "service_state.require_request_permission": "the guard itself (of service_state.guard_write's "
    "statement triggers, run as the writer): it raises or returns",
    "service_state.request_verified": "checks the signature of the caller's own settings",
    "service_state.user_in_orgs": "the audit log's policy (a yes/no about uuids the caller names)",
    "service_state.orphan_count": "the one cross-org number /health and /metrics publish",
    "service_state.cron_job_state": "whether pg_cron runs the job (/health, the scheduler)",
}

DEFINER = """
SELECT p.oid::regprocedure::text AS signature, p.pronamespace::regnamespace::text || '.' || p.proname AS name,
       p.prorettype = 'trigger'::regtype AS trigger, p.prosrc, l.lanname AS language
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace IN ('config'::regnamespace, 'service_state'::regnamespace)
  AND p.prosecdef AND has_function_privilege(%s, p.oid, 'EXECUTE')
ORDER BY 1"""


@pytest.fixture(params=["6.1", "6.4"])
def url(request, db_url: str) -> str:
    return db_url if request.param == "6.1" else request.getfixturevalue("db_url_64")


def test_every_definer_function_the_runtime_role_may_run_is_classified(url: str) -> None:
    with superuser(url) as conn:
        rows = conn.execute(DEFINER, (ROLES.app,)).fetchall()
    callable_ = {r["name"]: r for r in rows if not r["trigger"]}
    unclassified = set(callable_) - set(GUARDED) - set(OPEN)
    assert not unclassified, (
        f"SECURITY DEFINER functions the runtime role may run, neither guarded nor deliberately open: "
        f"{sorted(unclassified)}: call {GUARD} first in each (GUARDED), or say in OPEN why anyone may"
    )
    for name in set(GUARDED) & set(callable_):  # the guard comes before any other statement
        body = callable_[name]["prosrc"]
        if callable_[name]["language"] == "plpgsql":
            body = body[body.index("BEGIN") + len("BEGIN") :]
        call = f"{GUARD}('{name}',"
        assert call in body and ";" not in body[: body.index(call)], f"{name} does not call {GUARD} first"
        assert f"'{GUARDED[name]}'" in body[body.index(call) : body.index(call) + 200], name
    assert {"config.switch_customer_mode", "config.reconcile_customers"} <= set(callable_)
    # trigger functions: PostgreSQL itself refuses to call them other than as triggers
    triggers = [r["name"] for r in rows if r["trigger"]]
    assert len(triggers) >= 10
    with as_runtime(url) as conn:
        for name in triggers:
            with pytest.raises(
                errors.FeatureNotSupported, match="trigger functions can only be called as triggers"
            ):
                conn.execute(sql.SQL("SELECT {}()").format(sql.Identifier(*name.split("."))))


# -- the calls ----------------------------------------------------------------------------------
@dataclass
class Case:
    name: str  # the guarded function
    statement: str  # its call, with %(...)s names from the arranged ids
    releases: tuple[str, ...] = ("6.1", "6.4")
    setup: str | None = None  # run as the superuser first, so that the call itself would work

    @property
    def permission(self) -> str:
        return GUARDED[self.name]


ORPHAN = "DELETE FROM config.customers WHERE uuid = %(customer_a)s"  # project-a waits its grace period
CASES = [
    Case("config.switch_customer_mode", "SELECT config.switch_customer_mode(true)"),
    Case("config.reconcile_customers", "SELECT config.reconcile_customers(force => true)", ("6.1",), ORPHAN),
    Case(
        "config.reconcile_customers", "SELECT config.reconcile_customers(dry_run => true)", ("6.1",), ORPHAN
    ),
    Case("config.reconcile_customers", "SELECT config.reconcile_customers(dry_run => true)", ("6.4",)),
    Case(
        "config.add_membership", "SELECT config.add_membership(%(user_a)s, %(org_b)s, 'read_only')", ("6.4",)
    ),
    Case(
        "config.remove_membership",
        "SELECT config.remove_membership(%(user_a)s, %(org_b)s)",
        ("6.4",),
        "SELECT config.add_membership(%(user_a)s, %(org_b)s, 'read_only')",
    ),
    Case(
        "config.set_membership_role",
        "SELECT config.set_membership_role(%(user_a)s, %(org_a)s, 'read_only')",
        ("6.4",),
    ),
    Case(
        "config.set_primary_org",
        "SELECT config.set_primary_org(%(user_a)s, %(org_b)s)",
        ("6.4",),
        "SELECT config.add_membership(%(user_a)s, %(org_b)s, 'read_only')",
    ),
    Case("config.promotion_blockers", "SELECT count(*) FROM config.promotion_blockers()", ("6.4",)),
    Case("config.promote_customers", "SELECT config.promote_customers()", ("6.4",)),
    Case(
        "config.demotion_blockers",
        "SELECT count(*) FROM config.demotion_blockers()",
        ("6.4",),
        "SELECT config.promote_customers()",
    ),
    Case("config.demote_orgs", "SELECT config.demote_orgs()", ("6.4",), "SELECT config.promote_customers()"),
]
PARAMS = [
    pytest.param(
        release, case, id="-".join([release, case.name[7:], *re.findall(r"(\w+) =>", case.statement)])
    )
    for case in CASES
    for release in case.releases
]

STATE = {
    "mode": "SELECT name, value FROM config.tunables ORDER BY name",
    "orgs": "SELECT uuid, name FROM config.orgs ORDER BY uuid",
    "projects": "SELECT uuid, org_id, customer_id, name FROM config.projects ORDER BY uuid",
    "customers": "SELECT uuid, name, origin FROM config.customers ORDER BY uuid",
    "audit": "SELECT count(*) AS n, max(id) AS top FROM config.audit_log",
    "job_runs": "SELECT count(*) AS n FROM config.job_runs",
    "memberships": "SELECT user_id, org_id, role, is_primary FROM config.org_memberships ORDER BY 1, 2",
    "promotions": "SELECT id, demoted_at FROM config.org_promotions ORDER BY id",
}


def state(url: str) -> dict[str, Any]:
    """Everything a guarded function could change, read as the superuser."""
    with superuser(url) as conn:
        return {
            key: conn.execute(query).fetchall()
            for key, query in STATE.items()
            if key not in ("memberships", "promotions")
            or conn.execute("SELECT to_regclass('config.org_memberships') IS NOT NULL AS m").fetchone()["m"]
        }


def _people(url: str) -> dict[str, Any]:
    """arrange()'s orgs A and B with their operators, plus a read-only user of A and a super
    admin (of the baseline org), each with a token; the ids the statements name."""
    made = arrange(url)
    with superuser(url) as conn:
        home = conn.execute("SELECT uuid FROM config.orgs WHERE name = 'hydrolix'").fetchone()["uuid"]
        _, reader = user_with_token(conn, "reader-a@example.com", made["a"]["org"], "read_only")
        _, admin = user_with_token(conn, "admin@example.com", home, "super_admin")
        may = {
            r["role"]: set(r["permissions"])
            for r in conn.execute(
                "SELECT role, array_agg(permission) AS permissions FROM config.role_permissions GROUP BY role"
            )
        }
    return {
        "ids": {
            f"{key}_{name}": made[name][key] for name in ("a", "b") for key in ("org", "user", "customer")
        },
        "tokens": {"read_only": reader, "operator": made["a"]["token"], "super_admin": admin},
        "may": may,
    }


@pytest.mark.parametrize(("release", "case"), PARAMS)
def test_a_guarded_function_needs_a_signed_user_with_the_apis_permission(
    release: str, case: Case, db_url: str, request
) -> None:
    url = db_url if release == "6.1" else request.getfixturevalue("db_url_64")
    people = _people(url)
    ids = people["ids"]
    if case.setup:
        with superuser(url) as conn:
            conn.execute(case.setup, ids)
    allowed = [
        role for role in ("read_only", "operator", "super_admin") if case.permission in people["may"][role]
    ]
    assert "super_admin" in allowed and "read_only" not in allowed
    refused: list[str | None] = [None, *(r for r in ("read_only", "operator") if r not in allowed)]

    before = state(url)
    for role in refused:  # unsigned, then signed in without the permission
        with as_runtime(url, None if role is None else people["tokens"][role]) as conn:
            with pytest.raises(errors.InsufficientPrivilege) as refusal:
                conn.execute(case.statement, ids)
        message = str(refusal.value)
        assert case.name in message and case.permission in message, message
        assert state(url) == before, f"{case.name} refused to {role or 'nobody'} changed something"

    for role in allowed:  # the API's roles: as the API runs it
        with as_runtime(url, people["tokens"][role]) as conn:
            result = conn.execute(case.statement, ids).fetchone()
        assert result is not None
    after = state(url)
    _assert_it_did_its_work(case, ids, before, after, url)


def _assert_it_did_its_work(case: Case, ids: dict, before: dict, after: dict, url: str) -> None:
    """The allowed call's effect, as the superuser sees it."""
    name, statement = case.name, case.statement
    if name == "config.switch_customer_mode":
        mode = dict((r["name"], r["value"]) for r in after["mode"])
        assert mode["turbine_api_feature_migrate_projects_to_orgs"] is True
    elif name == "config.reconcile_customers":
        assert after["job_runs"][0]["n"] > before["job_runs"][0]["n"]  # the runs were recorded
        with superuser(url) as conn:
            homed = conn.execute(
                "SELECT customer_id IS NOT NULL AS homed FROM config.projects WHERE name = 'project-a'"
            ).fetchone()["homed"]
        assert homed == ("force" in statement or "memberships" in before)  # a dry run homes nothing
    elif name in (
        "config.add_membership",
        "config.remove_membership",
        "config.set_membership_role",
        "config.set_primary_org",
    ):
        mine = {
            (r["org_id"], r["role"], r["is_primary"])
            for r in after["memberships"]
            if r["user_id"] == ids["user_a"]
        }
        expected = {
            "config.add_membership": {(ids["org_a"], "operator", True), (ids["org_b"], "read_only", False)},
            "config.remove_membership": {(ids["org_a"], "operator", True)},
            "config.set_membership_role": {(ids["org_a"], "read_only", True)},
            "config.set_primary_org": {(ids["org_a"], "operator", False), (ids["org_b"], "read_only", True)},
        }[name]
        assert mine == expected
    elif name == "config.promote_customers":
        assert [r["demoted_at"] for r in after["promotions"]] == [None]
    elif name == "config.demote_orgs":
        assert len(after["promotions"]) == 1 and after["promotions"][0]["demoted_at"] is not None
    else:  # the blockers change nothing
        assert after == before


# -- the owner, a superuser and pg_cron's role ----------------------------------------------------
def test_a_superuser_the_owner_and_a_member_of_it_call_them_as_before(db_url_64: str) -> None:
    """The DBA recipe (docs/dba.md): connect as a superuser, as the owner, or as a login granted
    the owner; no request user is needed. session_user is what the guard looks at (inside a
    SECURITY DEFINER function current_user is the owner whoever called), so SET SESSION
    AUTHORIZATION stands for each login here."""
    url = db_url_64
    made = arrange(url)
    a, b = made["a"], made["b"]
    dba = f"dba_{uuid.uuid4().hex[:8]}"
    with superuser(url) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} NOLOGIN IN ROLE {}").format(
                sql.Identifier(dba), sql.Identifier(ROLES.owner)
            )
        )
        try:
            assert conn.execute("SELECT count(*) AS n FROM config.promotion_blockers()").fetchone()["n"] == 0
            conn.execute("SELECT config.add_membership(%s, %s, 'read_only')", (a["user"], b["org"]))
            conn.execute(sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(ROLES.owner)))
            conn.execute("SELECT config.set_primary_org(%s, %s)", (a["user"], b["org"]))
            conn.execute("SELECT config.set_membership_role(%s, %s, 'operator')", (a["user"], b["org"]))
            conn.execute("RESET SESSION AUTHORIZATION")
            conn.execute(sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(dba)))
            conn.execute("SELECT config.set_primary_org(%s, %s)", (a["user"], a["org"]))
            conn.execute("SELECT config.remove_membership(%s, %s)", (a["user"], b["org"]))
            promoted = conn.execute("SELECT config.promote_customers() AS r").fetchone()["r"]
            conn.execute("SELECT config.demote_orgs()")
            conn.execute("RESET SESSION AUTHORIZATION")
            memberships = conn.execute(
                "SELECT org_id, role, is_primary FROM config.org_memberships WHERE user_id = %s", (a["user"],)
            ).fetchall()
            promotions = conn.execute(
                "SELECT demoted_at IS NOT NULL AS reversed FROM config.org_promotions"
            ).fetchall()
        finally:
            conn.execute("RESET SESSION AUTHORIZATION")
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(dba)))
    assert memberships == [{"org_id": a["org"], "role": "operator", "is_primary": True}]
    assert promoted["dry_run"] is False and promotions == [{"reversed": True}]


def test_the_plain_job_stays_open_to_the_scheduler_and_pg_cron_and_nothing_more(db_url: str) -> None:
    """The job is idempotent and runs every minute anyway: its plain run needs no request user
    (the service's scheduler runs it unsigned as the runtime role; pg_cron as the cron role).
    Its forced and dry runs (the grace period skipped; every org's plan) need jobs.run."""
    url = db_url
    made = arrange(url)
    with superuser(url) as conn:
        conn.execute("DELETE FROM config.customers WHERE uuid = %s", (made["a"]["customer"],))
        conn.execute(
            "UPDATE config.projects SET orphaned_at = now() - interval '1 day' WHERE name = 'project-a'"
        )
    with as_runtime(url) as conn:  # the scheduler's statement (sql/queries/jobs.sql)
        result = conn.execute("SELECT config.reconcile_customers(source => 'service') AS r").fetchone()["r"]
    assert result["projects_associated"] == 1
    before = state(url)
    with superuser(url) as conn:
        conn.execute(sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(ROLES.cron)))
        try:
            ran = conn.execute("SELECT config.reconcile_customers(source => 'cron') AS r").fetchone()["r"]
            for arguments in (
                "force => true, source => 'cron'",
                "dry_run => true, source => 'cron'",
                "force => true, source => 'switch'",
            ):
                with pytest.raises(errors.InsufficientPrivilege, match="config.reconcile_customers needs"):
                    conn.execute(f"SELECT config.reconcile_customers({arguments})")
        finally:
            conn.execute("RESET SESSION AUTHORIZATION")
    assert ran["projects_associated"] == 0
    after = state(url)
    assert after["job_runs"][0]["n"] == before["job_runs"][0]["n"] + 1  # the plain run only
    assert {k: v for k, v in after.items() if k != "job_runs"} == {
        k: v for k, v in before.items() if k != "job_runs"
    }


def test_a_refusal_that_reaches_the_api_is_a_403_naming_what_is_needed(db_url: str) -> None:
    """The routes check the permission first, so the guard's refusal reaches the API only when
    the user's role changed under the request; then it answers 403 with the database's reason,
    never 500 (service/db_errors.py)."""
    from litestar.exceptions import PermissionDeniedException

    from service.db import as_http

    with as_runtime(db_url) as conn:
        with pytest.raises(errors.InsufficientPrivilege) as refusal:
            conn.execute("SELECT config.switch_customer_mode(true)")
    answer = as_http(refusal.value, "per_project")
    assert isinstance(answer, PermissionDeniedException) and answer.status_code == 403
    assert answer.detail.startswith("config.switch_customer_mode needs a signed-in request user"), (
        answer.detail
    )
