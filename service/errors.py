"""DRF-style error bodies for every error the API can answer.

* validation, 400: ``{"field": ["message", ...]}``; a conflict with the current state (a name
  already taken), 409 with the same body; (``non_field_errors`` when no one field is
  to blame: malformed JSON, a body that is not an object, a database rule about the whole row);
* 401/403/404/405/413/503: ``{"detail": "..."}`` (503 also sends ``Retry-After``);
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
    """409 with ``{"field": ["message"]}``: valid input that the current state refuses (a name
    already taken, a name that rule 4 ties to a project, a referenced object that does not
    exist, a project of another customer). DRF would answer 400; 409 tells a client (and the
    OpenAPI document's readers) that the input is well-formed and the same request may
    succeed in another state."""

    status_code = 409


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
