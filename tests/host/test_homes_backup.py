"""make backup / make restore (scripts/homes.sh): students' homes to archives and back, owners kept."""
import os
import subprocess

import pytest

from conftest import ROOT, docker, image_exists

PREFIX = "dlabbackuptest"


def homes(*args, check=True):
    return subprocess.run(["scripts/homes.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=check, env={**os.environ, "DLAB_PREFIX": PREFIX})


def in_volume(volume, command, user="1000"):
    return docker("run", "--rm", "--user", user, "--entrypoint", "bash", "-v", f"{volume}:/home/jovyan",
                  "dlab/cpu:latest", "-c", command).stdout


@pytest.fixture
def volumes():
    if not image_exists("dlab/cpu:latest"):
        pytest.fail("dlab/cpu is not built: run `make build`")
    names = [f"{PREFIX}-home-amy", f"{PREFIX}-home-ben"]
    yield names
    docker("volume", "rm", "-f", *names, check=False)


def test_backup_then_restore_brings_back_files_and_owners(volumes, tmp_path):
    amy, ben = volumes
    in_volume(amy, "mkdir -p labs && echo amy-notes > labs/notes.txt && chmod 640 labs/notes.txt")
    in_volume(ben, "echo ben > ben.txt")
    out = homes("backup", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{amy}.tar.gz", f"{ben}.tar.gz"], out.stderr
    docker("volume", "rm", amy)
    in_volume(ben, "echo changed > ben.txt")
    homes("restore", str(tmp_path), "amy")  # one user only
    assert in_volume(amy, "cat labs/notes.txt; stat -c '%u %g %a' labs/notes.txt").split("\n")[:2] == \
        ["amy-notes", "1000 100 640"]
    assert in_volume(ben, "cat ben.txt").strip() == "changed", "restoring amy touched ben's home"


def test_restore_refuses_a_home_in_use_and_a_missing_archive(volumes, tmp_path):
    amy, _ = volumes
    in_volume(amy, "echo x > x.txt")
    homes("backup", str(tmp_path))
    cid = docker("run", "-d", "-v", f"{amy}:/home/jovyan", "dlab/cpu:latest", "sleep", "60").stdout.strip()
    try:
        out = homes("restore", str(tmp_path), "amy", check=False)
        assert out.returncode == 1 and "stop it first" in out.stderr
    finally:
        docker("rm", "-f", cid)
    out = homes("restore", str(tmp_path), "nobody", check=False)
    assert out.returncode == 1 and "no backup" in out.stderr
