"""DRF-style error bodies for every error the API can answer.

* validation, 400: ``{"field": ["message", ...]}`` (``non_field_errors`` when no one field is
  to blame: malformed JSON, a body that is not an object, a database rule about the whole row);
  a conflict with the current state (a name already taken) is a 400 with the same body, as DRF
  answers it (``Conflict``);
* 401/403/404/405/413/503: ``{"detail": "..."}`` (503 also sends ``Retry-After``); from 6.4,
  deleting a customer that holds projects is 409 ``{"detail"}`` (service.routes.upgrade);
* an invalid uuid in the path is 404 (no object can have that id), saying the id is invalid;
* anything unexpected is logged with its traceback and answered 500 ``{"detail": ...}``. It is
  a last resort: the tests fail if any request reaches it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_404_NOT_FOUND, HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger("service.errors")

MAX_BODY_BYTES = 1024 * 1024


class FieldErrors(HTTPException):
    """400 with ``{"field": ["message"]}``."""

    status_code = HTTP_400_BAD_REQUEST

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(detail="invalid input")
        self.errors = errors


class Conflict(FieldErrors):
    """400 with ``{"field": ["message"]}`` for well-formed input that the current state refuses:
    a name already taken, a name that rule 4 ties to a project, a referenced object that does
    not exist (or is not visible), a project of another customer; the same request may succeed
    in another state. 400, not 409: DRF and the Config API answer 400, and their clients expect
    it. Every message is one of STATE_CONFLICTS, so ``is_state_conflict`` can tell such a body
    from a validation error."""


# -- conflicts with the current state ------------------------------------------------------------
# Every message a Conflict carries, each written once: service.db's CONSTRAINTS and the routes
# format these ("{}" for a variable part), and is_state_conflict() recognises them.
PROJECT_NAME_TAKEN = "project with this name already exists in this org."
CUSTOMER_NAME_TAKEN = "customer with this name already exists."
EMAIL_TAKEN = "user with this email already exists."
TAKEN = "already exists."  # a unique constraint without a message of its own
CUSTOMER_MISSING = "customer does not exist."
ORG_MISSING = "org does not exist."
NO_SUCH_CUSTOMER = "customer {} does not exist."
NOT_THIS_CUSTOMERS = "project {} does not belong to this customer."
# rule 4's trigger words its own message (migrations/0002, constraint customers_single_project_name;
# "%" there for each "{}" here)
SINGLE_PROJECT_NAME = (
    "customer {} has exactly one project ({}): its name follows the project; rename the project instead"
)
# Org memberships (release 6.4): the refusals of migrations/0004's functions, worded there ("%"
# for each "{}"), and the routes' own (service/routes/users.py).
MEMBERSHIP_REFUSALS = (
    "no user {}",
    "no org {}",
    "user {} is already a member of org {} (role {})",
    "user {} cannot join org {}: a super admin belongs to exactly one org (it sees every org)",
    "user {} belongs to {} orgs: a super admin belongs to exactly one org (it sees every org)",
    "org {} is the primary org of user {}: {}",
    "user {} is not a member of org {}",
    "user {} must have exactly one primary org (it has {})",
    "user {} holds role {} in org {}, not {}",
    "{} is the least role: remove the user from org {} instead (remove_orgs)",
    "org memberships need release 6.4 (one org per user before): run `hierarchy migrate`",
)
# the promotion of customers to orgs (service.promotion): a release or a state that refuses it
PROMOTION_NEEDS_RELEASE = (
    "the database is at release {}: promoting customers to orgs needs release {} (associations final, "
    "org memberships); nothing changed"
)
ALREADY_PROMOTED = "the customers are already promoted to orgs: nothing changed; reverse the promotion first."
NOT_PROMOTED = "the customers are not promoted to orgs: nothing to reverse, nothing changed."
# /config/v2/projects/{uuid}/: a PUT or PATCH naming an org that is not the project's own
PROJECT_OTHER_ORG = "A project cannot move to another org: give its own org ({}) or leave org out."
STATE_CONFLICTS = (
    PROJECT_NAME_TAKEN,
    CUSTOMER_NAME_TAKEN,
    EMAIL_TAKEN,
    TAKEN,
    CUSTOMER_MISSING,
    ORG_MISSING,
    NO_SUCH_CUSTOMER,
    NOT_THIS_CUSTOMERS,
    SINGLE_PROJECT_NAME,
    *MEMBERSHIP_REFUSALS,
    PROMOTION_NEEDS_RELEASE,
    ALREADY_PROMOTED,
    NOT_PROMOTED,
    PROJECT_OTHER_ORG,
)
_STATE_CONFLICT = re.compile(
    "|".join(".+".join(map(re.escape, template.split("{}"))) for template in STATE_CONFLICTS), re.DOTALL
)


def is_state_conflict(body: Any) -> bool:
    """Whether a 400 body is a Conflict's: a DRF field body (``{"field": ["message", ...]}``) in
    which every message is one of STATE_CONFLICTS. (The fuzz test accepts such a 400 for input
    the OpenAPI document allows; a validation error is not one.)"""
    return (
        isinstance(body, dict)
        and bool(body)
        and all(
            isinstance(messages, list)
            and bool(messages)
            and all(isinstance(m, str) and _STATE_CONFLICT.fullmatch(m) for m in messages)
            for messages in body.values()
        )
    )


class ServiceUnavailable(HTTPException):
    """503 with ``{"detail": ...}`` and ``Retry-After``: the database restarts, fails over or is
    busy; the same request may be sent again (a create that did commit then says "already exists")."""

    status_code = 503
    RETRY_AFTER_SECONDS = 1

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})


_MISSING = re.compile(r"Object missing required field `(.+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `(.+)`")


def _validation_body(request: Request, exc: ValidationException) -> tuple[int, dict[str, Any]]:
    """Litestar's validation messages (a list of {message, key, source}) as DRF fields."""
    found: dict[str, list[str]] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        message, key, source = item.get("message", ""), item.get("key") or "", item.get("source")
        if source == "path":
            raw = request.scope.get("path_params", {}).get(key, "")
            what = "is not a valid UUID" if message == "Invalid UUID" else f"is invalid ({message})"
            return HTTP_404_NOT_FOUND, {"detail": f"Not found: {key} {raw!r} {what}."}
        # nested objects: "projects[0]" + "uuid" -> "projects[0].uuid"
        prefix = "" if key in ("", "data") else f"{key}."
        if match := _MISSING.fullmatch(message):
            key, message = prefix + match[1], "This field is required."
        elif match := _UNKNOWN.fullmatch(message):
            key, message = prefix + match[1], "Unknown field."
        elif key == "data":
            key = "non_field_errors"
            if message == "'data'":  # no body at all
                message = "A JSON object is required as the request body."
        found.setdefault(key or "non_field_errors", []).append(message)
    return HTTP_400_BAD_REQUEST, found or {"non_field_errors": [str(exc.detail)]}


def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    headers = exc.headers
    if isinstance(exc, FieldErrors):
        body: dict[str, Any] = exc.errors
    elif isinstance(exc, ValidationException):
        status, body = _validation_body(request, exc)
    elif status == HTTP_400_BAD_REQUEST:  # malformed JSON and other client errors before validation
        body = {"non_field_errors": [str(exc.detail)]}
    elif status == 413:
        body = {"detail": f"Request body too large: the limit is {MAX_BODY_BYTES} bytes (1 MiB)."}
    else:
        body = {"detail": str(exc.detail)}
    return Response(body, status_code=status, headers=headers)


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        {"detail": "Internal server error; it has been logged."}, status_code=HTTP_500_INTERNAL_SERVER_ERROR
    )


EXCEPTION_HANDLERS = {HTTPException: http_exception_handler, Exception: internal_error_handler}
