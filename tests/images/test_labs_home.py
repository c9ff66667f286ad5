"""The labs reach a student's ~/labs, and a later start never overwrites their edits."""
import json
import uuid

import pytest
import requests

from conftest import NATIVE_BUILDS_ONLY, ROOT, docker, wait_for

LABS_STATE = "/home/jovyan/labs/.dlab-labs.json"


@pytest.fixture
def home_volume():
    name = f"dlab-test-home-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", name)
    yield name
    # This fixture ends before the container fixture does: remove the volume's containers first.
    users = docker("ps", "-aq", "--filter", f"volume={name}").stdout.split()
    if users:
        docker("rm", "-f", *users, check=False)
    docker("volume", "rm", "-f", name, check=False)


def start(cpu_container, *args):
    """Start a lab server and wait until it answers (the labs are prepared before that)."""
    cid = cpu_container.run_detached("-p", "127.0.0.1::8888", "-e", "JUPYTER_TOKEN=t", *args)
    url = cpu_container.published_url(cid)

    def answers():
        try:
            return requests.get(f"{url}/api/status", headers={"Authorization": "token t"}, timeout=2).ok
        except requests.RequestException:
            return False

    wait_for(answers, 60, message="JupyterLab to answer")
    return cid


def sh(cid, script):
    return docker("exec", cid, "bash", "-c", script).stdout


def test_the_labs_arrive_in_a_new_home(cpu_container, home_volume):
    cid = start(cpu_container, "-v", f"{home_volume}:/home/jovyan")
    image = sh(cid, "cd /opt/dlab/labs && sha256sum *.ipynb")
    home = sh(cid, "cd ~/labs && sha256sum *.ipynb")
    labs = len(list((ROOT / "labs").glob("*.ipynb")))  # every lab of the curriculum, in the image and the home
    assert image == home and image.count(".ipynb") == labs >= 10
    assert sh(cid, "stat -c %U ~/labs/00-welcome.ipynb").strip() == "jovyan"
    assert f"dlab: labs in /home/jovyan/labs: {labs} added" in cpu_container.logs(cid)


def test_a_newer_image_never_overwrites_a_students_edits(cpu_container, home_volume, tmp_path):
    first = start(cpu_container, "-v", f"{home_volume}:/home/jovyan")
    # The student edits lab 01 and deletes lab 03; lab 02 stays as it came.
    sh(first, "echo '# my notes' >> ~/labs/01-first-keras-network.ipynb && rm ~/labs/03-optimizers-from-scratch.ipynb")
    edited = sh(first, "cat ~/labs/01-first-keras-network.ipynb")
    docker("rm", "-f", first)
    # A newer image: labs 01 and 02 changed.
    newer = tmp_path / "labs"
    docker("cp", f"{cpu_container.run_detached(command=('true',))}:/opt/dlab/labs", str(newer))
    for lab in ("01-first-keras-network", "02-backprop-by-hand"):
        notebook = json.loads((newer / f"{lab}.ipynb").read_text())
        notebook["cells"].append({"cell_type": "markdown", "id": "new-cell", "metadata": {}, "source": "A new exercise."})
        (newer / f"{lab}.ipynb").write_text(json.dumps(notebook))
    newer.chmod(0o755)
    second = start(cpu_container, "-v", f"{home_volume}:/home/jovyan", "-v", f"{newer}:/newlabs:ro",
                   "-e", "DLAB_LABS_DIR=/newlabs")
    assert sh(second, "cat ~/labs/01-first-keras-network.ipynb") == edited, "the student's edit was lost"
    assert sh(second, "cat ~/labs/01-first-keras-network.dlab-*.ipynb") == (newer / "01-first-keras-network.ipynb").read_text()
    assert sh(second, "cat ~/labs/02-backprop-by-hand.ipynb") == (newer / "02-backprop-by-hand.ipynb").read_text()
    assert sh(second, "test -s ~/labs/03-optimizers-from-scratch.ipynb && echo back").strip() == "back"
    logs = cpu_container.logs(second)
    assert "01-first-keras-network.ipynb has your changes, so it was kept" in logs
    assert "1 added, 1 updated, 1 newer versions put beside your edited copies" in logs
    docker("rm", "-f", second)
    # The next start has nothing new to say, and makes no second copy.
    third = start(cpu_container, "-v", f"{home_volume}:/home/jovyan", "-v", f"{newer}:/newlabs:ro",
                  "-e", "DLAB_LABS_DIR=/newlabs")
    assert "dlab: labs in" not in cpu_container.logs(third)
    assert sh(third, "ls ~/labs | grep -c dlab-").strip() == "1"


def test_a_full_home_still_starts_jupyter(cpu_container):
    """No room for the labs: a warning that says what to do, and the student still gets in."""
    cid = start(cpu_container, "--tmpfs", "/home/jovyan:size=512k,uid=1000,gid=100")
    logs = cpu_container.logs(cid)
    assert "WARNING: dlab: could not bring the labs into /home/jovyan/labs" in logs
    assert "Free some disk space" in logs


@NATIVE_BUILDS_ONLY
def test_the_labs_sync_is_a_hook_of_the_images_with_labs(container):
    """The labs' home sync belongs to dlab/cpu and dlab/gpu (images/common), not dlab/base; the thread
    pools' hook is every image's."""
    has_labs = container.name != "dlab/base"
    logs = container.run_and_wait(command=["bash", "-c", "ls /usr/local/bin/before-notebook.d /usr/local/bin/start-notebook.d; "
                                           "command -v dlab-home-init || echo no-home-init"])
    assert "10-dlab-threads.sh" in logs
    lines = logs.splitlines()  # (the start's "Executing the command: ..." line names them all)
    assert ("50-dlab-labs.sh" in lines) == has_labs and ("no-home-init" in lines) != has_labs
