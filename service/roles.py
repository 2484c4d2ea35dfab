"""The database roles (sql/privileges.sql) and which connection uses which.

Four roles, named ``<prefix>_owner``, ``<prefix>_app``, ``<prefix>_reader``, ``<prefix>_cron``
with the prefix ``HIERARCHY_ROLE_PREFIX`` (default ``hierarchy``): roles are cluster-wide, so
a DBA with several of these databases in one cluster gives each its own prefix. The owner runs
the migrations (``HIERARCHY_OWNER_URL``, an environment variable like ``DATABASE_URL``: the
CLI has no flag for either; or a superuser: the embedded cluster's), the service runs as the
app role (``DATABASE_URL``; the embedded cluster: the app role with a password generated into
``<data dir>/app-password``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from service.settings import SettingsError

PRIVILEGES_SQL = Path(__file__).resolve().parent.parent / "sql" / "privileges.sql"
DEFAULT_PREFIX = "hierarchy"
_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,40}")


@dataclass(frozen=True)
class Roles:
    prefix: str = DEFAULT_PREFIX

    @property
    def owner(self) -> str:
        return f"{self.prefix}_owner"

    @property
    def app(self) -> str:
        return f"{self.prefix}_app"

    @property
    def reader(self) -> str:
        return f"{self.prefix}_reader"

    @property
    def cron(self) -> str:
        return f"{self.prefix}_cron"

    def privileges_sql(self) -> sql.Composed:
        """sql/privileges.sql with these role names (identifiers and literals, nothing else)."""
        names = {"owner": self.owner, "app": self.app, "reader": self.reader, "cron": self.cron}
        values: dict[str, sql.Composable] = {}
        for key, name in names.items():
            values[key] = sql.Identifier(name)
            values[f"{key}_name"] = sql.Literal(name)
        return sql.SQL(PRIVILEGES_SQL.read_text()).format(**values)


def from_env(env: dict[str, str] | None = None) -> Roles:
    """The roles named by ``HIERARCHY_ROLE_PREFIX`` (lower-case letters, digits, ``_``)."""
    raw = (os.environ if env is None else env).get("HIERARCHY_ROLE_PREFIX", "").strip()
    if not raw:
        return Roles()
    if not _PREFIX.fullmatch(raw):
        raise SettingsError(
            f"HIERARCHY_ROLE_PREFIX={raw!r} must be a lower-case letter, then letters, digits or _"
        )
    return Roles(raw)


def owner_url(env: dict[str, str] | None = None) -> str | None:
    """``HIERARCHY_OWNER_URL``: the connection the migrations (and the operator's CLI) use."""
    return (os.environ if env is None else env).get("HIERARCHY_OWNER_URL", "").strip() or None


def as_role(url: str, role: str, password: str | None) -> str:
    """The same server and database as ``url``, logging in as ``role`` (with ``password``)."""
    if "://" in url:
        parts = urlsplit(url)
        hostport = parts.netloc.rsplit("@", 1)[-1]
        auth = quote(role, safe="") + (":" + quote(password, safe="") if password else "")
        return urlunsplit((parts.scheme, f"{auth}@{hostport}", parts.path, parts.query, ""))
    params = conninfo_to_dict(url)
    params["user"] = role
    params.pop("password", None)
    if password:
        params["password"] = password
    return make_conninfo(**params)
