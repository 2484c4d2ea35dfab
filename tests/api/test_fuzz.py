"""API fuzzing with schemathesis against the app's own OpenAPI document, on a real database.

* ``test_fuzz_authenticated``: every operation of ``/schema/openapi.json``, called as a super
  admin with data generated from the document (valid and invalid), against a fresh database
  holding a second org, projects and customers. Path parameters and the project/customer
  uuids in bodies are mostly drawn from the objects that exist, so the cases reach the
  handlers' real work instead of stopping at 404. Every response is checked by schemathesis
  (no 5xx; status code, content type, headers and body as documented; invalid data refused).
* ``test_fuzz_without_token``: the same operations with no ``Authorization`` header: every
  operation the document says needs the bearer token answers 401 ``{"detail"}`` with
  ``WWW-Authenticate``, and nothing in the database changes.
* ``test_fuzz_case_count``: the cases actually sent are counted; CI runs at least 1,000.

The app runs in process (starlette-testclient, a ``requests`` session, so schemathesis's own
transport and checks apply) with its lifespan entered once per operation.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import DataGenerationMethod, GenerationConfig
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection
from starlette_testclient import TestClient as RequestsClient

from service.app import create_app
from tests.api.conftest import Api
from tests.conftest import TEMPLATE_DB

pytestmark = pytest.mark.slow

BASE_URL = "http://testserver"
# Per operation. Operations without parameters or body (OPTIONS lists, logout, health) have
# a single possible case; the others run up to this many.
MAX_EXAMPLES = 34
MAX_EXAMPLES_NO_TOKEN = 4
MIN_TOTAL_CASES = 1000
PUBLIC = {("POST", "/config/v1/login"), ("GET", "/health"), ("GET", "/metrics")}


def _openapi() -> dict[str, Any]:
    # The document does not need a database: build it from an app that is never started.
    app = create_app("postgresql://unused@127.0.0.1:1/unused", run_scheduler=False)
    return app.openapi_schema.to_schema()


OPENAPI = _openapi()
# Litestar writes OpenAPI 3.1; schemathesis 3.x validates 3.1 documents behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()
schema = schemathesis.from_dict(
    OPENAPI,
    base_url=BASE_URL,
    data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
)
# No Authorization header at all (schemathesis would otherwise generate a random bearer token).
schema_valid_only = schemathesis.from_dict(
    OPENAPI,
    base_url=BASE_URL,
    data_generation_methods=[DataGenerationMethod.positive],
    generation_config=GenerationConfig(with_security_parameters=False),
)

# What the running test's database holds (filled by the `fuzz` fixture; read at draw time).
KNOWN: dict[str, list[str]] = {}
CASES: Counter[str] = Counter()  # cases sent, per test and operation
OPERATIONS = sorted(
    (method.upper(), path)
    for path, ops in OPENAPI["paths"].items()
    for method in ops
    if method in ("get", "put", "post", "delete", "options", "patch")
)

PATH_KINDS = {"org_id": "orgs", "project_id": "projects", "customer_id": "customers", "name": "tunables"}


def _known(kind: str, pick: int, generated: Any) -> Any:
    """The pick-th known object of this kind for picks 0..5, the generated value for 6 and 7."""
    values = KNOWN.get(kind) or []
    return values[pick % len(values)] if values and pick < 6 else generated


def _path_parameters(drawn: tuple[dict[str, Any], int]) -> dict[str, Any]:
    params, pick = drawn
    if not isinstance(params, dict):
        return params
    return {
        key: _known(PATH_KINDS[key], pick, value) if key in PATH_KINDS else value
        for key, value in params.items()
    }


def _body(drawn: tuple[Any, int]) -> Any:
    body, pick = drawn
    if not isinstance(body, dict):
        return body
    body = copy.copy(body)
    refs = body.get("projects")
    if isinstance(refs, list):
        body["projects"] = [
            {**ref, "uuid": _known("projects", pick + i, ref["uuid"])}
            if isinstance(ref, dict) and isinstance(ref.get("uuid"), str)
            else ref
            for i, ref in enumerate(refs)
        ]
    if isinstance(body.get("customer"), str):
        body["customer"] = _known("customers", pick, body["customer"])
    if isinstance(body.get("org"), str):
        body["org"] = _known("orgs", pick, body["org"])
    return body


for _schema in (schema, schema_valid_only):

    @_schema.hook("before_generate_path_parameters")
    def _real_ids(context, strategy):  # noqa: ARG001 (hook signature)
        return st.tuples(strategy, st.integers(0, 7)).map(_path_parameters)

    @_schema.hook("before_generate_body")
    def _real_refs(context, strategy):  # noqa: ARG001
        return st.tuples(strategy, st.integers(0, 7)).map(_body)


def _effective_security(method: str, path: str) -> list[dict[str, Any]]:
    op = OPENAPI["paths"][path][method.lower()]
    return op.get("security", OPENAPI.get("security", []))


def _protected(method: str, path: str) -> bool:
    """Whether the document says the operation needs a bearer token ([{}] means: none needed)."""
    return any(requirement for requirement in _effective_security(method, path))


class Fuzz:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.token = api.login(api.make_user("super_admin"))

    def headers(self, case: Any) -> dict[str, str]:
        if (case.method, case.path) == ("POST", "/config/v1/logout"):
            # logout revokes the token it is sent with: give it one of its own
            return {"Authorization": f"Bearer {self.api.login(self.api.make_user('super_admin'))}"}
        return {"Authorization": f"Bearer {self.token}"}

    def stock(self) -> None:
        """Objects to aim at: a second org, a manual customer with two projects, a project of
        each org. Topped up before each operation (the previous one may have deleted them)."""
        api = self.api
        other = api.other_org()
        grouped = api.one(
            "INSERT INTO config.customers (name) VALUES ('grouped') ON CONFLICT (name) "
            "DO UPDATE SET name = EXCLUDED.name RETURNING uuid"
        )["uuid"]
        for org, name, customer in (
            (api.org, "alpha", grouped),
            (api.org, "beta", grouped),
            (api.org, "gamma", None),
            (other, "theirs", None),
        ):
            api.sql(
                "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, %s, %s) "
                "ON CONFLICT (org_id, name) DO NOTHING",
                (org, name, customer),
            )
        KNOWN.clear()
        KNOWN.update(
            orgs=[api.org, other],
            projects=[
                r["uuid"]
                for r in api.sql(
                    "SELECT uuid::text FROM config.projects"
                    " ORDER BY name IN ('alpha', 'beta', 'gamma', 'theirs') DESC, name LIMIT 8"
                )
            ],
            customers=[
                r["uuid"]
                for r in api.sql(
                    "SELECT uuid::text FROM config.customers ORDER BY name = 'grouped' DESC, name LIMIT 8"
                )
            ],
            tunables=[r["name"] for r in api.sql("SELECT name FROM config.tunables ORDER BY name")],
        )


@pytest.fixture(scope="module")
def fuzz_app(pg_server, template_url):
    """The app on one fresh database for the whole module (a clone of the migrated template,
    as db_url makes per test): the fuzz cases check responses, not state, so they share it."""
    name = f"test_fuzz_{uuid.uuid4().hex}"
    url = pg_server.create_database(name, template=TEMPLATE_DB)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HIERARCHY_SCHEDULER", "off")
            app = create_app(url, run_scheduler=False)
            with RequestsClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
                yield Fuzz(Api(client=client, url=url))  # type: ignore[arg-type]  # a requests session
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def fuzz(fuzz_app: Fuzz):
    fuzz_app.stock()
    yield fuzz_app
    KNOWN.clear()


def _excluded_checks(case: Any) -> tuple[Any, ...]:
    """schemathesis's checks that do not apply to this case.

    * ignored_auth re-sends the request outside our session; the no-token run below checks
      every operation without a token instead.
    * negative_data_rejection only where the body was made invalid. Invalid query strings
      are ambiguous in a URL (schemathesis's "not an integer" string "5" is the integer 5
      once in the query string) and unknown query parameters are ignored, as DRF does; the
      400s for bad query values are asserted in test_projects/test_misc. (schemathesis 3.x
      also marks absent path parameters "negative", which would exempt nothing.)
    """
    meta = case.meta
    if meta is not None and meta.body is not None and meta.body.is_negative:
        return (ignored_auth,)
    return (ignored_auth, negative_data_rejection)


FUZZ_SETTINGS = dict(
    deadline=None, database=None, derandomize=False, print_blob=True, suppress_health_check=list(HealthCheck)
)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, **FUZZ_SETTINGS)
def test_fuzz_authenticated(case, fuzz):
    response = case.call(session=fuzz.api.client, base_url=BASE_URL, headers=fuzz.headers(case))
    CASES[f"auth {case.method} {case.path}"] += 1
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    case.validate_response(response, excluded_checks=_excluded_checks(case))


@schema_valid_only.parametrize()
@settings(max_examples=MAX_EXAMPLES_NO_TOKEN, **FUZZ_SETTINGS)
def test_fuzz_without_token(case, fuzz):
    before = fuzz.api.counts()
    response = case.call(session=fuzz.api.client, base_url=BASE_URL)
    assert "Authorization" not in response.request.headers
    CASES[f"anon {case.method} {case.path}"] += 1
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    case.validate_response(response, excluded_checks=(ignored_auth, negative_data_rejection))
    if _protected(case.method, case.path):
        assert response.status_code == 401, (case.method, case.formatted_path, response.text)
        assert set(response.json()) == {"detail"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert fuzz.api.counts() == before, (case.method, case.formatted_path)
    elif (case.method, case.path) == ("POST", "/config/v1/login"):
        # public, but these generated credentials belong to nobody
        assert response.status_code in (400, 401, 429), response.text
        assert fuzz.api.counts() == before
    else:
        assert response.status_code == 200, (case.method, case.path, response.text)


def test_public_operations_are_documented_public():
    """Only login, health and metrics may be called without a token, and the document says so."""
    public = {op for op in OPERATIONS if not _protected(*op)}
    assert public == PUBLIC


def test_fuzz_case_count(request):
    """Runs after the fuzz tests of this module: enough cases were actually sent."""
    selected = {item.originalname for item in request.session.items}
    if "test_fuzz_authenticated" not in selected:
        pytest.skip("the fuzz tests were not selected in this run")
    auth = {key: n for key, n in CASES.items() if key.startswith("auth ")}
    anon = {key: n for key, n in CASES.items() if key.startswith("anon ")}
    ran = {item.name for item in request.session.items if item.originalname == "test_fuzz_authenticated"}
    if len(ran) == len(OPERATIONS):
        # every operation got cases, and in all at least MIN_TOTAL_CASES
        assert set(auth) == {f"auth {m} {p}" for m, p in OPERATIONS}, sorted(auth)
        assert sum(auth.values()) >= MIN_TOTAL_CASES, sum(auth.values())
    if "test_fuzz_without_token" in selected:
        assert anon, "the no-token run sent no case"
    print(f"\nfuzz cases sent: {sum(auth.values())} with a token, {sum(anon.values())} without")


def test_known_ids_are_used():
    """The hooks aim path parameters at existing objects (picks 0-5) or keep the generated value."""
    KNOWN.update(orgs=["o1", "o2"], projects=["p1"], customers=["c1"], tunables=["t1"])
    try:
        generated = str(uuid.uuid4())
        assert _path_parameters(({"org_id": generated, "project_id": generated}, 3)) == {
            "org_id": "o2",
            "project_id": "p1",
        }
        assert _path_parameters(({"org_id": generated}, 7)) == {"org_id": generated}
        assert _body(({"projects": [{"uuid": generated}], "customer": generated}, 0)) == {
            "projects": [{"uuid": "p1"}],
            "customer": "c1",
        }
    finally:
        KNOWN.clear()
