"""The names the Python layer shares with the database, each written once.

The database defines these (the migrations: rows of ``config.tunables`` and ``config.roles``,
the CHECK constraints on ``customers.origin`` and ``job_runs.source``); this module is the
Python side's only copy, and tests/test_names.py compares each with the migrated database, so
a migration that renames one fails a test rather than a request. Rules themselves are not
here: they live in the database (docs/design.md, section 4).
"""

from __future__ import annotations

# -- tunables (config.tunables) --------------------------------------------------------------------
MODE_TUNABLE = "turbine_api_feature_migrate_projects_to_orgs"  # true: a customer per project (rules 2, 3)
GRACE_TUNABLE = "customer_orphan_grace_seconds"  # how long an orphan waits for the job (rule 6)

# -- roles (config.roles), from most to least powerful --------------------------------------------
SUPER_ADMIN = "super_admin"
ROLES = (SUPER_ADMIN, "operator", "read_only")

# -- why a customer exists (constraint customers_origin_known) ------------------------------------
ORIGINS = ("system", "default", "project", "manual")

# -- who started a job run (constraint job_runs_source_known); the service passes api, cli, service
JOB_SOURCES = ("cron", "service", "api", "cli", "upgrade", "tunable", "switch", "sql")

# -- passwords of API users: the API's and the CLI's rule (argon2 hashes any length; the cap
#    bounds the hashing work a request can ask for) ------------------------------------------------
PASSWORD_LENGTH = (8, 1024)


def one_of(names: tuple[str, ...]) -> str:
    """``"a, b or c"``, for messages."""
    return ", ".join(names[:-1]) + f" or {names[-1]}"
