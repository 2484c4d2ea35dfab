"""The promotion of customers to orgs and its reversal from SQL (migrations/0005): the mapping
rules in both modes, the blockers and refusals (nothing changed), the dry runs, the rule kept
while promoted, what becomes of projects and memberships created after the promotion, the
lossless round trip, and the downgrade refused while promoted."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import errors

from service.migrations import DowngradeBlocked, migrate
from tests.promotion_data import build, layout, memberships, project_orgs


class Refused:
    """pytest.raises for a custom SQLSTATE (psycopg has no class for HR0xx): the error, checked."""

    def __init__(self, sqlstate, match=None):
        self.sqlstate, self.match = sqlstate, match

    def __enter__(self):
        self.raised = pytest.raises(psycopg.Error, match=self.match)
        self.value = self.raised.__enter__()
        return self.value

    def __exit__(self, *exc):
        handled = self.raised.__exit__(*exc)
        assert self.value.value.sqlstate == self.sqlstate, self.value.value
        return handled


def connect(url):
    return psycopg.connect(url, autocommit=True)


def promote(conn, dry_run=False):
    return conn.execute("SELECT config.promote_customers(%s)", (dry_run,)).fetchone()[0]


def demote(conn, dry_run=False):
    return conn.execute("SELECT config.demote_orgs(%s)", (dry_run,)).fetchone()[0]


def audit_mark(conn):
    return conn.execute("SELECT coalesce(max(id), 0) FROM config.audit_log").fetchone()[0]


@pytest.fixture
def per_project(db_url):
    build(db_url, per_project=True)
    with connect(db_url) as conn:
        yield conn


@pytest.fixture
def single(db_url):
    build(db_url, per_project=False)
    with connect(db_url) as conn:
        yield conn


def test_per_project_mode_every_customer_becomes_an_org(per_project):
    conn = per_project
    before = layout(conn)
    assert conn.execute("SELECT count(*) FROM config.promotion_blockers()").fetchone()[0] == 0
    done = promote(conn)
    assert done["orgs_created"] == 5 and done["orgs_mapped"] == 0 and done["projects_moved"] == 6
    assert project_orgs(conn) == {
        "hydro": "hydro",
        "sample_project": "sample_project",
        "web": "web",
        "api": "bigco",
        "db": "bigco",
        "shop": "shop",
    }
    # each project's org is its customer's org
    assert (
        conn.execute(
            "SELECT count(*) FROM config.projects p "
            "JOIN config.promoted_orgs po ON po.customer_id = p.customer_id "
            "WHERE po.org_id <> p.org_id"
        ).fetchone()[0]
        == 0
    )
    # role R in org X: role R in every new org that received X's projects; the primary moves to
    # the new org with most of them (bigco: 2) since acme keeps none; super admins unchanged
    assert memberships(conn, "op@acme") == [
        ("op@acme", "acme", "operator", False),
        ("op@acme", "bigco", "operator", True),
        ("op@acme", "web", "operator", False),
    ]
    assert memberships(conn, "ro@acme") == [
        ("ro@acme", "acme", "read_only", False),
        ("ro@acme", "bigco", "read_only", True),
        ("ro@acme", "web", "read_only", False),
    ]
    assert memberships(conn, "op@globex") == [
        ("op@globex", "globex", "operator", False),
        ("op@globex", "shop", "operator", True),
    ]
    assert memberships(conn, "ro@hydrolix") == [
        ("ro@hydrolix", "hydro", "read_only", True),  # 1 project each: ties go by name
        ("ro@hydrolix", "hydrolix", "read_only", False),
        ("ro@hydrolix", "sample_project", "read_only", False),
    ]
    assert memberships(conn, "admin@x") == [("admin@x", "hydrolix", "super_admin", True)]
    # no privilege gained: every user sees exactly the projects it saw
    assert visible(conn) == visible_from(before)
    # audited: the orgs created, the projects moved, the memberships added
    assert (
        conn.execute(
            "SELECT count(*) FROM config.audit_log "
            "WHERE object_type = 'projects' AND 'org_id' = ANY (changed)"
        ).fetchone()[0]
        == 6
    )
    # and the reversal restores the layout before it, losslessly
    undone = demote(conn)
    assert undone["orgs_deleted"] == 5 and undone["projects_moved"] == 6
    assert layout(conn) == before


def visible(conn):
    """{email: sorted project names it sees} (super admins see every project)."""
    rows = conn.execute(
        "SELECT u.email, coalesce(array_agg(DISTINCT p.name) FILTER (WHERE p.uuid IS NOT NULL), '{}') "
        "FROM config.users u JOIN config.org_memberships m ON m.user_id = u.uuid "
        "LEFT JOIN config.projects p ON config.role_sees_every_org(m.role) OR p.org_id = m.org_id "
        "GROUP BY u.email"
    ).fetchall()
    return {email: sorted(names) for email, names in rows}


def visible_from(before):
    orgs_of = {}
    for email, org, role, _ in before["memberships"]:
        orgs_of.setdefault(email, []).append((org, role))
    return {
        email: sorted(
            name
            for _, name, org, _ in before["projects"]
            if any(role == "super_admin" or org == o for o, role in pairs)
        )
        for email, pairs in orgs_of.items()
    }


def test_single_mode_default_customers_keep_their_orgs(single):
    conn = single
    before = layout(conn)
    done = promote(conn)
    # acme and globex stand for their default customers; bigco, hydro, sample_project are new
    assert done["orgs_created"] == 3 and done["orgs_mapped"] == 2 and done["projects_moved"] == 4
    stands = dict(
        conn.execute(
            "SELECT o.name, c.name FROM config.promoted_orgs po JOIN config.orgs o ON o.uuid = po.org_id "
            "JOIN config.customers c ON c.uuid = po.customer_id WHERE NOT po.created"
        ).fetchall()
    )
    assert stands == {"acme": "web", "globex": "shop"}  # rule 4 names a one-project customer after it
    assert project_orgs(conn) == {
        "hydro": "hydro",
        "sample_project": "sample_project",
        "web": "acme",
        "api": "bigco",
        "db": "bigco",
        "shop": "globex",
    }
    # acme keeps web: it stays op@acme's primary
    assert memberships(conn, "op@acme") == [
        ("op@acme", "acme", "operator", True),
        ("op@acme", "bigco", "operator", False),
    ]
    assert memberships(conn, "op@globex") == [("op@globex", "globex", "operator", True)]
    assert visible(conn) == visible_from(before)
    demote(conn)
    assert layout(conn) == before


def test_dry_runs_show_the_plan_and_change_nothing(per_project):
    conn = per_project
    before, mark = layout(conn), audit_mark(conn)
    plan = promote(conn, dry_run=True)
    assert plan["dry_run"] is True and plan["orgs_created"] == 5
    assert layout(conn) == before and audit_mark(conn) == mark
    assert conn.execute("SELECT config.promotion_in_force()").fetchone()[0] is None
    report = plan["plan"]
    assert report["orgs_total"] == 5 and report["moves_total"] == 6
    bigco = next(o for o in report["orgs"] if o["org"] == "bigco")
    assert bigco == {
        "org": "bigco",
        "customer": "bigco",
        "origin": "manual",
        "created": True,
        "from_org": "acme",
        "projects": 2,
    }
    assert {"project": "api", "from_org": "acme", "to_org": "bigco"} in report["moves"]
    assert {
        "email": "op@acme",
        "org": "bigco",
        "role": "operator",
        "is_primary": True,
        "added": True,
        "was_primary": False,
    } in report["memberships"]
    # the acme membership lost its primary flag: listed too
    assert {
        "email": "op@acme",
        "org": "acme",
        "role": "operator",
        "is_primary": False,
        "added": False,
        "was_primary": True,
    } in report["memberships"]
    promote(conn)
    promoted = layout(conn)
    undo = demote(conn, dry_run=True)
    assert undo["dry_run"] is True and undo["orgs_deleted"] == 5
    assert undo["plan"]["moves_total"] == 6 and layout(conn) == promoted
    assert {"project": "web", "from_org": "web", "to_org": "acme"} in undo["plan"]["moves"]


def test_refusals_change_nothing(per_project):
    conn = per_project
    with Refused("HR073", match="not promoted"):
        demote(conn)
    promote(conn)
    state, mark = layout(conn), audit_mark(conn)
    with Refused("HR072", match="already promoted.*hierarchy orgs demote"):
        promote(conn)
    with Refused("HR072"):
        promote(conn, dry_run=True)
    assert layout(conn) == state and audit_mark(conn) == mark


def test_blockers_are_named_and_block_everything(db_url):
    build(db_url, per_project=True, spanning=True)
    with connect(db_url) as conn:
        conn.execute("INSERT INTO config.orgs (name) VALUES ('web')")  # the new org's name, taken
        before, mark = layout(conn), audit_mark(conn)
        blockers = conn.execute("SELECT kind, subject FROM config.promotion_blockers()").fetchall()
        assert blockers == [("customer_spans_orgs", "bigco"), ("org_name_taken", "web")]
        for dry_run in (True, False):
            with Refused("HR070") as caught:
                promote(conn, dry_run)
            message = caught.value.diag.message_primary
            assert "2 blocker(s)" in message and "bigco" in message and "web" in message
            assert [b["kind"] for b in json.loads(caught.value.diag.message_detail)] == [
                "customer_spans_orgs",
                "org_name_taken",
            ]
        assert layout(conn) == before and audit_mark(conn) == mark


def test_many_blockers_name_the_first_five_and_the_total(per_project):
    conn = per_project
    conn.execute(
        "INSERT INTO config.orgs (name) "
        "SELECT unnest(ARRAY['hydro', 'sample_project', 'web', 'bigco', 'shop'])"
    )
    # one more: a customer whose name cannot be an org name
    conn.execute("INSERT INTO config.customers (name) VALUES ('no/slash')")
    with Refused("HR070") as caught:
        promote(conn)
    message = caught.value.diag.message_primary
    assert "6 blocker(s)" in message and "and 1 more" in message


def test_while_promoted_a_project_stays_in_its_customers_org(per_project):
    conn = per_project
    promote(conn)
    web_customer, acme, web_org = conn.execute(
        "SELECT c.uuid, (SELECT uuid FROM config.orgs WHERE name = 'acme'), "
        "(SELECT uuid FROM config.orgs WHERE name = 'web') "
        "FROM config.customers c WHERE c.name = 'web'"
    ).fetchone()
    with pytest.raises(errors.CheckViolation) as caught:
        conn.execute(
            "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'x', %s)",
            (acme, web_customer),
        )
    assert caught.value.diag.constraint_name == "projects_org_is_customer_org"
    with pytest.raises(errors.CheckViolation):
        conn.execute("UPDATE config.projects SET org_id = %s WHERE name = 'web'", (acme,))
    # an UPDATE is checked once per statement: the first project named, the others counted, in
    # replica mode too, and nothing moved
    for role in ("origin", "replica"):
        conn.execute(f"SET session_replication_role = {role}")
        with pytest.raises(errors.CheckViolation, match=r"project api .*\(and 1 more projects\)") as caught:
            conn.execute("UPDATE config.projects SET org_id = %s WHERE name IN ('web', 'api')", (acme,))
        assert caught.value.diag.constraint_name == "projects_org_is_customer_org"
    conn.execute("SET session_replication_role = origin")
    assert project_orgs(conn)["web"] == "web" and project_orgs(conn)["api"] == "bigco"
    # a customer made after the promotion stands for no org: none of its projects anywhere
    late = conn.execute("INSERT INTO config.customers (name) VALUES ('late') RETURNING uuid").fetchone()[0]
    with pytest.raises(errors.CheckViolation, match="none: it was created after the promotion"):
        conn.execute(
            "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'y', %s)", (web_org, late)
        )
    # a project created without a customer in a promoted org gets the customer it stands for
    made = conn.execute(
        "INSERT INTO config.projects (org_id, name) VALUES (%s, 'bare') RETURNING customer_id", (web_org,)
    ).fetchone()[0]
    assert made == web_customer
    # an org standing for no customer (acme kept none): the customer stays required
    with pytest.raises(errors.NotNullViolation):
        conn.execute("INSERT INTO config.projects (org_id, name) VALUES (%s, 'bare')", (acme,))
    # the promoted orgs and their customers cannot be deleted
    with pytest.raises(errors.ForeignKeyViolation):
        conn.execute("DELETE FROM config.orgs WHERE name = 'web'")


def test_what_the_promotion_names_is_kept_while_promoted(per_project):
    """The bookkeeping has no foreign keys (bench/ANALYSIS.md): the statement triggers
    *_promotion_kept refuse to lose an org or customer it names, for any writer, replica mode
    included, and only while promoted."""
    conn = per_project
    lonely = conn.execute("INSERT INTO config.orgs (name) VALUES ('lonely') RETURNING uuid").fetchone()[0]
    solo = conn.execute("INSERT INTO config.customers (name) VALUES ('solo') RETURNING uuid").fetchone()[0]
    conn.execute(
        "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'solo', %s)", (lonely, solo)
    )
    conn.execute("INSERT INTO config.customers (name) VALUES ('empty')")
    promote(conn)
    before = layout(conn)
    # lonely: no project, no member left; only the reversal needs it (where solo returns)
    left = conn.execute("SELECT count(*) FROM config.projects WHERE org_id = %s", (lonely,)).fetchone()[0]
    assert left == 0
    refusals = [
        ("DELETE FROM config.orgs WHERE name = 'lonely'", "orgs_promotion_kept"),
        ("DELETE FROM config.orgs WHERE name = 'empty'", "orgs_promotion_kept"),  # the org it stands for
        ("UPDATE config.orgs SET uuid = gen_random_uuid() WHERE name = 'lonely'", "orgs_promotion_kept"),
        ("UPDATE config.orgs SET uuid = gen_random_uuid() WHERE name = 'empty'", "orgs_promotion_kept"),
        ("DELETE FROM config.customers WHERE name = 'empty'", "customers_promotion_kept"),
        (
            "UPDATE config.customers SET uuid = gen_random_uuid() WHERE name = 'empty'",
            "customers_promotion_kept",
        ),
    ]
    for replica in (False, True):
        conn.execute("SET session_replication_role = " + ("replica" if replica else "origin"))
        for statement, constraint in refusals:
            with pytest.raises(errors.ForeignKeyViolation) as caught:
                conn.execute(statement)
            assert caught.value.diag.constraint_name == constraint, statement
    conn.execute("SET session_replication_role = origin")
    # renames are not losses
    conn.execute("UPDATE config.orgs SET name = 'lonely2' WHERE name = 'lonely'")
    conn.execute("UPDATE config.orgs SET name = 'lonely' WHERE name = 'lonely2'")
    assert layout(conn) == before
    # the reversal returns solo to lonely; then nothing is named any more
    demote(conn)
    assert project_orgs(conn)["solo"] == "lonely"
    assert conn.execute("DELETE FROM config.customers WHERE name = 'empty'").rowcount == 1


def test_what_was_created_after_the_promotion_survives_the_reversal(per_project):
    conn = per_project
    promote(conn)
    web_customer, web_org, bigco_org, acme = conn.execute(
        "SELECT (SELECT uuid FROM config.customers WHERE name = 'web'), "
        "(SELECT uuid FROM config.orgs WHERE name = 'web'), "
        "(SELECT uuid FROM config.orgs WHERE name = 'bigco'), "
        "(SELECT uuid FROM config.orgs WHERE name = 'acme')"
    ).fetchone()
    conn.execute(
        "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'blog', %s)",
        (web_org, web_customer),
    )
    # a user created in a promoted org, and a membership added there
    conn.execute(
        "SELECT config.add_membership(u.uuid, %s, 'read_only') FROM config.users u "
        "WHERE u.email = 'op@globex'",
        (bigco_org,),
    )
    from service import users

    users.create_user(conn, "new@web", "s3cret-pass", web_org, "operator")
    demote(conn)
    assert project_orgs(conn)["blog"] == "acme"  # where its customer's projects came from
    assert memberships(conn, "new@web") == [("new@web", "acme", "operator", True)]
    assert ("op@globex", "acme", "read_only", False) in memberships(conn, "op@globex")
    assert memberships(conn, "op@acme") == [("op@acme", "acme", "operator", True)]
    assert acme


def test_reversal_blockers(per_project):
    conn = per_project
    promote(conn)
    ids = dict(conn.execute("SELECT name, uuid FROM config.orgs").fetchall())
    customers = dict(conn.execute("SELECT name, uuid FROM config.customers").fetchall())
    # bigco gets a project named web: both would return to acme
    conn.execute(
        "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'web', %s)",
        (ids["bigco"], customers["bigco"]),
    )
    state, mark = layout(conn), audit_mark(conn)
    with Refused("HR071", match="1 blocker.*project_name_clash acme/web"):
        demote(conn)
    assert layout(conn) == state and audit_mark(conn) == mark
    conn.execute("DELETE FROM config.projects WHERE name = 'web' AND org_id = %s", (ids["bigco"],))
    demote(conn)


def test_a_returning_project_meeting_one_that_stayed_blocks_the_reversal(single):
    """The reversal's name check reads only the projects of a returning project's name in its
    org: one that stayed there (or was created there since) is found."""
    conn = single
    promote(conn)
    acme, default = conn.execute(
        "SELECT o.uuid, c.uuid FROM config.orgs o JOIN config.customers c ON c.default_for_org = o.uuid "
        "WHERE o.name = 'acme'"
    ).fetchone()
    assert project_orgs(conn)["api"] == "bigco"  # bigco's api returns to acme
    conn.execute(
        "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'api', %s)", (acme, default)
    )
    state, mark = layout(conn), audit_mark(conn)
    with Refused("HR071", match="1 blocker.*project_name_clash acme/api"):
        demote(conn)
    assert layout(conn) == state and audit_mark(conn) == mark
    conn.execute("DELETE FROM config.projects WHERE name = 'api' AND org_id = %s", (acme,))
    demote(conn)


def test_an_org_without_source_blocks_the_reversal_of_its_new_projects(db_url):
    build(db_url, per_project=True)
    with connect(db_url) as conn:
        conn.execute("INSERT INTO config.customers (name) VALUES ('empty')")  # holds no project
        promote(conn)
        ids = dict(conn.execute("SELECT name, uuid FROM config.orgs").fetchall())
        empty = conn.execute("SELECT uuid FROM config.customers WHERE name = 'empty'").fetchone()[0]
        conn.execute(
            "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'fresh', %s)",
            (ids["empty"], empty),
        )
        with Refused("HR071", match="no_org_to_return_to empty/fresh"):
            demote(conn)
        conn.execute("DELETE FROM config.projects WHERE name = 'fresh'")
        demote(conn)
        assert "empty" not in layout(conn)["orgs"]


def test_downgrade_refused_while_promoted_then_round_trips(db_url):
    build(db_url, per_project=False)
    with connect(db_url) as conn:
        before = layout(conn)
        promote(conn)
    with pytest.raises(DowngradeBlocked, match="hierarchy orgs demote"):
        migrate(db_url, "6.1")
    with connect(db_url) as conn:
        assert conn.execute("SELECT config.promotion_in_force()").fetchone()[0] is not None
        demote(conn)
    migrate(db_url, "6.1")
    migrate(db_url, "6.4")
    with connect(db_url) as conn:
        after = layout(conn)
        assert after["projects"] == before["projects"] and after["orgs"] == before["orgs"]
        assert after["memberships"] == before["memberships"]
        promote(conn)  # and promoting again works
