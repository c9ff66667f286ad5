"""dlab_hub.upgrade, what `make up` runs over a class an earlier release made: a database of an
older JupyterHub schema (made by JupyterHub's own migration run backwards) is upgraded with its
accounts kept and a copy beside it; a migration that fails puts the database back byte for byte;
a database from a newer release is refused with what to do. The class-server test of the same
(tests/hub/test_hub_upgrade.py) upgrades a class made by the previous dlab release."""
import hashlib
import sqlite3

import pytest
from alembic import command
from alembic.config import Config
from jupyterhub import dbutil, orm

import dlab_hub.upgrade as upgrade


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setattr(upgrade, "DATABASE", tmp_path / "jupyterhub.sqlite")
    monkeypatch.setattr(upgrade, "BACKUPS", tmp_path / "backups")
    db = orm.new_session_factory(upgrade.url())()
    db.add(orm.User(name="alice"))
    db.commit()
    db.close()
    return tmp_path


def downgrade_one_step():
    """The schema of the JupyterHub before the newest migration (4.x's, for JupyterHub 5)."""
    with dbutil._temp_alembic_ini(upgrade.url()) as ini:
        command.downgrade(Config(ini), "-1")


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def users():
    with sqlite3.connect(upgrade.DATABASE) as db:
        return [name for (name,) in db.execute("SELECT name FROM users")]


def test_a_current_database_or_none_needs_nothing(state):
    assert upgrade.main(["check"]) == 0
    upgrade.DATABASE.unlink()
    assert upgrade.main(["check"]) == 0


def test_an_older_schema_is_upgraded_with_a_copy_kept(state, capsys):
    downgrade_one_step()
    old = upgrade.schema_revision()
    before = sha(upgrade.DATABASE)
    assert upgrade.main(["check"]) == upgrade.NEEDS_UPGRADE
    assert upgrade.main(["run"]) == 0
    assert upgrade.main(["check"]) == 0 and users() == ["alice"]
    [kept] = upgrade.BACKUPS.iterdir()
    assert kept.name.startswith(f"jupyterhub.sqlite.{old}.") and sha(kept) == before
    assert kept.stat().st_mode & 0o777 == 0o600
    assert "is upgraded from schema" in capsys.readouterr().err


def test_a_failed_migration_puts_the_database_back_byte_for_byte(state, capsys):
    downgrade_one_step()
    with sqlite3.connect(upgrade.DATABASE) as db:  # the newest migration's column, already there: it fails
        db.execute("ALTER TABLE roles ADD COLUMN managed_by_auth BOOLEAN")
    before = sha(upgrade.DATABASE)
    assert upgrade.main(["run"]) == 1
    assert sha(upgrade.DATABASE) == before and users() == ["alice"]
    err = capsys.readouterr().err
    assert "could not be upgraded" in err and "duplicate column" in err and "back as it was" in err


def test_a_database_from_a_newer_release_is_refused_untouched(state, capsys):
    with sqlite3.connect(upgrade.DATABASE) as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    before = sha(upgrade.DATABASE)
    assert upgrade.main(["check"]) == upgrade.NEEDS_UPGRADE
    assert upgrade.main(["run"]) == 1
    assert sha(upgrade.DATABASE) == before
    assert "a newer dlab release made it" in capsys.readouterr().err
