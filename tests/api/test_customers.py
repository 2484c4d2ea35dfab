"""Customers: CRUD, add/remove projects, rule 4 names, bad input."""

import uuid

import pytest

BASE = "/config/v1/customers"


def test_crud(api):
    c = api.customer("big customer", description="d")
    assert set(c) == {"uuid", "name", "description", "origin", "projects", "created", "modified"}
    assert (c["name"], c["origin"], c["projects"]) == ("big-customer", "manual", [])
    assert api.get(f"{BASE}/{c['uuid']}/").json() == c
    r = api.request("PUT", f"{BASE}/{c['uuid']}", json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["description"] == "d"
    r = api.request("PATCH", f"{BASE}/{c['uuid']}/", json={"description": None})
    assert r.status_code == 200 and r.json()["description"] is None
    assert [x["uuid"] for x in api.get(f"{BASE}?name=renamed").json()] == [c["uuid"]]
    assert {x["origin"] for x in api.get(f"{BASE}?origin=system").json()} == {"system"}
    assert api.get(f"{BASE}?origin=bogus").status_code == 400
    r = api.request("DELETE", f"{BASE}/{c['uuid']}/")
    assert r.status_code == 204 and r.content == b""
    assert api.get(f"{BASE}/{c['uuid']}").status_code == 404


def test_delete_orphans_projects(api):
    c = api.customer("holder")
    p = api.project("held", customer=c["uuid"])
    assert api.request("DELETE", f"{BASE}/{c['uuid']}").status_code == 204
    project = api.get(f"/config/v1/orgs/{api.org}/projects/{p['uuid']}").json()
    assert project["customer"] is None


def test_add_and_remove_projects(api):
    c = api.customer("group")
    a, b = api.project("pa"), api.project("pb")
    r = api.post(
        f"{BASE}/{c['uuid']}/add_projects/", json={"projects": [{"uuid": a["uuid"]}, {"uuid": b["uuid"]}]}
    )
    assert r.status_code == 200, r.text
    assert sorted(r.json()["projects"]) == sorted([a["uuid"], b["uuid"]])
    assert sorted(r.json()["customer"]["projects"]) == sorted([a["uuid"], b["uuid"]])
    # several projects: the name belongs to the administrators
    assert api.request("PATCH", f"{BASE}/{c['uuid']}", json={"name": "free-name"}).status_code == 200
    r = api.post(f"{BASE}/{c['uuid']}/remove_projects", json={"projects": [{"uuid": a["uuid"]}]})
    assert r.status_code == 200 and r.json()["projects"] == [a["uuid"]]
    # one project left: the customer now carries its name (rule 4) and cannot be renamed away
    assert r.json()["customer"]["name"] == "pb"
    r = api.request("PATCH", f"{BASE}/{c['uuid']}", json={"name": "other"})
    assert r.status_code == 400 and "rename the project instead" in r.json()["name"][0]
    r = api.post(f"{BASE}/{c['uuid']}/remove_projects", json={"projects": [{"uuid": a["uuid"]}]})
    assert r.status_code == 400 and "does not belong" in r.json()["projects"][0]


def test_duplicate_name(api):
    api.customer("same")
    before = api.counts()
    r = api.post(BASE, json={"name": "same"})
    assert r.status_code == 400 and "already exists" in r.json()["name"][0]
    r = api.post(BASE, json={"name": "same"})  # spaces-to-dashes collision too
    api.customer("with-dash")
    r = api.post(BASE, json={"name": "with dash"})
    assert r.status_code == 400 and "already exists" in r.json()["name"][0]
    assert api.counts()["customers"] == before["customers"] + 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"name": 1}, "name"),
        ({"name": "ok", "origin": "system"}, "origin"),
        ({"name": "ok", "projects": []}, "projects"),
        ({"name": "nul\u0000"}, None),
        ([], "non_field_errors"),
    ],
)
def test_create_bad_input(api, body, field):
    before = api.counts()
    r = api.post(BASE, json=body)
    assert r.status_code == 400, r.text
    if field:
        assert field in r.json()
    assert api.counts() == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"projects": []},
        {"projects": [{"uuid": "nope"}]},
        {"projects": ["x"]},
        {"projects": [{"id": 1}]},
        {"projects": [{"uuid": None}]},
        {"projects": "x"},
        {"projects": [{}]},
    ],
)
def test_add_projects_bad_input(api, body):
    c = api.customer("target")
    before = api.counts()
    for action in ("add_projects", "remove_projects"):
        r = api.post(f"{BASE}/{c['uuid']}/{action}", json=body)
        assert r.status_code == 400, r.text
        assert all(key.startswith("projects") for key in r.json()), r.json()
    assert api.counts() == before


def test_add_unknown_project_404_and_nothing_moves(api):
    c = api.customer("target")
    a = api.project("real")
    before = api.counts()
    r = api.post(
        f"{BASE}/{c['uuid']}/add_projects",
        json={"projects": [{"uuid": a["uuid"]}, {"uuid": str(uuid.uuid4())}]},
    )
    assert r.status_code == 404 and "Project" in r.json()["detail"]
    assert api.counts() == before
    r = api.post(f"{BASE}/{uuid.uuid4()}/add_projects", json={"projects": [{"uuid": a["uuid"]}]})
    assert r.status_code == 404 and "Customer" in r.json()["detail"]
    assert (
        api.post(f"{BASE}/bad-uuid/add_projects", json={"projects": [{"uuid": a["uuid"]}]}).status_code == 404
    )


@pytest.mark.parametrize(
    "method, body",
    [
        ("PUT", {}),
        ("PUT", {"name": ""}),
        ("PATCH", {"name": None}),
        ("PATCH", {"origin": "manual"}),
        ("PATCH", {"name": "sp ace\n"}),
    ],
)
def test_update_bad_input(api, method, body):
    c = api.customer("target")
    before = api.counts()
    r = api.request(method, f"{BASE}/{c['uuid']}", json=body)
    assert r.status_code == 400, r.text
    assert api.counts() == before


def _pages(api, role, **params):
    """Every page of the paginated list, and the count the last page gave."""
    rows, page = [], 1
    while True:
        body = api.get(f"{BASE}/", role, params={**params, "page_size": 2, "page": page}).json()
        rows += body["results"]
        if body["next"] is None:
            return rows, body["count"]
        page += 1


def test_plain_list_is_streamed_and_matches_the_pages(api):
    """The unpaginated list (streamed from the database, times and JSON written by SQL) is the
    paged list's rows, value for value, for a super admin and for an operator who sees only
    its org's customers and those it created."""
    other = api.other_org()
    one = api.project("streamed-one")
    api.project("streamed-two")
    elsewhere = api.project("elsewhere", org=other)
    mine = api.customer("made-by-operator", role="operator", description="by hand")
    for role in ("super_admin", "operator"):
        plain = api.get(f"{BASE}/", role)
        assert plain.status_code == 200 and plain.headers["content-type"].startswith("application/json")
        paged, count = _pages(api, role)
        assert plain.json() == paged and len(paged) == count
        assert plain.json() == api.get(f"{BASE}/?page_size=5&pagination=False", role).json()
        projects = {p for c in plain.json() for p in c["projects"]}
        assert one["uuid"] in projects and mine["uuid"] in {c["uuid"] for c in plain.json()}
        assert (elsewhere["uuid"] in projects) is (role == "super_admin")
        # the lists' JSON is written by SQL, a single customer's by msgspec: the same object
        listed = {c["uuid"]: c for c in plain.json()}
        for key in (one["customer"], mine["uuid"]):
            assert api.get(f"{BASE}/{key}/", role).json() == listed[key]
    assert api.get(f"{BASE}/", role=None).status_code == 401
    assert api.get(f"{BASE}/", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert [c["uuid"] for c in api.get(f"{BASE}/?name={mine['name']}").json()] == [mine["uuid"]]
    assert api.get(f"{BASE}/?origin=manual&name=nothing-like-it").content == b"[]"
    assert api.get(f"{BASE}/?origin=bogus").status_code == 400


def test_page_count_is_exact_for_every_scope(api):
    """The page's count is the number of customers the user sees with those filters: from
    config.customer_count for a super admin (also after creating, re-labelling and deleting
    customers), counted for an operator and for a name filter."""
    other = api.other_org()
    api.project("counted-one")
    api.project("counted-two", org=other)
    api.customer("counted-manual", role="operator")
    gone = api.customer("counted-gone")
    api.request("DELETE", f"{BASE}/{gone['uuid']}")
    relabelled = api.sql("UPDATE config.customers SET origin = 'project' WHERE origin = 'system' RETURNING 1")
    for role in ("super_admin", "operator", "read_only"):
        for params in ({}, {"origin": "manual"}, {"origin": "project"}, {"name": "counted-manual"}):
            listed = api.get(f"{BASE}/", role, params=params).json()
            assert _pages(api, role, **params)[1] == len(listed), (role, params)
    total = api.one("SELECT count(*) AS n FROM config.customers")["n"]
    assert api.get(f"{BASE}/?page_size=1").json()["count"] == total
    seen_by_operator = len(api.get(f"{BASE}/", "operator").json())
    assert 0 < seen_by_operator < total and relabelled
