"""Each customer write statement guards itself: run as another user, it changes nothing and
says why (no row: not visible; ``mine`` false: not the user's), whatever the caller checked.

The HTTP side of the same rules is tests/api/test_roles.py and test_security.py; these run the
named statements directly, so a guard moved back into Python fails here.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from service.queries import Scope, SyncDb, query


@pytest.fixture
def db(db_url):
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def arranged(db):
    """Org ``hydrolix`` with a project on an admin-made customer, and another org's project."""
    org = db.execute("SELECT uuid FROM config.orgs WHERE name = 'hydrolix'").fetchone()["uuid"]
    other = db.execute("INSERT INTO config.orgs (name) VALUES ('other') RETURNING uuid").fetchone()["uuid"]
    customer = db.execute(
        "INSERT INTO config.customers (name, origin, created_by) "
        "VALUES ('acme', 'manual', NULL) RETURNING uuid"
    ).fetchone()["uuid"]
    project = db.execute(
        "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'p1', %s) RETURNING uuid",
        (org, customer),
    ).fetchone()["uuid"]
    foreign = db.execute(
        "INSERT INTO config.projects (org_id, name) VALUES (%s, 'q1') RETURNING uuid", (other,)
    ).fetchone()["uuid"]
    return {"org": org, "customer": customer, "project": project, "foreign": foreign}


def as_user(db, org) -> SyncDb:
    return SyncDb(db, Scope(all_orgs=False, user_orgs=[org], user_id=uuid.uuid4(), write_orgs=[org]))


def customer_row(db, customer):
    return db.execute(
        "SELECT name, description FROM config.customers WHERE uuid = %s", (customer,)
    ).fetchone()


def test_update_and_delete_of_a_visible_customer_not_mine_change_nothing(db, arranged):
    user = as_user(db, arranged["org"])
    before = customer_row(db, arranged["customer"])
    result = user.one(
        query("customers.update"),
        customer_id=arranged["customer"],
        set_name=True,
        name="renamed",
        set_description=True,
        description="x",
    )
    assert result == {"uuid": arranged["customer"], "mine": False}
    assert user.one(query("customers.delete"), customer_id=arranged["customer"])["mine"] is False
    assert customer_row(db, arranged["customer"]) == before


def test_update_of_an_invisible_customer_is_no_row(db, arranged):
    stranger = as_user(db, uuid.uuid4())  # an org with no project on the customer
    assert stranger.one(query("customers.delete"), customer_id=arranged["customer"]) is None
    assert customer_row(db, arranged["customer"]) is not None


def test_add_projects_with_one_foreign_project_moves_none(db, arranged):
    user = as_user(db, arranged["org"])
    mine = db.execute(
        "INSERT INTO config.projects (org_id, name) VALUES (%s, 'p2') RETURNING uuid, customer_id",
        (arranged["org"],),
    ).fetchone()
    result = user.one(
        query("customers.add_projects"),
        customer_id=arranged["customer"],
        projects=[mine["uuid"], arranged["foreign"]],
    )
    assert (result["customer_found"], result["missing_project"], result["projects"]) == (
        True,
        arranged["foreign"],
        [],
    )
    now = db.execute("SELECT customer_id FROM config.projects WHERE uuid = %s", (mine["uuid"],)).fetchone()
    assert now["customer_id"] == mine["customer_id"]


def test_remove_projects_refuses_all_when_one_is_a_stranger(db, arranged):
    user = as_user(db, arranged["org"])
    other = db.execute(
        "INSERT INTO config.projects (org_id, name) VALUES (%s, 'p3') RETURNING uuid", (arranged["org"],)
    ).fetchone()["uuid"]
    result = user.one(
        query("customers.remove_projects"),
        customer_id=arranged["customer"],
        projects=[arranged["project"], other],
    )
    assert (result["missing_project"], result["strangers"], result["projects"]) == (None, [other], [])
    still = db.execute("SELECT customer_id FROM config.projects WHERE uuid = %s", (arranged["project"],))
    assert still.fetchone()["customer_id"] == arranged["customer"]


def test_project_create_naming_an_invisible_customer_inserts_nothing(db, arranged):
    hidden = db.execute(
        "INSERT INTO config.customers (name, origin, created_by) "
        "VALUES ('hidden', 'manual', NULL) RETURNING uuid"
    ).fetchone()["uuid"]
    user = as_user(db, arranged["org"])
    result = user.one(
        query("projects.create"),
        org_id=arranged["org"],
        name="p9",
        description=None,
        settings="{}",
        customer=hidden,
    )
    assert result["unknown_customer"] is True and result["uuid"] is None
    assert db.execute("SELECT count(*) AS n FROM config.projects WHERE name = 'p9'").fetchone()["n"] == 0
