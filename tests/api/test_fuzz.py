"""API fuzzing with schemathesis 4 against the app's own OpenAPI document, on a real database.

* ``test_fuzz_authenticated``: every operation of ``/schema/openapi.json``, called as a super
  admin with data generated from the document (schemathesis's examples, coverage and fuzzing
  phases; valid and invalid data), against a fresh database holding a second org, projects and
  customers. Path parameters and the project/customer uuids in bodies are mostly drawn from the
  objects that exist, so the cases reach the handlers' real work instead of stopping at 404.
  Every response goes through schemathesis's default checks, and any failed check fails the
  test (no 5xx; status code, content type, headers, ``Allow`` and body as documented; data the
  document forbids refused; data it allows accepted, ``positive_data_acceptance_or_conflict``).
* ``test_fuzz_without_token``: the same operations with no ``Authorization`` header: every
  operation the document says needs the bearer token answers 401 ``{"detail"}`` with
  ``WWW-Authenticate``, and nothing in the database changes.
* ``test_fuzz_case_count``: the cases actually sent are counted; CI runs at least 1,000.

The app runs in process, called through schemathesis's own ASGI ``requests`` session (so its
transport and checks apply), with its lifespan entered once for the module. The stateful phase
is tests/api/test_stateful.py's business (its own machine, checking the database).
"""

from __future__ import annotations

import asyncio
import copy
import re
import secrets
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from service import auth, errors
from service.app import create_app
from service.db import Database
from service.errors import is_state_conflict
from tests.api.conftest import Api
from tests.conftest import TEMPLATE_DB, runtime_url

pytestmark = pytest.mark.slow

BASE_URL = "http://testserver"
# Per operation, for the fuzzing phase (the examples and coverage phases add their own
# deterministic cases). Operations without parameters or body have few possible cases.
MAX_EXAMPLES = 6
MAX_EXAMPLES_NO_TOKEN = 2
MIN_TOTAL_CASES = 1000
PUBLIC = {("POST", "/config/v1/login"), ("GET", "/health"), ("GET", "/metrics")}


def _openapi() -> dict[str, Any]:
    # The document does not need a database: build it from an app that is never started.
    app = create_app("postgresql://unused@127.0.0.1:1/unused", run_scheduler=False)
    return app.openapi_schema.to_schema()


@schemathesis.check
def positive_data_acceptance_or_conflict(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's ``positive_data_acceptance``, which replaces it, except that it also accepts
    a 400 whose body is a conflict with the current state (``service.errors.is_state_conflict``:
    a name already taken, a referenced object that does not exist...). Such input is valid, and
    the API answers 400 there as DRF and the Config API do (the built-in check accepts only 409);
    a 400 for any other reason (a format or validation refusal of data the document allows)
    still fails."""
    if response.status_code == 400 and is_state_conflict(_json(response)):
        return None
    if response.status_code == 400 and _jsonb_refused_nul(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


# PostgreSQL's jsonb cannot store U+0000, and a JSON Schema cannot forbid it at every depth of
# the free-form project `settings`: that one refusal is accepted, only for a body holding it.
JSONB_NUL = "unsupported Unicode escape sequence"


def _jsonb_refused_nul(response: Any, case: Any) -> bool:
    body = _json(response)
    return (
        body == {"non_field_errors": [JSONB_NUL]}
        and isinstance(case.body, dict)
        and _holds_nul(case.body.get("settings"))
    )


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _schema(modes: list[GenerationMode], max_examples: int, *, token: bool) -> Any:
    loaded = schemathesis.openapi.from_dict(OPENAPI)
    loaded.app = APP
    loaded.config.update(base_url=BASE_URL)
    loaded.config.checks.update(excluded_check_names=["positive_data_acceptance"])
    # without a token every operation answers 401 before looking at its input: the coverage
    # phase's hundreds of input variants would only repeat that
    loaded.config.phases.update(phases=PHASES if token else ["examples", "fuzzing"])
    # without a token: no Authorization header at all (not a random bearer token)
    loaded.config.generation.update(
        modes=modes,
        max_examples=max_examples,
        with_security_parameters=token,
        # The API ignores query parameters it does not know, as DRF does (clients such as hdxcli
        # send their own); an undeclared one is not an error to look for.
        allow_extra_parameters=False,
    )
    return loaded


# Known before the database exists (schemathesis asks for the token while collecting): the
# fixture stores their hashes for its super admin, as a login would.
TOKEN = secrets.token_urlsafe(32)
LOGOUT_TOKEN = secrets.token_urlsafe(32)  # logout revokes the token it is sent: one of its own


class BearerToken:
    """schemathesis's auth provider: the super admin's token on every case (so the case counts
    as authenticated); logout gets its own token, un-revoked before each case."""

    def get(self, case: Any, ctx: Any) -> str:
        if (case.method, case.path) != ("POST", "/config/v1/logout"):
            return TOKEN
        if FUZZ:
            FUZZ[0].api.sql(
                "UPDATE config.tokens SET revoked = NULL WHERE token_hash = %s",
                (auth.hash_token(LOGOUT_TOKEN),),
            )
        return LOGOUT_TOKEN

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


FUZZ: list[Any] = []  # the running module's Fuzz (set by the fuzz_app fixture)


class AppProxy:
    """The ASGI app schemathesis calls (its probes, such as ignored_auth's call without
    credentials, go to the schema's app, not to a session): the fixture points it at the app
    of the module's database, which exists only once the test runs.

    schemathesis's pytest plugin starts and stops an app's lifespan around every test, and a
    stop can hang on the pool's close; so the proxy answers the lifespan itself and opens the
    app's database pool once, on the first request (in schemathesis's event loop, where every
    request runs), and the fixture closes it at the end."""

    app: Any = None
    url: str = ""
    database: Database | None = None
    loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self.database is None:
            self.loop = asyncio.get_running_loop()
            self.database = Database(self.url)
            await self.database.open()
            self.app.state.database = self.database
            self.app.state.scheduler_enabled = False
        await self.app(scope, receive, send)

    def close(self) -> None:
        if self.database is not None and self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.database.close(), self.loop).result(timeout=30)
        self.app, self.database, self.loop = None, None, None


APP = AppProxy()
OPENAPI = _openapi()
PHASES = ["examples", "coverage", "fuzzing"]
schema = _schema([GenerationMode.POSITIVE, GenerationMode.NEGATIVE], MAX_EXAMPLES, token=True)
schema_valid_only = _schema([GenerationMode.POSITIVE], MAX_EXAMPLES_NO_TOKEN, token=False)
schema.auth(refresh_interval=None)(BearerToken)

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
        self.admin = api.make_user("super_admin")
        self.store_tokens()

    def store_tokens(self) -> None:
        admin = self.api.one("SELECT uuid FROM config.users WHERE email = %s", (self.admin,))["uuid"]
        for token in (TOKEN, LOGOUT_TOKEN):
            self.api.sql(
                "INSERT INTO config.tokens (token_hash, user_id, expires)"
                " VALUES (%s, %s, now() + interval '1 day')",
                (auth.hash_token(token), admin),
            )

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
            APP.app, APP.url = create_app(runtime_url(url), run_scheduler=False), url
            try:
                with asgi.get_client(APP) as client:
                    FUZZ[:] = [Fuzz(Api(client=client, url=url))]  # type: ignore[arg-type]  # requests
                    yield FUZZ[0]
            finally:
                FUZZ.clear()
                APP.close()
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def fuzz(fuzz_app: Fuzz):
    fuzz_app.stock()
    yield fuzz_app
    KNOWN.clear()


FUZZ_SETTINGS = dict(
    deadline=None, database=None, derandomize=False, print_blob=True, suppress_health_check=list(HealthCheck)
)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, **FUZZ_SETTINGS)
def test_fuzz_authenticated(case, fuzz):
    CASES[f"auth {case.operation.method.upper()} {case.operation.path}"] += 1
    case.call_and_validate(session=fuzz.api.client, base_url=BASE_URL)


@schema_valid_only.parametrize()
@settings(max_examples=MAX_EXAMPLES_NO_TOKEN, **FUZZ_SETTINGS)
def test_fuzz_without_token(case, fuzz):
    before = fuzz.api.counts()
    response = case.call(session=fuzz.api.client, base_url=BASE_URL)
    assert "Authorization" not in response.request.headers
    CASES[f"anon {case.operation.method.upper()} {case.operation.path}"] += 1
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    # ignored_auth compares a call with and without credentials: these calls have none
    case.validate_response(response, excluded_checks=[ignored_auth])
    if _protected(case.method, case.path):
        assert response.status_code == 401, (case.method, case.formatted_path, response.text)
        assert set(response.json()) == {"detail"}
        challenge = {k.lower(): v for k, v in response.headers.items()}["www-authenticate"]
        assert (challenge[0] if isinstance(challenge, list) else challenge).startswith("Bearer")
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


def test_state_conflicts_are_told_from_validation_errors():
    """The fuzz check's premise: the service's conflict messages are recognised, as they are
    answered; validation messages, and a body mixing both, are not."""
    customer = str(uuid.uuid4())
    assert is_state_conflict({"name": [errors.CUSTOMER_NAME_TAKEN]})
    assert is_state_conflict({"customer": [errors.NO_SUCH_CUSTOMER.format(customer)]})
    assert is_state_conflict({"projects": [errors.NOT_THIS_CUSTOMERS.format(customer)] * 2})
    assert is_state_conflict({"name": [errors.SINGLE_PROJECT_NAME.format("pa", "pa")]})
    for body in (
        {"name": ["1 to 255 characters: letters, digits, _ and -; starts with a letter or digit."]},
        {"name": [errors.PROJECT_NAME_TAKEN], "settings": ["must be a JSON object."]},
        {"customer": ["This field is required."]},
        {"name": []},
        {},
        {"detail": "Not found"},
        [errors.TAKEN],
        None,
    ):
        assert not is_state_conflict(body), body


def test_rule_4_message_is_the_triggers():
    """SINGLE_PROJECT_NAME is the wording of the rule-4 trigger (its "%" are "{}")."""
    sql = (Path(__file__).parents[2] / "migrations" / "0002.customers.sql").read_text()
    raised = re.search(r"RAISE EXCEPTION '([^']*)'[^;]*CONSTRAINT = 'customers_single_project_name'", sql)
    assert raised and raised[1].replace("%", "{}") == errors.SINGLE_PROJECT_NAME
