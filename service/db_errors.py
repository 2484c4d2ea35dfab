"""Database errors as HTTP answers: a constraint names the field to blame, a failover is 503.

:func:`map_error` turns what PostgreSQL raised into the DRF-style body the API documents
(service.errors): a constraint violation is 400 naming the field and saying what is allowed
(the messages follow the column comments), also when the input is valid but the current
state refuses it (a name taken, a referenced object missing: service.errors.Conflict, 400 as
the Config API answers), a data exception is 400, a privilege PostgreSQL refuses (42501) is 403,
a connection that can no longer serve the request (:func:`failover_error`) is 503. Anything
else is returned as it is and ends as a logged 500, which the tests treat as a bug.
"""

from __future__ import annotations

import psycopg
from litestar.exceptions import PermissionDeniedException
from psycopg import errors

from service.errors import (
    CUSTOMER_MISSING,
    CUSTOMER_NAME_TAKEN,
    EMAIL_TAKEN,
    ORG_MISSING,
    PROJECT_NAME_TAKEN,
    TAKEN,
    Conflict,
    FieldErrors,
    ServiceUnavailable,
)
from service.names import ROLES, one_of

UNAVAILABLE = "database unavailable"
STANDBY = "database is read-only (a standby, or a failover in progress); retry"
SCHEMA_MOVED = "the database schema is being migrated; retry"
READ_ONLY = "25006"  # read_only_sql_transaction: a standby, or a primary being demoted


def failover_error(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says this connection cannot do the request's work any more.

    25006 (read-only: we reached a standby or a demoted primary), class 57 (admin or crash
    shutdown, cannot connect now, ...), class 08 and a lost connection (no SQLSTATE). The
    connection is discarded and the request answers 503 with Retry-After, never 500.
    """
    if exc.sqlstate == READ_ONLY:
        return True
    return isinstance(exc, psycopg.OperationalError) and (exc.sqlstate or "08").startswith(("08", "57"))


# constraint -> (field, message). Messages say what is allowed, from the column comments.
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "projects_org_name_unique": ("name", PROJECT_NAME_TAKEN),
    "projects_name_valid": (
        "name",
        "1 to 255 characters: letters, digits, _ and -; starts with a letter or digit.",
    ),
    "projects_settings_object": ("settings", "must be a JSON object."),
    "projects_customer_id_fkey": ("customer", CUSTOMER_MISSING),
    "customers_name_unique": ("name", CUSTOMER_NAME_TAKEN),
    "customers_name_valid": ("name", "1 to 255 characters, no whitespace or control characters."),
    "users_email_unique": ("email", EMAIL_TAKEN),
    "users_email_valid": ("email", "enter a valid email address (at most 254 characters)."),
    "users_org_id_fkey": ("org", ORG_MISSING),
    "users_role_fkey": ("role", f"unknown role: use {one_of(ROLES)}."),
    # release 6.4: a new user's org and role are its primary membership's
    "org_memberships_org_id_fkey": ("org", ORG_MISSING),
    "org_memberships_role_fkey": ("role", f"unknown role: use {one_of(ROLES)}."),
    "orgs_name_valid": (
        "name",
        "1 to 255 characters: letters, digits, _ . -; starts with a letter or digit.",
    ),
}


def map_error(exc: psycopg.Error, default_field: str = "non_field_errors") -> Exception:
    """The HTTP exception for a database error (unexpected ones are returned as they are)."""
    diag = exc.diag
    constraint = diag.constraint_name or ""
    text = str(exc).strip()
    primary = diag.message_primary or (text.splitlines()[0] if text else type(exc).__name__)
    if constraint == "customers_single_project_name":  # rule 4, raised by a trigger: its message says why
        return Conflict({"name": [primary]})
    if isinstance(exc, errors.UniqueViolation):
        fld, message = CONSTRAINTS.get(constraint, (default_field, TAKEN))
        return Conflict({fld: [message]})
    if isinstance(exc, errors.ForeignKeyViolation):  # a referenced object that does not exist (now)
        fld, message = CONSTRAINTS.get(constraint, (default_field, primary))
        return Conflict({fld: [message]})
    if isinstance(exc, errors.CheckViolation):
        fld, message = CONSTRAINTS.get(constraint, (default_field, primary))
        return FieldErrors({fld: [message]})
    if isinstance(exc, errors.NotNullViolation):
        return FieldErrors({diag.column_name or default_field: ["This field may not be null."]})
    if isinstance(exc, errors.NullValueNotAllowed | errors.InvalidParameterValue):
        return FieldErrors({default_field: [primary]})
    # class 22 (data exceptions: bad text, out of range, NUL bytes refused by psycopg) and 54
    # (program limits): the input cannot be stored as given
    if isinstance(exc, psycopg.DataError) or (exc.sqlstate or "").startswith(("22", "54")):
        return FieldErrors({default_field: [primary]})
    if isinstance(exc, errors.InsufficientPrivilege):
        # a SECURITY DEFINER function's own guard (service_state.require_request_permission) or a
        # privilege PostgreSQL refuses the runtime role: the request's checks come first, so only
        # a role changed under the request gets here; never a 500
        return PermissionDeniedException(primary)
    if failover_error(exc):
        return ServiceUnavailable(STANDBY if exc.sqlstate == READ_ONLY else UNAVAILABLE)
    if exc.sqlstate in ("42P01", "42703", "42883"):  # a migration ran under the request
        return ServiceUnavailable(SCHEMA_MOVED)
    return exc
