"""Fixtures for the API tests: the real app (Litestar TestClient) on a fresh database clone.

``api`` is a client on ``create_app(db_url)`` (fallback scheduler off) that fails the test if
any response is a 500, plus helpers to make users and log them in. Users are made with
service.users.create_user (argon2 with cheap parameters here: hashing is not under test).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher
from litestar.testing import TestClient
from psycopg.rows import dict_row

from service import users
from service.app import create_app
from tests.conftest import runtime_url

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True, scope="session")
def _cheap_argon2():
    saved = users.HASHER
    users.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    users.HASHER = saved


@dataclass
class Api:
    client: TestClient
    url: str
    server_errors: list[str] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)

    # -- database access for arranging and checking (tests only) ----------------------------
    def sql(self, statement: str, params: Any = None) -> list[dict[str, Any]]:
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def one(self, statement: str, params: Any = None) -> dict[str, Any] | None:
        rows = self.sql(statement, params)
        return rows[0] if rows else None

    @property
    def org(self) -> str:
        return str(self.one("SELECT uuid FROM config.orgs WHERE name = 'hydrolix'")["uuid"])

    def other_org(self) -> str:
        row = self.one(
            "INSERT INTO config.orgs (name) VALUES ('other') ON CONFLICT (name) DO UPDATE "
            "SET name = EXCLUDED.name RETURNING uuid"
        )
        return str(row["uuid"])

    # -- users and tokens ---------------------------------------------------------------------
    def make_user(self, role: str, org: str | None = None, email: str | None = None) -> str:
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        with psycopg.connect(self.url, autocommit=True) as conn:
            users.create_user(conn, email, PASSWORD, org or self.org, role)
        return email

    def login(self, email: str, password: str = PASSWORD) -> str:
        r = self.client.post("/config/v1/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["auth_token"]["access_token"]

    def expire_tokens(self, email: str) -> None:
        """Every token of this user expired a second ago."""
        self.sql(
            "UPDATE config.tokens SET expires = now() - interval '1 second' "
            "WHERE user_id = (SELECT uuid FROM config.users WHERE email = %s)",
            (email,),
        )

    def headers(self, role: str = "super_admin", org: str | None = None) -> dict[str, str]:
        """Bearer headers of a user with this role (one per role and org, made on first use)."""
        key = f"{role}@{org or 'main'}"
        if key not in self._tokens:
            self._tokens[key] = self.login(self.make_user(role, org))
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    # -- shorthand ------------------------------------------------------------------------------
    def request(self, method: str, path: str, role: str | None = "super_admin", **kwargs: Any):
        headers = kwargs.pop("headers", None) or (self.headers(role) if role else {})
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, role: str | None = "super_admin", **kw: Any):
        return self.request("GET", path, role, **kw)

    def post(self, path: str, role: str | None = "super_admin", **kw: Any):
        return self.request("POST", path, role, **kw)

    def project(self, name: str, org: str | None = None, **fields: Any) -> dict[str, Any]:
        r = self.post(f"/config/v1/orgs/{org or self.org}/projects/", json={"name": name, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def customer(self, name: str, role: str = "super_admin", **fields: Any) -> dict[str, Any]:
        r = self.post("/config/v1/customers/", role, json={"name": name, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def counts(self) -> dict[str, int]:
        """Row counts and the audit high-water mark: 'nothing changed' means these are equal."""
        return self.one(
            "SELECT (SELECT count(*) FROM config.projects) AS projects,"
            " (SELECT count(*) FROM config.customers) AS customers,"
            " (SELECT count(*) FROM config.users) AS users,"
            " (SELECT coalesce(max(id), 0) FROM config.audit_log) AS audit,"
            " (SELECT md5(string_agg(t::text, ',' ORDER BY t.name)) FROM config.tunables t) AS tunables,"
            " (SELECT md5(string_agg(p::text, ',' ORDER BY p.uuid)) FROM config.projects p) AS project_rows,"
            " (SELECT md5(string_agg(c::text, ',' ORDER BY c.uuid)) FROM config.customers c) AS customer_rows"
        )


@pytest.fixture
def api(db_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HIERARCHY_SCHEDULER", "off")
    app = create_app(runtime_url(db_url), run_scheduler=False)  # the service runs as the runtime role
    with TestClient(app, raise_server_exceptions=False) as client:
        harness = Api(client=client, url=db_url)

        def no_server_errors(response):
            if response.status_code >= 500 and response.status_code != 503:
                response.read()
                harness.server_errors.append(
                    f"{response.request.method} {response.request.url}: "
                    f"{response.status_code} {response.text}"
                )

        client.event_hooks["response"].append(no_server_errors)
        harness.headers()  # the default super admin exists before any "nothing changed" snapshot
        yield harness
    assert not harness.server_errors, harness.server_errors
