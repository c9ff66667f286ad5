"""images/hub/dlab-home, the root helper that makes each home and hand-in folder a file system of
its own size, when what it is given does not fit: a volume from before larger than the size, and a
homes' folder that is nearly full. Run as the hub runs it (root in a throwaway dlab/hub container)."""
import subprocess

import pytest

from conftest import ROOT, docker, image_exists


def helper(homes, *args, old=None):
    """dlab-home as scripts/lib.sh's home_helper runs it, with `old` (a folder) at /old."""
    binds = ["-v", f"{old}:/old:ro"] if old else []
    return subprocess.run(["docker", "run", "--rm", "--user", "root", "--network", "none", "--cap-add", "SYS_ADMIN",
                           "--security-opt", "apparmor=unconfined", "--device-cgroup-rule", "b 7:* rwm",
                           "--device-cgroup-rule", "c 10:237 rwm", "-v", f"{homes}:/homes", "-v", "/dev:/dev", *binds,
                           "--entrypoint", "dlab-home", "dlab/hub:latest", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def homes(tmp_path):
    if not image_exists("dlab/hub:latest"):
        pytest.fail("dlab/hub:latest is not built: run `make build`")
    folder = tmp_path / "homes"
    folder.mkdir()
    yield folder
    for image in folder.glob("*.ext4"):
        helper(folder, "forget", image.name.removesuffix(".ext4"))


@pytest.fixture
def small_disk(tmp_path):
    """A homes' folder on a file system of 300 MB of its own (tmpfs)."""
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300m", "tmpfs", str(folder)], check=True)
    yield folder
    for image in folder.glob("*.ext4"):
        helper(folder, "forget", image.name.removesuffix(".ext4"))
    subprocess.run(["umount", "-l", str(folder)], check=False)


def old_volume(folder, megabytes, files):
    """A student's files from before: megabytes of data, a 1 TB hole, and many empty files."""
    folder.mkdir()
    subprocess.run(["bash", "-c", f"head -c {megabytes}M /dev/urandom > data && truncate -s 1T hole && mkdir many && "
                    f"cd many && seq 1 {files} | xargs touch && chown -R 1000:100 {folder}"], cwd=folder, check=True)
    return folder


def test_files_from_before_larger_than_the_size_get_a_file_system_that_holds_them(homes, tmp_path):
    old = old_volume(tmp_path / "old", 100, 5000)
    made = helper(homes, "ensure", "dlabsizes-home-amy", "64M", old=old)
    assert made.returncode == 0 and "(its files need more than 64M)" in made.stderr, made.stderr
    image = homes / "dlabsizes-home-amy.ext4"
    assert image.stat().st_size > 100 * 2**20 and not (homes / "dlabsizes-home-amy.ext4.new").exists()
    docker("volume", "create", "--opt", "type=ext4", "--opt", f"device={homes}/dev/dlabsizes-home-amy",
           "dlabsizes-home-amy")
    try:
        seen = docker("run", "--rm", "--user", "1000", "--entrypoint", "bash", "-v", "dlabsizes-home-amy:/h",
                      "dlab/hub:latest", "-c", "cd /h && ls many | wc -l && stat -c %s data hole && du -sm hole | cut -f1").stdout
    finally:
        docker("volume", "rm", "-f", "dlabsizes-home-amy", check=False)
    assert seen.split() == ["5000", str(100 * 2**20), str(2**40), "0"], seen  # the hole stays a hole
    # The next start finds the home made: nothing is copied again, nothing changes.
    again = helper(homes, "ensure", "dlabsizes-home-amy", "64M")
    assert again.returncode == 0 and image.stat().st_size > 100 * 2**20, again.stderr


def test_a_nearly_full_disk_refuses_new_homes_and_leaves_nothing_half_made(small_disk, tmp_path):
    # Files from before that the disk cannot hold a copy of: said before any copy, nothing left.
    # (280 MB: within 4 times its size of 128M, so the disk's 300 MB are what refuses it)
    old = old_volume(tmp_path / "old", 280, 10)
    refused = helper(small_disk, "ensure", "dlabsizes-home-ben", "128M", old=old)
    assert refused.returncode == 4 and "needs that much free in the homes' folder (DLAB_HOMES_DIR)" in refused.stderr, refused.stderr
    assert list(small_disk.glob("*.ext4*")) == []
    # A new home while less than 512 MB are free: refused, so the homes there keep room to grow.
    refused = helper(small_disk, "ensure", "dlabsizes-home-cy", "64M")
    assert refused.returncode == 4 and "no new home or hand-in folder until some space is freed" in refused.stderr, refused.stderr
    assert list(small_disk.glob("*.ext4*")) == []


def test_make_up_warns_when_the_homes_could_outgrow_the_disk(small_disk):
    """The images are sparse: two homes of 1 GB each take almost nothing on a 300 MB disk, but a class
    filling them would fill it. make up (scripts/lib.sh's warn_if_homes_outgrow_disk) says so."""
    def warning():
        return subprocess.run(["bash", "-c", '. scripts/lib.sh && warn_if_homes_outgrow_disk "$1"', "warn", str(small_disk)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120).stderr
    assert warning() == ""  # no home yet
    for name in ("dlabsizes-home-dee", "dlabsizes-home-eli"):
        (small_disk / f"{name}.ext4").touch()
        subprocess.run(["truncate", "-s", "1G", str(small_disk / f"{name}.ext4")], check=True)
    said = warning()
    assert "the homes and folders may still grow by 2 GB" in said and "has 0 GB free" in said, said
