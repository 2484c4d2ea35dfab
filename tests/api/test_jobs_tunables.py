"""The job over HTTP, mode switches, tunables."""

import pytest

T = "/config/v1/tunables"
MODE = "turbine_api_feature_migrate_projects_to_orgs"


def test_reconcile_runs_and_lists(api):
    p = api.project("orphan-me")
    api.sql("UPDATE config.projects SET customer_id = NULL WHERE uuid = %s", (p["uuid"],))
    r = api.post("/config/v1/customers/reconcile/", json={"dry_run": True, "force": True})
    assert r.status_code == 200, r.text
    dry = r.json()
    assert dry["dry_run"] is True and dry["planned_total"] == 1 and dry["source"] == "api"
    assert (
        api.one("SELECT customer_id FROM config.projects WHERE uuid = %s", (p["uuid"],))["customer_id"]
        is None
    )
    r = api.post("/config/v1/customers/reconcile", json={"force": True})
    assert r.status_code == 200 and r.json()["projects_associated"] == 1
    r = api.post("/config/v1/customers/reconcile")  # no body: defaults
    assert r.status_code == 200 and r.json()["projects_associated"] == 0
    runs = api.get("/config/v1/customers/reconcile/").json()
    assert [run["source"] for run in runs[:3]] == ["api", "api", "api"] and runs[0]["id"] > runs[1]["id"]
    page = api.get("/config/v1/customers/reconcile?page_size=2").json()
    assert page["count"] == len(runs) and len(page["results"]) == 2


# booleans accept DRF's lax spellings ("true", 1); anything else is 400
@pytest.mark.parametrize(
    "body", [{"dry_run": "maybe"}, {"force": 2}, {"force": None}, {"other": True}, [], "x"]
)
def test_reconcile_bad_input(api, body):
    before = api.one("SELECT count(*) AS n FROM config.job_runs")
    r = api.post("/config/v1/customers/reconcile", json=body)
    assert r.status_code == 400, r.text
    assert api.one("SELECT count(*) AS n FROM config.job_runs") == before


def test_switch_mode(api):
    api.project("one"), api.project("two")
    default = api.one("SELECT name FROM config.customers WHERE origin = 'default'")["name"]
    before = api.counts()
    r = api.post("/config/v1/customers/switch_mode/", json={"per_project": True, "dry_run": True})
    assert r.status_code == 200 and r.json()["dry_run"] is True
    plan = r.json()
    assert api.counts() == before
    assert plan["moves_total"] == 2 and plan["dissolved_total"] == 1
    assert [(m["project_name"], m["from_customer_name"], m["to"]) for m in plan["moves"]] == [
        ("one", default, "new customer one"),
        ("two", default, "new customer two"),
    ]
    assert [(d["name"], d["origin"], d["projects"]) for d in plan["dissolved"]] == [(default, "default", 2)]
    assert api.get(f"{T}/{MODE}").json()["value"] is False
    r = api.post("/config/v1/customers/switch_mode", json={"per_project": True})
    assert r.status_code == 200 and r.json()["per_project"] is True
    assert api.get(f"{T}/{MODE}/").json()["value"] is True
    origins = {c["name"]: c["origin"] for c in api.get("/config/v1/customers").json()}
    assert origins["one"] == "project" and origins["two"] == "project"
    for body in ({}, {"per_project": None}, {"per_project": "sure"}, {"per_project": True, "x": 1}):
        assert api.post("/config/v1/customers/switch_mode", json=body).status_code == 400


def test_tunables(api):
    listed = api.get(T).json()
    assert {t["name"] for t in listed} == {MODE, "customer_orphan_grace_seconds"}
    r = api.request("PUT", f"{T}/customer_orphan_grace_seconds/", json={"value": 30})
    assert (
        r.status_code == 200 and r.json()["value"] == 30 and r.json()["modified_by"].startswith("super_admin")
    )
    assert api.get(f"{T}/nope").status_code == 404
    assert api.request("PUT", f"{T}/nope", json={"value": 1}).status_code == 404


@pytest.mark.parametrize(
    "name, body",
    [
        (MODE, {"value": "true"}),
        (MODE, {"value": 1}),
        (MODE, {"value": None}),
        (MODE, {}),
        ("customer_orphan_grace_seconds", {"value": -1}),
        ("customer_orphan_grace_seconds", {"value": 1.5}),
        ("customer_orphan_grace_seconds", {"value": True}),
        (MODE, {"value": True, "other": 1}),
        ("customer_orphan_grace_seconds", {"value": 10**30}),
        ("customer_orphan_grace_seconds", {"value": 86401}),
    ],
)
def test_tunable_bad_values(api, name, body):
    before = api.counts()
    r = api.request("PUT", f"{T}/{name}", json=body)
    assert r.status_code == 400, r.text
    assert "value" in r.json() or "other" in r.json()
    assert api.counts() == before


def test_documented_tunable_types_match_the_database(api):
    """The document's per-tunable value types (service.routes.tunables.VALUE_TYPES) say what
    config.tunables enforces; a bad type is 400 and changes nothing."""
    from service.routes.tunables import VALUE_TYPES

    spec = api.client.get("/schema/openapi.json").json()
    rows = {r["name"]: r for r in api.sql("SELECT name, value_type, minimum, maximum FROM config.tunables")}
    assert set(VALUE_TYPES) == set(rows)
    for name, row in rows.items():
        ref = spec["paths"][f"/config/v1/tunables/{name}"]["put"]["requestBody"]["content"][
            "application/json"
        ]
        value = spec["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]["value"]
        assert value["type"] == row["value_type"], name
        assert (value.get("minimum"), value.get("maximum")) == (row["minimum"], row["maximum"]), name
    before = api.counts()
    for name, bad in ((MODE, 120), (MODE, 0), ("customer_orphan_grace_seconds", "120")):
        r = api.request("PUT", f"{T}/{name}", json={"value": bad})
        assert r.status_code == 400 and list(r.json()) == ["value"], (name, bad, r.text)
    assert api.counts() == before
    r = api.request("PUT", f"{T}/customer_orphan_grace_seconds/", json={"value": 60.0})
    assert r.status_code == 200 and r.json()["value"] == 60


@pytest.mark.parametrize("path", ["/config/v1/customers/switch_mode/", "/config/v1/customers/reconcile"])
def test_job_booleans_must_be_booleans(api, path):
    before = api.counts()
    r = api.post(path, json={"per_project": True, "dry_run": 0} if "switch" in path else {"dry_run": 0})
    assert r.status_code == 400 and list(r.json()) == ["dry_run"], r.text
    assert api.counts() == before
