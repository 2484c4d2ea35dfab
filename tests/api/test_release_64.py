"""The API at release 6.4: customer required on create, associations final, customers holding
projects kept; the pre-upgrade check; health. Every refusal changes nothing."""

from __future__ import annotations

import pytest

from service import migrations

CUSTOMERS = "/config/v1/customers"
CHECK = "/config/v1/upgrade_blockers"


@pytest.fixture
def db_url(db_url_64):
    """This module's app runs on a clone of the 6.4 template."""
    return db_url_64


def projects(api) -> str:
    return f"/config/v1/orgs/{api.org}/projects"


def customer_field(api) -> dict:
    r = api.request("OPTIONS", projects(api) + "/")
    assert r.status_code == 200, r.text
    return r.json()["actions"]["POST"]["customer"]


def test_options_say_customer_is_required_and_writable(api):
    assert customer_field(api) | {"help_text": None} == {
        "type": "uuid",
        "required": True,
        "read_only": False,
        "label": "Customer",
        "help_text": None,
    }
    migrations.migrate(api.url, "6.1")  # the API follows the database's release, no restart
    assert customer_field(api)["required"] is False


def test_create_without_customer_is_400_naming_customer(api):
    before = api.counts()
    for body in ({"name": "nocust"}, {"name": "nocust", "customer": None}):
        r = api.post(projects(api) + "/", json=body)
        assert (r.status_code, r.json()) == (400, {"customer": ["This field is required."]})
    assert api.counts() == before
    c = api.customer("acme")
    made = api.project("withcust", customer=c["uuid"])
    assert made["customer"] == c["uuid"]


def test_changing_a_projects_customer_is_400_naming_customer(api):
    a, b = api.customer("a-corp"), api.customer("b-corp")
    p = api.project("moving", customer=a["uuid"])
    path = f"{projects(api)}/{p['uuid']}/"
    before = api.counts()
    for method, body in (
        ("PATCH", {"customer": b["uuid"]}),
        ("PATCH", {"customer": None}),
        ("PUT", {"name": "moving", "customer": b["uuid"]}),
    ):
        r = api.request(method, path, json=body)
        assert r.status_code == 400 and list(r.json()) == ["customer"], r.text
        assert "cannot be changed" in r.json()["customer"][0]
    assert api.counts() == before
    r = api.request("PATCH", path, json={"customer": a["uuid"], "description": "same customer is fine"})
    assert r.status_code == 200 and r.json()["customer"] == a["uuid"]
    r = api.request("PUT", path, json={"name": "moved", "customer": a["uuid"]})
    assert r.status_code == 200 and r.json()["name"] == "moved"


def test_add_and_remove_projects_are_refused(api):
    a, b = api.customer("a-corp"), api.customer("b-corp")
    p = api.project("kept", customer=a["uuid"])
    before = api.counts()
    for customer, verb in ((b, "add_projects"), (a, "remove_projects")):
        r = api.post(f"{CUSTOMERS}/{customer['uuid']}/{verb}/", json={"projects": [{"uuid": p["uuid"]}]})
        assert r.status_code == 400, r.text
        assert "Associations are final from release 6.4" in r.json()["projects"][0]
    assert api.counts() == before


def test_deleting_a_customer_that_holds_projects_is_409_saying_how_many(api):
    c = api.customer("holder")
    api.project("one", customer=c["uuid"])
    api.project("two", customer=c["uuid"])
    before = api.counts()
    r = api.request("DELETE", f"{CUSTOMERS}/{c['uuid']}/")
    assert r.status_code == 409
    assert "holds 2 project(s)" in r.json()["detail"]
    assert api.counts() == before
    empty = api.customer("empty")
    assert api.request("DELETE", f"{CUSTOMERS}/{empty['uuid']}").status_code == 204


def test_the_job_and_the_mode_switch_at_64(api):
    before = api.counts()
    r = api.post(f"{CUSTOMERS}/reconcile/", json={"force": True})
    assert r.status_code == 200 and r.json()["nothing_to_reconcile"] is True
    assert "Nothing to reconcile" in r.json()["detail"]
    r = api.post(f"{CUSTOMERS}/switch_mode/", json={"per_project": True})
    assert r.status_code == 400 and "final" in r.json()["non_field_errors"][0]
    assert api.counts() == before


def test_health_shows_64(api):
    r = api.get("/health", role=None)
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["release"], body["latest_release"]) == ("ok", "6.4", "6.4")
    assert body["scheduler"] == "none"
    # the job is unscheduled at 6.4: no age of its last run to alert on
    assert "hierarchy_seconds_since_last_job_run NaN" in api.client.get("/metrics").text


def test_pre_upgrade_check_endpoint(api):
    assert api.get(CHECK).json() == {"release": "6.4", "target": "6.4", "blocked": False, "blockers": []}
    migrations.migrate(api.url, "6.1")
    api.sql("UPDATE config.projects SET customer_id = NULL WHERE name = 'sample_project'")
    r = api.get(f"{CHECK}/?release=6.4")
    assert r.status_code == 200
    body = r.json()
    assert (body["release"], body["target"], body["blocked"]) == ("6.1", "6.4", True)
    [blocker] = body["blockers"]
    assert (blocker["project_name"], blocker["org_name"], blocker["blocker"]) == (
        "sample_project",
        "hydrolix",
        "orphan",
    )
    assert "reconcile --force" in blocker["remedy"] and blocker["since"]
    assert api.get(f"{CHECK}?release=6.3").json()["blocked"] is False
    r = api.get(f"{CHECK}?release=7.0")
    assert r.status_code == 400 and "unknown release '7.0'" in r.json()["release"][0]
    assert api.get(CHECK, role="operator").status_code == 403
    assert api.get(CHECK, role=None).status_code == 401
