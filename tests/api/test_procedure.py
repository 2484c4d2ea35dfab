"""The source document's procedure, over HTTP: switch to a customer per project by hand."""

MODE = "turbine_api_feature_migrate_projects_to_orgs"


def test_switch_to_many_customers_by_hand(api):
    org = api.org
    projects = f"/config/v1/orgs/{org}/projects/"
    for name in ("tenant-a", "tenant-b", "tenant-c"):
        api.project(name)
    # audit orphans: a healthy cluster answers []
    assert api.get(projects, params={"customer_id__isnull": "True"}).json() == []
    # 1. find the default customer id
    defaults = api.get("/config/v1/customers/", params={"origin": "default"}).json()
    assert len(defaults) == 1 and len(defaults[0]["projects"]) == 3
    default = defaults[0]["uuid"]
    # 2. delete it: its projects become orphans
    assert api.request("DELETE", f"/config/v1/customers/{default}/").status_code == 204
    assert len(api.get(projects, params={"customer_id__isnull": "True"}).json()) == 3
    # 3. set the tunable to true (rule 7 runs the job in the same transaction)
    r = api.request("PUT", f"/config/v1/tunables/{MODE}/", json={"value": True})
    assert r.status_code == 200 and r.json()["value"] is True
    # 4. run the job ("wait for the job to finish")
    r = api.post("/config/v1/customers/reconcile/", json={"force": True})
    assert r.status_code == 200 and r.json()["error"] is None
    # 5. a customer per project, and the audit answers []
    assert api.get(projects, params={"customer_id__isnull": "True"}).json() == []
    customers = {c["name"]: c for c in api.get("/config/v1/customers/").json()}
    for name in ("tenant-a", "tenant-b", "tenant-c"):
        assert customers[name]["origin"] == "project" and len(customers[name]["projects"]) == 1
    assert not [c for c in customers.values() if c["origin"] == "default"]
    deleted = api.get("/config/v1/audit/", params={"object_type": "customers", "object_id": default}).json()
    assert deleted[0]["action"] == "delete"
