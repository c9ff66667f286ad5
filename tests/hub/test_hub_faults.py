"""Faults, with nothing lost: a hub restart under running kernels, a killed container, the idle
culler, `make down` then `make up`, an image upgrade, and a kernel that runs out of memory."""
import json

from conftest import docker
from hubstack import PREFIX, wait_until

HUB = f"{PREFIX}-hub"


def add_student(hub, name):
    hub.restart()
    hub.api("POST", f"/users/{name}")
    hub.start_server(name)
    return hub.user_token(name)


def test_a_hub_restart_leaves_running_kernels_and_files_alone(hub):
    token = add_student(hub, "nora")
    container = hub.container("nora")["Id"]
    kernel = hub.new_kernel("nora", token)
    _, error = hub.execute("nora", kernel, "state = 41\nopen('draft.txt', 'w').write('mid-lesson')", token)
    assert error is None
    # The hub goes down (an upgrade, a crash): the proxy, in its own container, keeps routing, so
    # the student goes on working in the same kernel while the hub is away.
    docker("stop", HUB)
    out, error = hub.execute("nora", kernel, "state += 1\nprint(state, open('draft.txt').read())", token)
    assert (out.strip(), error) == ("42 mid-lesson", None), "the student lost her kernel while the hub was down"
    docker("start", HUB)
    wait_until(lambda: hub.request("GET", hub.url + "/hub/api/", timeout=5).ok, 120, "the hub to answer again")
    assert hub.container("nora")["Id"] == container, "the restart replaced the student's container"
    assert kernel in hub.kernels("nora", token)
    out, error = hub.execute("nora", kernel, "print(state + 1, open('draft.txt').read())", token)
    assert (out.strip(), error) == ("43 mid-lesson", None)
    hub.stop_server("nora")


def test_a_killed_container_comes_back_with_its_home_as_it_was(hub):
    token = add_student(hub, "omar")
    _, error = hub.run_code("omar", "import os; os.makedirs('project', exist_ok=True)\n"
                                    "open('project/model.py', 'w').write('weights = 7')", token=token)
    assert error is None
    killed = hub.container("omar")["Id"]
    docker("kill", killed)  # as the OOM killer of the host, or an organizer's slip, would
    hub.start_server("omar")  # the hub sees the dead container and starts a new one
    assert hub.container("omar")["Id"] != killed
    out, error = hub.run_code("omar", "print(open('project/model.py').read())", token=token)
    assert (out.strip(), error) == ("weights = 7", None)
    hub.stop_server("omar")


def test_the_idle_culler_stops_an_idle_server_and_keeps_its_home(hub):
    hub.restart(DLAB_IDLE_TIMEOUT="20", DLAB_CULL_EVERY="5")
    hub.api("POST", "/users/jade")
    hub.start_server("jade")
    _, error = hub.run_code("jade", "open('notes.md', 'w').write('before the break')")
    assert error is None
    wait_until(lambda: hub.server("jade") is None, 180, "the idle culler to stop jade's server")
    assert hub.container("jade") is None
    assert "idle-culler" in hub.logs()
    hub.start_server("jade")
    out, error = hub.run_code("jade", "print(open('notes.md').read())")
    assert (out.strip(), error) == ("before the break", None)
    hub.stop_server("jade")


def test_make_down_then_make_up_keeps_every_account_and_file(hub):
    hub.restart()
    hub.api("POST", "/users/kim")
    hub.start_server("kim")
    _, error = hub.run_code("kim", "open('/home/jovyan/work.txt', 'w').write('tomorrow')")
    assert error is None
    down = hub.script("down", check=False)
    assert down.returncode == 0, down.stderr
    # The servers outlive a hub restart, but not make down.
    assert docker("ps", "-aq", "--filter", f"label=org.dlab.hub={PREFIX}").stdout.strip() == "", "servers left"
    assert docker("ps", "-aq", "--filter", f"name=^{HUB}$").stdout.strip() == "", "the hub is left"
    for volume in (f"{PREFIX}-hub-state", f"{PREFIX}-home-kim"):
        assert docker("volume", "inspect", volume).returncode == 0, f"{volume} was removed"
    hub.restart()
    assert hub.server("kim") is None, "the hub still counts kim's stopped server as running"
    hub.start_server("kim")
    out, error = hub.run_code("kim", "print(open('/home/jovyan/work.txt').read())")
    assert (out.strip(), error) == ("tomorrow", None)
    assert hub.session(hub.admin, hub.admin_password), "the accounts did not survive make down"
    hub.stop_server("kim")


UPGRADE = """
import json, pathlib
labs = sorted(pathlib.Path("/opt/dlab/labs").glob("*.ipynb"))
for lab in labs[:2]:  # the next version of the first two labs: one more cell
    nb = json.loads(lab.read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "upgrade", "metadata": {}, "source": "New in 0.2.0-test."})
    lab.write_text(json.dumps(nb, indent=1))
(labs[0].parent / "99-new-lab.ipynb").write_text(labs[0].read_text())
manifest = pathlib.Path("/opt/dlab/manifest.json")
manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "version": "0.2.0-test"}))
"""

LIST_LABS = "import json, os; print(json.dumps(sorted(f for f in os.listdir('labs') if f.endswith('.ipynb'))))"


def test_an_image_upgrade_keeps_homes_and_puts_new_labs_beside_edits(hub, tmp_path):
    token = add_student(hub, "pia")
    labs, error = hub.run_code("pia", LIST_LABS, token=token)
    edited, untouched = json.loads(labs)[:2]
    _, error = hub.run_code("pia", f"open('labs/{edited}', 'a').write(' ')\nopen('mine.txt', 'w').write('mine')",
                            token=token)
    assert error is None
    hub.stop_server("pia")
    (tmp_path / "upgrade.py").write_text(UPGRADE)
    (tmp_path / "Dockerfile").write_text("FROM dlab/cpu:latest\nUSER root\nCOPY upgrade.py /tmp/\n"
                                         "RUN python /tmp/upgrade.py && rm /tmp/upgrade.py\nUSER 1000\n")
    new_image = f"{PREFIX}/cpu:upgrade"
    docker("build", "-q", "-t", new_image, str(tmp_path))
    try:
        hub.restart(DLAB_IMAGE=new_image)
        hub.start_server("pia")
        assert hub.container("pia")["Config"]["Image"] == new_image
        out, error = hub.run_code("pia", LIST_LABS + "\nimport json\n" + "".join(
            f"print(json.dumps(open('labs/{name}').read().endswith(' ')), 'New in 0.2.0-test' in open('labs/{name}').read())\n"
            for name in (edited, untouched)) + "print(open('mine.txt').read())", token=token)
        assert error is None, error
        listing, edited_state, untouched_state, mine = out.splitlines()
        names = json.loads(listing)
        assert "99-new-lab.ipynb" in names, "the new lab did not reach the home"
        assert edited.replace(".ipynb", ".dlab-0.2.0-test.ipynb") in names, "no new version beside the edit"
        assert edited_state == "true False", "the student's edit was overwritten"
        assert untouched_state == "false True", "an unedited lab was not updated"
        assert mine == "mine"
        hub.stop_server("pia")
    finally:
        hub.restart()
        docker("rmi", new_image, check=False)


def test_a_kernel_over_its_memory_limit_dies_alone(hub):
    """DLAB_MEM_LIMIT is 1536M in these tests: the kernel that asks for 4 GiB is killed and
    restarted; the student's server, their other kernel, their files and the hub go on."""
    token = add_student(hub, "quinn")
    container = hub.container("quinn")["Id"]
    calm = hub.new_kernel("quinn", token)
    _, error = hub.execute("quinn", calm, "kept = 'still here'\nopen('results.csv', 'w').write('epoch,loss')", token)
    assert error is None
    greedy = hub.new_kernel("quinn", token)
    _, error = hub.execute("quinn", greedy, "x = b'1' * (4 << 30)", token, timeout=300)
    assert error is not None and error.startswith("KernelDied"), error
    info = hub.container("quinn")
    assert info["Id"] == container and info["State"]["Running"], "the student's container went down"
    assert hub.server("quinn")["ready"]
    assert hub.request("GET", f"{hub.url}/hub/health", timeout=10).ok
    out, error = hub.execute("quinn", calm, "print(kept, open('results.csv').read())", token)
    assert (out.strip(), error) == ("still here epoch,loss", None)
    hub.stop_server("quinn")
