"""`make up` over a class that an earlier dlab release made: the hub's database is brought to this
release's JupyterHub schema (JupyterHub's own migrations, as `jupyterhub upgrade-db` runs them),
with a copy kept first, and put back byte for byte when anything fails.

    python -m dlab_hub.upgrade check   exit 0: nothing to do (or no database yet); 10: `run` must
                                       upgrade it, with no hub running on it
    python -m dlab_hub.upgrade run     copy, upgrade, check; on any failure the copy goes back, exit 1

scripts/hub.sh up runs both in one-off containers of the new hub image, as the hub's user, on the
hub-state volume: between them it stops the running hub, and starts it again if `run` fails.
"""
import argparse
import datetime
import shutil
import sys

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from jupyterhub import dbutil, orm
from sqlalchemy import create_engine

from dlab_hub.settings import STATE_DIR
from dlab_hub.state import DATABASE, database_intact, database_revision

BACKUPS = STATE_DIR / "backups"  # on the hub-state volume, readable by the hub's user alone
NEEDS_UPGRADE = 10


def say(message):
    print(f"dlab: {message}", file=sys.stderr)


def url():
    return f"sqlite:///{DATABASE}"


def schema_revision():
    """The alembic revision the database says it has (None: not stamped, or no database)."""
    return database_revision(DATABASE)


def known_revisions():
    """(every revision this JupyterHub's migrations know, its head)."""
    with dbutil._temp_alembic_ini(url()) as ini:
        scripts = ScriptDirectory.from_config(Config(ini))
        return {script.revision for script in scripts.walk_revisions()}, scripts.get_current_head()


def needs_upgrade():
    if not DATABASE.exists():
        return False  # the class's first start: JupyterHub makes the database at its head
    try:
        orm.check_db_revision(create_engine(url()))
    except orm.DatabaseSchemaMismatch:
        return True
    return False


def run():
    found = schema_revision()
    known, head = known_revisions()
    if found and found not in known:
        say(f"the hub's database has schema {found}, which this release's JupyterHub does not know: a newer dlab"
            " release made it. Run that release (git checkout it, then make up), or put back the copy kept in the"
            f" hub-state volume's {BACKUPS.name}/ folder before that release's upgrade")
        return 1
    BACKUPS.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    kept = BACKUPS / f"jupyterhub.sqlite.{found or 'unstamped'}.{stamp}"
    shutil.copyfile(DATABASE, kept)  # byte for byte: what goes back if anything fails
    kept.chmod(0o600)
    try:
        with dbutil._temp_alembic_ini(url()) as ini:  # what `jupyterhub upgrade-db` runs: its migrations
            command.upgrade(Config(ini), "head")
        orm.check_db_revision(create_engine(url()))
        if not database_intact(DATABASE):
            raise RuntimeError("the upgraded database fails SQLite's integrity check")
    except Exception as error:  # noqa: BLE001 - whatever failed, the database goes back as it was
        shutil.copyfile(kept, DATABASE)
        say(f"the hub's database could not be upgraded from schema {found} to {head} ({str(error).splitlines()[0]})")
        say(f"it is back as it was (a copy: {kept.name} in the hub-state volume's {BACKUPS.name}/ folder), and the"
            " hub that ran starts again. Keep running the release you ran (git checkout it, then make up), and"
            " report the lines above to dlab's maintainers")
        return 1
    say(f"the hub's database is upgraded from schema {found} to {head}; the copy from before is"
        f" {kept.name} in the hub-state volume's {BACKUPS.name}/ folder")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="dlab_hub.upgrade", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "run"])
    args = parser.parse_args(argv)
    if args.command == "check":
        return NEEDS_UPGRADE if needs_upgrade() else 0
    return run()


if __name__ == "__main__":
    sys.exit(main())
