"""A stateful property test over the API (hypothesis RuleBasedStateMachine).

Random sequences of project and customer creates, deletes and renames, associations
(add_projects, remove_projects, PATCH project customer), mode switches, flips of the mode
tunable and forced job runs, as a super admin. After every step the database is checked
directly (psycopg), not through the API:

* each project is listed under at most one customer, and every customer's ``projects``
  (API) agrees with ``projects.customer_id`` (database);
* every customer with exactly one project carries that project's name (one of
  ``config.customer_name_candidates(project_name, project_uuid)``, rule 4);
* the manual groupings the machine set up (customers of origin ``manual`` holding >= 2
  projects) hold exactly the projects the machine put there: the job, mode switches and
  tunable flips never move them (rules 8 and 9);
* every customer and project has its ``insert`` audit row, and every write that changed
  something added audit rows (rule 10);
* after a forced job run there is no orphan.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from litestar.testing import TestClient
from psycopg.rows import dict_row

from service.app import create_app
from tests.api.conftest import Api
from tests.conftest import TEMPLATE_DB, runtime_url

pytestmark = pytest.mark.slow

MODE = "turbine_api_feature_migrate_projects_to_orgs"
C = "/config/v1/customers"
# Few names, so that duplicates (400 "already exists") and rule-4 name clashes happen.
PROJECT_NAMES = st.sampled_from(["p1", "p2", "p3", "p4", "shop", "hydro-x", "sample"])
CUSTOMER_NAMES = st.sampled_from(["acme", "acme corp", "p1", "p2", "shop", "globex", "initech"])


class HierarchyMachine(RuleBasedStateMachine):
    """Each run (hypothesis example) gets its own database and app, so a run replays exactly
    (hypothesis re-runs a failing sequence to shrink it); objects are picked by index into
    lists ordered by name, which are deterministic for a given sequence."""

    pg_server: Any = None  # set by the test before the machine runs

    def __init__(self) -> None:
        super().__init__()
        self.dbname = f"test_{uuid.uuid4().hex}"
        url = self.pg_server.create_database(self.dbname, template=TEMPLATE_DB)
        app = create_app(runtime_url(url), run_scheduler=False)  # the service as the runtime role
        self.client = TestClient(app, raise_server_exceptions=False)
        self.client.__enter__()
        self.api = Api(client=self.client, url=url)
        self.api.headers()  # log the super admin in
        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        self.projects_path = f"/config/v1/orgs/{self.api.org}/projects"
        # manual customers this machine created -> the projects it put there
        self.groups: dict[str, set[str]] = {}
        self.last_forced_run = False

    def teardown(self) -> None:
        self.conn.close()
        self.client.__exit__(None, None, None)
        self.pg_server.drop_database(self.dbname)

    # -- helpers -------------------------------------------------------------------------
    def q(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        return cur.fetchall() if cur.description else []

    def audit_mark(self) -> int:
        return self.q("SELECT coalesce(max(id), 0) AS n FROM config.audit_log")[0]["n"]

    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        ok: tuple[int, ...] = (200, 201, 204),
        allowed: tuple[int, ...] = (),
    ) -> Any:
        r = self.api.request(method, path, json=json)
        assert r.status_code in ok + allowed, (method, path, json, r.status_code, r.text)
        if r.status_code == 400:
            assert r.json() and all(isinstance(v, list) for v in r.json().values()), r.text
        return r

    def expect_audit(self, before: int, changed: bool, what: str) -> None:
        if changed:
            assert self.audit_mark() > before, f"{what}: no audit_log row"

    def project_ids(self) -> list[str]:
        return [r["uuid"] for r in self.q("SELECT uuid::text FROM config.projects ORDER BY name, uuid")]

    def customer_ids(self) -> list[str]:
        return [r["uuid"] for r in self.q("SELECT uuid::text FROM config.customers ORDER BY name, uuid")]

    def customer_of(self, project: str) -> str | None:
        rows = self.q("SELECT customer_id::text AS c FROM config.projects WHERE uuid = %s", (project,))
        return rows[0]["c"] if rows else None

    def forget_project(self, project: str) -> None:
        for members in self.groups.values():
            members.discard(project)

    def moved_to(self, project: str, customer: str | None) -> None:
        """The machine itself moved ``project`` (to ``customer``, or out of any)."""
        self.forget_project(project)
        if customer in self.groups:
            self.groups[customer].add(project)

    @staticmethod
    def pick(data: st.DataObject, ids: list[Any], label: str) -> Any:
        """One of ``ids`` by a drawn index (the same draw whatever the list's length)."""
        index = data.draw(st.integers(0, 63), label=label)
        return ids[index % len(ids)] if ids else None

    @staticmethod
    def pick_some(data: st.DataObject, ids: list[Any], label: str) -> list[Any]:
        indexes = data.draw(st.lists(st.integers(0, 63), min_size=1, max_size=3), label=label)
        return list(dict.fromkeys(ids[i % len(ids)] for i in indexes)) if ids else []

    # -- rules ---------------------------------------------------------------------------
    @rule(name=PROJECT_NAMES, data=st.data())
    def create_project(self, name: str, data: st.DataObject) -> None:
        customer = None
        if data.draw(st.booleans(), label="into a group") and self.groups:
            groups = [
                r["uuid"]
                for r in self.q(
                    "SELECT uuid::text FROM config.customers WHERE uuid = ANY(%s::uuid[]) ORDER BY name",
                    (list(self.groups),),
                )
            ]
            customer = self.pick(data, groups, "customer")
        before = self.audit_mark()
        body = {"name": name, **({"customer": customer} if customer else {})}
        r = self.call("POST", self.projects_path, json=body, ok=(201,), allowed=(400,))
        if r.status_code == 201:
            project = r.json()
            assert project["customer"] is not None, "rule 5: a new project has a customer at once"
            if customer:
                assert project["customer"] == customer
            self.moved_to(project["uuid"], project["customer"])
        self.expect_audit(before, r.status_code == 201, "create project")

    @rule(data=st.data())
    def delete_project(self, data: st.DataObject) -> None:
        project = self.pick(data, self.project_ids(), "project")
        if project is None:
            return
        before = self.audit_mark()
        self.call("DELETE", f"{self.projects_path}/{project}", ok=(204,))
        assert not self.q("SELECT 1 FROM config.projects WHERE uuid = %s", (project,))
        self.forget_project(project)
        self.expect_audit(before, True, "delete project")

    @rule(name=PROJECT_NAMES, data=st.data())
    def rename_project(self, name: str, data: st.DataObject) -> None:
        project = self.pick(data, self.project_ids(), "project")
        if project is None:
            return
        old = self.q("SELECT name FROM config.projects WHERE uuid = %s", (project,))[0]["name"]
        before = self.audit_mark()
        r = self.call("PATCH", f"{self.projects_path}/{project}", json={"name": name}, allowed=(400,))
        if r.status_code == 400:
            assert "name" in r.json()
        self.expect_audit(before, r.status_code == 200 and old != name, "rename project")

    @rule(name=CUSTOMER_NAMES)
    def create_customer(self, name: str) -> None:
        before = self.audit_mark()
        r = self.call("POST", C, json={"name": name}, ok=(201,), allowed=(400,))
        if r.status_code == 201:
            assert r.json()["origin"] == "manual" and r.json()["projects"] == []
            self.groups[r.json()["uuid"]] = set()
        else:
            assert "already exists" in r.json()["name"][0]
        self.expect_audit(before, r.status_code == 201, "create customer")

    @rule(data=st.data())
    def delete_customer(self, data: st.DataObject) -> None:
        customer = self.pick(data, self.customer_ids(), "customer")
        if customer is None:
            return
        held = {
            r["uuid"]
            for r in self.q("SELECT uuid::text FROM config.projects WHERE customer_id = %s", (customer,))
        }
        before = self.audit_mark()
        self.call("DELETE", f"{C}/{customer}", ok=(204,))
        self.groups.pop(customer, None)
        for project in held:
            self.forget_project(project)
        orphans = self.q(
            "SELECT count(*) AS n FROM config.projects WHERE uuid = ANY(%s::uuid[]) AND customer_id IS NULL",
            (list(held),),
        )[0]["n"]
        assert orphans == len(held), "rule 6: deleting a customer orphans its projects"
        self.last_forced_run = False
        self.expect_audit(before, True, "delete customer")

    @rule(name=CUSTOMER_NAMES, data=st.data())
    def rename_customer(self, name: str, data: st.DataObject) -> None:
        customer = self.pick(data, self.customer_ids(), "customer")
        if customer is None:
            return
        old = self.q("SELECT name FROM config.customers WHERE uuid = %s", (customer,))[0]["name"]
        before = self.audit_mark()
        r = self.call("PATCH", f"{C}/{customer}", json={"name": name}, allowed=(400,))
        if r.status_code == 400:
            message = r.json()["name"][0]
            assert "already exists" in message or "rename the project instead" in message, message
        changed = r.status_code == 200 and old != name.replace(" ", "-")
        self.expect_audit(before, changed, "rename customer")

    @rule(data=st.data())
    def add_projects(self, data: st.DataObject) -> None:
        customer = self.pick(data, self.customer_ids(), "customer")
        projects = self.project_ids()
        if customer is None or not projects:
            return
        chosen = self.pick_some(data, projects, "projects")
        before = self.audit_mark()
        r = self.call(
            "POST", f"{C}/{customer}/add_projects", json={"projects": [{"uuid": p} for p in chosen]}
        )
        moved = r.json()["projects"]
        assert set(moved) <= set(chosen)
        for project in chosen:
            assert self.customer_of(project) == customer
            self.moved_to(project, customer)
        self.expect_audit(before, bool(moved), "add_projects")

    @rule(data=st.data())
    def remove_projects(self, data: st.DataObject) -> None:
        rows = self.q(
            "SELECT uuid::text, customer_id::text AS customer FROM config.projects "
            "WHERE customer_id IS NOT NULL ORDER BY name"
        )
        row = self.pick(data, rows, "project")
        if row is None:
            return
        before = self.audit_mark()
        r = self.call(
            "POST", f"{C}/{row['customer']}/remove_projects", json={"projects": [{"uuid": row["uuid"]}]}
        )
        assert r.json()["projects"] == [row["uuid"]]
        assert self.customer_of(row["uuid"]) is None
        self.moved_to(row["uuid"], None)
        self.last_forced_run = False
        self.expect_audit(before, True, "remove_projects")

    @rule(data=st.data())
    def patch_project_customer(self, data: st.DataObject) -> None:
        project = self.pick(data, self.project_ids(), "project")
        customer = self.pick(data, self.customer_ids(), "customer")
        if project is None or customer is None:
            return
        old = self.customer_of(project)
        before = self.audit_mark()
        r = self.call("PATCH", f"{self.projects_path}/{project}", json={"customer": customer})
        assert r.json()["customer"] == customer == self.customer_of(project)
        self.moved_to(project, customer)
        self.expect_audit(before, old != customer, "PATCH project customer")

    @rule(per_project=st.booleans())
    def switch_mode(self, per_project: bool) -> None:
        before = self.audit_mark()
        result = self.call("POST", f"{C}/switch_mode", json={"per_project": per_project}).json()
        assert result["per_project"] is per_project and result["dry_run"] is False
        assert self.q("SELECT value FROM config.tunables WHERE name = %s", (MODE,))[0]["value"] is per_project
        self.last_forced_run = True  # the switch ends with a forced run of the job
        changed = any(
            result[k]
            for k in ("customers_dissolved", "projects_freed", "customers_created", "projects_associated")
        )
        self.expect_audit(before, changed, "switch_mode")

    @rule(value=st.booleans())
    def flip_tunable(self, value: bool) -> None:
        old = self.q("SELECT value FROM config.tunables WHERE name = %s", (MODE,))[0]["value"]
        before = self.audit_mark()
        r = self.call("PUT", f"/config/v1/tunables/{MODE}", json={"value": value})
        assert r.json()["value"] is value
        self.expect_audit(before, old is not value, "tunable flip")

    @rule()
    def reconcile(self) -> None:
        before = self.audit_mark()
        result = self.call("POST", f"{C}/reconcile", json={"force": True}).json()
        assert result["skipped"] is False and result["error"] is None, result
        self.expect_audit(
            before, bool(result["projects_associated"] or result["customers_created"]), "job run"
        )
        self.last_forced_run = True

    # -- invariants (after every step) ----------------------------------------------------
    @invariant()
    def one_customer_per_project(self) -> None:
        listed = [p for c in self.api.get(C).json() for p in c["projects"]]
        assert len(listed) == len(set(listed)), "a project is listed under two customers"
        in_db = {
            r["uuid"] for r in self.q("SELECT uuid::text FROM config.projects WHERE customer_id IS NOT NULL")
        }
        assert set(listed) == in_db

    @invariant()
    def single_project_customers_carry_its_name(self) -> None:
        wrong = self.q("""
            SELECT c.name AS customer, p.name AS project
            FROM config.customers c JOIN config.projects p ON p.customer_id = c.uuid
            WHERE (SELECT count(*) FROM config.projects q WHERE q.customer_id = c.uuid) = 1
              AND c.name <> ALL (config.customer_name_candidates(p.name, p.uuid))""")
        assert wrong == [], wrong

    @invariant()
    def manual_groupings_stay(self) -> None:
        for customer, members in self.groups.items():
            if len(members) < 2:
                continue
            rows = self.q("SELECT origin FROM config.customers WHERE uuid = %s", (customer,))
            assert rows and rows[0]["origin"] == "manual", f"grouping {customer} was dissolved"
            held = {
                r["uuid"]
                for r in self.q("SELECT uuid::text FROM config.projects WHERE customer_id = %s", (customer,))
            }
            assert held == members, f"grouping {customer} moved: {held} != {members}"

    @invariant()
    def everything_has_its_insert_audit_row(self) -> None:
        missing = self.q("""
            SELECT 'customers' AS kind, c.uuid FROM config.customers c WHERE NOT EXISTS (
                SELECT 1 FROM config.audit_log a
                WHERE a.object_type = 'customers' AND a.object_id = c.uuid AND a.action = 'insert')
            UNION ALL
            SELECT 'projects', p.uuid FROM config.projects p WHERE NOT EXISTS (
                SELECT 1 FROM config.audit_log a
                WHERE a.object_type = 'projects' AND a.object_id = p.uuid AND a.action = 'insert')""")
        assert missing == [], missing

    @invariant()
    def no_orphans_after_a_forced_run(self) -> None:
        if self.last_forced_run:
            orphans = self.q("SELECT name FROM config.projects WHERE customer_id IS NULL")
            assert orphans == [], orphans
            assert self.api.get(f"{self.projects_path}?customer_id__isnull=True").json() == []


def test_hierarchy_state_machine(pg_server, template_url, monkeypatch):
    monkeypatch.setenv("HIERARCHY_SCHEDULER", "off")
    HierarchyMachine.pg_server = pg_server
    runs: list[dict[str, int]] = []
    original_teardown = HierarchyMachine.teardown

    def teardown(machine: HierarchyMachine) -> None:
        runs.append(
            machine.q(
                "SELECT (SELECT count(*) FROM config.audit_log WHERE action = 'insert' "
                "AND object_type = 'customers' AND actor LIKE '%%@%%') AS customers,"
                " (SELECT count(*) FROM config.job_runs WHERE source = 'api') AS jobs"
            )[0]
        )
        original_teardown(machine)

    try:
        HierarchyMachine.teardown = teardown  # type: ignore[method-assign]
        run_state_machine_as_test(
            HierarchyMachine,
            settings=settings(
                max_examples=15,
                stateful_step_count=15,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        HierarchyMachine.teardown = original_teardown  # type: ignore[method-assign]
        HierarchyMachine.pg_server = None
    # not vacuous: the runs created customers and ran the job
    assert len(runs) >= 10
    assert sum(r["customers"] for r in runs) > 0 and sum(r["jobs"] for r in runs) > 0, runs
