"""Conventions shared by every resource: pagination, OPTIONS metadata, documented responses.

Pagination (docs/api.md, Conventions): a list endpoint answers a plain JSON list unless ``page`` or
``page_size`` is given; then ``{"count", "current", "num_pages", "next", "previous",
"results"}``. ``page_size`` defaults to 100 and must be 1..1000; ``page`` must be a positive
integer (0, negatives and non-integers are 400 ``{"page": [...]}``); a page past the last one
is 404 ``{"detail": "Invalid page."}`` (as DRF does), except page 1 of an empty list, which is
an empty page. ``pagination=False`` forces the plain list whatever else is given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

import msgspec
from litestar import Request
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter

from service.errors import FieldErrors
from service.queries import split_total

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_PAGE = 2**31 - 1


# -- error bodies (for the OpenAPI document) ------------------------------------------------------
class Detail(msgspec.Struct):
    """401, 403, 404, 405, 413, 429, 503 bodies."""

    detail: str


ValidationErrors = dict[str, list[str]]

_DESCRIPTIONS = {
    400: (
        "Invalid input, or input the current state refuses (a name already taken, a referenced "
        "object that does not exist): each field names what is wrong",
        ValidationErrors,
    ),
    401: ("Missing, malformed, expired or revoked token, or deactivated user", Detail),
    403: ("The user's role does not allow this", Detail),
    404: ("No such object for this user (or an invalid uuid in the path)", Detail),
    405: ("Method not allowed on this path", Detail),
    409: ("Refused by a rule of the release: a customer holding projects (from 6.4)", Detail),
    413: ("Request body larger than 1 MiB", Detail),
    429: ("Too many failed logins for this email; see Retry-After", Detail),
    503: ("Database unavailable or busy; retry", Detail),
}


def responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI response specs for these error status codes (405 and 503 are always added)."""
    return {
        code: ResponseSpec(
            data_container=_DESCRIPTIONS[code][1], description=_DESCRIPTIONS[code][0], generate_examples=False
        )
        for code in sorted({*codes, 405, 503})
    }


READ = responses(400, 401, 403, 404)  # 400: bad query parameters
WRITE = responses(400, 401, 403, 404, 413)


# -- text fields -------------------------------------------------------------------------------
# PostgreSQL text cannot hold NUL (JSON can): the document says so, and the same pattern refuses
# it with a 400 naming the field before the database sees it. (A lone UTF-16 surrogate is
# refused by the JSON decoder, 400 "non_field_errors"; JSON Schema cannot say that: the Rust
# and Python regex engines of its validators refuse surrogate ranges.)
TEXT_PATTERN = "^[^\\x00]*$"
Text = Annotated[str, msgspec.Meta(pattern=TEXT_PATTERN, description="Any text but NUL.")]


# -- strict request bodies -------------------------------------------------------------------------
async def strict_body(request: Request, type_: Any, default: Any = None) -> Any:
    """The JSON body converted to ``type_`` without Litestar's lenient coercions (it turns
    ``0`` into ``false`` and ``"120"`` into ``120``): what the document says is what is accepted.
    Litestar has already validated the body's shape; this refuses a wrong type with 400
    ``{"field": ["Expected `bool`, got `int`"]}``."""
    raw = await request.json()
    if raw is None:
        return default
    if isinstance(raw, dict):  # JSON Schema's integers include 120.0
        raw = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in raw.items()}
    try:
        return msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$.")
        raise FieldErrors({where.rstrip("`").split(".")[0] or "non_field_errors": [message]}) from None


def strict_query(request: Request, names: Iterable[str], type_: Any) -> None:
    """400 for a query parameter that Litestar coerced leniently (``until=0.5`` read as a Unix
    time) but is not ``type_`` in its JSON form (a datetime is an ISO 8601 string)."""
    for name in names:
        raw = request.query_params.get(name)
        if raw is not None:
            try:
                msgspec.convert(raw, type_, strict=True)
            except msgspec.ValidationError as exc:
                raise FieldErrors({name: [str(exc)]}) from None


# -- path parameters -----------------------------------------------------------------------------
OrgId = Annotated[UUID, PathParameter(description="The org's uuid.")]
ProjectId = Annotated[UUID, PathParameter(description="The project's uuid.")]
CustomerId = Annotated[UUID, PathParameter(description="The customer's uuid.")]


# -- pagination ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paging:
    paginate: bool
    page: int
    page_size: int

    @property
    def limit(self) -> int | None:
        return self.page_size if self.paginate else None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size if self.paginate else 0

    def sql(self, plain_limit: int | None = None) -> dict[str, Any]:
        """LIMIT/OFFSET parameters (``plain_limit`` caps an unpaginated list)."""
        return {"limit": self.limit if self.paginate else plain_limit, "offset": self.offset}


async def provide_paging(
    page: Annotated[
        int | None,
        QueryParameter(ge=1, le=MAX_PAGE, description="Page number (from 1). Giving it paginates the list."),
    ] = None,
    page_size: Annotated[
        int | None,
        QueryParameter(
            ge=1,
            le=MAX_PAGE_SIZE,
            description="Results per page (default 100, at most 1000). Giving it paginates the list.",
        ),
    ] = None,
    pagination: Annotated[
        bool | None,
        QueryParameter(description="False forces a plain list even when page or page_size is given."),
    ] = None,
) -> Paging:
    paginate = (page is not None or page_size is not None) and pagination is not False
    return Paging(paginate=paginate, page=page or 1, page_size=page_size or DEFAULT_PAGE_SIZE)


def listing(request: Request, paging: Paging, rows: list[dict[str, Any]]) -> Any:
    """The response body of a list endpoint: rows carry ``total`` (count(*) OVER ())."""
    rows, total = split_total(rows)
    if not paging.paginate:
        return rows
    return envelope(request, paging, total, rows, empty=not rows)


def json_listing(request: Request, paging: Paging, page: dict[str, Any]) -> Any:
    """The page of a statement that writes its results' JSON itself (one row: ``results``, the
    JSON array as text, ``[]`` when empty, and ``total``): embedded as it is, never decoded."""
    results = msgspec.Raw(page["results"].encode())
    return envelope(request, paging, page["total"], results, empty=page["results"] == "[]")


def envelope(request: Request, paging: Paging, total: int, results: Any, *, empty: bool) -> Any:
    """The DRF-style page around ``results``; a page past the last one is 404."""
    if empty and paging.page > 1:
        raise NotFoundException("Invalid page.")
    num_pages = max(1, math.ceil(total / paging.page_size))

    def link(page: int) -> str | None:
        if not 1 <= page <= num_pages:
            return None
        query = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "page"]
        return str(request.url.with_replacements(query=urlencode([*query, ("page", str(page))])))

    return {
        "count": total,
        "current": paging.page,
        "num_pages": num_pages,
        "next": link(paging.page + 1),
        "previous": link(paging.page - 1),
        "results": results,
    }


def page_of(item: type, name: str) -> type:
    """The paginated envelope of ``item`` for the OpenAPI document."""
    return msgspec.defstruct(
        name,
        [
            ("count", int),
            ("current", int),
            ("num_pages", int),
            ("next", str | None),
            ("previous", str | None),
            ("results", list[item]),
        ],
    )


# -- OPTIONS metadata ----------------------------------------------------------------------------
class FieldInfo(msgspec.Struct, omit_defaults=True):
    type: str
    required: bool
    read_only: bool
    label: str
    help_text: str | None = None
    max_length: int | None = None
    choices: list[dict[str, str]] | None = None


class Metadata(msgspec.Struct):
    name: str
    description: str
    renders: list[str]
    parses: list[str]
    actions: dict[str, dict[str, FieldInfo]]


def field(
    type_: str,
    label: str,
    *,
    required: bool = False,
    read_only: bool = False,
    help_text: str | None = None,
    max_length: int | None = None,
    choices: Iterable[str] | None = None,
) -> FieldInfo:
    return FieldInfo(
        type=type_,
        required=required,
        read_only=read_only,
        label=label,
        help_text=help_text,
        max_length=max_length,
        choices=[{"value": c, "display_name": c} for c in choices] if choices else None,
    )


def metadata(
    name: str, description: str, post_fields: dict[str, FieldInfo] | None, can_post: bool
) -> Metadata:
    """DRF's OPTIONS answer; ``actions.POST`` only for a user allowed to create (as DRF does)."""
    actions = {"POST": post_fields} if post_fields and can_post else {}
    return Metadata(
        name=name,
        description=description,
        renders=["application/json"],
        parses=["application/json"],
        actions=actions,
    )


COMMON_READ_ONLY = {
    "uuid": field("uuid", "Uuid", read_only=True),
    "created": field("datetime", "Created", read_only=True),
    "modified": field("datetime", "Modified", read_only=True),
}
