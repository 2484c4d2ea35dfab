"""Hydrolix's own CLI, ``hdxcli`` (PyPI 1.0.85, the test extra), against the service as it runs.

The service is uvicorn in a subprocess (tests.faults.conftest.ServiceProcess) on a clone of the
migrated template in the session's test cluster; hdxcli runs as a subprocess too, exactly as a
user runs it, with a throwaway ``HOME`` and ``HDX_CONFIG_DIR`` holding a written ``config.toml``
(hdxcli prompts for a host when the file is missing). ``--username``/``--password`` on every
call keep it from offering to create a service account; its session cache lives in that
directory, so later calls reuse the token of the first login. Each test checks what hdxcli
printed and what the database holds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import TEMPLATE_DB, TEMPLATE_DB_64
from tests.faults.conftest import PASSWORD, ServiceProcess, make_user

pytest.importorskip("hdx_cli", reason="hdxcli (test extra, PyPI hdxcli==1.0.85) is not installed")

pytestmark = pytest.mark.slow
HDXCLI = Path(sys.executable).with_name("hdxcli")


@dataclass
class Hdx:
    service: ServiceProcess
    db_url: str
    home: Path
    email: str

    def run(self, *args: str, login: bool = True, password: str = PASSWORD) -> subprocess.CompletedProcess:
        env = {**os.environ, "HOME": str(self.home), "HDX_CONFIG_DIR": str(self.home / ".hdx_cli")}
        credentials = ["--username", self.email, "--password", password] if login else []
        return subprocess.run(
            [str(HDXCLI), *credentials, *args],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    def ok(self, *args: str, **kw) -> str:
        result = self.run(*args, **kw)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def sql(self, statement: str, params=None):
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return conn.execute(statement, params).fetchall()


def _hdx(pg_server, template: str, tmp_path_factory):
    """The service on a clone of ``template``, a user, and hdxcli's config pointing at it."""
    if not HDXCLI.exists():
        pytest.skip(f"the hdxcli executable is missing next to {sys.executable}")
    name = f"test_hdxcli_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name, template=template)
    home = tmp_path_factory.mktemp("hdxcli-home")
    service = ServiceProcess(url, home / "service.log")
    try:
        service.start()
        email = make_user(url)
        config_dir = home / ".hdx_cli"
        config_dir.mkdir()
        (config_dir / "config.toml").write_text(
            f'[default]\nhostname = "127.0.0.1:{service.port}"\nscheme = "http"\n'
        )
        yield Hdx(service=service, db_url=url, home=home, email=email)
    finally:
        service.stop()
        pg_server.drop_database(name)


@pytest.fixture(scope="module")
def hdx(pg_server, template_url, tmp_path_factory):
    """hdxcli against a service at release 6.1."""
    yield from _hdx(pg_server, TEMPLATE_DB, tmp_path_factory)


@pytest.fixture(scope="module")
def hdx_64(pg_server, template_url_64, tmp_path_factory):
    """hdxcli against a service at release 6.4 (customers required)."""
    yield from _hdx(pg_server, TEMPLATE_DB_64, tmp_path_factory)


def _projects(hdx: Hdx) -> set[str]:
    return {name for (name,) in hdx.sql("SELECT name FROM config.projects")}


def test_wrong_password_is_refused(hdx):
    result = hdx.run("project", "list", password="not the password")
    assert result.returncode != 0
    assert "Invalid credentials" in result.stdout + result.stderr, (result.stdout, result.stderr)


def test_project_lifecycle(hdx):
    """create (hdxcli sends only the name) -> list -> show -> delete; one hdxcli call each
    (an hdxcli start costs seconds: the suite keeps to the flows that matter)."""
    name = f"cli_{uuid.uuid4().hex[:8]}"
    assert f"Created project {name}" in hdx.ok("project", "create", name)
    [(customer,)] = hdx.sql(
        "SELECT p.customer_id::text FROM config.projects p WHERE p.name = %s AND p.customer_id IS NOT NULL",
        (name,),
    )

    listed = hdx.ok("project", "list")
    assert _projects(hdx) <= set(listed.split()) and name in listed.split(), listed

    shown = json.loads(hdx.ok("project", "show", name))
    assert shown["name"] == name and shown["customer"] == customer, shown

    assert f"Deleted {name}" in hdx.ok("project", "delete", name, "--disable-confirmation-prompt")
    assert name not in _projects(hdx)


def test_access_token(hdx):
    token = hdx.service.login(hdx.db_url, role="read_only")
    listed = hdx.ok("--access-token", token, "project", "list", login=False)
    assert _projects(hdx) <= set(listed.split()), listed


def test_project_create_at_64_names_customer_and_list_still_works(hdx_64):
    """At 6.4 a create without a customer is 400 ``{"customer": ["This field is required."]}``:
    hdxcli (which sends only the name) exits non-zero printing the message (its ``project
    create`` prints the first message only; its ``migrate`` matches ``customer`` in the raw
    body to print the ``--target-customer`` hint); nothing is created; listing still works."""
    name = f"cli64_{uuid.uuid4().hex[:8]}"
    before = _projects(hdx_64)
    result = hdx_64.run("project", "create", name)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Error: This field is required." in output, output
    assert _projects(hdx_64) == before

    listed = hdx_64.ok("project", "list")
    assert _projects(hdx_64) <= set(listed.split()), listed


def test_roles_and_a_user_of_two_orgs_at_64(hdx_64):
    """hdxcli's ``user assign-role`` and ``remove-role`` (POST add_roles/remove_roles with
    ``{"roles": [...]}``) change the role in the user's primary org; a user of two orgs logs in
    and lists the projects of orgs[0], its primary org."""
    ops = make_user(hdx_64.db_url, role="operator")
    assert "Added role(s)" in hdx_64.ok("user", "assign-role", ops, "--role", "super_admin")
    role = (
        "SELECT m.role FROM config.org_memberships m JOIN config.users u ON u.uuid = m.user_id "
        "WHERE u.email = %s"
    )
    assert hdx_64.sql(role, (ops,)) == [("super_admin",)]
    assert "Removed role(s)" in hdx_64.ok("user", "remove-role", ops, "--role", "super_admin")
    assert hdx_64.sql(role, (ops,)) == [("read_only",)]

    [(other,)] = hdx_64.sql("INSERT INTO config.orgs (name) VALUES ('second') RETURNING uuid")
    [(customer,)] = hdx_64.sql("INSERT INTO config.customers (name) VALUES ('c-second') RETURNING uuid")
    hdx_64.sql(
        "INSERT INTO config.projects (org_id, name, customer_id) "
        "VALUES (%s, 'only_in_second', %s) RETURNING uuid",
        (other, customer),
    )
    hdx_64.sql(
        "SELECT config.add_membership(uuid, %s, 'operator', true) FROM config.users WHERE email = %s",
        (other, ops),
    )
    home = hdx_64.home.parent / f"{hdx_64.home.name}-two-orgs"  # hdxcli caches its login and org per home
    (home / ".hdx_cli").mkdir(parents=True)
    shutil.copy(hdx_64.home / ".hdx_cli" / "config.toml", home / ".hdx_cli" / "config.toml")
    two = Hdx(service=hdx_64.service, db_url=hdx_64.db_url, home=home, email=ops)
    listed = two.ok("project", "list")
    assert "only_in_second" in listed.split() and "hydro" not in listed.split(), listed


@pytest.fixture(scope="module")
def hdx_promoted(pg_server, template_url, tmp_path_factory):
    """hdxcli after the promotion of customers to orgs (per-project mode: tests.promotion_data),
    logged in as op@acme: its primary org is the promoted org bigco, and it belongs to three."""
    from tests.promotion_data import PASSWORD as DATA_PASSWORD
    from tests.promotion_data import build

    if not HDXCLI.exists():
        pytest.skip(f"the hdxcli executable is missing next to {sys.executable}")
    name = f"test_hdxcli_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name, template=TEMPLATE_DB)
    build(url, per_project=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT config.promote_customers()")
    home = tmp_path_factory.mktemp("hdxcli-promoted")
    service = ServiceProcess(url, home / "service.log")
    try:
        service.start()
        (home / ".hdx_cli").mkdir()
        (home / ".hdx_cli" / "config.toml").write_text(
            f'[default]\nhostname = "127.0.0.1:{service.port}"\nscheme = "http"\n'
        )
        hdx = Hdx(service=service, db_url=url, home=home, email="op@acme")
        hdx.password = DATA_PASSWORD
        yield hdx
    finally:
        service.stop()
        pg_server.drop_database(name)


def test_after_the_promotion_hdxcli_works_in_the_primary_org(hdx_promoted):
    """hdxcli 1.0.85 unchanged: login lists the primary org first, so it works in bigco (the org
    acme's manual customer became); listing shows that org's projects; a create (name only)
    lands there with the customer the org stands for."""
    hdx = hdx_promoted
    listed = hdx.ok("project", "list", password=hdx.password).split()
    assert {"api", "db"} <= set(listed) and "shop" not in listed and "web" not in listed, listed
    name = f"cli_{uuid.uuid4().hex[:8]}"
    assert f"Created project {name}" in hdx.ok("project", "create", name, password=hdx.password)
    [(org, customer)] = hdx.sql(
        "SELECT o.name, c.name FROM config.projects p JOIN config.orgs o ON o.uuid = p.org_id "
        "JOIN config.customers c ON c.uuid = p.customer_id WHERE p.name = %s",
        (name,),
    )
    assert (org, customer) == ("bigco", "bigco")
    shown = json.loads(hdx.ok("project", "show", name, password=hdx.password))
    assert shown["name"] == name
