"""The streamed plain customers list over real HTTP (uvicorn in a thread): a failure after the
first bytes aborts the response, so a client never takes a truncated list for a whole one."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import psycopg
import pytest
import uvicorn

from service import request as service_request
from service import users
from service.app import create_app
from service.queries import query
from service.routes import customers
from tests.api.conftest import PASSWORD
from tests.conftest import runtime_url

# Three rows, then a division by zero: the database fails in the middle of the statement,
# after the first rows were sent (it takes the list's parameters and ignores them).
FAILS_AFTER_TWO_ROWS = (
    "SELECT CASE WHEN g < 3 THEN json_build_object('n', g)::text ELSE (1 / (g - g))::text END "
    "FROM generate_series(1, 5) g WHERE %(all_orgs)s::boolean IS NOT NULL"
)


@pytest.fixture
def server(db_url, monkeypatch):
    """uvicorn serving the app on a free loopback port; yields (base url, token)."""
    monkeypatch.setenv("HIERARCHY_SCHEDULER", "off")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with psycopg.connect(db_url, autocommit=True) as conn:
        org = conn.execute("SELECT uuid FROM config.orgs LIMIT 1").fetchone()[0]
        users.create_user(conn, "streamer@example.com", PASSWORD, org, "super_admin")
    config = uvicorn.Config(
        create_app(runtime_url(db_url), run_scheduler=False),
        host="127.0.0.1",
        port=port,
        log_level="critical",
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        r = httpx.post(
            f"{base}/config/v1/login", json={"username": "streamer@example.com", "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        yield base, r.json()["auth_token"]["access_token"]
    finally:
        srv.should_exit = True
        thread.join(30)


def _get(
    base: str, token: str | None, path: str = "/config/v1/customers/"
) -> tuple[int, bytes, Exception | None]:
    """(status, the bytes received, the error that ended the body, if any)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    received, error = b"", None
    with httpx.stream("GET", base + path, headers=headers, timeout=30) as r:
        try:
            for chunk in r.iter_raw():
                received += chunk
        except httpx.HTTPError as exc:
            error = exc
        return r.status_code, received, error


def test_the_streamed_list_over_http(server):
    base, token = server
    status, body, error = _get(base, token)
    assert (status, error) == (200, None)
    listed = json.loads(body)
    assert listed and all(
        set(c) == {"uuid", "name", "description", "origin", "projects", "created", "modified"} for c in listed
    )
    status, body, error = _get(base, None)
    assert status == 401 and json.loads(body)["detail"] and error is None


def test_a_failure_mid_stream_aborts_the_response(server, monkeypatch):
    base, token = server
    monkeypatch.setattr(service_request, "STREAM_ROWS", 1)  # each row is sent as it comes
    monkeypatch.setitem(customers.SQL, "all_json", FAILS_AFTER_TWO_ROWS)
    status, body, error = _get(base, token)
    assert status == 200  # the response had begun
    assert body.startswith(b'[{"n" : 1}')  # the rows before the failure were sent
    assert isinstance(error, httpx.RemoteProtocolError), error  # the chunked body never ended
    with pytest.raises(ValueError):
        json.loads(body)
    # the connection went back to the pool in a usable state: the next list is whole
    monkeypatch.undo()
    status, body, error = _get(base, token)
    assert (status, error) == (200, None) and json.loads(body)


def test_a_failure_before_the_first_row_is_a_clean_answer(server, monkeypatch):
    base, token = server
    monkeypatch.setitem(customers.SQL, "all_json", "SELECT (1 / (%(all_orgs)s::integer - 1))::text")
    status, body, error = _get(base, token)
    assert error is None and status == 400, body  # a data exception: 400 with a JSON body
    assert json.loads(body) == {"non_field_errors": ["division by zero"]}


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Paris"])
def test_times_written_by_sql_are_what_msgspec_writes(db_url, zone):
    """The customers lists write created/modified themselves (config.api_time): the same text
    msgspec writes for the datetime psycopg reads, in any session time zone, with and without
    microseconds."""
    import msgspec

    assert "config.api_time(c.created)" in query("customers.all_json")
    assert "config.customers_page(" in query("customers.list")
    with psycopg.connect(db_url, autocommit=True) as conn:
        source = "SELECT prosrc FROM pg_proc WHERE oid = 'config.customers_page'::regproc"
        page = conn.execute(source).fetchone()[0]
        assert page.count("config.api_time(c.created)") == 2  # both of its statements
        conn.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
        rows = conn.execute(
            "SELECT c.created, config.api_time(c.created) FROM unnest(%s::timestamptz[]) c (created)",
            (["2026-12-01 23:55:07+00", "2026-06-30 12:00:00.120000+00", "1999-01-01 00:00:00.000001+00"],),
        ).fetchall()
    for value, written in rows:
        assert f'"{written}"' == msgspec.json.encode(value).decode(), (zone, value)
