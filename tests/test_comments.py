"""Every object a DBA meets in schema ``config`` has a ``COMMENT ON`` (docs/design.md section 3).

The rule, checked on a database at the newest release:

* every table (and view) has a comment;
* every column has a comment, except the self-evident ones: ``uuid``, ``id`` (primary keys),
  ``name``, ``description``, ``created`` and ``modified`` mean the same in every table;
* every function and every trigger (not the internal ones PostgreSQL makes for foreign keys)
  has a comment. Objects that belong to an extension are not ours and are left out.

A failure lists every object that lacks one, in ``COMMENT ON`` syntax, so the fix is a copy away.
"""

from __future__ import annotations

import psycopg
import pytest

SELF_EVIDENT_COLUMNS = ("uuid", "id", "name", "description", "created", "modified")

MISSING = {
    "schema": """
        SELECT 'SCHEMA config' FROM pg_namespace n
        WHERE n.nspname = 'config' AND obj_description(n.oid, 'pg_namespace') IS NULL
    """,
    "tables": """
        SELECT 'TABLE ' || c.oid::regclass::text
        FROM pg_class c
        WHERE c.relnamespace = 'config'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND obj_description(c.oid, 'pg_class') IS NULL
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1
    """,
    "columns": """
        SELECT 'COLUMN ' || c.oid::regclass::text || '.' || quote_ident(a.attname)
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relnamespace = 'config'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND a.attname <> ALL (%(self_evident)s::text[])
          AND col_description(c.oid, a.attnum) IS NULL
        ORDER BY 1
    """,
    "functions": """
        SELECT 'FUNCTION ' || p.oid::regprocedure::text
        FROM pg_proc p
        WHERE p.pronamespace = 'config'::regnamespace
          AND obj_description(p.oid, 'pg_proc') IS NULL
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
        ORDER BY 1
    """,
    "triggers": """
        SELECT 'TRIGGER ' || quote_ident(t.tgname) || ' ON ' || t.tgrelid::regclass::text
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'config'::regnamespace AND NOT t.tgisinternal
          AND obj_description(t.oid, 'pg_trigger') IS NULL
        ORDER BY 1
    """,
}

COUNTED = {
    "tables": "SELECT count(*) FROM pg_class WHERE relnamespace = 'config'::regnamespace AND relkind = 'r'",
    "functions": "SELECT count(*) FROM pg_proc WHERE pronamespace = 'config'::regnamespace",
    "triggers": "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE c.relnamespace = 'config'::regnamespace AND NOT t.tgisinternal",
}


@pytest.mark.parametrize("kind", list(MISSING))
def test_every_object_has_a_comment(db_url, kind):
    with psycopg.connect(db_url, autocommit=True) as conn:
        for what, statement in COUNTED.items():  # the catalog queries do look at something
            assert conn.execute(statement).fetchone()[0] > 5, f"no {what} found in schema config"
        params = {"self_evident": list(SELF_EVIDENT_COLUMNS)}
        missing = [row[0] for row in conn.execute(MISSING[kind], params)]
    listing = "\n  ".join(missing)
    assert not missing, f"{len(missing)} {kind} in schema config lack a COMMENT ON:\n  {listing}"


@pytest.mark.parametrize("kind", list(MISSING))
def test_every_service_state_object_has_a_comment(db_url, kind):
    """The same rule for schema ``service_state`` (sql/service_state.sql: the login throttle)."""
    statement = MISSING[kind].replace("'config'", "'service_state'")
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('service_state.login_failures') IS NOT NULL").fetchone()[0]
        missing = [row[0] for row in conn.execute(statement, {"self_evident": list(SELF_EVIDENT_COLUMNS)})]
    listing = "\n  ".join(missing)
    assert not missing, f"{len(missing)} {kind} in schema service_state lack a COMMENT ON:\n  {listing}"
