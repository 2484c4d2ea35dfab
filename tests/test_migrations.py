"""Release migrations (service.migrations) against a real database: up, down, up, failures."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from service import migrations
from service.migrations import (
    DatabaseUnreachable,
    MigrationFailed,
    MigrationLocked,
    UnknownRelease,
)
from tests.rules.helpers import yoyo_marked

PROJECTS_MD5 = "SELECT md5(string_agg(t::text, ',' ORDER BY uuid)) FROM config.projects t"
TUNABLES_MD5 = "SELECT md5(string_agg(t::text, ',' ORDER BY name)) FROM config.tunables t"
# release 6.4 spans two migrations
UP_64, UP_MEMBERSHIPS = ("apply", "0003.customers-required"), ("apply", "0004.org-memberships")
DOWN_64, DOWN_MEMBERSHIPS = ("rollback", "0003.customers-required"), ("rollback", "0004.org-memberships")
UP_PROMOTION, DOWN_PROMOTION = ("apply", "0005.org-promotion"), ("rollback", "0005.org-promotion")


def one(url: str, query: str, params=None):
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def execute(url: str, query: str, params=None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)


def hierarchy(*args: str, url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "HIERARCHY_DATA_DIR": str(tmp_path / "unused")}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def has_customers_table(url: str) -> bool:
    return one(url, "SELECT to_regclass('config.customers') IS NOT NULL")


def test_plan_from_empty(empty_db_url):
    assert migrations.current_release(empty_db_url) is None
    assert migrations.plan(empty_db_url) == [
        ("apply", "0001.baseline"),
        ("apply", "0002.customers"),
        ("apply", "0003.customers-required"),
        ("apply", "0004.org-memberships"),
        ("apply", "0005.org-promotion"),
    ]
    assert migrations.plan(empty_db_url, "6.3") == [("apply", "0001.baseline"), ("apply", "0002.customers")]
    assert migrations.plan(empty_db_url, "6.0") == [("apply", "0001.baseline")]


def test_up_down_up_keeps_projects_and_tunables(empty_db_url):
    url = empty_db_url
    assert migrations.migrate(url, "6.0") == [("apply", "0001.baseline")]
    assert migrations.current_release(url) == "6.0"
    execute(
        url,
        "INSERT INTO config.projects(org_id, name) "
        "SELECT (SELECT uuid FROM config.orgs LIMIT 1), 'p' || g FROM generate_series(1, 1000) g",
    )
    projects_before, tunables_before = one(url, PROJECTS_MD5), one(url, TUNABLES_MD5)
    assert one(url, "SELECT count(*) FROM config.projects") >= 1000

    assert migrations.migrate(url, "6.1") == [("apply", "0002.customers")]
    assert migrations.current_release(url) == "6.1"
    assert has_customers_table(url)
    assert migrations.count_customers(url) > 0
    assert one(url, "SELECT count(*) FROM config.projects WHERE customer_id IS NULL") == 0

    assert migrations.plan(url, "6.0") == [("rollback", "0002.customers")]
    assert migrations.migrate(url, "6.0") == [("rollback", "0002.customers")]
    assert migrations.current_release(url) == "6.0"
    assert not has_customers_table(url)
    assert migrations.count_customers(url) == 0
    assert one(url, PROJECTS_MD5) == projects_before, "projects survive the downgrade row for row"
    assert one(url, TUNABLES_MD5) == tunables_before, "tunables survive the downgrade"

    assert migrations.migrate(url, "6.1") == [("apply", "0002.customers")]
    assert has_customers_table(url)
    assert migrations.count_customers(url) > 0
    assert one(url, "SELECT count(*) FROM config.projects WHERE customer_id IS NULL") == 0
    assert yoyo_marked(url) == {"0001.baseline", "0002.customers"}


def test_downgrade_at_60_changes_nothing(empty_db_url):
    url = empty_db_url
    migrations.migrate(url, "6.0")
    before = one(url, PROJECTS_MD5), one(url, TUNABLES_MD5)
    assert migrations.plan(url, "6.0") == []
    assert migrations.migrate(url, "6.0") == []
    assert (one(url, PROJECTS_MD5), one(url, TUNABLES_MD5)) == before
    assert migrations.current_release(url) == "6.0"


def test_upgrade_at_latest_changes_nothing(db_url_64):
    assert migrations.LATEST == "6.4"
    assert migrations.migrate(db_url_64) == []
    assert migrations.current_release(db_url_64) == migrations.LATEST


@pytest.mark.parametrize("release", ["6.2", "6.3"])
def test_62_and_63_name_the_61_schema(db_url, release):
    assert migrations.plan(db_url, release) == []
    assert migrations.migrate(db_url, release) == []
    assert migrations.current_release(db_url) == "6.1"
    assert migrations.migrate(db_url, "6.4") == [UP_64, UP_MEMBERSHIPS, UP_PROMOTION]
    assert migrations.migrate(db_url, release) == [DOWN_PROMOTION, DOWN_MEMBERSHIPS, DOWN_64]
    assert migrations.current_release(db_url) == "6.1"


def test_unknown_release(db_url, tmp_path):
    with pytest.raises(UnknownRelease, match=r"^unknown release '7.0'; known: 6.0, 6.1, 6.2, 6.3, 6.4$"):
        migrations.migrate(db_url, "7.0")
    with pytest.raises(UnknownRelease):
        migrations.plan(db_url, "7.0")
    result = hierarchy("migrate", "--to", "7.0", url=db_url, tmp_path=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "hierarchy: unknown release '7.0'; known: 6.0, 6.1, 6.2, 6.3, 6.4"
    ]
    assert migrations.current_release(db_url) == "6.1"


def test_failing_migration_leaves_nothing_half_applied(empty_db_url):
    url = empty_db_url
    migrations.migrate(url, "6.0")
    execute(url, "CREATE TABLE config.customers (conflicting int)")
    with pytest.raises(MigrationFailed) as info:
        migrations.migrate(url)
    message = str(info.value)
    assert "0002.customers" in message and "nothing of it was applied" in message
    assert "release 6.0" in message and "\n" not in message
    assert migrations.current_release(url) == "6.0"
    customer_id = one(
        url,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'config' AND table_name = 'projects' AND column_name = 'customer_id'",
    )
    assert customer_id == 0
    assert yoyo_marked(url) == {"0001.baseline"}
    # once the cause is gone, the same command succeeds
    execute(url, "DROP TABLE config.customers")
    assert migrations.migrate(url, "6.1") == [("apply", "0002.customers")]


def test_applied_but_unmarked_migration_is_repaired(db_url):
    # What a process killed between yoyo's apply and mark transactions leaves behind.
    execute(db_url, "DELETE FROM _yoyo_migration WHERE migration_id = %s", ("0002.customers",))
    assert migrations.migrate(db_url, "6.1") == [], "0002 is not applied twice"
    assert yoyo_marked(db_url) == {"0001.baseline", "0002.customers"}
    assert migrations.current_release(db_url) == "6.1"
    # and yoyo's records now allow a normal downgrade
    assert migrations.migrate(db_url, "6.0") == [("rollback", "0002.customers")]


def test_rolled_back_but_still_marked_migration_is_repaired(db_url):
    migrations.migrate(db_url, "6.0")
    execute(
        db_url,
        "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc) VALUES (%s, %s, now())",
        (hashlib.sha256(b"0002.customers").hexdigest(), "0002.customers"),
    )
    assert migrations.migrate(db_url, "6.1") == [("apply", "0002.customers")]
    assert migrations.current_release(db_url) == "6.1"


def test_stale_lock_is_reported_and_broken(db_url, tmp_path):
    execute(db_url, "INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)")
    with pytest.raises(MigrationLocked) as info:
        migrations.migrate(db_url, "6.0", lock_timeout=0.2)
    message = str(info.value)
    assert "pid 999999 since" in message
    assert "hierarchy migrate --break-lock" in message
    assert migrations.current_release(db_url) == "6.1"

    result = hierarchy(
        "migrate", "--to", "6.0", "--yes", "--lock-timeout", "0.2", url=db_url, tmp_path=tmp_path
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("hierarchy: another migration holds the lock (pid")
    assert "Traceback" not in result.stderr

    result = hierarchy("migrate", "--break-lock", url=db_url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert one(db_url, "SELECT count(*) FROM yoyo_lock") == 0
    assert migrations.current_release(db_url) == "6.4", "then it migrated to the newest release"
    assert migrations.migrate(db_url, "6.0", lock_timeout=0.2) == [
        DOWN_PROMOTION,
        DOWN_MEMBERSHIPS,
        ("rollback", "0003.customers-required"),
        ("rollback", "0002.customers"),
    ]


def test_break_lock_api(db_url):
    execute(db_url, "INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 424242)")
    assert "pid 424242" in migrations.break_lock(db_url)
    assert migrations.break_lock(db_url) is None


def test_unreachable_database():
    url = "postgresql://postgres:s3cret@127.0.0.1:1/hierarchy"
    for call in (lambda: migrations.migrate(url), lambda: migrations.current_release(url)):
        with pytest.raises(DatabaseUnreachable) as info:
            call()
        message = str(info.value)
        assert "s3cret" not in message
        assert "postgresql://postgres@127.0.0.1:1/hierarchy" in message
        assert "is the server running? set DATABASE_URL" in message
        assert "\n" not in message


def test_yoyo_url_conversion():
    assert (
        migrations.yoyo_url("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db?connect_timeout=10"
    )
    converted = migrations.yoyo_url("host=/run/sock port=5433 dbname=d user=u")
    assert converted.startswith("postgresql+psycopg://u@/d?")
    assert "host=%2Frun%2Fsock" in converted and "port=5433" in converted
    with pytest.raises(migrations.BadDatabaseUrl):
        migrations.yoyo_url("mysql://x@y/z")


def test_service_state_is_outside_the_release_ladder(empty_db_url):
    """sql/service_state.sql (the login throttle) is applied after every migration, at every
    release, even when there is no step to run; no downgrade removes it or its rows."""
    url = empty_db_url
    throttle = "SELECT to_regclass('service_state.login_failures') IS NOT NULL"
    migrations.migrate(url, "6.0")
    assert one(url, throttle)
    execute(
        url,
        "INSERT INTO service_state.login_failures (scope, key, attempts, expires) "
        "VALUES ('account', 'kept@example.com', ARRAY[now()], now() + interval '1 minute')",
    )
    migrations.migrate(url, "6.4")
    migrations.migrate(url, "6.0")
    assert one(url, "SELECT key FROM service_state.login_failures") == "kept@example.com"
    execute(url, "DROP SCHEMA service_state CASCADE")
    assert migrations.migrate(url, "6.0") == []
    assert one(url, throttle)
    assert migrations.migrate(url, "6.0") == []  # idempotent


# -- a release of several migrations (6.4: 0003 then 0004) ---------------------------------------
def test_release_spanning_two_migrations_reconciles_each(db_url):
    """The database's position inside a release is config.schema_migration() (absent: the
    release's first migration), so yoyo's records are reconciled per migration."""
    assert migrations.migrate(db_url, "6.4") == [UP_64, UP_MEMBERSHIPS, UP_PROMOTION]
    assert one(db_url, "SELECT config.schema_migration()") == "0005.org-promotion"
    # killed after 0004 and 0005 committed, before yoyo recorded them
    execute(
        db_url,
        "DELETE FROM _yoyo_migration WHERE migration_id IN ('0004.org-memberships', '0005.org-promotion')",
    )
    assert migrations.plan(db_url, "6.4") == []
    assert migrations.migrate(db_url, "6.4") == []
    assert yoyo_marked(db_url) >= {"0003.customers-required", "0004.org-memberships", "0005.org-promotion"}

    # 0005 rolled back (its rollback committed) but yoyo still records it: the database
    # reports 6.4 at 0004 (the rollback redefines schema_migration()), and the plan is to
    # apply 0005 again
    rollback_sql = migrations.resolve_includes(migrations.MIGRATIONS_DIR / "0005.org-promotion.rollback.sql")
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
        conn.execute(rollback_sql)
    assert migrations.current_release(db_url) == "6.4"
    assert one(db_url, "SELECT config.schema_migration()") == "0004.org-memberships"
    assert migrations.plan(db_url, "6.4") == [UP_PROMOTION]
    assert migrations.plan(db_url, "6.1") == [DOWN_MEMBERSHIPS, DOWN_64]
    assert migrations.migrate(db_url, "6.4") == [UP_PROMOTION]
    assert "0005.org-promotion" in yoyo_marked(db_url)

    # 0005 and 0004 rolled back by hand: 6.4 without schema_migration(), i.e. 0003
    for name in ("0005.org-promotion", "0004.org-memberships"):
        with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
            conn.execute(migrations.resolve_includes(migrations.MIGRATIONS_DIR / f"{name}.rollback.sql"))
    assert one(db_url, "SELECT to_regprocedure('config.schema_migration()') IS NULL")
    assert migrations.plan(db_url, "6.4") == [UP_MEMBERSHIPS, UP_PROMOTION]
    assert migrations.plan(db_url, "6.1") == [DOWN_64]
    assert migrations.migrate(db_url, "6.4") == [UP_MEMBERSHIPS, UP_PROMOTION]
    assert migrations.migrate(db_url, "6.1") == [DOWN_PROMOTION, DOWN_MEMBERSHIPS, DOWN_64]
    assert yoyo_marked(db_url) == {"0001.baseline", "0002.customers"}
