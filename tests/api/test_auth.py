"""Login, logout, tokens, the failed-login throttle."""

import hashlib
from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from service import auth, users
from tests.api.conftest import PASSWORD


def test_login_response_shape(api):
    email = api.make_user("operator")
    r = api.client.post("/config/v1/login/", json={"email": email.upper(), "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"uuid", "email", "orgs", "roles", "auth_token"}
    assert body["email"] == email and body["roles"] == ["operator"]
    assert body["orgs"] == [{"uuid": api.org, "name": "hydrolix"}]
    token = body["auth_token"]
    assert (
        token["token_type"] == "Bearer" and token["expires_in"] == 86400 and len(token["access_token"]) >= 40
    )
    stored = api.one(
        "SELECT token_hash, expires - created AS ttl FROM config.tokens WHERE user_id = %s", (body["uuid"],)
    )
    assert bytes(stored["token_hash"]) == hashlib.sha256(token["access_token"].encode()).digest()
    assert stored["ttl"] == timedelta(hours=24)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "nobody@example.com", "password": PASSWORD},
        {"email": "__USER__", "password": "wrong password"},
    ],
)
def test_wrong_credentials_401(api, body):
    email = api.make_user("read_only")
    body = {**body, "email": body["email"].replace("__USER__", email)}
    r = api.client.post("/config/v1/login", json=body)
    assert r.status_code == 401 and r.json() == {"detail": "Invalid email or password."}


def test_inactive_user_cannot_log_in_and_its_tokens_stop(api):
    email = api.make_user("read_only")
    token = api.login(email)
    api.sql("UPDATE config.users SET is_active = false WHERE email = %s", (email,))
    r = api.client.post("/config/v1/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 401 and "disabled" in r.json()["detail"]
    r = api.client.get("/config/v1/orgs/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "disabled" in r.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"email": "a@b"}',
        b'{"email": 1, "password": "x"}',
        b'{"email": "a@b", "password": "x", "extra": 1}',
        b"",
    ],
)
def test_login_bad_input_400(api, body):
    r = api.client.post("/config/v1/login", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert all(isinstance(v, list) and v for v in r.json().values())


def test_throttle_after_five_failures(api):
    email = api.make_user("read_only")
    for _ in range(auth.FAILURE_LIMIT):
        assert (
            api.client.post("/config/v1/login", json={"email": email, "password": "bad"}).status_code == 401
        )
    r = api.client.post("/config/v1/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and "retry" in r.json()["detail"].lower()
    # other emails are not affected
    assert (
        api.client.post(
            "/config/v1/login", json={"email": api.make_user("read_only"), "password": PASSWORD}
        ).status_code
        == 200
    )


def _attempts(api, scope: str, key: str) -> list:
    row = api.one(
        "SELECT attempts FROM service_state.login_failures WHERE scope = %s AND key = %s", (scope, key)
    )
    return row["attempts"] if row else []


def _fail(api, email: str) -> None:
    r = api.client.post("/config/v1/login", json={"email": email, "password": "bad"})
    assert r.status_code == 401, r.text


def test_throttle_window_and_retry_after(api):
    email = api.make_user("read_only")
    for _ in range(auth.FAILURE_LIMIT):
        _fail(api, email.upper())  # the account is the lower-cased email
    assert len(_attempts(api, "account", email)) == auth.FAILURE_LIMIT
    # the oldest attempt 50 s old: the wait is what is left of its window
    api.sql(
        "UPDATE service_state.login_failures SET attempts[1] = now() - interval '50 seconds' "
        "WHERE scope = 'account' AND key = %s",
        (email,),
    )
    r = api.client.post("/config/v1/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 429 and 9 <= int(r.headers["Retry-After"]) <= 11, r.headers
    # out of the window: counted no more
    api.sql(
        "UPDATE service_state.login_failures SET attempts[1] = now() - interval '61 seconds' "
        "WHERE scope = 'account' AND key = %s",
        (email,),
    )
    assert api.client.post("/config/v1/login", json={"email": email, "password": PASSWORD}).status_code == 200
    assert _attempts(api, "account", email) == []


def test_expired_rows_are_pruned_a_few_at_a_time(api):
    api.sql(
        "INSERT INTO service_state.login_failures (scope, key, attempts, expires) "
        "SELECT 'account', 'old-' || i, ARRAY[now() - interval '2 minutes'], now() - interval '1 minute' "
        "FROM generate_series(1, 15) i"
    )
    api.sql(
        "INSERT INTO service_state.login_failures (scope, key, attempts, expires) "
        "VALUES ('account', 'recent@example.com', ARRAY[now()], now() + interval '1 minute')"
    )
    old = "SELECT count(*) AS n FROM service_state.login_failures WHERE key LIKE 'old-%%'"
    _fail(api, "someone@example.com")
    assert api.one(old)["n"] == 5
    _fail(api, "someone@example.com")
    assert api.one(old)["n"] == 0
    assert len(_attempts(api, "account", "recent@example.com")) == 1  # not expired: kept


def test_a_disabled_accounts_right_password_is_no_failure(api):
    email = api.make_user("read_only")
    api.sql("UPDATE config.users SET is_active = false WHERE email = %s", (email,))
    for _ in range(auth.FAILURE_LIMIT + 1):
        r = api.client.post("/config/v1/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 401 and "disabled" in r.json()["detail"]
    assert _attempts(api, "account", email) == [] and _attempts(api, "address", "testclient") == []


def test_the_address_limit(api):
    for i in range(auth.ADDRESS_FAILURE_LIMIT):
        _fail(api, f"ghost-{i}@example.com")
    email = api.make_user("read_only")
    r = api.client.post("/config/v1/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= auth.FAILURE_WINDOW_SECONDS
    assert _attempts(api, "account", email) == []  # refused by the address: taken back
    assert len(_attempts(api, "address", "testclient")) == auth.ADDRESS_FAILURE_LIMIT


def test_logout_revokes(api):
    token = api.login(api.make_user("read_only"))
    headers = {"Authorization": f"Bearer {token}"}
    r = api.client.post("/config/v1/logout/", headers=headers)
    assert r.status_code == 204 and r.content == b""
    r = api.client.get("/config/v1/orgs", headers=headers)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert api.client.post("/config/v1/logout", headers=headers).status_code == 401


def test_expired_token(api):
    token = api.login(api.make_user("super_admin"))
    api.sql("UPDATE config.tokens SET expires = now() - interval '1 second'")
    r = api.client.get("/config/v1/orgs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Token abc", "Bearer nonexistenttoken"],
)
def test_missing_or_malformed_token(api, header):
    headers = {} if header is None else {"Authorization": header}
    r = api.client.get("/config/v1/orgs/", headers=headers)
    assert r.status_code == 401 and set(r.json()) == {"detail"}


@pytest.mark.parametrize("path", ["/config/v1/login", "/config/v1/login/"])
@pytest.mark.parametrize("field", ["username", "email"])
def test_login_with_username_or_its_alias_email(api, path, field):
    email = api.make_user("operator")
    r = api.client.post(path, json={field: email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == email
    both = {"username": email.upper(), "email": email, "password": PASSWORD}
    assert api.client.post(path, json=both).status_code == 200


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"username": "a@example.com", "email": "b@example.com", "password": "x"}, {"username", "email"}),
        ({"password": "x"}, {"username"}),
        ({"username": "a@example.com", "password": "x", "extra": 1}, {"extra"}),
    ],
)
def test_login_ambiguous_missing_or_unknown_fields_400(api, body, fields):
    before = api.counts()
    r = api.client.post("/config/v1/login", json=body)
    assert r.status_code == 400 and set(r.json()) == fields, r.text
    assert api.counts() == before


def test_throttle_counts_username_and_email_alike(api):
    email = api.make_user("read_only")
    for i in range(auth.FAILURE_LIMIT):
        body = {("username" if i % 2 else "email"): email, "password": "bad"}
        r = api.client.post("/config/v1/login", json=body)
        assert r.status_code == 401 and r.json() == {"detail": "Invalid email or password."}
    r = api.client.post("/config/v1/login", json={"username": email, "password": PASSWORD})
    assert r.status_code == 429 and "Retry-After" in r.headers


@pytest.mark.parametrize("path", ["/config/v1/users/current", "/config/v1/users/current/"])
def test_current_user(api, path):
    email = api.make_user("read_only")
    login = api.client.post("/config/v1/login", json={"username": email, "password": PASSWORD}).json()
    token = login["auth_token"]["access_token"]
    r = api.client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json() == {k: login[k] for k in ("uuid", "email", "orgs", "roles")}
    assert r.json()["roles"] == ["read_only"] and r.json()["orgs"][0]["uuid"] == api.org
    assert api.client.get(path).status_code == 401
    api.client.post("/config/v1/logout", headers={"Authorization": f"Bearer {token}"})
    r = api.client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_a_hash_made_with_other_argon2_parameters_is_replaced_at_login(api):
    """The service checks the password through the database (service_state.log_in) and, when
    argon2's parameters changed since the hash was made, the same call stores a fresh hash."""
    email = api.make_user("read_only")
    old = PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1).hash(PASSWORD)
    api.sql("UPDATE config.users SET password_hash = %s WHERE email = %s", (old, email))
    r = api.client.post("/config/v1/login", json={"email": email, "password": "wrong password"})
    assert r.status_code == 401  # a wrong password changes nothing
    assert (
        api.one("SELECT password_hash FROM config.users WHERE email = %s", (email,))["password_hash"] == old
    )
    token = api.login(email)
    fresh = api.one("SELECT password_hash FROM config.users WHERE email = %s", (email,))["password_hash"]
    assert fresh != old and not users.needs_rehash(fresh) and users.verify_password(fresh, PASSWORD)
    assert (
        api.client.get("/config/v1/users/current", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    api.login(email)  # and the fresh hash logs in
