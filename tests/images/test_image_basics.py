"""What every dlab image (base, cpu, gpu) must be: user, PID 1, locked packages, Jupyter, health."""
import json
import re

import pytest
import requests

from conftest import NATIVE_BUILDS_ONLY, PROBLEM_LINE, ROOT, VERSION, docker, log_line, read_lock, wait_for, wait_healthy

LOCKS = {
    "dlab/base": ["images/base/bootstrap.lock", "images/base/requirements.lock"],
    "dlab/cpu": ["images/base/bootstrap.lock", "images/cpu/requirements.lock"],
    "dlab/gpu": ["images/base/bootstrap.lock", "images/gpu/requirements.lock"],
}
# Seeded into every venv by Python itself, not by a lock.
VENV_SEEDS = {"pip", "setuptools"}
# What JupyterHub gives a single-user server (no hub answers here: the server's start is the point).
HUB_ENV = ["-e", "JUPYTERHUB_API_TOKEN=test-token", "-e", "JUPYTERHUB_API_URL=http://127.0.0.1:8081/hub/api",
           "-e", "JUPYTERHUB_CLIENT_ID=jupyterhub-user-test", "-e", "JUPYTERHUB_USER=test",
           "-e", "JUPYTERHUB_SERVICE_PREFIX=/user/test/", "-e", "JUPYTERHUB_BASE_URL=/"]


def token_from_logs(container, cid):
    match = wait_for(lambda: re.search(r"token=([0-9a-f]{16,})", container.logs(cid)), 60, message="a token in the logs")
    return match.group(1)


@NATIVE_BUILDS_ONLY
def test_runs_as_jovyan_uid_1000_gid_100(container):
    logs = container.run_and_wait(command=["id"])
    assert "uid=1000(jovyan) gid=100(users)" in logs


def test_image_user_is_not_root(container):
    config = json.loads(docker("image", "inspect", container.image).stdout)[0]["Config"]
    assert config["User"] == "1000"
    assert "8888/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][-1] == "/usr/local/bin/dlab-healthcheck"


@NATIVE_BUILDS_ONLY
def test_tini_is_pid_1(container):
    cid = container.run_detached(command=["sleep", "60"])
    host = container.host(cid)
    wait_for(lambda: host.file("/proc/1/comm").exists, 10, message="the container to start")
    assert host.file("/proc/1/comm").content_string.strip() == "tini"
    # (start.sh runs its hooks first: seconds when emulated)
    sleeper = wait_for(lambda: host.process.filter(comm="sleep"), 60, message="start.sh to run the command")[0]
    assert sleeper.user == "jovyan"


def test_every_locked_package_is_installed_at_its_locked_version(container):
    """The image holds exactly its locks: two builds from the same lock hold the same packages."""
    expected = {}
    for lock in LOCKS[container.name]:
        expected.update(read_lock(ROOT / lock, container.machine))
    logs = container.run_and_wait(command=["dlab-info", "--packages"])
    installed = dict(line.split("==", 1) for line in logs.splitlines() if "==" in line)
    missing_or_wrong = {n: (v, installed.get(n)) for n, v in expected.items() if installed.get(n) != v}
    assert not missing_or_wrong, f"(locked, installed): {missing_or_wrong}"
    unlocked = set(installed) - set(expected) - VENV_SEEDS
    assert not unlocked, f"installed but in no lock: {unlocked}"


def test_manifest_matches_what_python_sees(container):
    """dlab-info's manifest (written at build) agrees with the live environment."""
    script = (
        "import importlib.metadata as m, json;"
        "live = {d.metadata['Name'].lower().replace('_','-').replace('.','-'): d.version for d in m.distributions()};"
        "baked = json.load(open('/opt/dlab/manifest.json'))['python_packages'];"
        "print('SAME' if live == baked else sorted(set(live.items()) ^ set(baked.items())))"
    )
    assert "SAME" in container.run_and_wait(command=["python", "-c", script]).splitlines()


def test_pip_check_is_clean(container):
    logs = container.run_and_wait(command=["python", "-m", "pip", "check"])
    assert "No broken requirements found" in logs


@NATIVE_BUILDS_ONLY
def test_dlab_info_tells_the_versions(container):
    logs = container.run_and_wait(command=["dlab-info"])
    assert f"{container.name} {VERSION}" in logs
    assert "jupyterlab 4." in logs
    assert "Debian 12." in logs and f" on {container.machine} " in logs
    if container.name == "dlab/cpu":
        locked = read_lock(ROOT / "images/cpu/requirements.lock", container.machine)
        for name in ["tensorflow-cpu", "tensorflow", "keras", "torch", "jax"]:
            if name in locked:
                assert f"{name} {locked[name]}" in logs
    assert "GPU:" not in logs


def test_dlab_info_names_the_gpu_card_the_class_server_gave(base_container):
    """The class server spreads GPU students over the cards (DLAB_GPUS=1) and tells each container its
    card (DLAB_GPU_CARDS): the student reads it in dlab-info."""
    logs = base_container.run_and_wait("-e", "DLAB_GPU_CARDS=2", command=["dlab-info"])
    assert "GPU:       card 2 of the server's (nvidia-smi shows it as GPU 0)" in logs


def test_oci_labels(container):
    image = json.loads(docker("image", "inspect", container.image).stdout)[0]
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == container.name
    assert image["Architecture"] == labels["org.dlab.architecture"] == container.arch
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|uncommitted-dirty", labels["org.opencontainers.image.revision"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])
    assert labels["org.dlab.os.source"] not in ("", "unknown")
    # The version tag and :latest are the same image.
    ids = {docker("image", "inspect", "-f", "{{.Id}}", container.tag(tag)).stdout for tag in ("latest", VERSION)}
    assert len(ids) == 1


def test_jupyter_answers_its_api_with_the_printed_token_and_turns_healthy(container):
    cid = container.run_detached("-p", "127.0.0.1::8888")
    wait_healthy(container, cid)
    token = token_from_logs(container, cid)
    url = container.published_url(cid)
    assert requests.get(f"{url}/api/status", timeout=10).status_code == 403
    response = requests.get(f"{url}/api/status", headers={"Authorization": f"token {token}"}, timeout=10)
    assert response.status_code == 200
    assert requests.get(f"{url}/lab?token={token}", timeout=10).status_code == 200
    # A classroom image: JupyterLab neither prompts for news nor checks for updates.
    # (overrides.json becomes the schema's defaults, which a user may still change)
    schema = requests.get(f"{url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
                          headers={"Authorization": f"token {token}"}, timeout=10).json()["schema"]["properties"]
    assert schema["fetchNews"]["default"] == "false" and schema["checkForUpdates"]["default"] is False
    assert not PROBLEM_LINE.search(container.logs(cid))


def test_ctrl_c_stops_the_server_cleanly(base_container):
    """make lab runs `docker run -it`: one Ctrl-C (SIGINT through tini) must end it, exit 0."""
    cid = base_container.run_detached("-t")
    wait_healthy(base_container, cid)
    docker("kill", "--signal=SIGINT", cid)
    rc = int(docker("wait", cid, timeout=30).stdout.strip())
    assert rc == 0, base_container.logs(cid)


@pytest.mark.parametrize("port", [9999])
def test_jupyter_port(base_container, port):
    cid = base_container.run_detached("-e", f"JUPYTER_PORT={port}", "-p", f"127.0.0.1::{port}")
    wait_healthy(base_container, cid)
    url = base_container.published_url(cid, port)
    assert requests.get(f"{url}/api", timeout=10).json()["version"]


def test_nb_uid_and_nb_gid_as_root(base_container):
    logs = base_container.run_and_wait("--user", "root", "-e", "NB_UID=1010", "-e", "NB_GID=1020", command=["id"])
    assert re.search(r"uid=1010\(jovyan\) gid=1020\(jovyan\) groups=1020\(jovyan\),100\(users\)", logs), logs


def test_nb_uid_without_root_warns_and_keeps_1000(base_container):
    logs = base_container.run_and_wait("-e", "NB_UID=1010", command=["id", "-u"], no_problems=False)
    assert log_line("WARNING", "NB_UID=1010 is ignored").search(logs), logs
    assert "1000" in logs.splitlines()


@pytest.mark.parametrize("grant, expected_rc", [("yes", 0), ("no", 1)])
def test_grant_sudo(base_container, grant, expected_rc):
    logs = base_container.run_and_wait("--user", "root", "-e", f"GRANT_SUDO={grant}",
                                       command=["sudo", "-n", "id", "-u"], expect_rc=expected_rc, no_problems=False)
    if expected_rc == 0:
        assert "0" in logs.splitlines()


@pytest.mark.parametrize("chown_home, writable", [("yes", True), ("no", False)])
def test_chown_home(base_container, tmp_path, chown_home, writable):
    """A home that arrives owned by root (a fresh bind mount) is handed to the user by CHOWN_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    command = ["bash", "-c", "touch ~/probe && echo WROTE || echo DENIED"]
    logs = base_container.run_and_wait("--user", "root", "-e", f"CHOWN_HOME={chown_home}",
                                       "-v", f"{home}:/home/jovyan", command=command)
    assert ("WROTE" in logs.splitlines()) == writable, logs


def test_hook_folders_run_before_the_command(base_container, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-env.sh").write_text("export DLAB_HOOK_SAYS=sourced\n")
    (hooks / "20-exec").write_text("#!/bin/bash\necho executed-hook-ran\n")
    (hooks / "20-exec").chmod(0o755)
    logs = base_container.run_and_wait("-v", f"{hooks}:/usr/local/bin/before-notebook.d:ro",
                                       command=["bash", "-c", "echo hook=$DLAB_HOOK_SAYS"])
    assert "executed-hook-ran" in logs.splitlines() and "hook=sourced" in logs.splitlines()


def test_a_failing_hook_is_reported_and_the_start_goes_on(base_container, tmp_path):
    """As docker-stacks' run-hooks.sh: an ERROR line names the hook, and the next hooks and the
    command still run (a start-up extra must not lock a student out of their files)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-broken.sh").write_text("set -e\nfalse\n")
    (hooks / "20-broken").write_text("#!/bin/bash\nexit 3\n")
    (hooks / "20-broken").chmod(0o755)
    (hooks / "30-after.sh").write_text("export DLAB_AFTER=ran\n")
    logs = base_container.run_and_wait("-v", f"{hooks}:/usr/local/bin/start-notebook.d:ro",
                                       command=["bash", "-c", "echo command-ran after=$DLAB_AFTER"], no_problems=False)
    assert log_line("ERROR", "/usr/local/bin/start-notebook.d/10-broken.sh has failed, continuing execution").search(logs)
    assert log_line("ERROR", "/usr/local/bin/start-notebook.d/20-broken has failed, continuing execution").search(logs)
    assert "command-ran after=ran" in logs.splitlines()


def test_jupyterhub_api_token_starts_the_singleuser_server(base_container):
    cid = base_container.run_detached(*HUB_ENV)
    marker = "starting jupyterhub-singleuser"
    wait_for(lambda: marker in base_container.logs(cid), 30, message="the singleuser switch")
    # The server that started after the switch is JupyterHub's single-user server.
    wait_for(lambda: "JupyterHub" in base_container.logs(cid).split(marker, 1)[1], 60, message="jupyterhub-singleuser output")


def test_the_venv_is_writable_by_the_user(base_container):
    """`pip install` in a running container works (docker-stacks users expect it); nothing is fetched."""
    logs = base_container.run_and_wait(command=["bash", "-c", "test -w /opt/venv/lib/python3.11/site-packages && echo OK"])
    assert "OK" in logs


def test_the_resource_meter_knows_docker_runs_limits(base_container):
    """make lab / docker run --memory --cpus: jupyter-resource-usage reads the cgroup's limits (the
    class server passes them as MEM_LIMIT and CPU_LIMIT, tests/hub checks that); without limits it
    shows the memory in use alone. nbgitpuller's /git-pull answers too
    (course material by link), through dlab's check of each link."""
    limited = base_container.run_detached("-p", "127.0.0.1::8888", "--memory", "700m", "--cpus", "1.5")
    free = base_container.run_detached("-p", "127.0.0.1::8888")
    for cid, memory, cpu in ((limited, 700 * 2**20, 1.5), (free, None, None)):
        token = token_from_logs(base_container, cid)
        url, auth = base_container.published_url(cid), {"Authorization": f"token {token}"}
        metrics = wait_for(lambda: requests.get(f"{url}/api/metrics/v1", headers=auth, timeout=10), 60,
                           message="the metrics API").json()
        limits = metrics.get("limits", {})  # 0 or absent: no limit
        assert metrics["rss"] > 0 and (limits.get("memory", {}).get("rss") or None) == memory, metrics
        assert (limits.get("cpu", {}).get("cpu") or None) == cpu, metrics
    # Course links go through dlab_links, which refuses one into a folder of the server.
    link = requests.get(f"{url}/git-pull?repo=/srv/data&targetpath=data", headers=auth, timeout=10)
    assert link.status_code == 400 and "This course link was refused" in link.text, link.text[:500]


def test_start_singleuser_py_is_jupyterhubs_entry_point(base_container):
    cid = base_container.run_detached(*HUB_ENV, command=["start-singleuser.py", "--debug"])
    # python -s: the home's packages stay out of the server (the class server's hardening).
    wait_for(lambda: "Executing: python -s /opt/venv/bin/jupyterhub-singleuser --debug" in base_container.logs(cid), 30,
             message="the singleuser command line")
    wait_for(lambda: "JupyterHub" in base_container.logs(cid), 60, message="jupyterhub-singleuser output")
