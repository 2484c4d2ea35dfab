"""A 5 s database outage under load: 503 with a JSON body while it lasts, 200 again after.

The service runs in a subprocess (uvicorn, never restarted) against a dedicated cluster
(tests/faults/conftest.py). Four client threads hit authenticated endpoints back to back (three
reads, one creating projects) while the server is stopped (``pg_ctl stop -m fast``), kept down
5 s, and started again on the same port.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from service import migrations
from tests.faults.conftest import ServiceProcess, record, scalar, wait_until

OUTAGE_SECONDS = 5.0
RESPONSE_BOUND = 3.0  # every answer, before, during and after the outage
CLIENT_TIMEOUT = 10.0  # a request that hangs shows up as a client timeout (and fails the test)

pytestmark = pytest.mark.slow


class Client(threading.Thread):
    def __init__(self, base: str, token: str, method: str, path: str, json_body=None) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.method, self.path, self.json_body = base, token, method, path, json_body
        self.answers: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(
            base_url=self.base, timeout=CLIENT_TIMEOUT, headers={"Authorization": f"Bearer {self.token}"}
        ) as client:
            while not self.stop.is_set():
                body = self.json_body() if callable(self.json_body) else self.json_body
                sent = time.monotonic()
                answer = {"sent": sent, "request": body}
                try:
                    r = client.request(self.method, self.path, json=body)
                    answer.update(status=r.status_code, content_type=r.headers.get("content-type", ""))
                    try:
                        answer["body"] = r.json()
                    except ValueError:
                        answer["body"] = r.text
                except httpx.HTTPError as exc:
                    answer.update(status=type(exc).__name__, body=str(exc), content_type="")
                answer["done"] = time.monotonic()
                self.answers.append(answer)
                self.stop.wait(0.02)

    def first_success_after(self, moment: float) -> float | None:
        for a in self.answers:
            if a["sent"] >= moment and a["status"] in (200, 201):
                return a["done"]
        return None


def test_database_stopped_for_5s_under_load(fault_cluster, service_log, record_property):
    name = "5 s outage"
    url = fault_cluster.create_database("outage")
    service = ServiceProcess(url, service_log)
    clients: list[Client] = []
    stopped = False
    try:
        migrations.migrate(url, "6.1")  # projects are created without a customer (rule 5)
        service.start()
        token = service.login(url)
        org = scalar(url, "SELECT uuid::text FROM config.orgs ORDER BY created LIMIT 1")
        projects = f"/config/v1/orgs/{org}/projects/"
        clients = [
            Client(service.base, token, "GET", "/config/v1/orgs/"),
            Client(service.base, token, "GET", "/config/v1/customers/"),
            Client(service.base, token, "GET", projects + "?customer_id__isnull=False"),
            Client(
                service.base,
                token,
                "POST",
                projects,
                json_body=lambda: {"name": f"outage-{uuid.uuid4().hex[:12]}"},
            ),
        ]
        for c in clients:
            c.start()
        wait_until(lambda: all(c.first_success_after(0) for c in clients), 15, "every client to succeed once")
        time.sleep(0.5)

        down_started = time.monotonic()
        stop_seconds = fault_cluster.stop_server()
        stopped = True
        down_from = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        up_from = time.monotonic()
        start_seconds = fault_cluster.start_server()
        stopped = False
        ready = time.monotonic()
        firsts = [
            wait_until(lambda c=c: c.first_success_after(ready), 15, f"{c.method} {c.path} to succeed again")
            for c in clients
        ]
        time.sleep(0.3)
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(timeout=CLIENT_TIMEOUT + 5)
            assert not c.is_alive()

        answers = [a for c in clients for a in c.answers]
        statuses = {a["status"] for a in answers}
        record(record_property, name, "requests", len(answers))
        record(record_property, name, "pg_ctl stop / start (s)", f"{stop_seconds:.2f} / {start_seconds:.2f}")
        assert statuses <= {200, 201, 503}, f"only 200, 201 and 503: never a 500 or a timeout: {statuses}"

        slowest = max(a["done"] - a["sent"] for a in answers)
        record(record_property, name, "slowest response (s)", slowest)
        assert slowest < RESPONSE_BOUND

        during = [a for a in answers if a["sent"] >= down_from and a["done"] <= up_from]
        record(record_property, name, "requests during the outage", len(during))
        for c in clients:
            mine = [a for a in c.answers if a["sent"] >= down_from and a["done"] <= up_from]
            assert len(mine) >= 10, f"{c.method} {c.path}: the client kept getting answers ({len(mine)})"
        assert {a["status"] for a in during} == {503}
        assert all(a["body"] == {"detail": "database unavailable"} for a in during), during[:3]
        assert all(a["content_type"].startswith("application/json") for a in during)
        slowest_down = max(a["done"] - a["sent"] for a in during)
        record(record_property, name, "slowest response during the outage (s)", slowest_down)
        transition = [a for a in answers if down_started <= a["sent"] < down_from]
        record(
            record_property,
            name,
            "statuses while pg_ctl stop ran",
            sorted({str(a["status"]) for a in transition}),
        )

        recovery = max(firsts) - ready
        record(record_property, name, "server ready -> every client succeeds again (s)", recovery)
        assert recovery < 2.0
        after = [a for a in answers if a["sent"] >= max(firsts)]
        assert after and {a["status"] for a in after} <= {200, 201}, "no 503 once recovered"

        # nothing half-done: exactly the projects whose creation answered 201 exist
        posts = clients[3].answers
        created = {a["request"]["name"] for a in posts if a["status"] == 201}
        assert created and any(a["status"] == 503 for a in posts)
        stored = {
            r
            for r in scalar(
                url, "SELECT coalesce(array_agg(name), '{}') FROM config.projects WHERE name LIKE 'outage-%'"
            )
        }
        assert stored == created
        assert scalar(url, "SELECT count(*) FROM config.projects WHERE customer_id IS NULL") == 0
        assert service.alive(), "the service was never restarted"
    finally:
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(timeout=CLIENT_TIMEOUT + 5)
        if stopped:
            fault_cluster.start_server()
        service.stop()
        fault_cluster.drop_database(url)
