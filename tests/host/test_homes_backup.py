"""make backup / make restore (scripts/homes.sh): students' homes to archives and back, owners kept."""
import os
import subprocess

import pytest

from conftest import ROOT, dlab_home, docker, image_exists, in_volume

PREFIX = "dlabbackuptest"


def homes(*args, check=True, timeout=300):
    return subprocess.run(["scripts/homes.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=check, env={**os.environ, "DLAB_PREFIX": PREFIX})


HOMES = f"/var/lib/{PREFIX}/homes"


@pytest.fixture
def volumes():
    """amy's home is a plain volume (as before DLAB_HOME_SIZE); ben's a home of its own size, made
    as the hub makes it."""
    for image in ("dlab/cpu:latest", "dlab/hub:latest"):
        if not image_exists(image):
            pytest.fail(f"{image} is not built: run `make build`")
    names = [f"{PREFIX}-home-amy", f"{PREFIX}-home-ben"]
    dlab_home(HOMES, "dlab-home", "ensure", names[1], "64M")
    docker("volume", "create", "--opt", "type=ext4", "--opt", f"device={HOMES}/dev/{names[1]}",
           "--opt", "o=nosuid,nodev", names[1])
    yield names
    docker("volume", "rm", "-f", *names, check=False)
    dlab_home(HOMES, "dlab-home", "forget", names[1])


def test_backup_then_restore_brings_back_files_and_owners(volumes, tmp_path):
    amy, ben = volumes
    in_volume(amy, "mkdir -p labs && echo amy-notes > labs/notes.txt && chmod 640 labs/notes.txt")
    in_volume(ben, "echo ben > ben.txt")
    # A reboot detaches ben's loop device: the backup attaches it again, and finds his file.
    dlab_home(HOMES, f"losetup --detach $(readlink /homes/dev/{ben})")
    out = homes("backup", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{amy}.tar.gz", f"{ben}.tar.gz"], out.stderr
    docker("volume", "rm", amy)
    in_volume(ben, "echo changed > ben.txt")
    homes("restore", str(tmp_path), "amy")  # one user only
    assert in_volume(amy, "cat labs/notes.txt; stat -c '%u %g %a' labs/notes.txt").split("\n")[:2] == \
        ["amy-notes", "1000 100 640"]
    assert in_volume(ben, "cat ben.txt").strip() == "changed", "restoring amy touched ben's home"
    homes("restore", str(tmp_path), "ben")
    assert in_volume(ben, "cat ben.txt").strip() == "ben"
    # make delete-home: the volume and the file system's image go.
    homes("delete", "ben")
    assert docker("volume", "inspect", ben, check=False).returncode != 0
    assert dlab_home(HOMES, f"ls /homes/{ben}.ext4 2>/dev/null || echo gone").stdout.strip() == "gone"


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


def test_the_course_and_hand_in_folders_are_backed_up_with_the_homes(volumes, tmp_path):
    """make backup takes the class's course folder and hand-in folders (PREFIX-course,
    PREFIX-handin) with every home; make backup USERS=amy takes amy's home and hand-in folder; make restore puts
    the folders back with their owners."""
    amy, _ = volumes
    course, handin = f"{PREFIX}-course", f"{PREFIX}-handin"
    try:
        in_volume(course, "echo week-1 > notes.md")
        in_volume(handin, "mkdir -p amy && echo amys-answer > amy/lab1.txt")
        in_volume(amy, "echo amy > amy.txt")
        homes("backup", str(tmp_path / "one"), "amy")
        assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [f"{handin}-amy.tar.gz", f"{amy}.tar.gz"]
        # amy's hand-in folder, archived as her own hand-in volume's would be (a restore makes it).
        listed = subprocess.run(["tar", "-tzf", str(tmp_path / "one" / f"{handin}-amy.tar.gz")], capture_output=True, text=True)
        assert "./lab1.txt" in listed.stdout.split(), listed.stdout
        out = homes("backup", str(tmp_path / "all"))
        names = sorted(p.name for p in (tmp_path / "all").iterdir())
        assert f"{course}.tar.gz" in names and f"{handin}.tar.gz" in names, out.stderr
        docker("volume", "rm", course, handin)
        homes("restore", str(tmp_path / "all"))
        assert in_volume(course, "cat notes.md").strip() == "week-1"
        assert in_volume(handin, "cat amy/lab1.txt; stat -c '%u' amy/lab1.txt").split() == ["amys-answer", "1000"]
    finally:
        docker("volume", "rm", "-f", course, handin, check=False)


def test_a_sparse_file_a_student_makes_is_backed_up_as_a_hole(volumes, tmp_path):
    """`truncate -s 1T ~/x` takes no disk, but tar without --sparse reads it as a terabyte of zeros:
    make backup ran for hours. Here the backup of a plain home and of a home of its own size, each
    holding a terabyte hole, finishes within the test's limit in archives of kilobytes, and the
    restore makes the hole again (a terabyte long, nothing on disk)."""
    amy, ben = volumes
    for volume in (amy, ben):
        in_volume(volume, "echo notes > notes.txt && truncate -s 1T huge")
    try:
        homes("backup", str(tmp_path), timeout=180)
    finally:  # without --sparse, tar would still be reading zeros in its container
        for volume in (amy, ben):
            stuck = docker("ps", "-q", "--filter", f"volume={volume}").stdout.split()
            if stuck:
                docker("rm", "-f", *stuck, check=False)
    for volume in (amy, ben):
        assert (tmp_path / f"{volume}.tar.gz").stat().st_size < 1_000_000
    docker("volume", "rm", amy)
    homes("restore", str(tmp_path), "amy")
    size, blocks, notes = in_volume(amy, "stat -c '%s %b' huge; cat notes.txt").split()
    assert (int(size), notes) == (1024**4, "notes") and int(blocks) * 512 < 1_000_000


def test_a_backup_leaves_an_empty_folder_as_it_found_it(tmp_path):
    """make backup only reads. An empty volume mounted where the image has files gets them, and its
    top the image's owner, unless Docker is told not to: a backup of a class whose shared hand-in
    volume was empty put a home's dotfiles in it and made it the students' uid's, and the hub could
    no longer make a hand-in folder there (seen in CI)."""
    handin = f"{PREFIX}-handin"
    docker("volume", "rm", "-f", handin, check=False)
    docker("volume", "create", handin)

    def looks():  # seen from a path the image does not have, where Docker copies nothing
        return docker("run", "--rm", "--entrypoint", "sh", "-v", f"{handin}:/probe", "dlab/hub:latest", "-c",
                      "stat -c '%u:%g %a' /probe; ls -A /probe").stdout
    try:
        before = looks()
        homes("backup", str(tmp_path))
        assert looks() == before, f"before:\n{before}\nafter:\n{looks()}"
    finally:
        docker("volume", "rm", "-f", handin, check=False)
