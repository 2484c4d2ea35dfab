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
