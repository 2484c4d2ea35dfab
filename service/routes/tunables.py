"""Tunables: cluster settings. Reading needs tunables.read, setting tunables.write (super_admin).
The database validates values (type, minimum) and answers errcode 22023, shown as
``{"value": [message]}``; setting the mode tunable runs the job in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, put, route
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, PathParameter

from service.api import READ, WRITE, Metadata, Paging, listing, metadata, page_of, strict_body
from service.auth import run
from service.db import Db
from service.queries import query

SQL = {name: query(f"tunables.{name}") for name in ("list", "get", "set")}
TunableName = Annotated[str, PathParameter(description="The tunable's name.")]
MODE = "turbine_api_feature_migrate_projects_to_orgs"


class Tunable(msgspec.Struct):
    name: str
    value: Any
    value_type: str
    minimum: int | None
    description: str
    modified: datetime
    modified_by: str


TunablePage = page_of(Tunable, "TunablePage")


class TunableValue(msgspec.Struct, forbid_unknown_fields=True):
    value: Annotated[
        Any, msgspec.Meta(description="JSON value of the tunable's value_type (boolean or integer).")
    ]


def _found(row: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if row is None:
        raise NotFoundException(f"Tunable {name!r} not found.")
    return row


@get("/config/v1/tunables", tags=["tunables"], responses=READ, summary="List the tunables")
async def list_tunables(request: Request, paging: NamedDependency[Paging]) -> list[Tunable] | TunablePage:  # type: ignore[valid-type]
    async def work(db: Db) -> Any:
        return listing(request, paging, await db.all(SQL["list"], **paging.sql()))

    return await run(request, "tunables.read", work)


@route(
    "/config/v1/tunables",
    http_method="OPTIONS",
    tags=["tunables"],
    responses=READ,
    summary="Describe the tunables list",
)
async def describe_tunables(request: Request) -> Metadata:
    async def work(db: Db) -> Metadata:
        return metadata(
            "Tunable List", "Cluster settings; set one with PUT /config/v1/tunables/{name}/.", None, False
        )

    return await run(request, "tunables.read", work)


async def _get(request: Request, name: str) -> Any:
    async def work(db: Db) -> dict[str, Any]:
        return _found(await db.one(SQL["get"], name=name), name)

    return await run(request, "tunables.read", work)


async def _set(request: Request, name: str, value: Any) -> Any:
    async def work(db: Db) -> dict[str, Any]:
        return _found(await db.one(SQL["set"], name=name, value=msgspec.json.encode(value).decode()), name)

    return await run(request, "tunables.write", work, default_field="value")


# Any tunable by name. Not in the document: a JSON Schema cannot tie the body's type to the path
# parameter, so the document describes each known tunable on its own path instead (below).
@get("/config/v1/tunables/{name:str}", include_in_schema=False)
async def get_tunable(request: Request, name: TunableName) -> Tunable:
    return await _get(request, name)


@put("/config/v1/tunables/{name:str}", include_in_schema=False)
async def set_tunable(request: Request, name: TunableName, data: JSONBody[TunableValue]) -> Tunable:
    return await _set(request, name, data.value)


# The value type of each tunable, as config.tunables has it (value_type, minimum, maximum);
# tests/api/test_jobs_tunables.py checks that the two agree.
VALUE_TYPES: dict[str, Any] = {
    "turbine_api_feature_migrate_projects_to_orgs": Annotated[
        bool, msgspec.Meta(description="false: one default customer per org; true: a customer per project.")
    ],
    "customer_orphan_grace_seconds": Annotated[
        int, msgspec.Meta(ge=0, le=86400, description="Seconds an orphan waits before the job re-homes it.")
    ],
}


def _documented(name: str, value_type: Any) -> list[Any]:
    """GET and PUT of one tunable on its own path, with its value's type in the document."""
    body = msgspec.defstruct(
        "".join(word.title() for word in name.split("_")) + "Value",
        [("value", value_type)],
        forbid_unknown_fields=True,
    )

    async def get_one(request: Request) -> Tunable:
        return await _get(request, name)

    async def set_one(request: Request, data: Any) -> Tunable:
        return await _set(request, name, (await strict_body(request, body)).value)

    # real objects, not the strings of `from __future__ import annotations`: `body` is local
    get_one.__annotations__ = {"request": Request, "return": Tunable}
    set_one.__annotations__ = {"request": Request, "data": JSONBody[body], "return": Tunable}
    path = f"/config/v1/tunables/{name}"
    return [
        get(path, tags=["tunables"], responses=READ, summary=f"Get {name}")(get_one),
        put(
            path,
            tags=["tunables"],
            responses=WRITE,
            summary=f"Set {name}" + (" (runs the job in the same transaction)" if name == MODE else ""),
        )(set_one),
    ]


HANDLERS = [
    describe_tunables,
    list_tunables,
    *(handler for name, value_type in VALUE_TYPES.items() for handler in _documented(name, value_type)),
    get_tunable,
    set_tunable,
]
