"""The HTTP API (docs/api.md): a table of contents of the routes, and the app factory.

``hierarchy run`` serves ``create_app()`` with uvicorn (``factory=True``); the database URL comes
from ``HIERARCHY_DATABASE_URL`` or ``DATABASE_URL``. Conventions (service.api, service.errors):
paths answer with and without the trailing slash (Litestar matches both, no redirect); lists
are plain unless paginated; errors are DRF-style; OpenAPI at ``/schema`` (JSON at
``/schema/openapi.json``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Response, Router, route
from litestar.di import Provide
from litestar.enums import HttpMethod
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig

from service import front, releases, scheduler
from service.api import provide_paging
from service.db import Database, database_url
from service.errors import EXCEPTION_HANDLERS, MAX_BODY_BYTES
from service.openapi_struct import StrictStructSchemaPlugin
from service.routes import (
    audit,
    customers,
    health,
    jobs,
    login,
    orgs,
    projects,
    projects_v2,
    promotion,
    tunables,
    upgrade,
    users,
)

log = logging.getLogger(__name__)

# Callable without a token (documented with security [{}]), with the OpenAPI document: every
# other path, known or not, answers 401 before any routing or parsing (service.front).
PUBLIC = [login.login, *health.HANDLERS]
OPENAPI_PATH = "/schema"

ROUTES = [
    # POST /config/v1/login, POST /config/v1/logout
    *login.HANDLERS,
    # GET|OPTIONS /config/v1/orgs/, GET /config/v1/orgs/{org_id}/
    *orgs.HANDLERS,
    # GET|POST|OPTIONS /config/v1/orgs/{org_id}/projects/, GET|PUT|PATCH|DELETE .../projects/{project_id}/
    *projects.HANDLERS,
    # GET|POST /config/v2/projects/ (the org in the body, as Hydrolix's v2 API)
    *projects_v2.HANDLERS,
    # GET|POST|OPTIONS /config/v1/customers/, GET|PUT|PATCH|DELETE /config/v1/customers/{uuid}/,
    # POST /config/v1/customers/{uuid}/add_projects/ and /remove_projects/
    *customers.HANDLERS,
    # GET|POST|OPTIONS /config/v1/customers/reconcile/, POST /config/v1/customers/switch_mode/
    *jobs.HANDLERS,
    # GET /config/v1/upgrade_blockers/ (the pre-upgrade check, super admins)
    *upgrade.HANDLERS,
    # GET /config/v1/org_promotion/, POST .../promote/ and .../demote/ (super admins)
    *promotion.HANDLERS,
    # GET|OPTIONS /config/v1/tunables/, GET|PUT /config/v1/tunables/{name}/
    *tunables.HANDLERS,
    # GET|OPTIONS /config/v1/audit/
    *audit.HANDLERS,
    # GET|POST|OPTIONS /config/v1/users/
    *users.HANDLERS,
    # GET /health, GET /metrics
    *health.HANDLERS,
]


def _options_first(handlers: list) -> list:
    # Litestar adds an automatic OPTIONS handler (204, no body) to a path when its first
    # handler is registered; our DRF-style OPTIONS handler must be registered before the
    # path's other handlers to take its place.
    return sorted(handlers, key=lambda h: HttpMethod.OPTIONS not in h.http_methods)


def _allow(handlers: list) -> list:
    """An OPTIONS handler (204, ``Allow``, not in the document) for each path without one.

    Litestar makes such a handler itself, but when a path's first handler is registered, and it
    keeps that handler's methods: an item path with GET, PUT, PATCH and DELETE in separate
    handlers would answer ``Allow: GET, OPTIONS``. These list every method of the path."""
    methods: dict[str, set[str]] = {}
    for handler in handlers:
        for path in handler.paths:
            methods.setdefault(path, set()).update(handler.http_methods)

    def allow_handler(path: str, allowed: str) -> Any:
        async def allow() -> Response:
            return Response(None, status_code=204, headers={"Allow": allowed})

        return route(path, http_method="OPTIONS", include_in_schema=False, name=f"allow:{path}")(allow)

    return [
        allow_handler(path, ", ".join(sorted(found | {"OPTIONS"})))
        for path, found in methods.items()
        if "OPTIONS" not in found
    ]


def create_app(url: str | None = None, *, run_scheduler: bool | None = None) -> Litestar:
    url = url or database_url()
    if not url:
        raise RuntimeError("no database configured: set DATABASE_URL (hierarchy run does)")
    run_scheduler = scheduler.enabled() if run_scheduler is None else run_scheduler

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        database = Database(url)
        await database.open()
        app.state.database = database
        app.state.scheduler_enabled = run_scheduler
        job = scheduler.Scheduler(database) if run_scheduler else None
        if job:
            job.start()
        try:
            yield
        finally:
            if job:
                await job.stop()
            await database.close()

    prometheus = PrometheusConfig(
        app_name="hierarchy",
        prefix="hierarchy",
        group_path=True,
        exclude_unhandled_paths=True,
        exclude=["^/metrics$", "^/schema"],
    )
    protected_handlers = [h for h in ROUTES if h not in PUBLIC]
    protected = Router("/", route_handlers=_options_first([*protected_handlers, *_allow(protected_handlers)]))
    app = front.App(
        route_handlers=[protected, *PUBLIC],
        plugins=[StrictStructSchemaPlugin()],
        lifespan=[lifespan],
        dependencies={"paging": Provide(provide_paging)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[prometheus.middleware],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Config API: Customer parallel hierarchy",
            version=releases.LATEST,
            description=f"Orgs, projects and customers (releases {releases.FIRST_WITH_CUSTOMERS} to "
            f"{releases.LATEST}; from {releases.FIRST_FINAL} a project is created with its customer and "
            "keeps it). Authenticate with "
            "POST /config/v1/login, then send Authorization: Bearer <access_token>.",
            path=OPENAPI_PATH,
            security=[{"BearerToken": []}],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", description="access_token from POST /config/v1/login"
                    )
                }
            ),
        ),
    )
    public = {path.rstrip("/") for handler in PUBLIC for path in handler.paths}
    app.public_paths = frozenset({OPENAPI_PATH, *public})
    app.public_prefixes = (OPENAPI_PATH + "/",)
    return app
