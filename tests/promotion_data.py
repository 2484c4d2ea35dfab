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
