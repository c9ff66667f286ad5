"""An upgrade that loses nothing: a class made by the previous dlab release (its own commit: its hub
image, scripts and compose file), with accounts approved and waiting, a changed password, a token,
the organizer's role, a home, a hand-in, the course folder and a pre-started hold, then this
release's `make up`: everything is there, every login works, and the pre-started server ran on.

Both releases run JupyterHub 5.5.4, so the class's database is first taken one schema back with
JupyterHub's own migration (to JupyterHub 4's schema): this release's `make up` then runs the real
migration. Before that, a migration that fails (the column it adds planted already) leaves the
database byte for byte as it was and says what to do; the next `make up`, once it is mended,
upgrades it."""
import subprocess

import pytest

from classload import PASSWORD
from conftest import ROOT, docker
from hubstack import PREFIX, auth, remove_test_stack, wait_until, xsrf

PREVIOUS_RELEASE = "b74af37"  # dlab 0.1.0's last commit (CHANGELOG.md)
# The previous release's hub image under its own tag: its files name dlab/hub:latest (its compose
# file, its helpers, its build), read here as this tag, so that the old class runs on the image it
# built while dlab/hub:latest stays this release's for the classes of the tests beside it.
PREVIOUS_HUB = "dlab/hub:0.1.0"
NAMING_THE_HUB = ("compose.yaml", "images/build.yaml", "scripts/hub.sh", "scripts/lib.sh", "hub/dlab_spawner.py",
                  "hub/jupyterhub_config.py")
NEW_PASSWORD = "bobs-own-password-2"
STATE = f"{PREFIX}-hub-state"


def run(tree, command, hub=None, timeout=900):
    return subprocess.run(command, cwd=tree, env=hub.env({}) if hub else None, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def previous_release(tmp_path):
    """The previous release's files, and its hub image, as PREVIOUS_HUB."""
    if subprocess.run(["git", "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], cwd=ROOT).returncode != 0:
        pytest.skip(f"the previous release's commit {PREVIOUS_RELEASE} is not in this clone: git fetch --unshallow")
    tree = tmp_path / "dlab-0.1.0"
    tree.mkdir()
    subprocess.run(f"git archive {PREVIOUS_RELEASE} | tar -x -C {tree}", shell=True, cwd=ROOT, check=True)
    for path in NAMING_THE_HUB:
        file = tree / path
        assert "dlab/hub:latest" in file.read_text(), f"{path} of {PREVIOUS_RELEASE} no longer names the hub's image"
        file.write_text(file.read_text().replace("dlab/hub:latest", PREVIOUS_HUB))
    built = run(tree, ["scripts/build-images.sh", "hub"])
    assert built.returncode == 0, built.stderr[-3000:]
    assert docker("image", "inspect", "-f", "{{.Id}}", PREVIOUS_HUB).stdout != docker("image", "inspect", "-f", "{{.Id}}", "dlab/hub:latest").stdout
    yield tree


def on_state(command):
    """A shell command on the class's hub-state volume, in a one-off container of the hub image."""
    return docker("run", "--rm", "--network", "none", "--user", "1001", "-v", f"{STATE}:/srv/jupyterhub",
                  "--entrypoint", "sh", "dlab/hub:latest", "-c", command).stdout


def sql(statement):
    return on_state(f"python -c \"import sqlite3; db = sqlite3.connect('/srv/jupyterhub/jupyterhub.sqlite');"
                    f" db.execute('{statement}'); db.commit()\"")


def database_sha():
    return on_state("sha256sum /srv/jupyterhub/jupyterhub.sqlite").split()[0]


def hub_image():
    return docker("inspect", "-f", "{{.Config.Image}}", f"{PREFIX}-hub").stdout.strip()


def forget_the_class(hub):
    hub.settings, hub._admin_password, hub._admin_token = None, None, None


def change_password(hub, name, old, new):
    s = hub.session(name, old)
    form = s.get(hub.url + "/hub/change-password", timeout=30)
    r = s.post(hub.url + "/hub/change-password", timeout=30, data={
        "old_password": old, "new_password": new, "new_password_confirmation": new, "_xsrf": xsrf(form.text)})
    assert "changed successfully" in r.text, r.text[-2000:]


def test_a_class_made_by_the_previous_release_upgrades_with_nothing_lost(hub, previous_release):
    remove_test_stack()  # a class of the previous release's own making
    forget_the_class(hub)
    up = run(previous_release, ["scripts/hub.sh", "up"], hub)
    assert up.returncode == 0, up.stderr[-3000:]
    hub.settings = {}  # the harness's view of it: up, with the tests' settings
    wait_until(lambda: hub.request("GET", hub.url + "/hub/api/", timeout=5).ok, 60, "the previous release's hub")
    assert hub_image() == PREVIOUS_HUB

    # Its class: accounts approved and one waiting, a changed password, a token, an instructor.
    for name in ("ada", "bob", "tutor"):
        hub.student(name, PASSWORD)
    assert "sent to the admin" in hub.signup("waiting", PASSWORD)
    change_password(hub, "bob", PASSWORD, NEW_PASSWORD)
    token = hub.user_token("ada")
    assert hub.api("POST", "/groups/instructors").status_code == 201
    assert hub.api("POST", "/groups/instructors/users", json={"users": ["tutor"]}).ok
    # A home, a hand-in, the course folder.
    for name in ("ada", "tutor"):
        hub.start_server(name)
    _, error = hub.run_code("tutor", "open('/home/jovyan/course/syllabus.md', 'w').write('week 1: tensors')")
    assert error is None, error
    _, error = hub.run_code("ada", "import os; os.makedirs('/home/jovyan/work', exist_ok=True)\n"
                                   "open('/home/jovyan/work/notes.txt', 'w').write('my notes')\n"
                                   "open('/home/jovyan/handin/essay.txt', 'w').write('my essay')")
    assert error is None, error
    hub.stop_server("ada")
    # A pre-started server, held from the idle culler.
    held = run(previous_release, ["scripts/hub.sh", "prestart", "ada"], hub)
    assert held.returncode == 0 and "1 started" in held.stderr, held.stderr
    ada_container = hub.container("ada")["Id"]
    holds = on_state("cat /srv/jupyterhub/prestart-holds.json")
    assert "ada" in holds, holds

    # The previous JupyterHub's schema, with the hub stopped (students' servers run on).
    docker("stop", "--time", "30", f"{PREFIX}-hub")
    on_state("python -c \"from alembic import command; from alembic.config import Config; from jupyterhub import dbutil\n"
             "with dbutil._temp_alembic_ini('sqlite:////srv/jupyterhub/jupyterhub.sqlite') as ini:"
             " command.downgrade(Config(ini), '-1')\"")
    sql("ALTER TABLE roles ADD COLUMN managed_by_auth BOOLEAN")  # the migration's own column: it fails
    before = database_sha()

    # This release's make up (its hub image): the failed migration is put back and said.
    failed = hub.script("up", {}, check=False)
    assert failed.returncode == 1, failed.stderr
    assert "could not be upgraded" in failed.stderr and "back as it was" in failed.stderr, failed.stderr
    assert database_sha() == before
    assert on_state("ls /srv/jupyterhub/backups").count("jupyterhub.sqlite.3c2384c5aae1.") == 1

    # Mended, the next make up upgrades it.
    sql("ALTER TABLE roles DROP COLUMN managed_by_auth")
    forget_the_class(hub)
    hub.restart()
    assert "is upgraded from schema 3c2384c5aae1 to 4621fec11365" in hub.up_output, hub.up_output
    assert hub_image() == "dlab/hub:latest"

    # Everything is there, and every login works.
    assert hub.try_login("ada", PASSWORD)[0] and hub.try_login("tutor", PASSWORD)[0]
    assert hub.try_login("bob", NEW_PASSWORD)[0] and not hub.try_login("bob", PASSWORD)[0]
    assert not hub.try_login("waiting", PASSWORD)[0]
    organizer = hub.session(hub.admin, hub.admin_password)
    assert "waiting" in organizer.get(hub.url + "/hub/authorize", timeout=30).text
    assert "organizer" in hub.api("GET", f"/users/{hub.admin}").json()["roles"]
    me = hub.request("GET", f"{hub.url}/hub/api/user", headers=auth(token), timeout=30)
    assert me.ok and me.json()["name"] == "ada", me.text
    assert hub.api("GET", "/groups/instructors").json()["users"] == ["tutor"]
    assert hub.container("ada")["Id"] == ada_container, "the pre-started server did not run on"
    assert "ada" in on_state("cat /srv/jupyterhub/prestart-holds.json")
    out, error = hub.run_code("ada", "print(open('/home/jovyan/work/notes.txt').read(), open('/home/jovyan/handin/essay.txt').read(),"
                                     " open('/home/jovyan/course/syllabus.md').read(), sep='|')")
    assert (out.strip(), error) == ("my notes|my essay|week 1: tensors", None), (out, error)
    hub.stop_all_servers()
