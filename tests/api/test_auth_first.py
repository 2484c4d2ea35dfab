"""Authentication before validation (service/front.py): every operation of the OpenAPI document
but login, health and metrics answers 401 ``{"detail"}`` to a missing, malformed, unknown,
expired or revoked token before it looks at the path's ids, the query or the body (no 400, 404,
405 or 413 first), unknown paths and methods included; the same request with a good token gets
its 400/404/405/413, so the refusal is not simply what a bad request gets anyway."""

from __future__ import annotations

import re
import secrets

import pytest

BAD_ID = "not-an-id"
BAD_BODY = b'{"name": '  # malformed JSON
BAD_QUERY = {"page": "zero", "page_size": "-1", "customer_id__isnull": "maybe", "customer": "x"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PUBLIC = {("POST", "/config/v1/login"), ("GET", "/health"), ("GET", "/metrics")}
UNKNOWN_PATHS = ["/", "/config/v1/nothing-here/", "/config/v1/orgs/x/secrets/", "/admin", "/schemas"]


@pytest.fixture
def refused_headers(api) -> dict[str, dict[str, str]]:
    """One header set per way a token can fail."""
    expired_user = api.make_user("super_admin")
    expired = api.login(expired_user)
    api.expire_tokens(expired_user)
    revoked = api.login(api.make_user("super_admin"))
    r = api.client.post("/config/v1/logout", headers={"Authorization": f"Bearer {revoked}"})
    assert r.status_code == 204
    return {
        "none": {},
        "malformed": {"Authorization": "Bearer a b"},
        "other scheme": {"Authorization": f"Basic {revoked}"},
        "unknown": {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
    }


def _operations(api) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """(method, path) of every protected operation of the served document, and the public ones."""
    r = api.client.get("/schema/openapi.json")
    assert r.status_code == 200
    protected, public = [], set()
    for path, item in r.json()["paths"].items():
        for method, operation in item.items():
            if method.upper() not in (*METHODS, "OPTIONS"):
                continue
            key = (method.upper(), path.rstrip("/") or path)
            (public.add(key) if operation.get("security") == [{}] else protected.append(key))
    return protected, public


def _bad(path: str) -> str:
    return re.sub(r"\{[^}]+\}", BAD_ID, path)


def _send(api, method: str, path: str, headers: dict, content: bytes = BAD_BODY):
    return api.client.request(
        method,
        path,
        params=BAD_QUERY,
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )


def _assert_401(r, what) -> None:
    assert r.status_code == 401, (what, r.status_code, r.text)
    assert set(r.json()) == {"detail"} and r.json()["detail"], (what, r.text)
    assert r.headers["WWW-Authenticate"].startswith("Bearer"), what


def test_every_operation_answers_401_before_validating_anything(api, refused_headers):
    protected, public = _operations(api)
    assert public == PUBLIC  # nothing else is callable without a token
    assert len(protected) >= 25, protected
    good = api.headers("super_admin")
    before = api.counts()
    for method, path in protected:
        for kind, headers in refused_headers.items():
            _assert_401(_send(api, method, _bad(path), headers), (kind, method, path))
    assert api.counts() == before
    # the same requests with a good token are refused for their input (or served), not 401;
    # logout last (it revokes the token)
    for method, path in sorted(protected, key=lambda op: op[1] == "/config/v1/logout"):
        r = _send(api, method, _bad(path), good)
        if path == "/config/v1/logout":
            assert r.status_code == 204, r.text
        elif "{" in path or method in ("POST", "PUT", "PATCH"):
            assert r.status_code in (400, 404), (method, path, r.status_code, r.text)
        else:
            assert r.status_code < 500 and r.status_code != 401, (method, path, r.status_code, r.text)
    assert api.counts() == before


def test_methods_and_paths_that_do_not_exist_are_401_without_a_token(api, refused_headers):
    protected, _ = _operations(api)
    documented: dict[str, set[str]] = {}
    for method, path in protected:
        documented.setdefault(path, set()).add(method)
    good = api.headers("super_admin")
    before = api.counts()
    for path, methods in documented.items():
        missing = [m for m in METHODS if m not in methods]
        if not missing:
            continue
        for kind, headers in refused_headers.items():
            _assert_401(_send(api, missing[0], _bad(path), headers), (kind, missing[0], path))
        r = _send(api, missing[0], _bad(path), good)
        assert r.status_code == 405, (missing[0], path, r.status_code, r.text)
    for path in UNKNOWN_PATHS:
        for method in ("GET", "POST"):
            for kind, headers in refused_headers.items():
                _assert_401(_send(api, method, path, headers), (kind, method, path))
            assert _send(api, method, path, good).status_code == 404, (method, path)
    assert api.counts() == before


def test_a_body_over_the_limit_is_401_before_413(api, refused_headers):
    big = b'{"name": "x", "description": "' + b"a" * (1024 * 1024) + b'"}'
    path = f"/config/v1/orgs/{api.org}/projects/"
    before = api.counts()
    for kind, headers in refused_headers.items():
        _assert_401(_send(api, "POST", path, headers, big), kind)
    assert _send(api, "POST", path, api.headers("super_admin"), big).status_code == 413
    assert api.counts() == before


def test_public_paths_need_no_token(api):
    assert api.client.get("/health").status_code in (200, 503)
    assert api.client.get("/metrics").status_code == 200
    assert api.client.get("/schema/openapi.json").status_code == 200
    r = api.client.post("/config/v1/login/", json={"username": "nobody@example.com", "password": "x"})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid email or password."}


def test_a_good_token_still_reaches_the_handlers(api):
    """The front's lookup is the handler's: reads, writes (actor set: the audit names the
    user), 403 from the role and 404 for another org's projects."""
    org = api.org
    r = api.post(f"/config/v1/orgs/{org}/projects/", json={"name": "front-door"})
    assert r.status_code == 201, r.text
    audit = api.one(
        "SELECT actor FROM config.audit_log WHERE object_id = %s::uuid LIMIT 1", (r.json()["uuid"],)
    )
    assert audit is not None and audit["actor"].startswith("super_admin-")
    assert api.get(f"/config/v1/orgs/{org}/projects/front-door", role="read_only").status_code in (200, 404)
    other = api.other_org()
    assert api.get(f"/config/v1/orgs/{other}/projects/", role="operator").status_code == 404
    r = api.post("/config/v1/customers/", role="read_only", json={"name": "nope"})
    assert r.status_code == 403, r.text
