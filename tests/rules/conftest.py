"""Helpers for the rule tests: plain psycopg against a real database, asserting rows."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture
def db(db_url):
    """An autocommit connection to a fresh database at release 6.1."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn
