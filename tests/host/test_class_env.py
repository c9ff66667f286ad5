"""One class, one .env: every make command reads the settings the same way (scripts/lib.sh's
load_settings), so a class with its own prefix and data volume set only in its .env is that class
for backup, restore, data and lab, and a wrong .env stops each command before it acts."""
import os
import socket
import subprocess
import time

from conftest import ROOT, docker, in_volume

PREFIX = "dlabenvtest"


def class_env(tmp_path, text=f"DLAB_PREFIX={PREFIX}\nDLAB_DATA_VOLUME={PREFIX}-data\n"):
    """The environment of an organizer whose settings are in their .env alone."""
    (tmp_path / "class.env").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLAB_") and k != "DATA_VOLUME"}
    return {**env, "DLAB_ENV_FILE": str(tmp_path / "class.env")}


def test_every_command_acts_on_the_class_that_env_names(tmp_path):
    """A class with its own prefix and data volume set only in its .env: make backup archives that
    class's homes and no other's (not the default prefix's), make restore puts them back there
    alone, and make data fills that volume."""
    ours, default_class = f"{PREFIX}-home-eve", f"dlab-home-{PREFIX}-eve"
    env = class_env(tmp_path)
    try:
        for volume in (ours, default_class):
            in_volume(volume, f"echo {volume} > whose.txt")
        out = subprocess.run(["scripts/homes.sh", "backup", str(tmp_path / "backups")], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300, check=True)
        assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [f"{ours}.tar.gz"], out.stderr
        # make restore: the archive goes back into that class's home, and no other class's home is touched.
        for volume in (ours, default_class):
            in_volume(volume, "echo changed > whose.txt")
        out = subprocess.run(["scripts/homes.sh", "restore", str(tmp_path / "backups")], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300, check=True)
        assert in_volume(ours, "cat whose.txt") == f"{ours}\n", out.stderr
        assert in_volume(default_class, "cat whose.txt") == "changed\n"
        # make data, with a dataset name dlab-data refuses: it names the volume it fills first.
        out = subprocess.run(["scripts/fetch-data.sh", "no-such-dataset"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
        assert f"fetching into {PREFIX}-data" in out.stdout and out.returncode != 0, out
    finally:
        docker("volume", "rm", "-f", ours, default_class, f"{PREFIX}-data", check=False)


def test_make_lab_mounts_the_data_volume_env_names(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"dlab-lab-{port}"
    lab = subprocess.Popen(["make", "-s", "lab", f"PORT={port}", "IMAGE=dlab/base", f"LAB_HOME_VOLUME={PREFIX}-lab-home"],
                           cwd=ROOT, env=class_env(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and lab.poll() is None:
            if docker("ps", "-q", "--filter", f"name=^{name}$").stdout.strip():
                break
            time.sleep(1)
        mounts = docker("inspect", "-f", "{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}", name).stdout.split()
        assert f"{PREFIX}-data:/srv/data" in mounts and f"{PREFIX}-lab-home:/home/jovyan" in mounts
    finally:
        docker("rm", "-f", name, check=False)
        lab.wait(timeout=60)
        docker("volume", "rm", "-f", f"{PREFIX}-data", f"{PREFIX}-lab-home", check=False)


def test_a_wrong_env_stops_every_command_before_it_acts(tmp_path):
    env = class_env(tmp_path, f"DLAB_PREFIX={PREFIX}\nDLAB_DATA_VOLUME=my data\n")
    for command in (["scripts/homes.sh", "backup", str(tmp_path / "backups")], ["scripts/fetch-data.sh", "mnist"],
                    ["scripts/hub.sh", "down"], ["make", "-s", "lab", "PORT=1"]):
        out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode != 0 and "DLAB_DATA_VOLUME='my data' is not a Docker volume name" in out.stderr, (command, out)
    assert not (tmp_path / "backups").exists()
