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

from service.api import READ, WRITE, Metadata, Paging, listing, metadata, page_of
from service.auth import run
from service.queries import Db, query

SQL = {name: query(f"tunables.{name}") for name in ("list", "get", "set")}
TunableName = Annotated[str, PathParameter(description="The tunable's name.")]


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


@get("/config/v1/tunables/{name:str}", tags=["tunables"], responses=READ, summary="Get a tunable")
async def get_tunable(request: Request, name: TunableName) -> Tunable:
    async def work(db: Db) -> dict[str, Any]:
        return _found(await db.one(SQL["get"], name=name), name)

    return await run(request, "tunables.read", work)


@put(
    "/config/v1/tunables/{name:str}",
    tags=["tunables"],
    responses=WRITE,
    summary="Set a tunable (the mode tunable's change runs the job in the same transaction)",
)
async def set_tunable(request: Request, name: TunableName, data: JSONBody[TunableValue]) -> Tunable:
    async def work(db: Db) -> dict[str, Any]:
        return _found(
            await db.one(SQL["set"], name=name, value=msgspec.json.encode(data.value).decode()), name
        )

    return await run(request, "tunables.write", work, default_field="value")


HANDLERS = [describe_tunables, list_tunables, get_tunable, set_tunable]
