"""The failed-login throttle is the database's (service_state.login_failures): two real service
processes (uvicorn subprocesses) against one database share it, and a restart forgets nothing.

Each test alternates its failed logins between the two processes: the fifth failure for an
account (the twentieth for an address) across both throttles the next try on either, with 429
and ``Retry-After``, even with the right password."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from service import auth
from tests.conftest import TEMPLATE_DB, _clone
from tests.faults.conftest import PASSWORD, ServiceProcess, execute, make_user, scalar

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def throttle_db(pg_server, template_url):
    """One database (release 6.1) for the module: starting the services is the slow part."""
    yield from _clone(pg_server, TEMPLATE_DB)


@pytest.fixture(scope="module")
def services(throttle_db, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("throttle")
    started = [ServiceProcess(throttle_db, log_dir / f"service-{i}.log") for i in (1, 2)]
    try:
        for service in started:
            service.start()
        yield started
    finally:
        for service in started:
            service.stop()


@pytest.fixture
def db_url(throttle_db):
    """The module's database, with no throttle rows left by an earlier test."""
    execute(throttle_db, "DELETE FROM service_state.login_failures")
    return throttle_db


@pytest.fixture
def two_services(db_url, services):
    for service in services:
        if not service.alive():
            service.start()
    return services


def _login(service: ServiceProcess, email: str, password: str) -> httpx.Response:
    return httpx.post(
        service.base + "/config/v1/login", json={"username": email, "password": password}, timeout=10
    )


def _assert_throttled(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= auth.FAILURE_WINDOW_SECONDS
    assert "retry" in r.json()["detail"].lower()


def _attempts(db_url: str, scope: str, key: str) -> int:
    return scalar(
        db_url,
        "SELECT coalesce(sum(cardinality(attempts)), 0) FROM service_state.login_failures "
        "WHERE scope = %s AND key = %s",
        (scope, key),
    )


def test_the_fifth_failure_across_two_processes_throttles_the_sixth(db_url, two_services):
    email = make_user(db_url, "read_only")
    for i in range(auth.FAILURE_LIMIT):
        r = _login(two_services[i % 2], email, "wrong password")
        assert r.status_code == 401 and r.json() == {"detail": "Invalid email or password."}
    for service in two_services:  # either process, even with the right password
        _assert_throttled(_login(service, email, PASSWORD))
        _assert_throttled(_login(service, email.upper(), PASSWORD))
    assert _attempts(db_url, "account", email) == auth.FAILURE_LIMIT
    # another account from the same address is not affected (5 + 4 < 20 attempts)
    other = make_user(db_url, "read_only")
    assert _login(two_services[1], other, PASSWORD).status_code == 200


def test_a_restart_forgets_nothing(db_url, two_services):
    email = make_user(db_url, "read_only")
    for i in range(auth.FAILURE_LIMIT):
        assert _login(two_services[i % 2], email, "wrong password").status_code == 401
    for service in two_services:
        service.stop()
    two_services[0].start()
    _assert_throttled(_login(two_services[0], email, PASSWORD))


def test_the_address_limit_across_two_processes(db_url, two_services):
    # every attempt from 127.0.0.1, each for a new (unknown) email: no account reaches its limit
    ghosts = [f"ghost-{uuid.uuid4().hex[:8]}@example.com" for _ in range(auth.ADDRESS_FAILURE_LIMIT)]
    for i, ghost in enumerate(ghosts):
        r = _login(two_services[i % 2], ghost, "wrong password")
        assert r.status_code == 401, r.text
    email = make_user(db_url, "read_only")
    for service in two_services:
        _assert_throttled(_login(service, email, PASSWORD))
    assert _attempts(db_url, "address", "127.0.0.1") == auth.ADDRESS_FAILURE_LIMIT
    # the refused attempts were taken back from the account they named
    assert _attempts(db_url, "account", email) == 0
    # lifting the throttle is deleting its row
    execute(db_url, "DELETE FROM service_state.login_failures WHERE scope = 'address'")
    assert _login(two_services[0], email, PASSWORD).status_code == 200


def test_racing_processes_get_no_extra_try(db_url, two_services):
    """Both processes at once, 3 times the limit: exactly the limit is tried, the rest is 429."""
    email = make_user(db_url, "read_only")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda i: _login(two_services[i % 2], email, "wrong password").status_code,
                range(3 * auth.FAILURE_LIMIT),
            )
        )
    assert sorted(answers) == sorted([401] * auth.FAILURE_LIMIT + [429] * (2 * auth.FAILURE_LIMIT)), answers
    assert _attempts(db_url, "account", email) == auth.FAILURE_LIMIT


def test_a_success_forgets_the_account_and_keeps_the_address(db_url, two_services):
    email = make_user(db_url, "read_only")
    for i in range(auth.FAILURE_LIMIT - 1):
        assert _login(two_services[i % 2], email, "wrong password").status_code == 401
    assert _login(two_services[1], email, PASSWORD).status_code == 200
    assert _attempts(db_url, "account", email) == 0
    # the address keeps the failures, not the success
    assert _attempts(db_url, "address", "127.0.0.1") == auth.FAILURE_LIMIT - 1
    for i in range(auth.FAILURE_LIMIT):
        assert _login(two_services[i % 2], email, "wrong password").status_code == 401
    _assert_throttled(_login(two_services[0], email, PASSWORD))
