"""``/config/v2/projects/``: the org taken from the request body (Hydrolix's 6.4 v2 API): the
list of the user's projects, a create in the org the body names (403 without the right there,
400 for an org the user cannot see, nothing created), and after a promotion a create naming
only the org (its customer is the one the org stands for)."""

from __future__ import annotations

from service.errors import ORG_MISSING
from tests.api.test_org_promotion import serve
from tests.promotion_data import PASSWORD, build

V2 = "/config/v2/projects/"


def test_list_and_create_with_the_org_in_the_body(api):
    other = api.other_org()
    r = api.post(V2, json={"name": "v2proj", "org": api.org, "description": "from v2"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["org"] == api.org and made["customer"] is not None and made["description"] == "from v2"
    listed = api.get(V2).json()
    assert {"hydro", "sample_project", "v2proj"} <= {p["name"] for p in listed}
    assert all(p["org"] for p in listed)
    assert [p["name"] for p in api.get(V2, params={"org": other}).json()] == []
    paged = api.get(V2, params={"page_size": 1}).json()
    assert paged["count"] == len(listed) and len(paged["results"]) == 1

    # an operator of the other org sees only its org's projects and cannot create in hydrolix
    operator, reader = api.headers("operator", other), api.headers("read_only", other)
    mine = api.client.get(V2, headers=operator).json()
    assert mine == []
    before = api.counts()
    r = api.client.post(V2, headers=operator, json={"name": "sneaky", "org": api.org})
    assert r.status_code == 400 and r.json() == {"org": [ORG_MISSING]}
    r = api.client.post(V2, headers=reader, json={"name": "x", "org": other})
    assert r.status_code == 403
    for bad in (
        {"name": "x"},
        {"name": "x", "org": "nope"},
        {"name": "bad name", "org": api.org},
        {"org": api.org},
    ):
        assert api.post(V2, json=bad).status_code == 400, bad
    r = api.post(V2, json={"name": "v2proj", "org": api.org})
    assert r.status_code == 400 and "already exists" in r.text
    assert api.counts() == before


def test_after_a_promotion_the_org_names_the_customer(db_url, monkeypatch):
    from tests.api.conftest import Api

    build(db_url, per_project=True)
    with serve(db_url, monkeypatch) as client:
        api = Api(client=client, url=db_url)
        api.sql("SELECT config.promote_customers()")
        headers = {"Authorization": f"Bearer {api.login('op@acme', PASSWORD)}"}
        bigco = api.one("SELECT uuid::text FROM config.orgs WHERE name = 'bigco'")["uuid"]
        r = client.post(V2, headers=headers, json={"name": "fresh", "org": bigco})
        assert r.status_code == 201, r.text
        assert (
            r.json()["customer"]
            == api.one("SELECT uuid::text FROM config.customers WHERE name = 'bigco'")["uuid"]
        )
        names = {p["name"] for p in client.get(V2, headers=headers).json()}
        assert {"api", "db", "web", "fresh"} <= names and "shop" not in names


def test_a_project_by_its_uuid_takes_the_org_from_the_project(api):
    """GET/PUT/PATCH/DELETE /config/v2/projects/{uuid}/ (both slash forms, no redirect): v1's
    rules in the project's own org: 404 for another org's project, 403 without projects.write
    there, DRF-style 400s, and nothing changed by any refusal."""
    other = api.other_org()
    mine = api.post(V2, json={"name": "item", "org": api.org, "description": "d"}).json()
    theirs = api.post(V2, json={"name": "theirs", "org": other}).json()
    path = f"{V2}{mine['uuid']}/"
    for p in (path, path.rstrip("/")):
        r = api.get(p, follow_redirects=False)
        assert r.status_code == 200 and r.json() == mine, r.text

    r = api.request("PATCH", path.rstrip("/"), json={"description": "patched"}, follow_redirects=False)
    assert r.status_code == 200 and r.json()["description"] == "patched" and r.json()["org"] == api.org
    r = api.request("PUT", path, json={"name": "item2", "org": api.org})
    assert r.status_code == 200 and r.json()["name"] == "item2" and r.json()["description"] == "patched"
    audit = api.one(
        "SELECT changed FROM config.audit_log WHERE object_type = 'projects' AND object_id = %s "
        "ORDER BY id DESC LIMIT 1",
        (mine["uuid"],),
    )
    assert audit["changed"] == ["name"]

    operator, reader = api.headers("operator", other), api.headers("read_only", api.org)
    before = api.counts()
    # another org's project: 404 for every method, as v1's path under an org it cannot see
    for method, body in (
        ("GET", None),
        ("PATCH", {"description": "x"}),
        ("PUT", {"name": "x"}),
        ("DELETE", None),
    ):
        r = api.client.request(method, path, headers=operator, json=body)
        assert r.status_code == 404, (method, r.text)
    # its own org's project, read-only role: it reads, it may not write (403)
    assert api.client.get(path, headers=reader).status_code == 200
    for method, body in (("PATCH", {"description": "x"}), ("PUT", {"name": "x"}), ("DELETE", None)):
        r = api.client.request(method, path, headers=reader, json=body)
        assert r.status_code == 403, (method, r.text)
    assert api.counts() == before
    # bad input: 400 with the field named
    r = api.request("PATCH", path, json={"org": other})
    assert r.status_code == 400 and list(r.json()) == ["org"], r.text
    r = api.request("PATCH", path, json={"name": "bad name"})
    assert r.status_code == 400 and "name" in r.text
    r = api.request("PATCH", path, json={"color": "red"})
    assert r.status_code == 400
    r = api.request("PUT", path, json={"description": "no name"})
    assert r.status_code == 400
    r = api.request("PATCH", path, json={"name": "theirs"})  # another org's name: no clash
    assert r.status_code == 200
    r = api.request("PATCH", path, json={"name": "item2"})
    assert r.status_code == 200
    api.post(V2, json={"name": "taken", "org": api.org})
    before = api.counts()
    r = api.request("PATCH", path, json={"name": "taken"})
    assert r.status_code == 400 and "already exists" in r.text
    assert api.get(f"{V2}not-a-uuid/").status_code in (400, 404)
    assert api.get(f"{V2}00000000-0000-0000-0000-000000000000/").status_code == 404
    assert api.counts() == before

    # DELETE: 204, then 404; the other org's project is still there
    r = api.request("DELETE", path)
    assert r.status_code == 204 and r.content == b""
    assert api.get(path).status_code == 404
    assert api.request("DELETE", path).status_code == 404
    assert api.one("SELECT count(*) AS n FROM config.projects WHERE uuid = %s", (theirs["uuid"],))["n"] == 1
    assert (
        api.one(
            "SELECT count(*) AS n FROM config.audit_log WHERE object_type = 'projects' AND action = 'delete' "
            "AND object_id = %s",
            (mine["uuid"],),
        )["n"]
        == 1
    )


def test_options_say_customer_optional_in_an_org_standing_for_one(db_url, monkeypatch):
    """At 6.4 the projects' OPTIONS metadata says `customer` is required, except in an org that
    stands for a customer while the customers are promoted (hdxcli reads it): there a create
    without one gets the org's customer. Both halves are checked against a real create."""
    from tests.api.conftest import Api

    build(db_url, per_project=True)
    with serve(db_url, monkeypatch) as client:
        api = Api(client=client, url=db_url)

        def required(org: str) -> bool:
            r = api.request("OPTIONS", f"/config/v1/orgs/{org}/projects/")
            assert r.status_code == 200, r.text
            return r.json()["actions"]["POST"]["customer"]["required"]

        acme = api.one("SELECT uuid::text FROM config.orgs WHERE name = 'acme'")["uuid"]
        assert required(acme) is True
        api.sql("SELECT config.promote_customers()")
        bigco = api.one("SELECT uuid::text FROM config.orgs WHERE name = 'bigco'")["uuid"]
        assert required(bigco) is False
        assert required(acme) is True  # acme stands for no customer (per-project mode)

        r = api.post(f"/config/v1/orgs/{bigco}/projects/", json={"name": "fresh"})
        assert r.status_code == 201, r.text
        assert (
            r.json()["customer"]
            == api.one("SELECT uuid::text FROM config.customers WHERE name = 'bigco'")["uuid"]
        )
        before = api.counts()
        r = api.post(f"/config/v1/orgs/{acme}/projects/", json={"name": "fresh"})
        assert r.status_code == 400 and "customer" in r.json(), r.text
        assert api.counts() == before

        api.sql("SELECT config.demote_orgs()")
        assert required(acme) is True
        r = api.request("OPTIONS", f"/config/v1/orgs/{bigco}/projects/")
        assert r.status_code == 404  # the org the promotion created is gone
