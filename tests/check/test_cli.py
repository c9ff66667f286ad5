"""The organizer's command (dlab_hub.cli, what make up runs through scripts/hub.sh) without a Docker
engine: every command is listed, a wrong setting stops it before anything is touched, an engine
over the network is refused, and the course link is made and checked on the host."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

COMMANDS = ["up", "down", "status", "prestart", "accounts", "remove-accounts", "signups", "message", "link",
            "reset-admin", "backup", "restore", "delete-home"]


def dlab(*args, **environ):
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": "hub", "DLAB_ENV_FILE": "/dev/null",
           "DOCKER_HOST": "unix:///nonexistent/docker.sock", **environ}
    return subprocess.run(["scripts/hub.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_every_command_is_listed():
    out = dlab("--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"(?m)(^ {{4}}|\| ){command}\b", out.stdout), command


def test_a_wrong_setting_stops_every_command_before_docker_is_asked():
    for command in ("up", "down", "prestart"):
        out = dlab(command, DLAB_MEM_LIMIT="lots")
        assert out.returncode == 1 and "DLAB_MEM_LIMIT='lots'" in out.stderr and "then run the command again" in out.stderr
        assert "Docker" not in out.stderr


def test_no_engine_or_one_over_the_network_says_what_to_do():
    out = dlab("up")
    assert out.returncode == 1 and "no Docker engine at /nonexistent/docker.sock: run `make docker`" in out.stderr
    out = dlab("up", DOCKER_HOST="tcp://10.0.0.1:2375")
    assert out.returncode == 1 and "run make up on the machine of the engine" in out.stderr


def test_a_course_link_is_made_on_the_host():
    out = dlab("link", "https://github.com/you/labs.git/", "main", "/week1.ipynb", DLAB_HUB_PORT="8443")
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    assert url.endswith("/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fyou%2Flabs.git&branch=main"
                        "&targetpath=labs-material&urlpath=lab%2Ftree%2Flabs-material%2Fweek1.ipynb"), url
    assert ":8443/hub/" in url


@pytest.mark.parametrize("args, status, said", [
    ((), 2, "which repository?"),
    (("ftp://example.org/course",), 1, "is not a git repository's https:// URL"),
    (("https://gitlab.example.org/course",), 1, "gitlab.example.org is not in DLAB_LINK_HOSTS"),
])
def test_a_link_that_students_servers_would_refuse_is_refused_here(args, status, said):
    out = dlab("link", *args, DLAB_LINK_HOSTS="github.com")
    assert out.returncode == status and said in out.stderr, out.stderr


def test_the_command_runs_on_the_hosts_python_with_the_standard_library_only():
    out = subprocess.run([sys.executable, "-c", "import sys, dlab_hub.cli, dlab_hub.settings;"
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jupyterhub', 'traitlets', 'docker')))"],
                         cwd=ROOT, env={"PATH": os.environ["PATH"], "PYTHONPATH": "hub"}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("image, command", [("dlab/cpu:latest", "make build"), ("dlab/legacy:latest", "make build-legacy"),
                                            ("dlab/gpu:0.2.0", "make build-gpu"), ("myschool/course:1", "make build")])
def test_an_image_not_built_is_met_with_the_target_that_builds_it(image, command):
    """DLAB_IMAGE=dlab/legacy:latest before make build-legacy: make up names that target."""
    from dlab_hub.classserver import build_command
    assert build_command(image) == command
