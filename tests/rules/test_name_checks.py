"""The name CHECK constraints accept exactly the names their bounded-repetition regexes did.

The checks are written ``+``/``*`` plus a length test (the regex engine is slow on ``{0,254}``);
each edge case is inserted for real and the outcome compared with the original expression,
evaluated by the same server on the name as stored (customers store spaces as dashes).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from tests.rules.helpers import org_id

# the expressions as they were, before the rewrite
ORIGINAL = {
    "orgs_name_valid": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$",
    "projects_name_valid": "^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$",
    "customers_name_valid": "^[^[:space:][:cntrl:]]{1,255}$",
}

EDGE_CASES = [
    "",
    "a",
    "Z9",
    "a" * 254,
    "a" * 255,
    "a" * 256,
    "a" * 300,
    "9" + "-" * 254,
    "9" + "-" * 255,
    "-a",
    "_a",
    ".a",
    "a-",
    "a_b",
    "a.b",
    "a b",
    " a",
    "a ",
    "a\tb",
    "a\n",
    "\na",
    "a" * 255 + "\n",
    "a\x01",
    "a\x7f",
    "a\u00a0b",
    "é",
    "é" * 255,
    "é" * 256,
    "a/b",
    "a:b",
]


def _accepted(conn: psycopg.Connection, constraint: str, name: str) -> bool:
    """Whether inserting ``name`` passes ``constraint`` (the insert is rolled back)."""
    org = org_id(conn)
    try:
        with conn.transaction(force_rollback=True):
            if constraint == "orgs_name_valid":
                conn.execute("INSERT INTO config.orgs (name) VALUES (%s)", (name,))
            elif constraint == "projects_name_valid":
                conn.execute("INSERT INTO config.projects (org_id, name) VALUES (%s, %s)", (org, name))
            else:
                conn.execute("INSERT INTO config.customers (name) VALUES (%s)", (name,))
    except errors.CheckViolation as exc:
        assert exc.diag.constraint_name == constraint, exc
        return False
    return True


@pytest.mark.parametrize("constraint", sorted(ORIGINAL))
def test_name_checks_accept_and_refuse_what_the_bounded_regexes_did(db, constraint):
    stored = (lambda n: n.replace(" ", "-")) if constraint == "customers_name_valid" else (lambda n: n)
    expected = {
        name: db.execute("SELECT %s::text ~ %s::text", (stored(name), ORIGINAL[constraint])).fetchone()[0]
        for name in EDGE_CASES
    }
    got = {name: _accepted(db, constraint, name) for name in EDGE_CASES}
    assert got == expected
    # the edge cases do reach both sides of every check, at the 255 / 256 boundary included
    assert got["a" * 255] and not got["a" * 256] and not got[""] and not got["a\x01"]
    assert got["-a"] is (constraint == "customers_name_valid")
