"""jupyter/docker-stacks' promises (docs/using/common.md, running.md, recipes.md) on the dlab
Jupyter images whose start differs (START_IMAGES), in the style of docker-stacks' own tests: tracked containers, parametrised over the
ways to start a server. docs/images.md ("Using the images") lists each feature with its test.

The ways to start are started together, once per image (a class-scoped fixture), since each mostly
waits; every test then checks one of them: healthy, answering where it should, unhealthy while its
server does not answer, and still with dlab's extras (thread pools, labs in the home). The
single-user server needs a hub: tests/hub checks it turns healthy in a student's container.
"""
import re
import time

import pytest
import requests

from conftest import NOTEBOOK_IMAGES, PROBLEM_LINE, docker, image_param, log_line, tracked_containers, wait_for, wait_healthy


# The images whose start differs: dlab/base, and dlab/cpu with the labs' hooks. dlab/gpu starts as
# dlab/cpu does (the same base, start scripts and hooks; only its packages differ), and the arm64
# builds share the start scripts: their own starts are test_image_basics.py's, where emulation costs
# minutes per recipe. (Also: QEMU's binfmt handler, as Debian registers it, runs no setuid program,
# so sudo cannot work in an emulated container.)
START_IMAGES = [image for image in NOTEBOOK_IMAGES if image != "dlab/gpu"]


@pytest.fixture(params=[image_param(i) for i in START_IMAGES])
def container(request):
    yield from tracked_containers(request.param)

# GEN_CERT's certificate is self-signed: requests are made with verify=False.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

# name: (docker run options, command, port, URL path, the start's "what I execute" line, server's user, home)
WAYS = {
    "default": ([], [], 8888, "/", "Executing: jupyter lab", 1000, "/home/jovyan"),
    "start-notebook.py": ([], ["start-notebook.py", "--ServerApp.base_url=/course/"], 8888, "/course/",
                          "Executing: jupyter lab --ServerApp.base_url=/course/", 1000, "/home/jovyan"),
    "start-notebook.sh": ([], ["start-notebook.sh", "--ServerApp.base_url=/course/"], 8888, "/course/",
                          "Executing: jupyter lab --ServerApp.base_url=/course/", 1000, "/home/jovyan"),
    "start.sh start-notebook.py": ([], ["start.sh", "start-notebook.py"], 8888, "/",
                                   "Executing: jupyter lab", 1000, "/home/jovyan"),
    "NOTEBOOK_ARGS": (["-e", "NOTEBOOK_ARGS=--ServerApp.base_url=/args/ --log-level=INFO"], [], 8888, "/args/",
                      "Executing: jupyter lab --ServerApp.base_url=/args/ --log-level=INFO", 1000, "/home/jovyan"),
    "JUPYTER_PORT": (["-e", "JUPYTER_PORT=9999"], [], 9999, "/", "Executing: jupyter lab", 1000, "/home/jovyan"),
    "GEN_CERT (HTTPS)": (["-e", "GEN_CERT=yes"], [], 8888, "/", "Executing: jupyter lab", 1000, "/home/jovyan"),
    "jupyter server": (["-e", "DOCKER_STACKS_JUPYTER_CMD=server"], [], 8888, "/", "Executing: jupyter server",
                       1000, "/home/jovyan"),
    "jupyter notebook": (["-e", "DOCKER_STACKS_JUPYTER_CMD=notebook"], [], 8888, "/", "Executing: jupyter notebook",
                         1000, "/home/jovyan"),
    "start.sh jupyter server": ([], ["start.sh", "jupyter", "server"], 8888, "/",
                                "entrypoint already: executing the command: jupyter server", 1000, "/home/jovyan"),
    "JUPYTER_RUNTIME_DIR": (["-e", "JUPYTER_RUNTIME_DIR=/tmp/jupyter-runtime"], ["start-notebook.sh"], 8888, "/",
                            "Executing: jupyter lab", 1000, "/home/jovyan"),
    "RESTARTABLE": (["-e", "RESTARTABLE=yes"], [], 8888, "/", "Executing: jupyter lab", 1000, "/home/jovyan"),
    "--user 1010:100": (["--user", "1010:100"], [], 8888, "/", "Executing: jupyter lab", 1010, "/home/jovyan"),
    "--user 1010:0": (["--user", "1010:0"], [], 8888, "/", "Executing: jupyter lab", 1010, "/tmp/home-1010"),
    "--user 1010 --group-add users": (["--user", "1010", "--group-add", "users"], [], 8888, "/",
                                      "Executing: jupyter lab", 1010, "/home/jovyan"),
    "--user 1010:1010": (["--user", "1010:1010"], [], 8888, "/", "Executing: jupyter lab", 1010, "/tmp/home-1010"),
    "NB_USER": (["--user", "root", "-e", "NB_USER=ada"], [], 8888, "/", "Running as ada: start-notebook.py",
                1000, "/home/ada"),
    "NB_UID NB_GID": (["--user", "root", "-e", "NB_UID=1010", "-e", "NB_GID=1020"], [], 8888, "/",
                      "Running as jovyan: start-notebook.py", 1010, "/home/jovyan"),
    "NB_USER=root": (["--user", "root", "-e", "NB_USER=root", "-e", "NB_UID=0", "-e", "NB_GID=0"], [], 8888, "/",
                     "Running as root: start-notebook.py", 0, "/home/root"),
}
# Starting with a WARNING is these ways' point; the others must start without one.
WARNS = {"--user 1010:100": ["uid 1010 has no name"], "--user 1010:0": ["may not write /home/jovyan"],
         "--user 1010:1010": ["uid 1010 has no name", "may not write /home/jovyan"]}


# dlab/base starts every way. The images with labs (dlab/cpu) add to it only hooks that act in the
# server user's home (the labs): they start the ways that change that user or home, and not the
# others, which differ from those by Jupyter's command line alone (the same scripts, in base).
USER_WAYS = ["default", "--user 1010:100", "--user 1010:0", "--user 1010 --group-add users", "--user 1010:1010",
             "NB_USER", "NB_UID NB_GID", "NB_USER=root"]
LAB_IMAGES = [image for image in START_IMAGES if image != "dlab/base"]


class Started:
    """The containers of one image, one per way to start (of WAYS), started together."""

    def __init__(self, tracked, ways):
        self.tracked = tracked
        self.ids = {}
        for way in ways:
            options, command, port, *_ = WAYS[way]
            self.ids[way] = tracked.run_detached("-p", f"127.0.0.1::{port}", *options, command=command)

    def url(self, way):
        _, _, port, path, *_ = WAYS[way]
        scheme = "https" if "GEN_CERT=yes" in WAYS[way][0] else "http"
        return self.tracked.published_url(self.ids[way], port).replace("http:", scheme + ":") + path


@pytest.fixture(scope="class")
def started(request):
    for tracked in tracked_containers(request.param):
        yield Started(tracked, request.cls.ways)


def server_process(cid):
    """(pid, uid, command line, environment, "uid:gid") of the container's Jupyter server."""
    for line in docker("exec", "-u", "root", cid, "ps", "-eo", "pid=,uid=,gid=,args=").stdout.splitlines():
        pid, uid, gid, args = line.split(None, 3)
        if re.search(r"bin/(jupyter-(lab|server|notebook)|jupyterhub-singleuser)\b", args):
            # (as the server's uid and gid: root here has no right to read another user's /proc entries)
            environ = docker("exec", "-u", f"{uid}:{gid}", cid, "cat", f"/proc/{pid}/environ").stdout
            return pid, int(uid), args, dict(v.split("=", 1) for v in environ.split("\0") if "=" in v), f"{uid}:{gid}"
    return None


def api_answers(url):
    try:
        return requests.get(url + "api", timeout=5, verify=False).json().get("version")
    except (requests.RequestException, ValueError):
        return None


class EveryWayToStart:
    """The checks of each way to start, on a started image (subclasses: which image, which ways)."""
    ways = []

    def test_turns_healthy_and_answers(self, started, way):
        cid = started.ids[way]
        wait_healthy(started.tracked, cid, timeout=150)
        assert api_answers(started.url(way)), f"{way}: no answer at {started.url(way)}"
        logs = started.tracked.logs(cid)
        assert WAYS[way][4] in logs, logs  # it says what it executes, as docker-stacks' start does
        assert log_line("INFO", "Entered start.sh with args: ").search(logs), logs
        problems = [line for line in logs.splitlines() if PROBLEM_LINE.match(line)]
        expected = WARNS.get(way, [])
        assert [p for p in problems if not any(e in p for e in expected)] == [], logs
        assert all(any(e in p for p in problems) for e in expected), logs

    def test_keeps_dlabs_extras_for_the_right_user(self, started, way):
        """The server runs as the way's user, in its home, with dlab's thread pools sized; in the
        images with labs, the labs are in that home and the user's; HTTPS where GEN_CERT asks."""
        cid = started.ids[way]
        wait_healthy(started.tracked, cid, timeout=150)
        pid, uid, args, env, _ = server_process(cid)
        _, _, _, _, _, user, home = WAYS[way]
        assert uid == user and env["HOME"] == home, (args, env)
        assert env["OMP_NUM_THREADS"].isdigit() and env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"]
        if "KERAS_HOME" in env:
            assert env["KERAS_HOME"] == f"{home}/.keras"  # it followed the home
        if started.tracked.image != "dlab/base":
            owner = docker("exec", "-u", "root", cid, "stat", "-c", "%u", f"{home}/labs").stdout.strip()
            assert owner == str(user), f"{home}/labs belongs to {owner}"
        assert started.url(way).startswith("https:") == (way == "GEN_CERT (HTTPS)")

    def test_turns_unhealthy_while_the_server_does_not_answer(self, started, way):
        cid = started.ids[way]
        wait_healthy(started.tracked, cid, timeout=150)
        pid, *_, ids = server_process(cid)
        docker("exec", "-u", ids, cid, "kill", "-STOP", pid)
        try:
            check = docker("exec", cid, "dlab-healthcheck", check=False)
            assert check.returncode == 1, check.stdout + check.stderr
        finally:
            docker("exec", "-u", ids, cid, "kill", "-CONT", pid)
        assert docker("exec", cid, "dlab-healthcheck", check=False).returncode == 0


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("started", [image_param("dlab/base")], indirect=True, scope="class")
class TestEveryWayToStart(EveryWayToStart):
    ways = list(WAYS)


@pytest.mark.parametrize("way", USER_WAYS)
@pytest.mark.parametrize("started", [image_param(image) for image in LAB_IMAGES], indirect=True, scope="class")
class TestEveryUserWayToStartWithLabs(EveryWayToStart):
    ways = USER_WAYS


def test_restartable_starts_jupyter_again_and_stops_with_the_container(container):
    cid = container.run_detached("-e", "RESTARTABLE=yes")
    wait_healthy(container, cid, timeout=150)
    first = server_process(cid)[0]
    docker("exec", cid, "kill", "-KILL", first)
    wait_for(lambda: "RESTARTABLE=yes: starting it again" in container.logs(cid), 30, message="the restart")
    second = wait_for(lambda: server_process(cid), 60, message="a second server")[0]
    assert second != first and container.inspect(cid)["State"]["Running"]
    wait_for(lambda: docker("exec", cid, "dlab-healthcheck", check=False).returncode == 0, 90,
             message="the second server to answer")
    began = time.monotonic()
    docker("stop", "--time", "20", cid, timeout=60)
    assert time.monotonic() - began < 15, "docker stop had to kill it"


@pytest.mark.parametrize("user, name, home, warning", [
    ("1010:100", None, "/home/jovyan", "uid 1010 has no name"),
    ("1010:0", "jovyan", "/tmp/home-1010", "may not write /home/jovyan"),
    ("1010", "jovyan", "/home/jovyan", "may not write /home/jovyan"),
    ("1010:1010", None, "/tmp/home-1010", "may not write /home/jovyan"),
])
def test_any_uid_gets_a_home_it_can_write_and_can_pip_install_with_group_users(container, user, name, home, warning):
    """OpenShift, rootless Docker, HPC sites: any --user works. A uid of group users (100) shares the
    image's home and venv; group 0 may name itself in /etc/passwd; any other uid gets a home of its own."""
    script = ('whoami 2>/dev/null || echo no-name; echo "home=$HOME"; touch ~/probe && echo home-writable; '
              'touch /opt/venv/lib/python3.11/site-packages/probe 2>/dev/null && echo venv-writable; true')
    logs = container.run_and_wait("--user", user, *(["--group-add", "users"] if user == "1010" else []),
                                  command=["bash", "-c", script], no_problems=False)
    lines = logs.splitlines()
    assert (name or "no-name") in lines and f"home={home}" in lines and "home-writable" in lines, logs
    in_users = user.endswith(":100") or user == "1010"
    assert ("venv-writable" in lines) == in_users, logs
    if user == "1010":  # with --group-add users: no warning at all
        assert not PROBLEM_LINE.search(logs), logs
    else:
        assert warning in logs
    if user == "1010:0":
        assert "add --group-add users" in logs  # docker-stacks' hint, with its reason


def test_nb_user_renames_jovyan_and_moves_the_home_and_working_directory(container):
    logs = container.run_and_wait("--user", "root", "-e", "NB_USER=ada", "-e", "NB_UID=1010", "-e", "NB_GROUP=lab",
                                       "-e", "NB_GID=1020", "-w", "/home/jovyan",
                                       command=["bash", "-c", 'id; echo "home=$HOME pwd=$PWD"; ls -A ~; touch ~/x && echo ok'])
    assert re.search(r"uid=1010\(ada\) gid=1020\(lab\) groups=1020\(lab\),100\(users\)", logs), logs
    assert "home=/home/ada pwd=/home/ada" in logs and ".bashrc" in logs and "ok" in logs.splitlines()


def test_nb_user_with_chown_home_takes_a_mounted_home(container, tmp_path):
    """docker-stacks' recipe: --user root -e NB_USER=me -e CHOWN_HOME=yes -v DIR:/home/me."""
    home = tmp_path / "me"
    home.mkdir()
    (home / "notes.txt").write_text("mine\n")
    logs = container.run_and_wait("--user", "root", "-e", "NB_USER=me", "-e", "NB_UID=1010", "-e", "CHOWN_HOME=yes",
                                       "-e", "CHOWN_HOME_OPTS=-R", "-v", f"{home}:/home/me",
                                       command=["bash", "-c", "cat ~/notes.txt && touch ~/new && echo ok"])
    assert "mine" in logs and "ok" in logs.splitlines()
    assert (home / "notes.txt").stat().st_uid == 1010 and (home / "new").exists()


@pytest.mark.parametrize("env, error", [
    (["-e", "NB_USER=daemon"], "NB_USER=daemon is an account of the image already"),
    (["-e", "NB_USER=Ada Lovelace"], "cannot be a user name"),
    (["-e", "NB_USER=root"], "NB_USER=root needs NB_UID=0 and NB_GID=0"),
    (["-e", "NB_UID=0"], "NB_UID=0 would run Jupyter as root"),
    (["-e", "NB_UID=ada"], "must be numbers"),
])
def test_a_bad_user_setting_stops_with_a_clear_error(container, env, error):
    logs = container.run_and_wait("--user", "root", *env, command=["true"], expect_rc=2, no_problems=False)
    assert log_line("ERROR", error).search(logs), logs


def test_jupyter_env_vars_to_unset_reach_the_hooks_but_not_the_command(container, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-secret.sh").write_text('echo "hook sees ${ADMIN_SECRET}"\n')
    for user in ("root", "1000"):
        logs = container.run_and_wait(
            "--user", user, "-e", "ADMIN_SECRET=s3cret", "-e", "OTHER=x", "-e", "KEPT=y",
            "-e", "JUPYTER_ENV_VARS_TO_UNSET=ADMIN_SECRET, OTHER", "-v", f"{hooks}:/usr/local/bin/before-notebook.d:ro",
            command=["bash", "-c", 'echo "command sees [${ADMIN_SECRET}${OTHER}${JUPYTER_ENV_VARS_TO_UNSET}] kept=$KEPT"'])
        assert "hook sees s3cret" in logs and "command sees [] kept=y" in logs, logs


def test_sudo_finds_the_venv_and_keeps_the_path(container):
    logs = container.run_and_wait("--user", "root", "-e", "GRANT_SUDO=yes",
                                       command=["bash", "-c", "sudo -n sh -c 'command -v python; command -v pip; id -u'"])
    assert {"/opt/venv/bin/python", "/opt/venv/bin/pip", "0"} <= set(logs.splitlines()), logs


def test_chown_extra_and_nb_umask(container, tmp_path):
    extra = tmp_path / "extra"
    (extra / "deep").mkdir(parents=True)
    logs = container.run_and_wait("--user", "root", "-e", "CHOWN_EXTRA=/data", "-e", "CHOWN_EXTRA_OPTS=-R",
                                       "-e", "NB_UMASK=002", "-v", f"{extra}:/data",
                                       command=["bash", "-c", "touch /data/deep/f && stat -c %a /data/deep/f"])
    assert "664" in logs.splitlines() and (extra / "deep").stat().st_uid == 1000


def test_quiet_start_says_nothing_but_problems(container):
    logs = container.run_and_wait("--user", "root", "-e", "JUPYTER_DOCKER_STACKS_QUIET=1", "-e", "NB_UID=1010",
                                       command=["echo", "only-this"])
    assert logs.strip() == "only-this", logs


def test_a_plain_command_runs_through_start_sh(container):
    """docker run IMAGE ipython ...: docker-stacks' start.sh runs any command after its set-up."""
    logs = container.run_and_wait(command=["ipython", "--no-banner", "-c", "print(6 * 7)"])
    assert "42" in logs and "Executing the command: ipython" in logs
