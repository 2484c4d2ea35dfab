"""Security: object-level authorization, tokens, secrets in logs and bodies, injection, body
size, login throttling. Every refused request is also checked to have changed no row."""

from __future__ import annotations

import logging
import uuid

import pytest

from service import auth
from tests.api.conftest import PASSWORD

C = "/config/v1/customers"


@pytest.fixture
def two_orgs(api):
    """Org A (hydrolix) with a project and a manual customer grouping it; org B with an operator."""
    a_customer = api.customer("a-group")
    a_project = api.project("a-project", customer=a_customer["uuid"])
    other = api.other_org()
    b_project = api.project("b-project", org=other)
    return {
        "a_org": api.org,
        "a_project": a_project["uuid"],
        "a_customer": a_customer["uuid"],
        "b_org": other,
        "b_project": b_project["uuid"],
        "b_customer": b_project["customer"],
    }


@pytest.mark.parametrize("role", ["operator", "read_only"])
def test_other_org_cannot_reach_objects_by_uuid(api, two_orgs, role):
    t = two_orgs
    h = api.headers(role, org=t["b_org"])
    mine = f"/config/v1/orgs/{t['b_org']}/projects"  # its own org in the path, org A's uuids
    theirs = f"/config/v1/orgs/{t['a_org']}/projects"
    attempts = [
        ("GET", f"{mine}/{t['a_project']}", None),
        ("PUT", f"{mine}/{t['a_project']}", {"name": "x"}),
        ("PATCH", f"{mine}/{t['a_project']}", {"description": "x"}),
        ("DELETE", f"{mine}/{t['a_project']}", None),
        ("GET", f"{theirs}/{t['a_project']}", None),
        ("PATCH", f"{theirs}/{t['a_project']}", {"name": "x"}),
        ("DELETE", f"{theirs}/{t['a_project']}", None),
        ("GET", theirs, None),
        ("OPTIONS", theirs, None),
        ("POST", theirs, {"name": "planted"}),
        ("GET", f"/config/v1/orgs/{t['a_org']}", None),
        ("GET", f"{C}/{t['a_customer']}", None),
        ("PUT", f"{C}/{t['a_customer']}", {"name": "stolen"}),
        ("PATCH", f"{C}/{t['a_customer']}", {"description": "x"}),
        ("DELETE", f"{C}/{t['a_customer']}", None),
        ("POST", f"{C}/{t['a_customer']}/add_projects", {"projects": [{"uuid": t["b_project"]}]}),
        ("POST", f"{C}/{t['a_customer']}/remove_projects", {"projects": [{"uuid": t["a_project"]}]}),
    ]
    for method, path, body in attempts:
        before = api.counts()
        r = api.client.request(method, path, json=body, headers=h)
        expected = 403 if role == "read_only" and method not in ("GET", "OPTIONS") else 404
        assert r.status_code == expected, (role, method, path, r.text)
        assert set(r.json()) == {"detail"}
        assert "a-group" not in r.text and "a-project" not in r.text  # (404s echo the uuid asked for)
        assert api.counts() == before, (method, path)


def test_operator_cannot_pull_or_push_across_orgs(api, two_orgs):
    t = two_orgs
    h = api.headers("operator", org=t["b_org"])
    b_path = f"/config/v1/orgs/{t['b_org']}/projects"
    own = api.client.post(C, json={"name": "b-own"}, headers=h).json()
    cases = [
        # pull org A's project into its own customer
        ("POST", f"{C}/{own['uuid']}/add_projects", {"projects": [{"uuid": t["a_project"]}]}, 404),
        # point its project, or a new one, at org A's customer
        ("PATCH", f"{b_path}/{t['b_project']}", {"customer": t["a_customer"]}, 400),
        ("POST", b_path, {"name": "sneaky", "customer": t["a_customer"]}, 400),
    ]
    for method, path, body, status in cases:
        before = api.counts()
        r = api.client.request(method, path, json=body, headers=h)
        assert r.status_code == status, (method, path, r.text)
        assert api.counts() == before
    # filters do not leak either
    assert api.client.get(f"{b_path}?customer={t['a_customer']}", headers=h).json() == []
    assert api.client.get(f"{C}?name=a-group", headers=h).json() == []
    assert (
        api.one("SELECT customer_id::text AS c FROM config.projects WHERE uuid = %s", (t["a_project"],))["c"]
        == t["a_customer"]
    )


def _assert_refused(api, headers: dict, detail_word: str) -> None:
    before = api.counts()
    for method, path, body in [
        ("GET", "/config/v1/orgs", None),
        ("POST", C, {"name": "nope"}),
        ("PUT", "/config/v1/tunables/customer_orphan_grace_seconds", {"value": 1}),
        ("POST", f"{C}/reconcile", {"force": True}),
    ]:
        r = api.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert detail_word in r.json()["detail"].lower(), r.json()
    assert api.counts() == before


def test_expired_revoked_and_deactivated_tokens(api):
    expired = api.make_user("super_admin")
    token = api.login(expired)
    api.expire_tokens(expired)
    _assert_refused(api, {"Authorization": f"Bearer {token}"}, "expired")

    revoked = api.login(api.make_user("super_admin"))
    assert (
        api.client.post("/config/v1/logout", headers={"Authorization": f"Bearer {revoked}"}).status_code
        == 204
    )
    _assert_refused(api, {"Authorization": f"Bearer {revoked}"}, "revoked")

    disabled = api.make_user("super_admin")
    token = api.login(disabled)
    api.sql("UPDATE config.users SET is_active = false WHERE email = %s", (disabled,))
    _assert_refused(api, {"Authorization": f"Bearer {token}"}, "disabled")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "garbage",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "bearer  ",
        "Bearer a b",
        "Bearer " + "A" * 8000,
        "Bearer \u00e9t\u00e9",
        "Bearer ' OR '1'='1",
        "Bearer %00",
        "Bearer " + "x" * 43,
    ],
)
def test_malformed_tokens_401_and_no_change(api, header):
    word = (
        "invalid"
        if header.startswith("Bearer ")
        and header.split(" ", 1)[1].strip()
        and " " not in header.split(" ", 1)[1].strip()
        else ""
    )
    _assert_refused(api, {"Authorization": header.encode()}, word)  # bytes: non-ASCII sent as UTF-8


def test_a_real_token_with_another_scheme_is_refused(api):
    token = api.login(api.make_user("super_admin"))
    for header in (f"Basic {token}", f"Token {token}", token, f"Bearer {token}x", f"Bearer {token[:-1]}"):
        _assert_refused(api, {"Authorization": header}, "")


def test_no_password_or_token_in_logs_or_bodies(api, caplog):
    new_password = "Sup3r-s3cret-pass!"
    bodies: list[str] = []
    with caplog.at_level(logging.DEBUG):
        r = api.post("/config/v1/users", json={"email": "leak@example.com", "password": new_password})
        bodies.append(r.text)
        assert r.status_code == 201
        r = api.client.post("/config/v1/login", json={"email": "leak@example.com", "password": new_password})
        assert new_password not in r.text and "password_hash" not in r.text  # (its token is shown once, here)
        token = r.json()["auth_token"]["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for method, path in [
            ("GET", "/config/v1/users"),
            ("GET", "/config/v1/audit?object_type=users"),
            ("OPTIONS", "/config/v1/users"),
            ("POST", "/config/v1/logout"),
        ]:
            r = api.client.request(method, path, headers=headers if "logout" in path else api.headers())
            bodies.append(r.text)
        r = api.client.post(
            "/config/v1/login", json={"email": "leak@example.com", "password": "wrong-" + new_password}
        )
        bodies.append(r.text)
        r = api.post(
            "/config/v1/users", json={"email": "leak@example.com", "password": new_password}
        )  # duplicate
        bodies.append(r.text)
    logged = caplog.text + "".join(str(rec.args) for rec in caplog.records)
    assert caplog.records, "nothing was logged: the check would be vacuous"
    for secret in (new_password, token, PASSWORD):
        assert secret not in logged
        assert all(secret not in body for body in bodies)
    assert all("password_hash" not in body and "$argon2" not in body for body in bodies)
    stored = api.sql(
        "SELECT coalesce(before::text, '') || coalesce(after::text, '') AS t FROM config.audit_log"
    )
    assert all("argon2" not in row["t"] and new_password not in row["t"] for row in stored)
    assert (
        api.one("SELECT count(*) AS n FROM config.tokens WHERE token_hash::text LIKE %s", (f"%{token}%",))[
            "n"
        ]
        == 0
    )


INJECTIONS = [
    "'; DROP TABLE config.projects; --",
    "' OR '1'='1",
    "$$",
    "$$; DELETE FROM config.customers; $$",
    "\\x00",
    "%s",
    "%(name)s",
    "Robert'); DROP TABLE config.users;--",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "\U0001f4a5 OR 1=1",
    "*/ SELECT pg_sleep(5) /*",
    "\\'; --",
]


def _fingerprint(api):
    return api.one(
        "SELECT (SELECT count(*) FROM config.projects) AS projects,"
        " (SELECT count(*) FROM config.customers) AS c,"
        " (SELECT count(*) FROM config.users) AS users,"
        " (SELECT md5(string_agg(p::text, ',' ORDER BY p.uuid)) FROM config.projects p) AS p_rows,"
        " (SELECT md5(string_agg(t::text, ',' ORDER BY t.name)) FROM config.tunables t) AS t_rows,"
        " to_regclass('config.projects') IS NOT NULL AND to_regclass('config.users') IS NOT NULL AS tables"
    )


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_data(api, text):
    p = api.project("target")
    c = api.customer("holder")
    org = f"/config/v1/orgs/{api.org}/projects"
    # filters and path segments: answered, nothing changes
    before = _fingerprint(api)
    for method, path, kwargs in [
        ("GET", org, {"params": {"name": text}}),
        ("GET", C, {"params": {"name": text}}),
        ("GET", "/config/v1/audit", {"params": {"actor": text}}),
        ("GET", C, {"params": {"origin": text}}),
        ("GET", org, {"params": {"customer": text}}),
        ("GET", "/config/v1/audit", {"params": {"object_id": text}}),
        ("GET", f"/config/v1/tunables/{text}", {}),
        ("PUT", f"/config/v1/tunables/{text}", {"json": {"value": 1}}),
        ("POST", "/config/v1/login", {"json": {"email": text, "password": text}}),
        ("POST", "/config/v1/users", {"json": {"email": text, "password": text + "12345678"}}),
        ("POST", org, {"json": {"name": text}}),  # project names are restricted: 400
    ]:
        r = api.request(method, path, **kwargs) if "login" not in path else api.client.post(path, **kwargs)
        assert r.status_code in (200, 400, 401, 404), (method, path, r.text)
        if method == "GET" and r.status_code == 200 and "tunables" not in path:
            assert r.json() == [], (path, kwargs)
    assert _fingerprint(api) == before
    # free-text fields store the string as given (parameters, never SQL text)
    r = api.request("PATCH", f"{org}/{p['uuid']}", json={"description": text, "settings": {text: text}})
    assert r.status_code == 200, r.text
    assert api.one(
        "SELECT description, settings->>%s AS s FROM config.projects WHERE uuid = %s", (text, p["uuid"])
    ) == {"description": text, "s": text}
    r = api.request("PATCH", f"{C}/{c['uuid']}", json={"name": text, "description": text})
    if r.status_code == 200:  # names without whitespace are allowed for customers
        assert api.one("SELECT name, description FROM config.customers WHERE uuid = %s", (c["uuid"],)) == {
            "name": text.replace(" ", "-"),
            "description": text,
        }
    else:
        assert r.status_code == 400 and "name" in r.json(), r.text
    after = _fingerprint(api)
    assert after["tables"] and after["projects"] == before["projects"] and after["c"] == before["c"]


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/config/v1/orgs/{org}/projects", {"name": "nul\u0000"}),
        ("POST", "/config/v1/orgs/{org}/projects", {"name": "ok", "description": "a\u0000b"}),
        ("PATCH", "/config/v1/orgs/{org}/projects/{project}", {"settings": {"k\u0000": 1}}),
        ("POST", "/config/v1/customers", {"name": "x", "description": "\u0000"}),
        ("POST", "/config/v1/users", {"email": "n\u0000@x.io", "password": "longenough"}),
        ("GET", "/config/v1/orgs/{org}/projects?name=a%00b", None),
        ("GET", "/config/v1/audit?actor=%00", None),
        ("GET", "/config/v1/tunables/a%00b", None),
    ],
)
def test_nul_byte_is_400_not_500(api, method, path, body):
    p = api.project("nul-target")
    path = path.format(org=api.org, project=p["uuid"])
    before = api.counts()
    r = api.request(method, path, json=body)
    assert r.status_code in (400, 404) if "tunables" in path else r.status_code == 400, r.text
    assert api.counts() == before


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/config/v1/orgs/{org}/projects"),
        ("POST", "/config/v1/customers"),
        ("PATCH", "/config/v1/orgs/{org}/projects/{project}"),
        ("POST", "/config/v1/users"),
        ("POST", "/config/v1/customers/reconcile"),
    ],
)
def test_body_over_1mib_is_413(api, method, path):
    p = api.project("big-target")
    path = path.format(org=api.org, project=p["uuid"])
    before = api.counts()
    big = b'{"name": "x", "description": "' + b"a" * (1024 * 1024) + b'"}'
    r = api.request(method, path, content=big, headers={**api.headers(), "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert "1 MiB" in r.json()["detail"]
    # no Content-Length (chunked): the limit holds too
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
    r = api.request(
        method, path, content=chunks, headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert api.counts() == before
    # just under the limit is parsed (and refused or accepted on its merits, never 413)
    small = b'{"name": "x", "description": "' + b"a" * (1024 * 1024 - 100) + b'"}'
    r = api.request(
        method, path, content=small, headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert r.status_code != 413


def test_login_over_1mib_is_413(api):
    r = api.client.post(
        "/config/v1/login",
        content=b'{"email": "' + b"a" * (1024 * 1024 + 1) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_failed_logins_are_throttled_without_an_oracle(api):
    email = api.make_user("read_only")
    ghost = f"ghost-{uuid.uuid4().hex[:6]}@example.com"
    for who in (email, ghost):
        for _ in range(auth.FAILURE_LIMIT):
            r = api.client.post("/config/v1/login", json={"email": who, "password": "wrong password"})
            assert r.status_code == 401 and r.json() == {"detail": "Invalid email or password."}
        # throttled: 429 with Retry-After, even with the right password (no password oracle),
        # and whatever the case of the email
        for body in ({"email": who, "password": PASSWORD}, {"email": who.upper(), "password": "x"}):
            r = api.client.post("/config/v1/login", json=body)
            assert r.status_code == 429, r.text
            assert 1 <= int(r.headers["Retry-After"]) <= auth.FAILURE_WINDOW_SECONDS
    assert (
        api.one(
            "SELECT count(*) AS n FROM config.tokens t JOIN config.users u ON u.uuid = t.user_id "
            "WHERE u.email = %s",
            (email,),
        )["n"]
        == 0
    )
