"""sql/schema.sql is the generated picture of a fully migrated database; it must not go stale."""

from __future__ import annotations

from service.schema_dump import SCHEMA_FILE, dump_schema, normalise


def test_schema_sql_is_current(db_url_64, pg_binaries):
    expected = dump_schema(db_url_64)  # the newest release
    current = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else ""
    assert current == expected, "sql/schema.sql is stale: run make schema"


def test_normalise_drops_version_noise():
    raw = (
        "--\n-- Dumped from database version 15.8\n-- Dumped by pg_dump version 15.8\n\n\n\n"
        "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n"
        "\\restrict abc\nCREATE SCHEMA config;\n\\unrestrict abc\n\n\n"
    )
    assert normalise(raw) == "--\n\nCREATE SCHEMA config;\n"
