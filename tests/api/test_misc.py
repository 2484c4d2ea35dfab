"""Audit log, users, health, metrics, the scheduler, the query loader."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service import queries, scheduler
from service.db import Database


def test_audit_filters(api):
    p = api.project("audited")
    api.request("PATCH", f"/config/v1/orgs/{api.org}/projects/{p['uuid']}", json={"description": "x"})
    rows = api.get(f"/config/v1/audit/?object_type=projects&object_id={p['uuid']}").json()
    assert [r["action"] for r in rows] == ["update", "insert"]
    assert rows[0]["changed"] == ["description"] and rows[0]["after"] == {"description": "x"}
    actor = rows[0]["actor"]
    assert all(r["actor"] == actor for r in api.get(f"/config/v1/audit?actor={actor}").json())
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat()
    assert api.get("/config/v1/audit", params={"since": later}).json() == []
    assert len(api.get("/config/v1/audit", params={"until": later, "object_id": p["uuid"]}).json()) == 2
    page = api.get("/config/v1/audit?page_size=1").json()
    assert page["count"] >= 2 and len(page["results"]) == 1
    for bad in ("since=yesterday", "object_id=nope", "object_type=bogus", "until=2024-13-01"):
        r = api.get(f"/config/v1/audit?{bad}")
        assert r.status_code == 400 and list(r.json()) == [bad.split("=")[0]], r.text


def test_users(api):
    r = api.post(
        "/config/v1/users/", json={"email": "new@example.com", "password": "s3cret-pass", "role": "operator"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["org"] == api.org and "password" not in r.json() and "password_hash" not in r.json()
    assert (
        api.client.post(
            "/config/v1/login", json={"email": "new@example.com", "password": "s3cret-pass"}
        ).status_code
        == 200
    )
    emails = [u["email"] for u in api.get("/config/v1/users").json()]
    assert "new@example.com" in emails
    before = api.counts()
    for body, field in [
        ({"email": "NEW@example.com", "password": "another-pass"}, "email"),
        ({"email": "bad", "password": "another-pass"}, "email"),
        ({"email": "x@y.z", "password": "short"}, "password"),
        ({"email": "x@y.z", "password": "long-enough", "role": "king"}, "role"),
        ({"email": "x@y.z", "password": "long-enough", "org": str(uuid.uuid4())}, "org"),
        ({"email": "x@y.z", "password": "long-enough", "is_active": False}, "is_active"),
    ]:
        r = api.post("/config/v1/users", json=body)
        assert r.status_code == 400 and field in r.json(), r.text
    assert api.counts() == before


def test_health_and_metrics(api):
    r = api.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["release"] == "6.1" and body["database"] == "ok"
    assert body["scheduler"] in ("pg_cron", "off") and body["last_run"]["source"] == "upgrade"
    api.get("/config/v1/orgs")
    api.sql("UPDATE config.projects SET customer_id = NULL WHERE name = 'hydro'")
    text = api.client.get("/metrics").text
    assert "hierarchy_orphaned_projects 1.0" in text
    assert "hierarchy_seconds_since_last_job_run" in text
    assert 'path="/config/v1/orgs"' in text and "hierarchy_request_duration_seconds" in text


def test_health_503_when_schema_missing(api, empty_db_url):
    from litestar.testing import TestClient

    from service.app import create_app

    with TestClient(create_app(empty_db_url, run_scheduler=False)) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unavailable" and "schema" in r.json()["detail"]


def test_503_when_database_unreachable():
    from litestar.testing import TestClient

    from service.app import create_app

    with TestClient(create_app("postgresql://nobody@127.0.0.1:1/none", run_scheduler=False)) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["database"] == "unreachable"
        r = client.get("/config/v1/orgs", headers={"Authorization": "Bearer x"})
        assert r.status_code == 503 and r.json() == {"detail": "database unavailable"}


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_deadlock_or_serialization_failure_is_retried_then_503_with_retry_after(db_url, sqlstate):
    """What a request meets if a statement ever gets a deadlock or a serialization failure (the
    rules leave none: tests/rules/test_two_sessions.py): the whole transaction runs again, its
    failed attempts rolled back, and after three attempts the answer is 503 with Retry-After,
    never 500. The server raises the SQLSTATE, as it would a real one."""
    import psycopg

    from service.db import transaction
    from service.errors import ServiceUnavailable

    conflict = f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{sqlstate}'; END $$"

    async def main(fail_times: int):
        database = Database(db_url)
        await database.open()
        attempts = []

        async def work(conn):
            attempts.append(f"retry-{sqlstate}-{fail_times}-{len(attempts) + 1}")
            await conn.execute("INSERT INTO config.orgs (name) VALUES (%s)", (attempts[-1],))
            if len(attempts) <= fail_times:
                await conn.execute(conflict)
            return attempts[-1]

        try:
            return await transaction(database, work)
        finally:
            await database.close()

    assert asyncio.run(main(2)) == f"retry-{sqlstate}-2-3"  # the third attempt
    with pytest.raises(ServiceUnavailable) as busy:
        asyncio.run(main(3))
    assert busy.value.status_code == 503 and busy.value.headers == {"Retry-After": "1"}
    assert "retry" in busy.value.detail
    with psycopg.connect(db_url) as conn:
        kept = conn.execute("SELECT array_agg(name) FROM config.orgs WHERE name LIKE 'retry-%'").fetchone()[0]
    assert kept == [f"retry-{sqlstate}-2-3"]  # every failed attempt rolled back


def test_scheduler_runs_job_and_stops(db_url):
    async def main():
        database = Database(db_url)
        await database.open()
        job = scheduler.Scheduler(database, every=0.05)
        job.start()
        await asyncio.sleep(0.5)
        await job.stop()
        await database.close()

    asyncio.run(main())
    import psycopg

    with psycopg.connect(db_url) as conn:
        n = conn.execute("SELECT count(*) FROM config.job_runs WHERE source = 'service'").fetchone()[0]
    assert n >= 2


def test_scheduler_survives_database_errors():
    async def main():
        database = Database("postgresql://nobody@127.0.0.1:1/none")
        await database.open()
        job = scheduler.Scheduler(database, every=0.05)
        job.start()
        await asyncio.sleep(0.4)
        assert job._task is not None and not job._task.done()
        await job.stop()
        await database.close()

    asyncio.run(main())


def test_query_loader(tmp_path):
    assert queries.query("projects.list").startswith("SELECT")
    with pytest.raises(queries.QueryError):
        queries.query("projects.nope")
    (tmp_path / "x.sql").write_text("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    with pytest.raises(queries.QueryError, match="duplicate"):
        queries.load(tmp_path)
    (tmp_path / "x.sql").write_text("SELECT 0;\n-- name: a\nSELECT 1;\n")
    with pytest.raises(queries.QueryError, match="before"):
        queries.load(tmp_path)
    (tmp_path / "x.sql").write_text("-- name: a\n-- only a comment\n")
    with pytest.raises(queries.QueryError, match="no statement"):
        queries.load(tmp_path)
