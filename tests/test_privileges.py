"""Least privilege and tenant isolation, enforced by PostgreSQL (sql/privileges.sql).

Every test connects as the service's runtime role (``runtime_url``) the way the service does,
and signs in as a user the way the token lookup does (``service_state.user_for_token`` with a
bearer token), then runs statements a bug or an attacker might: a SELECT without any org
condition, DDL, TRUNCATE, changes to the audit log, SET ROLE, a forged ``hierarchy.user_id``.
PostgreSQL itself must refuse them or show nothing of another org. Arranging and checking is
done as the superuser (``db_url``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets

import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from service import migrations, roles
from service.queries import query
from tests.conftest import runtime_url

ROLES = roles.from_env()
PROTECTED = ["config.projects", "config.customers", "config.audit_log"]


def superuser(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def arrange(url: str) -> dict:
    """Orgs A and B, an operator of each with a token, a project and a customer in each (made
    through the rules, so the audit log has rows about both)."""
    made: dict = {}
    with superuser(url) as conn:
        memberships = conn.execute(
            "SELECT to_regclass('config.org_memberships') IS NOT NULL AS m"
        ).fetchone()["m"]
        conn.execute("SELECT set_config('hierarchy.actor', 'test', false)")
        for name in ("a", "b"):
            org = conn.execute(
                "INSERT INTO config.orgs (name) VALUES (%s) RETURNING uuid", (f"org-{name}",)
            ).fetchone()["uuid"]
            user, token = user_with_token(conn, f"user-{name}@example.com", org, "operator")
            customer = conn.execute(
                "INSERT INTO config.customers (name) VALUES (%s) RETURNING uuid", (f"customer-{name}",)
            ).fetchone()["uuid"]
            project = conn.execute(
                "INSERT INTO config.projects (name, org_id, customer_id) VALUES (%s, %s, %s) RETURNING uuid",
                (f"project-{name}", org, customer),
            ).fetchone()["uuid"]
            made[name] = {"org": org, "user": user, "token": token, "project": project, "customer": customer}
        made["memberships"] = memberships
    return made


def user_with_token(conn: psycopg.Connection, email: str, org, role: str) -> tuple:
    """A user of ``org`` with ``role`` (its primary membership at 6.4, users.org_id/role
    before) and a bearer token valid for an hour: (uuid, token)."""
    has = "SELECT to_regclass('config.org_memberships') IS NOT NULL AS m"
    if conn.execute(has).fetchone()["m"]:
        user = conn.execute(
            "WITH u AS (INSERT INTO config.users (email, password_hash)"
            " VALUES (%s, 'x') RETURNING uuid)"
            " INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)"
            " SELECT u.uuid, %s, %s, true FROM u RETURNING user_id AS uuid",
            (email, org, role),
        ).fetchone()["uuid"]
    else:
        user = conn.execute(
            "INSERT INTO config.users (email, password_hash, org_id, role)"
            " VALUES (%s, 'x', %s, %s) RETURNING uuid",
            (email, org, role),
        ).fetchone()["uuid"]
    token = secrets.token_urlsafe(16)
    conn.execute(
        "INSERT INTO config.tokens (token_hash, user_id, expires) VALUES (%s, %s, now() + interval '1 hour')",
        (hashlib.sha256(token.encode()).digest(), user),
    )
    return user, token


def as_runtime(url: str, token: str | None = None) -> psycopg.Connection:
    """A connection as the runtime role, signed in for the session with ``token`` if given."""
    conn = psycopg.connect(runtime_url(url), autocommit=True, row_factory=dict_row)
    if token is not None:
        row = conn.execute(
            "SELECT state FROM service_state.user_for_token(%s, NULL, false)", (token,)
        ).fetchone()
        assert row["state"] == "ok"
    return conn


def _org_ids_seen(conn: psycopg.Connection, made: dict) -> dict[str, set]:
    """What each protected table shows of org B to an unscoped SELECT (audit rows: those naming
    one of org B's objects)."""
    b_ids = {str(made["b"][key]) for key in ("org", "project", "user", "customer")}
    seen = {
        "config.projects": {str(r["org_id"]) for r in conn.execute("SELECT org_id FROM config.projects")},
        "config.audit_log": {
            text
            for r in conn.execute("SELECT object_id, before, after FROM config.audit_log")
            for text in (str(r["object_id"]), str(r["before"]), str(r["after"]))
            if any(b in text for b in b_ids)
        },
    }
    if made["memberships"]:
        seen["config.org_memberships"] = {
            str(r["org_id"]) for r in conn.execute("SELECT org_id FROM config.org_memberships")
        }
    return seen


@pytest.fixture(params=["6.1", "6.4"])
def arranged(request, db_url: str, pg_server) -> tuple[str, dict]:
    url = db_url if request.param == "6.1" else request.getfixturevalue("db_url_64")
    return url, arrange(url)


def test_an_unscoped_select_as_the_runtime_role_shows_nothing_of_another_org(arranged) -> None:
    url, made = arranged
    with as_runtime(url, made["a"]["token"]) as conn:
        seen = _org_ids_seen(conn, made)
        projects = {r["name"] for r in conn.execute("SELECT name FROM config.projects")}
        customers = {r["name"] for r in conn.execute("SELECT name FROM config.customers")}
        audit_about_a = conn.execute(
            "SELECT count(*) AS n FROM config.audit_log WHERE object_id = %s", (made["a"]["project"],)
        ).fetchone()["n"]
    org_b = str(made["b"]["org"])
    assert org_b not in seen["config.projects"] and seen["config.projects"] == {str(made["a"]["org"])}
    assert projects == {"project-a"}
    assert "project-b" not in customers and "customer-b" not in customers and customers  # a's own
    assert not seen["config.audit_log"], "audit rows about org B's objects"
    assert audit_about_a >= 1  # its own org's rows are there
    if made["memberships"]:
        assert seen["config.org_memberships"] == {str(made["a"]["org"])}
    with superuser(url) as conn:  # the rows exist: the superuser (and so the test) sees them
        assert conn.execute(
            "SELECT count(*) AS n FROM config.projects WHERE org_id = %s", (org_b,)
        ).fetchone()["n"]


def test_without_a_signed_in_user_the_runtime_role_sees_no_row(arranged) -> None:
    url, made = arranged
    tables = [*PROTECTED, *(["config.org_memberships"] if made["memberships"] else [])]
    with as_runtime(url) as conn:
        for table in tables:
            assert conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] == 0, table
        # an unknown token signs nobody in
        assert (
            conn.execute("SELECT * FROM service_state.user_for_token('nope', NULL, false)").fetchall() == []
        )
        assert conn.execute("SELECT count(*) AS n FROM config.projects").fetchone()["n"] == 0


def test_setting_hierarchy_user_id_to_another_user_impersonates_nobody(arranged) -> None:
    """PostgreSQL lets any role SET a custom setting; the policies trust hierarchy.user_id only
    with the signature the token lookup sets beside it, so a forged id sees nothing at all."""
    url, made = arranged
    with as_runtime(url, made["a"]["token"]) as conn:
        conn.execute("SELECT set_config('hierarchy.user_id', %s, false)", (str(made["b"]["user"]),))
        assert conn.execute("SELECT count(*) AS n FROM config.projects").fetchone()["n"] == 0
        conn.execute(f"SET hierarchy.user_id = '{made['b']['user']}'")
        assert conn.execute("SELECT count(*) AS n FROM config.customers").fetchone()["n"] == 0
        # copying the key of this session to another user's id does not work either
        conn.execute("SET hierarchy.user_key = 'forged'")
        assert conn.execute("SELECT count(*) AS n FROM config.audit_log").fetchone()["n"] == 0
        # nor does widening its own orgs, or claiming to see every org, under its own signature
        again = "SELECT state FROM service_state.user_for_token(%s, NULL, false)"
        assert conn.execute(again, (made["a"]["token"],)).fetchone()["state"] == "ok"
        assert conn.execute("SELECT count(*) AS n FROM config.projects").fetchone()["n"] == 1
        conn.execute("SELECT set_config('hierarchy.user_orgs', %s, false)", (f"{{{made['b']['org']}}}",))
        assert conn.execute("SELECT count(*) AS n FROM config.projects").fetchone()["n"] == 0
        assert conn.execute(again, (made["a"]["token"],)).fetchone()["state"] == "ok"
        conn.execute("SET hierarchy.user_sees_all = 'true'")
        assert conn.execute("SELECT count(*) AS n FROM config.projects").fetchone()["n"] == 0
        # nor may the runtime role sign itself in, or read the key
        with pytest.raises(errors.InsufficientPrivilege):
            sign_in = "SELECT service_state.sign_in(%s, 'x', %s, true, false)"
            conn.execute(sign_in, (made["b"]["user"], [made["b"]["org"]]))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT key FROM service_state.secret")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT service_state.user_key(%s, '', 'true')", (str(made["b"]["user"]),))


def test_the_customers_page_planned_once_per_connection_shows_each_signed_in_user_its_own(arranged) -> None:
    """The customers page (config.customers_page) keeps one generic plan per connection for a
    super admin's unfiltered page (issue 23). The plan must bind no user: on one connection, as
    a pooled one is reused, operator A then operator B each get only the customers the policies
    show them, even when the statement is told the user sees every org (the generic branch) and
    after psycopg prepared it; a filtered page (planned per call) likewise, and the honest
    scope. The function's plan_cache_mode does not leak into the session."""
    url, made = arranged
    page = query("customers.list")
    with as_runtime(url) as conn:
        for who in ("a", "b", "a"):
            user = made[who]
            state = conn.execute(
                "SELECT state FROM service_state.user_for_token(%s, NULL, false)", (user["token"],)
            ).fetchone()["state"]
            assert state == "ok"
            policy = {str(r["uuid"]) for r in conn.execute("SELECT uuid FROM config.customers")}
            other = "b" if who == "a" else "a"
            assert str(user["customer"]) in policy and str(made[other]["customer"]) not in policy
            for all_orgs, origin in ((True, None), (False, None), (True, "manual"), (False, "manual")):
                params = {
                    "all_orgs": all_orgs,
                    "user_id": user["user"],
                    "user_orgs": [user["org"]],
                    "name": None,
                    "origin": origin,
                    "limit": 100,
                    "offset": 0,
                }
                for _ in range(6):  # past psycopg's prepare threshold and plpgsql's first plan
                    row = conn.execute(page, params, prepare=True).fetchone()
                listed = {c["uuid"] for c in json.loads(row["results"])}
                of_origin = "SELECT uuid FROM config.customers WHERE origin = %s"
                expected = {str(r["uuid"]) for r in conn.execute(of_origin, [origin])} if origin else policy
                assert listed == expected, (who, all_orgs, origin)
                # (told all_orgs, the total is every customer's count, as config.customer_count says
                # to anyone: the scope the service passes decides it, as before issue 23)
                assert all_orgs or row["total"] == len(expected)
                projects = {p for c in json.loads(row["results"]) for p in c["projects"]}
                assert str(made[other]["project"]) not in projects
                assert origin or str(user["project"]) in projects
            assert conn.execute("SELECT current_setting('plan_cache_mode') AS m").fetchone()["m"] == "auto"


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE config.evil (x int)",
        "CREATE TABLE service_state.evil (x int)",
        "ALTER TABLE config.projects ADD COLUMN evil int",
        "ALTER TABLE config.projects DISABLE ROW LEVEL SECURITY",
        "DROP POLICY projects_of_request_orgs ON config.projects",
        "DROP TABLE config.audit_log",
        "CREATE FUNCTION config.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "TRUNCATE config.projects",
        "TRUNCATE config.audit_log",
        "UPDATE config.audit_log SET actor = 'nobody'",
        "DELETE FROM config.audit_log",
        "INSERT INTO config.audit_log (action, object_type) VALUES ('forged', 'projects')",
        "SET ROLE {owner}",
        "SET ROLE {cron}",
        "SET ROLE postgres",
        "SELECT config.switch_mode_now(true)",
        "COPY config.tunables TO PROGRAM 'true'",
        "SELECT * FROM pg_authid",
    ],
)
def test_the_runtime_role_is_refused_by_postgresql(db_url: str, statement: str) -> None:
    statement = statement.format(owner=ROLES.owner, cron=ROLES.cron)
    with superuser(db_url) as conn:
        before = conn.execute("SELECT count(*) AS n, max(id) AS top FROM config.audit_log").fetchone()
    with as_runtime(db_url) as conn:
        with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedFunction)) as refused:
            conn.execute(statement)
    if isinstance(refused.value, errors.UndefinedFunction):  # switch_mode_now's arguments differ
        assert "switch_mode_now" in statement
    with superuser(db_url) as conn:
        assert conn.execute("SELECT count(*) AS n, max(id) AS top FROM config.audit_log").fetchone() == before
        assert conn.execute("SELECT to_regclass('config.evil') AS t").fetchone()["t"] is None
        assert conn.execute(
            "SELECT relrowsecurity AS on FROM pg_class WHERE oid = 'config.projects'::regclass"
        ).fetchone()["on"]


def test_the_roles_have_the_attributes_and_grants_of_least_privilege(db_url_64: str) -> None:
    with superuser(db_url_64) as conn:
        app = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin"
            " FROM pg_roles WHERE rolname = %s",
            (ROLES.app,),
        ).fetchone()
        assert app == {
            "rolsuper": False,
            "rolbypassrls": False,
            "rolcreaterole": False,
            "rolcreatedb": False,
            "rolcanlogin": True,
        }
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c"
            " WHERE c.relnamespace IN ('config'::regnamespace, 'service_state'::regnamespace)"
        ).fetchall()
        assert owners == [{"owner": ROLES.owner}]
        grants = {
            (r["table_name"], r["privilege_type"])
            for r in conn.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = %s AND table_schema = 'config'",
                (ROLES.app,),
            )
        }
        assert ("audit_log", "SELECT") in grants
        assert not {p for t, p in grants if t == "audit_log"} - {"SELECT"}
        assert not {t for t, _ in grants} & {"parked_cron_jobs"}
        assert not {p for _, p in grants} & {"TRUNCATE", "REFERENCES", "TRIGGER"}
        definer = {
            r["proname"]: r["prosecdef"]
            for r in conn.execute(
                "SELECT proname, prosecdef FROM pg_proc WHERE pronamespace = 'config'::regnamespace"
                " AND proname IN ('reconcile_customers', 'switch_customer_mode', 'add_membership')"
            )
        }
        assert definer == {"reconcile_customers": True, "switch_customer_mode": True, "add_membership": True}
        cron_may = conn.execute(
            "SELECT has_function_privilege(%s, 'config.switch_customer_mode(boolean, boolean)',"
            " 'EXECUTE') AS switch,"
            " has_table_privilege(%s, 'config.projects', 'SELECT') AS projects,"
            " EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = 'reconcile_customers'"
            "         AND has_function_privilege(%s, p.oid, 'EXECUTE')) AS job",
            (ROLES.cron, ROLES.cron, ROLES.cron),
        ).fetchone()
        assert cron_may == {"switch": False, "projects": False, "job": True}


def test_the_report_role_reads_every_org_and_changes_nothing(arranged) -> None:
    url, made = arranged
    with superuser(url) as conn:
        total = conn.execute("SELECT count(*) AS n FROM config.projects").fetchone()["n"]
        conn.execute(f"SET ROLE {ROLES.reader}")
        assert conn.execute("SELECT count(*) AS n FROM config.projects").fetchone()["n"] == total
        assert conn.execute("SELECT count(*) AS n FROM config.audit_log").fetchone()["n"] > 0
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE config.projects SET name = name")
        conn.execute("RESET ROLE")


def test_migrate_again_keeps_privileges_idempotent(db_url_64: str) -> None:
    migrations.migrate(db_url_64, "6.4")  # re-applies sql/privileges.sql: no error, same state
    migrations.migrate(db_url_64, "6.1")  # the rollback drops memberships and its policies ...
    migrations.migrate(db_url_64, "6.4")  # ... and the next migrate puts them back
    made = arrange(db_url_64)
    with as_runtime(db_url_64, made["a"]["token"]) as conn:
        assert {str(r["org_id"]) for r in conn.execute("SELECT org_id FROM config.org_memberships")} == {
            str(made["a"]["org"])
        }


def test_the_service_warns_when_it_connects_as_asuperuser(db_url: str) -> None:
    from litestar.testing import TestClient

    from service.app import create_app

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    def warnings_for(url: str) -> list[str]:
        handler = Collect()
        logger = logging.getLogger("service.db")  # the app's logging config may stop propagation
        logger.addHandler(handler)
        try:
            with TestClient(create_app(url, run_scheduler=False)) as client:
                assert client.get("/health").status_code == 200
        finally:
            logger.removeHandler(handler)
        return [m for m in handler.messages if "SECURITY" in m]

    assert any("superuser" in m for m in warnings_for(db_url))
    assert warnings_for(runtime_url(db_url)) == []


@pytest.mark.cron
def test_pg_cron_runs_the_job_as_the_cron_role(cron_db_url: str) -> None:
    migrations.migrate(cron_db_url, "6.1")
    with superuser(cron_db_url) as conn:
        job = conn.execute("SELECT username FROM cron.job WHERE jobname = 'reconcile-customers'").fetchone()
    assert job == {"username": ROLES.cron}


def test_a_pooled_connection_a_read_signed_in_is_signed_out_for_any_other_use(db_url_64: str) -> None:
    """A read signs its session in (autocommit) and leaves it so: the next request's lookup
    replaces it; anything else taking the connection from the pool (login, health, the
    scheduler) gets it signed out first and sees no row of that user's."""
    import asyncio
    import contextlib

    from service import auth
    from service.db import Database

    made = arrange(db_url_64)
    COUNT = "SELECT count(*) AS n FROM config.projects"  # noqa: N806

    async def scenario() -> tuple[int, list[int], bool]:
        database = Database(runtime_url(db_url_64))
        await database.open()
        try:
            await database.pool.wait()
            async with database.connection(signing_in=True) as conn:
                database.signed_in(conn)
                await auth.lookup(conn, made["a"]["token"], local=False)
                seen = (await (await conn.execute(COUNT)).fetchone())["n"]
                first = conn
            async with contextlib.AsyncExitStack() as stack:  # every idle connection of the pool
                conns = [await stack.enter_async_context(database.connection()) for _ in range(2)]
                counts = [(await (await c.execute(COUNT)).fetchone())["n"] for c in conns]
                return seen, counts, any(c is first for c in conns)
        finally:
            await database.close()

    seen, counts, reused = asyncio.run(scenario())
    assert seen == 1 and reused
    assert counts == [0, 0]


def test_promoted_orgs_show_the_runtime_role_only_the_request_users_orgs(db_url_64) -> None:
    """After the promotion (migrations/0005) config.promoted_orgs says which customer each org
    stands for: an unscoped SELECT as the runtime role shows the pairs of the user's orgs only."""
    url = db_url_64
    made = arrange(url)
    with superuser(url) as conn:
        conn.execute("SELECT config.promote_customers()")
        org_of = {
            name: str(
                conn.execute(
                    "SELECT org_id FROM config.projects WHERE uuid = %s", (made[name]["project"],)
                ).fetchone()["org_id"]
            )
            for name in ("a", "b")
        }
        every = {str(r["org_id"]) for r in conn.execute("SELECT org_id FROM config.promoted_orgs")}
    assert {org_of["a"], org_of["b"]} <= every  # both customers became orgs
    with as_runtime(url, made["a"]["token"]) as conn:
        seen = {str(r["org_id"]) for r in conn.execute("SELECT org_id FROM config.promoted_orgs")}
    assert org_of["a"] in seen and org_of["b"] not in seen, seen
    with as_runtime(url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM config.promoted_orgs").fetchone()["n"] == 0


@pytest.mark.parametrize("per_project", [True, False], ids=["per-project", "single"])
def test_each_user_sees_as_itself_exactly_what_it_saw_before_the_promotion(db_url, per_project) -> None:
    """Each user of tests.promotion_data, signed in as itself on the runtime role (row-level
    security alone decides: an unscoped SELECT), sees the same projects before the promotion,
    while promoted and after the reversal: no privilege gained, nothing lost."""
    from tests.promotion_data import USERS, build

    build(db_url, per_project=per_project)
    tokens = {}
    with superuser(db_url) as conn:
        for email in USERS:
            token = secrets.token_urlsafe(16)
            conn.execute(
                "INSERT INTO config.tokens (token_hash, user_id, expires)"
                " SELECT %s, uuid, now() + interval '1 hour' FROM config.users WHERE email = %s",
                (hashlib.sha256(token.encode()).digest(), email),
            )
            tokens[email] = token

    def seen() -> dict[str, set[str]]:
        sights = {}
        for email, token in tokens.items():
            with as_runtime(db_url, token) as conn:
                sights[email] = {r["name"] for r in conn.execute("SELECT name FROM config.projects")}
        return sights

    before = seen()
    assert before["op@acme"] == {"web", "api", "db"} and before["op@globex"] == {"shop"}
    assert before["admin@x"] >= {"hydro", "sample_project", "web", "api", "db", "shop"}
    with superuser(db_url) as conn:
        conn.execute("SELECT config.promote_customers()")
        moved = conn.execute(
            "SELECT count(*) AS n FROM config.demotion_moves()"
        ).fetchone()["n"]
    assert moved > 0  # the projects did change org
    assert seen() == before, "a user sees other projects while promoted"
    with superuser(db_url) as conn:
        conn.execute("SELECT config.demote_orgs()")
    assert seen() == before, "a user sees other projects after the reversal"
