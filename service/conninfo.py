"""Connection strings with one host or several (a replicated cluster).

Every entry point (the service's pool, the CLI, migrations) takes a libpq connection string in
either form, with one host or a list of them:

    postgresql://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write
    host=h1,h2 port=5432,5432 dbname=db user=u password=p target_session_attrs=read-write

libpq tries the hosts in order; ``target_session_attrs=read-write`` makes it skip a server that
does not accept writes (a standby, a primary being demoted), so it finds the current primary.
On a cluster that parameter is required. Decision: everything this program does writes, so a
URL that lists several hosts and names no ``target_session_attrs`` gets ``read-write`` added
(:func:`for_primary`); an explicit value (``any``, ``prefer-standby``, ...) is kept as given.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PRIMARY = "read-write"


def _normalised(url: str) -> str:
    """libpq does not know SQLAlchemy-style schemes; yoyo's ``postgresql+psycopg://`` is one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def hosts(url: str) -> list[str]:
    """The hosts the string lists (``[]`` when it names none: libpq's default socket)."""
    params = conninfo_to_dict(_normalised(url))
    listed = str(params.get("host") or params.get("hostaddr") or "")
    return listed.split(",") if listed else []


def for_primary(url: str) -> str:
    """``url`` with ``target_session_attrs=read-write`` when it lists several hosts and no attrs.

    A string libpq cannot parse is returned unchanged: connecting reports the error.
    """
    try:
        params = conninfo_to_dict(_normalised(url))
    except psycopg.ProgrammingError:
        return url
    if "target_session_attrs" in params or len(hosts(url)) < 2:
        return url
    return make_conninfo(_normalised(url), target_session_attrs=PRIMARY)
