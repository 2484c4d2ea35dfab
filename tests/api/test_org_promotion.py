"""The promotion of customers to orgs over HTTP (release 6.4, migrations/0005): the check, the
dry runs, the promotion and its reversal for super admins, 403 for everyone else, 400 for a
state that refuses, 409 naming every blocker, all changing nothing when refused; and the orgs
list and detail showing the customer an org stands for."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.errors import NOT_PROMOTED
from tests.api.conftest import Api
from tests.conftest import runtime_url
from tests.promotion_data import PASSWORD, build

CHECK, PROMOTE, DEMOTE = (
    "/config/v1/org_promotion/",
    "/config/v1/org_promotion/promote/",
    "/config/v1/org_promotion/demote/",
)


def serve(url, monkeypatch):
    monkeypatch.setenv("HIERARCHY_SCHEDULER", "off")
    # the service runs as the runtime role (sql/privileges.sql); the test's own SQL as the superuser
    client = TestClient(create_app(runtime_url(url), run_scheduler=False), raise_server_exceptions=False)
    return client


@pytest.fixture(params=[True, False], ids=["per-project", "single"])
def promo(db_url, monkeypatch, request):
    build(db_url, per_project=request.param)
    with serve(db_url, monkeypatch) as client:
        harness = Api(client=client, url=db_url)
        for email in ("admin@x", "op@acme", "ro@acme"):
            harness._tokens[email] = harness.login(email, PASSWORD)
        harness.per_project = request.param
        yield harness
        assert client  # the app closed cleanly


def as_(api, email):
    return {"Authorization": f"Bearer {api._tokens[email]}"}


def state(api):
    return (
        api.counts(),
        api.sql("SELECT org_id, name FROM config.projects ORDER BY uuid"),
        api.sql("SELECT * FROM config.org_memberships ORDER BY user_id, org_id"),
        api.sql("SELECT name FROM config.orgs ORDER BY name"),
    )


def test_check_dry_run_promote_and_demote(promo):
    api = promo
    admin = as_(api, "admin@x")
    r = api.client.get(CHECK, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "promoted": False,
        "promotion": None,
        "checks": "promote",
        "blockers": [],
        "blockers_total": 0,
    }
    before = state(api)
    r = api.client.post(PROMOTE, headers=admin, json={"dry_run": True})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["dry_run"] is True and plan["plan"]["orgs_total"] == 5
    assert any(o["org"] == "bigco" and o["created"] and o["projects"] == 2 for o in plan["plan"]["orgs"])
    assert state(api) == before

    r = api.client.post(PROMOTE, headers=admin, json={})
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"] is False
    checked = api.client.get(CHECK, headers=admin).json()
    assert checked["promoted"] is True and checked["checks"] == "demote"

    # the orgs list and detail show the customer each org stands for
    orgs = {o["name"]: o for o in api.client.get("/config/v1/orgs/", headers=admin).json()}
    assert orgs["bigco"]["customer"]["name"] == "bigco"
    assert orgs["acme"]["customer"] == (
        None if api.per_project else {"uuid": orgs["acme"]["customer"]["uuid"], "name": "web"}
    )
    one = api.client.get(f"/config/v1/orgs/{orgs['bigco']['uuid']}/", headers=admin)
    assert one.status_code == 200 and one.json()["customer"] == orgs["bigco"]["customer"]
    # op@acme now sees bigco (it received acme's projects), and login lists its primary first
    mine = {o["name"] for o in api.client.get("/config/v1/orgs/", headers=as_(api, "op@acme")).json()}
    assert {"acme", "bigco"} <= mine and "shop" not in mine and "globex" not in mine
    login = api.client.post("/config/v1/login", json={"email": "op@acme", "password": PASSWORD}).json()
    assert login["orgs"][0]["name"] == ("bigco" if api.per_project else "acme")
    # a project created in a promoted org names the customer the org stands for
    created = api.client.post(
        f"/config/v1/orgs/{orgs['bigco']['uuid']}/projects/",
        headers=admin,
        json={"name": "extra", "customer": orgs["bigco"]["customer"]["uuid"]},
    )
    assert created.status_code == 201, created.text
    elsewhere = api.client.post(
        f"/config/v1/orgs/{orgs['globex']['uuid']}/projects/",
        headers=admin,
        json={"name": "stray", "customer": orgs["bigco"]["customer"]["uuid"]},
    )
    assert elsewhere.status_code == 400 and "stands for" in elsewhere.text

    r = api.client.post(DEMOTE, headers=admin, json={"dry_run": True})
    assert r.status_code == 200 and r.json()["plan"]["orgs_total"] == 3 + 2 * api.per_project
    r = api.client.post(DEMOTE, headers=admin)
    assert r.status_code == 200, r.text
    assert (
        api.one(
            "SELECT o.name FROM config.projects p JOIN config.orgs o ON o.uuid = p.org_id "
            "WHERE p.name = 'extra'"
        )["name"]
        == "acme"
    )
    orgs = {o["name"]: o for o in api.client.get("/config/v1/orgs/", headers=admin).json()}
    assert set(orgs) == {"acme", "globex", "hydrolix"} and all(o["customer"] is None for o in orgs.values())


def test_refusals(promo):
    api = promo
    admin = as_(api, "admin@x")
    before = state(api)
    for email in ("op@acme", "ro@acme"):
        for method, path in (("GET", CHECK), ("POST", PROMOTE), ("POST", DEMOTE)):
            r = api.client.request(
                method, path, headers=as_(api, email), json={"dry_run": True} if method == "POST" else None
            )
            assert r.status_code == 403, (email, path, r.text)
    r = api.client.post(DEMOTE, headers=admin, json={"dry_run": False})
    assert r.status_code == 400
    assert r.json() == {"non_field_errors": [NOT_PROMOTED]}
    for bad in ({"dry_run": 0}, {"dry_run": "yes"}, {"force": True}, [1]):
        r = api.client.post(PROMOTE, headers=admin, json=bad)
        assert r.status_code == 400, (bad, r.text)
    assert state(api) == before
    assert api.client.post(PROMOTE, headers=admin).status_code == 200
    promoted = state(api)
    r = api.client.post(PROMOTE, headers=admin, json={"dry_run": True})
    assert r.status_code == 400 and "already promoted" in r.json()["non_field_errors"][0]
    assert state(api) == promoted
    # another org's org is still 404 for a user of acme
    globex = api.one("SELECT uuid FROM config.orgs WHERE name = 'globex'")["uuid"]
    assert api.client.get(f"/config/v1/orgs/{globex}/", headers=as_(api, "op@acme")).status_code == 404


def test_blocked_promotion_is_409_naming_every_blocker(db_url, monkeypatch):
    build(db_url, per_project=True, spanning=True)
    with serve(db_url, monkeypatch) as client:
        api = Api(client=client, url=db_url)
        api.sql("INSERT INTO config.orgs (name) VALUES ('web')")
        admin = {"Authorization": f"Bearer {api.login('admin@x', PASSWORD)}"}
        before = state(api)
        check = client.get(CHECK, headers=admin).json()
        assert check["blockers_total"] == 2
        for dry_run in (True, False):
            r = client.post(PROMOTE, headers=admin, json={"dry_run": dry_run})
            assert r.status_code == 409, r.text
            body = r.json()
            assert body["blocked"] is True and body["blockers_total"] == 2
            assert [b["kind"] for b in body["blockers"]] == ["customer_spans_orgs", "org_name_taken"]
            assert "2 blocker(s)" in body["detail"]
        assert state(api) == before


def test_below_64_the_check_is_400(api):
    r = api.get(CHECK)
    assert r.status_code == 400
    assert "needs release 6.4" in r.json()["non_field_errors"][0]
    assert api.post(PROMOTE, json={}).status_code == 400
    assert api.get(CHECK, role="operator").status_code == 403


def test_a_customer_an_org_stands_for_cannot_be_deleted_while_promoted(promo):
    """The bookkeeping has no foreign keys (bench/ANALYSIS.md): the statement trigger
    customers_promotion_kept refuses, and the API answers 409 saying why, changing nothing."""
    api = promo
    admin = as_(api, "admin@x")
    empty = str(api.sql("INSERT INTO config.customers (name) VALUES ('empty') RETURNING uuid")[0]["uuid"])
    assert api.client.post(PROMOTE, headers=admin, json={}).status_code == 200
    before = state(api)
    r = api.client.delete(f"/config/v1/customers/{empty}/", headers=admin)
    assert r.status_code == 409, r.text
    assert "stand for orgs while the customers are promoted" in r.text
    assert state(api) == before
    assert api.client.post(DEMOTE, headers=admin).status_code == 200
    r = api.client.delete(f"/config/v1/customers/{empty}/", headers=admin)
    assert r.status_code == 204, r.text
    assert api.sql("SELECT count(*) AS n FROM config.customers WHERE name = 'empty'")[0]["n"] == 0
