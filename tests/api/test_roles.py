"""The role matrix: every endpoint without a token (401), with each role, and from another org."""

import uuid

import pytest

# (method, path template, body, permission needed: the roles that may)
ALL = {"super_admin", "operator", "read_only"}
WRITERS = {"super_admin", "operator"}
ADMIN = {"super_admin"}


def endpoints(ctx):
    org, project, customer = ctx["org"], ctx["project"], ctx["customer"]
    p = f"/config/v1/orgs/{org}/projects"
    return [
        ("GET", "/config/v1/orgs/", None, ALL),
        ("OPTIONS", "/config/v1/orgs", None, ALL),
        ("GET", f"/config/v1/orgs/{org}", None, ALL),
        ("GET", p, None, ALL),
        ("OPTIONS", p, None, ALL),
        ("POST", p, {"name": f"n{uuid.uuid4().hex[:6]}"}, WRITERS),
        ("GET", f"{p}/{project}", None, ALL),
        ("PATCH", f"{p}/{project}", {"description": "x"}, WRITERS),
        ("PUT", f"{p}/{project}", {"name": "proj"}, WRITERS),
        ("GET", "/config/v1/customers", None, ALL),
        ("OPTIONS", "/config/v1/customers", None, ALL),
        ("POST", "/config/v1/customers", {"name": f"c{uuid.uuid4().hex[:6]}"}, WRITERS),
        ("GET", f"/config/v1/customers/{customer}", None, ALL),
        ("PATCH", f"/config/v1/customers/{customer}", {"description": "x"}, ADMIN),  # operator: not its own
        ("POST", f"/config/v1/customers/{customer}/add_projects", {"projects": [{"uuid": project}]}, WRITERS),
        ("GET", "/config/v1/customers/reconcile", None, ALL),
        ("POST", "/config/v1/customers/reconcile", {"dry_run": True}, WRITERS),
        ("POST", "/config/v1/customers/switch_mode", {"per_project": False, "dry_run": True}, ADMIN),
        ("GET", "/config/v1/tunables", None, ALL),
        ("GET", "/config/v1/tunables/customer_orphan_grace_seconds", None, ALL),
        ("PUT", "/config/v1/tunables/customer_orphan_grace_seconds", {"value": 120}, ADMIN),
        ("GET", "/config/v1/audit", None, WRITERS),
        ("GET", "/config/v1/users", None, ADMIN),
        (
            "POST",
            "/config/v1/users",
            {"email": f"u{uuid.uuid4().hex[:6]}@x.io", "password": "longenough"},
            ADMIN,
        ),
        ("POST", "/config/v1/logout", None, ALL),
        ("DELETE", f"/config/v1/customers/{customer}", None, ADMIN),
        ("DELETE", f"{p}/{project}", None, WRITERS),
    ]


@pytest.fixture
def ctx(api):
    project = api.project("proj")
    return {"org": api.org, "project": project["uuid"], "customer": project["customer"]}


def test_no_token_401(api, ctx):
    for method, path, body, _ in endpoints(ctx):
        r = api.client.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r.text)
        assert set(r.json()) == {"detail"}


@pytest.mark.parametrize("role", ["read_only", "operator"])
def test_role(api, ctx, role):
    for method, path, body, allowed in endpoints(ctx):
        headers = (
            api.headers(role)
            if not path.endswith("logout")
            else {"Authorization": f"Bearer {api.login(api.make_user(role))}"}
        )
        before = api.counts()
        r = api.client.request(method, path, json=body, headers=headers)
        if role in allowed:
            assert r.status_code < 300, (role, method, path, r.text)
        else:
            assert r.status_code == 403, (role, method, path, r.text)
            assert set(r.json()) == {"detail"}
            assert api.counts() == before, (method, path)


def test_super_admin_everything(api, ctx):
    for method, path, body, _ in endpoints(ctx):
        headers = (
            api.headers()
            if not path.endswith("logout")
            else {"Authorization": f"Bearer {api.login(api.make_user('super_admin'))}"}
        )
        r = api.client.request(method, path, json=body, headers=headers)
        assert r.status_code < 300, (method, path, r.text)


@pytest.mark.parametrize("role", ["read_only", "operator"])
def test_other_org_user_gets_404(api, ctx, role):
    other = api.other_org()
    headers = api.headers(role, org=other)
    for method, path, body, allowed in endpoints(ctx):
        if ctx["org"] not in path and ctx["customer"] not in path or role not in allowed:
            continue
        before = api.counts()
        r = api.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 404, (role, method, path, r.text)
        assert api.counts() == before
    # lists are scoped: only its own org, no customer of ours
    assert [o["uuid"] for o in api.client.get("/config/v1/orgs", headers=headers).json()] == [other]
    assert api.client.get("/config/v1/customers", headers=headers).json() == []


def test_operator_customers(api, ctx):
    other = api.other_org()
    theirs = api.project("theirs", org=other)
    mine = api.customer("mine", role="operator")
    op = api.headers("operator")
    # sees its own customer (created_by) and the ones holding its org's projects
    seen = {c["uuid"] for c in api.client.get("/config/v1/customers", headers=op).json()}
    assert mine["uuid"] in seen and ctx["customer"] in seen and theirs["customer"] not in seen
    assert api.client.get(f"/config/v1/customers/{theirs['customer']}", headers=op).status_code == 404
    # cannot add another org's project: 404 for that project, nothing moves
    before = api.counts()
    r = api.client.post(
        f"/config/v1/customers/{mine['uuid']}/add_projects",
        headers=op,
        json={"projects": [{"uuid": theirs["uuid"]}]},
    )
    assert r.status_code == 404 and theirs["uuid"] in r.json()["detail"]
    assert api.counts() == before
    # can add its own org's project, rename and delete its own customer
    r = api.client.post(
        f"/config/v1/customers/{mine['uuid']}/add_projects",
        headers=op,
        json={"projects": [{"uuid": ctx["project"]}]},
    )
    assert r.status_code == 200, r.text
    assert api.client.delete(f"/config/v1/customers/{mine['uuid']}", headers=op).status_code == 204
    created_by = api.one(
        "SELECT after->>'created_by' AS by FROM config.audit_log WHERE object_type = 'customers' "
        "AND object_id = %s AND action = 'insert'",
        (mine["uuid"],),
    )
    assert created_by["by"] is not None
