"""Process settings, read once from the environment.

Environment variables (all optional):

``DATABASE_URL``
    libpq connection string or ``postgresql://`` URL of the server to use. Unset: an embedded
    PostgreSQL cluster is initialised and started under ``HIERARCHY_OWNER_URL``
    Connection string of the role that owns the schema (``<prefix>_owner``, or a superuser):
    the migrations and the operator's commands use it; ``hierarchy run`` serves the API with
    ``DATABASE_URL`` (the runtime role ``<prefix>_app``). Unset: ``DATABASE_URL`` for both.
``HIERARCHY_ROLE_PREFIX``
    Prefix of the database roles (``<prefix>_owner``, ``_app``, ``_reader``, ``_cron``; default
    ``hierarchy``): one per database when several share a cluster (service.roles).
``HIERARCHY_DATA_DIR``.
``HIERARCHY_DATA_DIR``
    Directory of the embedded cluster (data, log, socket, generated password). Default ``.data``
    in the current working directory (the repository root under ``make run``).
``HIERARCHY_DB_NAME``
    Name of the application database inside the embedded cluster. Default ``hierarchy``.
``HIERARCHY_HOST`` / ``HIERARCHY_PORT``
    Address the HTTP server listens on. Default ``127.0.0.1`` / ``8080``.
``RECONCILE_INTERVAL``
    Seconds between runs of the background job when the service schedules it itself (where
    pg_cron is absent). Default ``10``.
``HIERARCHY_ADMIN_EMAIL`` / ``HIERARCHY_ADMIN_PASSWORD``
    Credentials of the administrator ensured at start. Unset: generated and printed on first start.
``HIERARCHY_PREPARED_STATEMENTS``
    ``on`` (default) or ``off``: whether the service's pool lets psycopg prepare statements on
    the server. ``off`` behind PgBouncer in transaction pooling (see docs/operators.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _int(env: dict[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range ({low}..{high})")
    return value


def _float(env: dict[str, str], name: str, default: float, *, low: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None
    if not value >= low:
        raise SettingsError(f"{name}={raw} must be at least {low}")
    return value


def prepared_statements(env: dict[str, str] | None = None) -> bool:
    """``HIERARCHY_PREPARED_STATEMENTS``: on (default) or off."""
    raw = (os.environ if env is None else env).get("HIERARCHY_PREPARED_STATEMENTS", "").strip().lower()
    if raw in ("", "on", "1", "true", "yes"):
        return True
    if raw in ("off", "0", "false", "no"):
        return False
    raise SettingsError(f"HIERARCHY_PREPARED_STATEMENTS={raw!r} must be on or off")


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    host: str
    port: int
    reconcile_interval: float
    admin_email: str | None
    admin_password: str | None
    db_name: str
    prepared_statements: bool = True
    owner_url: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("HIERARCHY_DATA_DIR") or ".data")
        db_name = env.get("HIERARCHY_DB_NAME", "").strip() or "hierarchy"
        return cls(
            database_url=env.get("DATABASE_URL", "").strip() or None,
            data_dir=data_dir.absolute(),
            host=env.get("HIERARCHY_HOST", "").strip() or "127.0.0.1",
            port=_int(env, "HIERARCHY_PORT", 8080, low=1, high=65535),
            reconcile_interval=_float(env, "RECONCILE_INTERVAL", 10.0, low=0.1),
            admin_email=env.get("HIERARCHY_ADMIN_EMAIL", "").strip() or None,
            admin_password=env.get("HIERARCHY_ADMIN_PASSWORD") or None,
            db_name=db_name,
            prepared_statements=prepared_statements(env),
            owner_url=env.get("HIERARCHY_OWNER_URL", "").strip() or None,
        )
