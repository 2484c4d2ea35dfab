"""The Citus layout of function sources (docs/design.md section 11): ``sql/udfs/<function>/``
holds ``latest.sql`` (the current definition) and frozen copies ``<migration>.sql`` that the
migrations take in with ``\\ir``. latest.sql must equal the newest frozen copy, every frozen
copy must be taken in by its migration (or that migration's rollback, for a copy restored on
the way down), and a migration's includes are resolved when yoyo loads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import migrations

UDFS = Path(__file__).resolve().parent.parent / "sql" / "udfs"


def functions() -> list[Path]:
    return sorted(p for p in UDFS.iterdir() if p.is_dir())


def frozen(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.sql") if p.name != "latest.sql")


def test_there_are_function_sources():
    assert len(functions()) >= 10


@pytest.mark.parametrize("directory", functions(), ids=lambda p: p.name)
def test_latest_equals_the_newest_frozen_copy(directory):
    copies = frozen(directory)
    assert copies, f"{directory.name} has no frozen copy"
    newest = copies[-1]
    assert (directory / "latest.sql").read_text() == newest.read_text(), (
        f"sql/udfs/{directory.name}/latest.sql differs from {newest.name}: a change to a function is a "
        "new frozen copy taken in by a new migration, and latest.sql its copy"
    )


@pytest.mark.parametrize("directory", functions(), ids=lambda p: p.name)
def test_each_frozen_copy_is_taken_in(directory):
    for copy in frozen(directory):
        line = f"\\ir ../sql/udfs/{directory.name}/{copy.name}"
        texts = [p.read_text() for p in migrations.MIGRATIONS_DIR.glob(f"{copy.stem}.*.sql")]
        texts += [p.read_text() for p in migrations.MIGRATIONS_DIR.glob("*.rollback.sql")]
        assert any(line in t.splitlines() for t in texts), (
            f"no migration takes in {directory.name}/{copy.name}"
        )


def test_loaded_migrations_have_their_includes_taken_in():
    loaded = {m.id: m for m in migrations.load_migrations()}
    promotion = loaded["0005.org-promotion"]
    text = Path(promotion.path).read_text()
    assert "\\ir " not in text and "CREATE OR REPLACE FUNCTION config.promote_now(" in text
    rollback = Path(promotion.path).with_name("0005.org-promotion.rollback.sql").read_text()
    assert (
        "\\ir " not in rollback and "CREATE OR REPLACE FUNCTION config.check_user_memberships()" in rollback
    )
    assert promotion.hash == loaded["0005.org-promotion"].hash  # yoyo's hash: the id, stable


def test_a_missing_include_is_a_clear_error(tmp_path):
    (tmp_path / "0001.x.sql").write_text("\\ir ../nowhere/f.sql\n")
    with pytest.raises(migrations.SchemaStateError, match="takes in ../nowhere/f.sql, which does not exist"):
        migrations.resolve_includes(tmp_path / "0001.x.sql")
