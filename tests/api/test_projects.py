"""Projects: CRUD, filters, customer assignment, bad input changes nothing."""

import uuid

import pytest

BASE = "/config/v1/orgs/{org}/projects"


def path(api, *rest):
    return "/".join([BASE.format(org=api.org), *rest]) + "/"


def test_create_get_update_delete(api):
    p = api.project("alpha", description="first", settings={"k": 1})
    assert p["customer"] and p["org"] == api.org and p["settings"] == {"k": 1}
    assert set(p) == {"uuid", "name", "org", "description", "settings", "customer", "created", "modified"}
    assert api.get(path(api, p["uuid"])).json() == p
    r = api.request("PUT", path(api, p["uuid"]), json={"name": "alpha2"})
    assert r.status_code == 200 and r.json()["name"] == "alpha2" and r.json()["description"] == "first"
    r = api.request("PATCH", path(api, p["uuid"]), json={"description": None, "settings": {}})
    assert r.status_code == 200 and r.json()["description"] is None and r.json()["settings"] == {}
    # rule 4: the project's single-project customer follows its name
    customer = api.get(f"/config/v1/customers/{p['customer']}").json()
    assert customer["name"] == "alpha2"
    r = api.request("DELETE", path(api, p["uuid"]))
    assert r.status_code == 204 and r.content == b""
    assert api.get(path(api, p["uuid"])).status_code == 404
    assert api.request("DELETE", path(api, p["uuid"])).status_code == 404


def test_explicit_customer_wins_and_patch_moves(api):
    c = api.customer("acme corp")
    assert c["name"] == "acme-corp" and c["origin"] == "manual"
    p = api.project("beta", customer=c["uuid"])
    assert p["customer"] == c["uuid"]
    q = api.project("gamma")
    r = api.request("PATCH", path(api, q["uuid"]), json={"customer": c["uuid"]})
    assert r.status_code == 200 and r.json()["customer"] == c["uuid"]
    assert sorted(api.get(f"/config/v1/customers/{c['uuid']}").json()["projects"]) == sorted(
        [p["uuid"], q["uuid"]]
    )
    audit = api.one(
        "SELECT changed, actor FROM config.audit_log WHERE object_type = 'projects' "
        "AND object_id = %s AND action = 'update'",
        (q["uuid"],),
    )
    assert audit["changed"] == ["customer_id"] and audit["actor"].startswith("super_admin-")


def test_filters(api):
    c = api.customer("filtered")
    a = api.project("a1", customer=c["uuid"])
    b = api.project("b1")
    api.sql("UPDATE config.projects SET customer_id = NULL WHERE uuid = %s", (b["uuid"],))
    base = BASE.format(org=api.org)
    for value in ("True", "true", "TRUE"):
        assert [p["uuid"] for p in api.get(f"{base}?customer_id__isnull={value}").json()] == [b["uuid"]]
    assert b["uuid"] not in [p["uuid"] for p in api.get(f"{base}?customer_id__isnull=False").json()]
    assert len(api.get(f"{base}?customer_id__isnull=false").json()) == 3
    assert [p["uuid"] for p in api.get(f"{base}?customer={c['uuid']}").json()] == [a["uuid"]]
    assert [p["name"] for p in api.get(f"{base}?name=a1").json()] == ["a1"]
    assert api.get(f"{base}?name=zzz").json() == []
    for bad in ("customer_id__isnull=maybe", "customer=not-a-uuid"):
        r = api.get(f"{base}?{bad}")
        assert r.status_code == 400 and list(r.json()) == [bad.split("=")[0]]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "-lead"}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": "ok", "unknown": 1}, "unknown"),
        ({"name": "ok", "uuid": str(uuid.uuid4())}, "uuid"),
        ({"name": "ok", "settings": []}, "settings"),
        ({"name": "ok", "settings": "x"}, "settings"),
        ({"name": "ok", "customer": "not-a-uuid"}, "customer"),
        ({"name": "ok", "customer": str(uuid.uuid4())}, "customer"),
        ({"name": "ok", "description": 3}, "description"),
        ({"name": "nul\u0000byte"}, None),
        ({"name": "ok", "description": "nul\u0000"}, None),
        ({"name": "ok", "settings": {"k": "\u0000"}}, None),
        ({"name": "sample_project"}, "name"),
        ([], "non_field_errors"),
        ("text", "non_field_errors"),
    ],
)
def test_create_bad_input_400_changes_nothing(api, body, field):
    before = api.counts()
    r = api.post(BASE.format(org=api.org), json=body)
    # well-formed, refused by the current state (a taken name, no such customer): 409
    conflict = isinstance(body, dict) and (
        body.get("name") == "sample_project" or len(body.get("customer", "")) == 36
    )
    assert r.status_code == (409 if conflict else 400), r.text
    errors = r.json()
    assert errors and all(
        isinstance(v, list) and v and all(isinstance(m, str) and m for m in v) for v in errors.values()
    )
    if field:
        assert field in errors, errors
    assert api.counts() == before


def test_duplicate_name_says_already_exists(api):
    api.project("dup")
    r = api.post(BASE.format(org=api.org), json={"name": "dup"})
    assert r.status_code == 409 and "already exists" in r.json()["name"][0]


@pytest.mark.parametrize("raw", [b"{", b'{"name": "x",}', b"\xff\xfe", b"", b"null", b"[1]"])
def test_malformed_json_400(api, raw):
    before = api.counts()
    r = api.post(
        BASE.format(org=api.org), content=raw, headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json().get("non_field_errors"), r.text
    assert api.counts() == before


@pytest.mark.parametrize(
    "method, body",
    [
        ("PUT", {}),
        ("PUT", {"description": "no name"}),
        ("PATCH", {"name": ""}),
        ("PATCH", {"name": None}),
        ("PATCH", {"settings": None}),
        ("PATCH", {"bogus": True}),
        ("PATCH", {"customer": "zz"}),
        ("PUT", {"name": "hydro"}),
        ("PATCH", {"customer": str(uuid.uuid4())}),
        ("PATCH", []),
    ],
)
def test_update_bad_input_400_changes_nothing(api, method, body):
    p = api.project("target")
    before = api.counts()
    r = api.request(method, path(api, p["uuid"]), json=body)
    conflict = isinstance(body, dict) and (
        body.get("name") == "hydro" or len(body.get("customer") or "") == 36
    )
    assert r.status_code == (409 if conflict else 400), r.text
    assert api.counts() == before


@pytest.mark.parametrize("bad", ["not-a-uuid", "1234", "00000000-0000-0000-0000-00000000000g"])
def test_invalid_uuid_in_path_404(api, bad):
    r = api.get(f"/config/v1/orgs/{bad}/projects/")
    assert r.status_code == 404 and "not a valid UUID" in r.json()["detail"]
    r = api.get(f"{BASE.format(org=api.org)}/{bad}/")
    assert r.status_code == 404 and "not a valid UUID" in r.json()["detail"]
    before = api.counts()
    assert api.request("DELETE", f"{BASE.format(org=api.org)}/{bad}").status_code == 404
    assert api.request("PATCH", f"{BASE.format(org=api.org)}/{bad}", json={"name": "x"}).status_code == 404
    assert api.counts() == before


def test_unknown_org_and_project_404(api):
    r = api.get(f"/config/v1/orgs/{uuid.uuid4()}/projects/")
    assert r.status_code == 404 and set(r.json()) == {"detail"}
    r = api.get(path(api, str(uuid.uuid4())))
    assert r.status_code == 404
