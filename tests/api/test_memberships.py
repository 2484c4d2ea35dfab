"""Org memberships over the API (release 6.4): a user of several orgs sees exactly their projects
with the role of each org, login and users/current list its orgs primary first, and super
admins manage memberships (add_orgs, remove_orgs, set_primary_org, and add_roles/remove_roles
as hdxcli calls them). Every refusal is a 4xx that changes nothing."""

from __future__ import annotations

import pytest

from service import migrations
from tests.api.conftest import PASSWORD

USERS = "/config/v1/users"


@pytest.fixture
def db_url(db_url_64):
    """This module's app runs on a clone of the 6.4 template."""
    return db_url_64


def new_org(api, name: str) -> str:
    return str(api.one("INSERT INTO config.orgs (name) VALUES (%s) RETURNING uuid", (name,))["uuid"])


def uuid_of(api, email: str) -> str:
    return str(api.one("SELECT uuid FROM config.users WHERE email = %s", (email,))["uuid"])


def join(api, email: str, org: str, role: str, primary: bool = False) -> None:
    api.sql("SELECT config.add_membership(%s, %s, %s, %s)", (uuid_of(api, email), org, role, primary))


def bearer(api, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.login(email)}"}


def project(api, org: str, name: str) -> dict:
    customer = api.customer(f"c-{name}")
    return api.project(name, org, customer=customer["uuid"])


def state(api) -> dict:
    return {
        **api.counts(),
        "memberships": api.one(
            "SELECT md5(string_agg(m::text, ',' ORDER BY m.user_id, m.org_id)) AS m "
            "FROM config.org_memberships m"
        )["m"],
    }


@pytest.fixture
def two_orgs(api):
    """ops@: operator in alpha (primary), read_only in beta; a third org gamma; a project in each."""
    alpha, beta, gamma = new_org(api, "alpha"), new_org(api, "beta"), new_org(api, "gamma")
    email = api.make_user("operator", alpha, "ops@example.com")
    join(api, email, beta, "read_only")
    projects = {
        name: project(api, org, f"p-{name}")
        for name, org in (("alpha", alpha), ("beta", beta), ("gamma", gamma))
    }
    return {
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "email": email,
        "projects": projects,
        "h": bearer(api, email),
    }


def test_a_user_of_two_orgs_sees_both_and_nothing_of_a_third(api, two_orgs):
    h, t = two_orgs["h"], two_orgs
    for name in ("alpha", "beta"):
        r = api.client.get(f"/config/v1/orgs/{t[name]}/projects/", headers=h)
        assert r.status_code == 200 and [p["name"] for p in r.json()] == [f"p-{name}"]
    assert api.client.get(f"/config/v1/orgs/{t['gamma']}/projects/", headers=h).status_code == 404
    orgs = api.client.get("/config/v1/orgs/", headers=h).json()
    assert sorted(o["name"] for o in orgs) == ["alpha", "beta"]
    customers = api.client.get("/config/v1/customers/?page_size=100", headers=h).json()["results"]
    assert sorted(c["name"] for c in customers) == ["p-alpha", "p-beta"]  # rule 4: one project, its name
    assert (
        api.client.get(f"/config/v1/customers/{t['projects']['gamma']['customer']}/", headers=h).status_code
        == 404
    )


def test_the_role_is_the_role_in_the_org_of_the_path(api, two_orgs):
    h, t = two_orgs["h"], two_orgs
    body = {"name": "new", "customer": t["projects"]["alpha"]["customer"]}
    before = api.counts()
    r = api.client.post(f"/config/v1/orgs/{t['beta']}/projects/", json=body, headers=h)
    assert r.status_code == 403 and "read_only" in r.json()["detail"]
    assert api.counts() == before
    r = api.client.post(f"/config/v1/orgs/{t['alpha']}/projects/", json=body, headers=h)
    assert r.status_code == 201, r.text
    meta = api.client.options(f"/config/v1/orgs/{t['beta']}/projects/", headers=h)
    assert meta.status_code == 200 and "POST" not in meta.json().get("actions", {})


def test_login_and_current_list_the_orgs_primary_first(api, two_orgs):
    t = two_orgs
    expected = [{"uuid": t["alpha"], "name": "alpha"}, {"uuid": t["beta"], "name": "beta"}]
    r = api.client.post("/config/v1/login", json={"username": t["email"], "password": PASSWORD})
    assert r.status_code == 200 and r.json()["orgs"] == expected and r.json()["roles"] == ["operator"]
    assert api.client.get(f"{USERS}/current", headers=t["h"]).json()["orgs"] == expected
    api.sql("SELECT config.set_primary_org(%s, %s)", (uuid_of(api, t["email"]), t["beta"]))
    r = api.client.post("/config/v1/login", json={"username": t["email"], "password": PASSWORD})
    assert r.json()["orgs"] == expected[::-1] and r.json()["roles"] == ["read_only"]
    assert api.client.get(f"{USERS}/current/", headers=t["h"]).json()["orgs"] == expected[::-1]


def test_super_admins_manage_memberships(api, two_orgs):
    t = two_orgs
    user = uuid_of(api, t["email"])
    r = api.get(f"{USERS}/{user}/")
    assert r.status_code == 200, r.text
    assert [(m["org_name"], m["role"], m["is_primary"]) for m in r.json()["memberships"]] == [
        ("alpha", "operator", True),
        ("beta", "read_only", False),
    ]
    assert (r.json()["org"], r.json()["role"], r.json()["roles"]) == (t["alpha"], "operator", ["operator"])

    r = api.post(f"{USERS}/{user}/add_orgs/", json={"orgs": [t["gamma"]], "role": "operator"})
    assert r.status_code == 200, r.text
    assert ("gamma", "operator", False) in [
        (m["org_name"], m["role"], m["is_primary"]) for m in r.json()["memberships"]
    ]
    r = api.post(f"{USERS}/{user}/set_primary_org", json={"org": t["gamma"]})
    assert r.status_code == 200 and r.json()["org"] == t["gamma"]
    r = api.post(f"{USERS}/{user}/remove_orgs/", json={"orgs": [t["alpha"], t["beta"]]})
    assert r.status_code == 200, r.text
    assert [m["org_name"] for m in r.json()["memberships"]] == ["gamma"]
    audit = api.sql(
        "SELECT action FROM config.audit_log WHERE object_type = 'org_memberships' AND object_id = %s "
        "AND actor = (SELECT email FROM config.users u JOIN config.org_memberships m ON m.user_id = u.uuid "
        "WHERE m.role = 'super_admin' LIMIT 1) ORDER BY id",
        (user,),
    )
    assert [a["action"] for a in audit] == ["insert", "update", "update", "delete", "delete"]


def test_add_roles_and_remove_roles_as_hdxcli_calls_them(api, two_orgs):
    t = two_orgs
    user = uuid_of(api, t["email"])
    r = api.post(f"{USERS}/{user}/add_roles/", json={"roles": ["read_only"]})
    assert r.status_code == 200 and r.json()["roles"] == ["read_only"]
    r = api.post(f"{USERS}/{user}/add_roles/", json={"roles": ["operator"], "org": t["beta"]})
    assert r.status_code == 200, r.text
    assert [(m["org_name"], m["role"]) for m in r.json()["memberships"]] == [
        ("alpha", "read_only"),
        ("beta", "operator"),
    ]
    r = api.post(f"{USERS}/{user}/remove_roles/", json={"roles": ["operator"], "org": t["beta"]})
    assert r.status_code == 200 and r.json()["memberships"][1]["role"] == "read_only"
    listed = api.get(f"{USERS}/?page_size=100").json()["results"]
    assert [u["roles"] for u in listed if u["email"] == t["email"]] == [["read_only"]]


@pytest.mark.parametrize(
    ("action", "body", "field", "message"),
    [
        ("add_orgs", lambda t: {"orgs": ["00000000-0000-0000-0000-000000000000"]}, "orgs", "no org"),
        ("add_orgs", lambda t: {"orgs": [t["beta"]]}, "orgs", "already a member"),
        ("add_orgs", lambda t: {"orgs": [t["gamma"]], "role": "boss"}, "role", ""),
        ("add_orgs", lambda t: {"orgs": [t["gamma"]], "role": "super_admin"}, "orgs", "super admin"),
        # all or none: gamma is not added when beta is refused
        ("add_orgs", lambda t: {"orgs": [t["gamma"], t["beta"]]}, "orgs", "already a member"),
        ("remove_orgs", lambda t: {"orgs": [t["alpha"]]}, "orgs", "primary org"),
        ("remove_orgs", lambda t: {"orgs": [t["gamma"]]}, "orgs", "not a member"),
        ("set_primary_org", lambda t: {"org": t["gamma"]}, "org", "not a member"),
        ("add_roles", lambda t: {"roles": ["operator", "read_only"]}, "roles", "length <= 1"),
        (
            "add_roles",
            lambda t: {"roles": ["super_admin"]},
            "roles",
            "super admin belongs to exactly one org",
        ),
        ("add_roles", lambda t: {"roles": ["operator"], "org": t["gamma"]}, "org", "not a member"),
        ("remove_roles", lambda t: {"roles": ["read_only"]}, "roles", "holds role operator"),
        ("remove_roles", lambda t: {"roles": ["read_only"], "org": t["beta"]}, "roles", "least role"),
    ],
)
def test_refusals_change_nothing(api, two_orgs, action, body, field, message):
    user = uuid_of(api, two_orgs["email"])
    before = state(api)
    r = api.post(f"{USERS}/{user}/{action}/", json=body(two_orgs))
    assert r.status_code == 400, r.text
    assert field in r.json() and message in r.json()[field][0]
    assert state(api) == before


def test_the_last_membership_and_a_super_admins_second_org_are_refused(api):
    admin = uuid_of(api, api.make_user("super_admin", email="root@example.com"))
    before = state(api)
    r = api.post(f"{USERS}/{admin}/remove_orgs/", json={"orgs": [api.org]})
    assert r.status_code == 400 and "only org" in r.json()["orgs"][0]
    r = api.post(f"{USERS}/{admin}/add_orgs/", json={"orgs": [new_org(api, "alpha")]})
    assert r.status_code == 400 and "super admin belongs to exactly one org" in r.json()["orgs"][0]
    assert {k: v for k, v in state(api).items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"
    }


def test_unknown_user_404_and_others_403(api, two_orgs):
    missing = "00000000-0000-0000-0000-000000000000"
    assert api.get(f"{USERS}/{missing}/").status_code == 404
    r = api.post(f"{USERS}/{missing}/add_orgs/", json={"orgs": [two_orgs["gamma"]]})
    assert r.status_code == 404
    user = uuid_of(api, two_orgs["email"])
    api.headers("operator"), api.headers("read_only")  # their users exist before the count
    before = state(api)
    for role in ("operator", "read_only"):
        assert api.get(f"{USERS}/{user}/", role).status_code == 403
        r = api.post(f"{USERS}/{user}/add_orgs/", role, json={"orgs": [two_orgs["gamma"]]})
        assert r.status_code == 403
    assert state(api) == before


def test_below_64_get_works_and_the_actions_say_the_release(api):
    email = api.make_user("operator", email="ops@example.com")
    user = uuid_of(api, email)
    api.headers()  # the admin logs in at 6.4 ...
    migrations.migrate(api.url, "6.1")  # ... and the service follows the schema without a restart
    r = api.get(f"{USERS}/{user}/")
    assert r.status_code == 200, r.text
    assert [(m["org_name"], m["role"], m["is_primary"]) for m in r.json()["memberships"]] == [
        ("hydrolix", "operator", True)
    ]
    before = api.counts()
    for action, body in (("add_orgs", {"orgs": [api.org]}), ("add_roles", {"roles": ["read_only"]})):
        r = api.post(f"{USERS}/{user}/{action}/", json=body)
        assert r.status_code == 400 and "release 6.4" in str(r.json()), r.text
    assert api.counts() == before
    h = bearer(api, email)
    assert api.client.get(f"{USERS}/current", headers=h).json()["orgs"] == [
        {"uuid": api.org, "name": "hydrolix"}
    ]
    migrations.migrate(api.url, "6.4")
    assert api.client.get(f"/config/v1/orgs/{api.org}/projects/", headers=h).status_code == 200


def test_creating_a_user_makes_its_primary_membership(api):
    alpha = new_org(api, "alpha")
    r = api.post(
        f"{USERS}/", json={"email": "new@example.com", "password": PASSWORD, "role": "operator", "org": alpha}
    )
    assert r.status_code == 201, r.text
    assert (r.json()["org"], r.json()["role"], r.json()["roles"]) == (alpha, "operator", ["operator"])
    got = api.get(f"{USERS}/{r.json()['uuid']}/").json()["memberships"]
    assert got == [{"org": alpha, "org_name": "alpha", "role": "operator", "is_primary": True}]
    before = state(api)
    missing = "00000000-0000-0000-0000-000000000000"
    r = api.post(f"{USERS}/", json={"email": "lost@example.com", "password": PASSWORD, "org": missing})
    assert r.status_code == 400 and r.json() == {"org": ["org does not exist."]}
    assert state(api) == before


@pytest.mark.parametrize("path", ["/config/v1/customers/", "/config/v1/orgs/", f"{USERS}/current"])
def test_a_migration_under_the_running_service_is_followed_without_an_error(api, path):
    """The pool's connections were made at 6.4: the first request after each migration meets the
    other schema, learns its form and runs again (the streamed customers list too)."""
    h = api.headers()
    assert api.client.get(path, headers=h).status_code == 200
    for release in ("6.1", "6.4", "6.1"):
        migrations.migrate(api.url, release)
        r = api.client.get(path, headers=h)
        assert r.status_code == 200, (release, r.text)


def test_the_audit_log_shows_memberships_of_the_users_orgs_only(api, two_orgs):
    t = two_orgs
    near = api.make_user("read_only", t["alpha"], "near@example.com")
    far = api.make_user("read_only", t["gamma"], "far@example.com")
    r = api.client.get("/config/v1/audit/?object_type=org_memberships", headers=t["h"])
    assert r.status_code == 200, r.text
    seen = {row["object_id"] for row in r.json()}
    assert uuid_of(api, near) in seen and uuid_of(api, far) not in seen
    assert uuid_of(api, t["email"]) in seen  # its own membership of beta (a read_only org of its)
    users_seen = {
        row["object_id"]
        for row in api.client.get("/config/v1/audit/?object_type=users", headers=t["h"]).json()
    }
    assert uuid_of(api, near) in users_seen and uuid_of(api, far) not in users_seen
