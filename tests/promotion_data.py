"""A cluster worth promoting, shared by the SQL, CLI and API tests of the promotion of customers
to orgs (migrations/0005): built at release 6.1 (where customers can still be regrouped), then
migrated to 6.4.

Orgs ``hydrolix`` (hydro, sample_project: system customers), ``acme`` (web, api, db) and
``globex`` (shop); the manual customer ``bigco`` holds acme's api and db; users of every role:
``admin@x`` (super_admin, hydrolix), ``op@acme``, ``ro@acme``, ``op@globex`` and ``ro@hydrolix``.
Per-project mode (tunable true): web and shop get customers of their own; single mode: acme's
and globex's default customers hold web and shop.
"""

from __future__ import annotations

import psycopg

from service import users
from service.migrations import migrate

MODE = "turbine_api_feature_migrate_projects_to_orgs"
PASSWORD = "s3cret-pass"
USERS = {  # email: (org, role)
    "admin@x": ("hydrolix", "super_admin"),
    "op@acme": ("acme", "operator"),
    "ro@acme": ("acme", "read_only"),
    "op@globex": ("globex", "operator"),
    "ro@hydrolix": ("hydrolix", "read_only"),
}


def build(url_61: str, per_project: bool, *, spanning: bool = False) -> None:
    """Fill a database at release 6.1 and migrate it to 6.4. ``spanning``: bigco also holds
    globex's shop (a customer whose projects lie in two orgs: a promotion blocker)."""
    with psycopg.connect(url_61, autocommit=True) as conn:
        conn.execute(
            "UPDATE config.tunables SET value = to_jsonb(%s::boolean) WHERE name = %s", (per_project, MODE)
        )
        orgs = {
            name: conn.execute(
                "INSERT INTO config.orgs (name) VALUES (%s) RETURNING uuid", (name,)
            ).fetchone()[0]
            for name in ("acme", "globex")
        }
        orgs["hydrolix"] = conn.execute("SELECT uuid FROM config.orgs WHERE name = 'hydrolix'").fetchone()[0]
        for org, names in (("acme", ["web", "api", "db"]), ("globex", ["shop"])):
            conn.execute(
                "INSERT INTO config.projects (org_id, name) SELECT %s, unnest(%s::text[])", (orgs[org], names)
            )
        conn.execute("SELECT config.reconcile_customers(force => true, source => 'sql')")
        bigco = conn.execute(
            "INSERT INTO config.customers (name) VALUES ('bigco') RETURNING uuid"
        ).fetchone()[0]
        held = ["api", "db", "shop"] if spanning else ["api", "db"]
        conn.execute("UPDATE config.projects SET customer_id = %s WHERE name = ANY (%s)", (bigco, held))
        conn.execute("SELECT config.reconcile_customers(force => true, source => 'sql')")
        for email, (org, role) in USERS.items():
            users.create_user(conn, email, PASSWORD, orgs[org], role)
    migrate(url_61, "6.4")


def layout(conn) -> dict:
    """Everything the promotion changes and its reversal restores, by name."""
    return {
        "orgs": sorted(r[0] for r in conn.execute("SELECT name FROM config.orgs")),
        "projects": sorted(
            conn.execute(
                "SELECT p.uuid::text, p.name, o.name, c.name FROM config.projects p "
                "JOIN config.orgs o ON o.uuid = p.org_id JOIN config.customers c ON c.uuid = p.customer_id"
            ).fetchall()
        ),
        "memberships": memberships(conn),
        "customers": sorted(conn.execute("SELECT c::text FROM config.customers c").fetchall()),
    }


def memberships(conn, email: str | None = None) -> list:
    rows = conn.execute(
        "SELECT u.email, o.name, m.role, m.is_primary FROM config.org_memberships m "
        "JOIN config.users u ON u.uuid = m.user_id JOIN config.orgs o ON o.uuid = m.org_id "
        "WHERE %(email)s::text IS NULL OR u.email = %(email)s ORDER BY 1, 2",
        {"email": email},
    ).fetchall()
    return [tuple(r) for r in rows]


def project_orgs(conn) -> dict[str, str]:
    return dict(
        conn.execute(
            "SELECT p.name, o.name FROM config.projects p JOIN config.orgs o ON o.uuid = p.org_id"
        ).fetchall()
    )


# -- the promotion racing writers: what both race tests check (tests/api/test_concurrent_invariants.py
# and, through a failover, tests/cluster/test_promotion_failover.py) ------------------------------
# the promotion's own refusals a racing step may meet: blocked (HR070/HR071), or the other
# direction's state (HR072/HR073) when two steps race
PROMOTION_REFUSALS = ("HR070", "HR071", "HR072", "HR073")
# New projects join any customer of the org, per-project ones included (a joiner holds the
# customer's row while it settles it: config.lock_customers). Renames and deletes touch only the
# workload's projects: a customer whose projects from before the promotion were all deleted
# leaves the new ones no org to return to (the reversal refused, HR071 no_org_to_return_to),
# which the promoter does not resolve (it only renames name clashes away). The
# deadlock of a joiner with the deletion of a per-project customer's own project (issue 21) is
# replayed step by step in tests/rules/test_two_sessions.py.
SAME_ORG_PROJECT = "SELECT org_id, customer_id FROM config.projects ORDER BY random() LIMIT 1"

# Each statement counts the rows that break one rule of the promoted (or restored) layout.
PROMOTED_RULES = {
    "projects outside their customer's org": """
        SELECT count(*) FROM config.projects p
        JOIN config.promoted_orgs po ON po.customer_id = p.customer_id
        WHERE po.org_id <> p.org_id""",
    "projects of a customer standing for no org": """
        SELECT count(*) FROM config.projects p
        WHERE NOT EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.customer_id = p.customer_id)""",
}
RESTORED_RULES = {
    "records of a reversed promotion": """
        SELECT (SELECT count(*) FROM config.promoted_orgs)
             + (SELECT count(*) FROM config.promotion_memberships)""",
    "orgs the promotions created still there": """
        SELECT count(*) FROM config.orgs WHERE name NOT IN ('hydrolix', 'acme', 'globex')""",
    "customers whose projects span orgs (what blocks the next promotion)": """
        SELECT count(*) FROM config.promotion_blockers()""",
}
EVERY_LAYOUT = {
    "users without exactly one primary org": """
        SELECT count(*) FROM config.users u
        WHERE (SELECT count(*) FROM config.org_memberships m
               WHERE m.user_id = u.uuid AND m.is_primary) <> 1""",
}


def rename_clashes(conn):
    """What an operator does when the reversal is blocked by projects of one name returning to
    one org: rename those that would return (a unique suffix each)."""
    conn.execute(
        "UPDATE config.projects SET name = name || '-' || left(uuid::text, 8) WHERE uuid IN ("
        " SELECT d.project_id FROM config.demotion_moves() d JOIN config.orgs o ON o.uuid = d.to_org"
        " WHERE format('%s/%s', o.name, d.project_name) IN"
        " (SELECT b.subject FROM config.demotion_blockers() b WHERE b.kind = 'project_name_clash'))"
    )


def final_demote(conn):
    for _ in range(5):
        try:
            conn.execute("SELECT config.demote_orgs()")
            return
        except psycopg.Error as exc:
            assert exc.sqlstate == "HR071", exc
            rename_clashes(conn)
    raise AssertionError("the reversal stayed blocked")


def count_broken(conn, rules: dict[str, str]) -> dict[str, int]:
    """Each rule's count of rows breaking it (all 0 when the layout holds)."""
    return {rule: conn.execute(query).fetchone()[0] for rule, query in rules.items()}


def assert_layout(conn, seed) -> bool:
    """The promoted layout when a promotion is in force, else the restored one, never half; the
    memberships rules either way. Returns whether a promotion is in force."""
    promoted = conn.execute("SELECT config.promotion_in_force() IS NOT NULL").fetchone()[0]
    rules = {**(PROMOTED_RULES if promoted else RESTORED_RULES), **EVERY_LAYOUT}
    assert count_broken(conn, rules) == dict.fromkeys(rules, 0), f"seed {seed}: promoted={promoted}"
    return promoted


MEMBERSHIP_CHANGES = {
    "join": "add_membership(u.uuid, o.uuid, 'read_only')",
    "leave": "remove_membership(u.uuid, o.uuid)",
    "primary": "set_primary_org(u.uuid, o.uuid)",
}


def change_membership(conn, op: str, keep: tuple[str, ...] = ("admin@x",)) -> None:
    """A racing writer's membership change (op: join, leave or primary) of a random user (but the
    users of ``keep``, whose memberships the test relies on) in a random org."""
    conn.execute(
        f"SELECT config.{MEMBERSHIP_CHANGES[op]} FROM "
        "(SELECT uuid FROM config.users WHERE email <> ALL (%s::text[]) ORDER BY random() LIMIT 1) u, "
        "(SELECT uuid FROM config.orgs ORDER BY random() LIMIT 1) o",
        (list(keep),),
    )


def add_operator(conn, rng) -> None:
    """A racing writer's new user: an operator of a random org."""
    org = conn.execute("SELECT uuid FROM config.orgs ORDER BY random() LIMIT 1").fetchone()[0]
    users.create_user(conn, f"w{rng.randrange(10**9)}@x", "s3cret-pass", org, "operator")
