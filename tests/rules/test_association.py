"""Rule 5 (and 1 to 4 at creation): a new project is associated by the statement that creates it."""

import psycopg
import pytest

from tests.rules.helpers import MODE, add_projects, customers, org_id, orphans, scalar, set_mode


def customer_of(conn, project):
    return conn.execute(
        """SELECT c.name, c.origin FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id
           WHERE p.name = %s""",
        (project,),
    ).fetchone()


@pytest.mark.parametrize("per_project", [False, True])
def test_single_multi_row_and_copy_inserts_are_associated_at_once(db, per_project):
    set_mode(db, per_project)
    org = org_id(db)
    db.execute("INSERT INTO config.projects (org_id, name) VALUES (%s, 'one_row')", (org,))
    add_projects(db, ["multi_a", "multi_b", "multi_c"])
    with db.cursor().copy("COPY config.projects (org_id, name) FROM STDIN") as copy:
        for name in ("copy_a", "copy_b"):
            copy.write_row((org, name))
    assert orphans(db) == []
    names = ["one_row", "multi_a", "multi_b", "multi_c", "copy_a", "copy_b"]
    homes = {name: customer_of(db, name) for name in names}
    if per_project:
        assert homes == {name: (name, "project") for name in names}
    else:
        assert {origin for _, origin in homes.values()} == {"default"}
        assert len({customer for customer, _ in homes.values()}) == 1


def test_orphan_audit_query_never_sees_a_new_project_even_inside_its_transaction(db_url):
    with psycopg.connect(db_url) as conn:
        add_projects(conn, ["inside_tx"])
        assert orphans(conn) == []


def test_an_explicit_customer_wins(db):
    set_mode(db, True)
    manual = scalar(db, "INSERT INTO config.customers (name) VALUES ('big client') RETURNING uuid")
    db.execute(
        "INSERT INTO config.projects (org_id, name, customer_id) SELECT uuid, 'chosen', %s FROM config.orgs",
        (manual,),
    )
    assert customer_of(db, "chosen") == ("chosen", "manual")  # rule 4: one project, its name
    assert scalar(db, "SELECT count(*) FROM config.customers WHERE origin = 'project'") == 0


def test_system_projects_get_a_system_customer_in_any_mode(db):
    other = scalar(db, "INSERT INTO config.orgs (name) VALUES ('second') RETURNING uuid")
    for per_project in (False, True):
        set_mode(db, per_project)
        db.execute("DELETE FROM config.projects WHERE org_id = %s", (other,))
        add_projects(db, ["hydro"], org=other)
        name, origin = customer_of_org(db, other, "hydro")
        assert origin == "system"
        assert name.startswith("hydro-")  # 'hydro' is the first org's: a distinct, deterministic name


def customer_of_org(conn, org, project):
    return conn.execute(
        """SELECT c.name, c.origin FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id
           WHERE p.org_id = %s AND p.name = %s""",
        (org, project),
    ).fetchone()


def test_same_project_name_in_two_orgs_gets_deterministic_distinct_customer_names(db):
    set_mode(db, True)
    other = scalar(db, "INSERT INTO config.orgs (name) VALUES ('second') RETURNING uuid")
    add_projects(db, ["shared"])
    [second] = add_projects(db, ["shared"], org=other)
    assert customer_of_org(db, org_id(db), "shared") == ("shared", "project")
    assert customer_of_org(db, other, "shared") == (f"shared-{str(second)[:8]}", "project")


def test_renaming_a_project_renames_its_single_project_customer(db):
    set_mode(db, True)
    add_projects(db, ["before_name"])
    db.execute("UPDATE config.projects SET name = 'after_name' WHERE name = 'before_name'")
    assert customer_of(db, "after_name") == ("after_name", "project")


def test_a_single_project_customer_cannot_be_renamed_away_from_its_project(db):
    set_mode(db, True)
    add_projects(db, ["solo"])
    with pytest.raises(psycopg.errors.CheckViolation, match="rename the project instead"):
        db.execute("UPDATE config.customers SET name = 'other' WHERE name = 'solo'")
    assert customer_of(db, "solo") == ("solo", "project")


def test_a_multi_project_customer_name_belongs_to_administrators(db):
    manual = scalar(db, "INSERT INTO config.customers (name) VALUES ('group') RETURNING uuid")
    add_projects(db, ["g1", "g2"])
    db.execute("UPDATE config.projects SET customer_id = %s WHERE name IN ('g1', 'g2')", (manual,))
    db.execute("UPDATE config.customers SET name = 'tenant one' WHERE uuid = %s", (manual,))
    assert customers(db)["tenant-one"] == ("manual", ["g1", "g2"])  # spaces become dashes


def test_moving_the_last_project_out_of_an_auto_customer_deletes_it(db):
    set_mode(db, True)
    add_projects(db, ["mover"])
    manual = scalar(db, "INSERT INTO config.customers (name) VALUES ('target') RETURNING uuid")
    db.execute("UPDATE config.projects SET customer_id = %s WHERE name = 'mover'", (manual,))
    got = customers(db)
    assert "target" not in got and got["mover"] == ("manual", ["mover"])  # rule 4 renamed the target
    assert scalar(db, "SELECT count(*) FROM config.customers WHERE origin = 'project'") == 0


def test_deleting_a_project_removes_its_empty_auto_customer_but_never_a_manual_one(db):
    set_mode(db, True)
    add_projects(db, ["gone"])
    manual = scalar(db, "INSERT INTO config.customers (name) VALUES ('keeper') RETURNING uuid")
    add_projects(db, ["k1", "k2"])
    db.execute("UPDATE config.projects SET customer_id = %s WHERE name IN ('k1', 'k2')", (manual,))
    db.execute("DELETE FROM config.projects WHERE name IN ('gone', 'k1', 'k2')")
    got = customers(db)
    assert "gone" not in got
    assert got["keeper"] == ("manual", [])


@pytest.mark.parametrize(
    ("statement", "params", "error", "message"),
    [
        (
            "UPDATE config.tunables SET value = '\"yes\"' WHERE name = %s",
            (MODE,),
            psycopg.errors.InvalidParameterValue,
            "must be boolean",
        ),
        (
            "UPDATE config.tunables SET value = '-1' WHERE name = 'customer_orphan_grace_seconds'",
            None,
            psycopg.errors.InvalidParameterValue,
            "must be at least 0",
        ),
        (
            "UPDATE config.tunables SET value = '1.5' WHERE name = 'customer_orphan_grace_seconds'",
            None,
            psycopg.errors.InvalidParameterValue,
            "must be integer",
        ),
        (
            "UPDATE config.tunables SET value = '1e30' WHERE name = 'customer_orphan_grace_seconds'",
            None,
            psycopg.errors.InvalidParameterValue,
            "must be at most 86400",
        ),
        (
            "UPDATE config.projects SET customer_id = '00000000-0000-0000-0000-000000000000'"
            " WHERE name = 'hydro'",
            None,
            psycopg.errors.ForeignKeyViolation,
            'not present in table "customers"',
        ),
        (
            # the foreign key is deferred only while the statement makes its own customers
            "INSERT INTO config.projects (org_id, name, customer_id)"
            " SELECT uuid, 'ghost', '00000000-0000-0000-0000-000000000000' FROM config.orgs",
            None,
            psycopg.errors.ForeignKeyViolation,
            'not present in table "customers"',
        ),
        (
            "INSERT INTO config.projects (org_id, name) SELECT uuid, 'bad name' FROM config.orgs",
            None,
            psycopg.errors.CheckViolation,
            "projects_name_valid",
        ),
        (
            "INSERT INTO config.customers (name) VALUES ('hydro')",
            None,
            psycopg.errors.UniqueViolation,
            "customers_name_unique",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(db, statement, params, error, message):
    before = (customers(db), db.execute("SELECT name, value FROM config.tunables ORDER BY name").fetchall())
    with pytest.raises(error, match=message):
        db.execute(statement, params)
    assert (
        customers(db),
        db.execute("SELECT name, value FROM config.tunables ORDER BY name").fetchall(),
    ) == before


@pytest.mark.parametrize("per_project", [False, True])
def test_a_missing_customer_is_refused_by_the_insert_itself_inside_a_transaction(db, per_project):
    """The own customers are made after the rows, under a deferred foreign key; the statement
    makes the check immediate again, so the refusal comes from the INSERT, not from COMMIT."""
    set_mode(db, per_project)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with db.transaction():
            db.execute(
                "INSERT INTO config.projects (org_id, name, customer_id) SELECT uuid, n, c FROM config.orgs,"
                " (VALUES ('fine', NULL::uuid), ('ghost', '00000000-0000-0000-0000-000000000000')) v (n, c)"
            )
            raise AssertionError("the INSERT itself should have failed")
    assert scalar(db, "SELECT count(*) FROM config.projects WHERE name IN ('fine', 'ghost')") == 0
    with db.transaction():
        db.execute("INSERT INTO config.projects (org_id, name) SELECT uuid, 'fine' FROM config.orgs")
        mine = scalar(
            db,
            "SELECT c.origin FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id"
            " WHERE p.name = 'fine'",
        )
        assert mine == ("project" if per_project else "default")  # there before COMMIT
