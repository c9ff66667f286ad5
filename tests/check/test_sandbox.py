"""The grading sandbox's container and job, as pure functions (hub/dlab_hub/sandbox.py); the real
sandbox, attacked by submissions, is tests/hub/test_hub_grading.py's."""
import io
import tarfile

import pytest

import dlab_hub.sandbox as sandbox
from dlab_hub.config import Engine, configure
from dlab_hub.sandbox import GRADE_SCOPE, Sandbox, container_options, job_archive
from dlab_hub.policy import EMPTY_FOLDER
from dlab_hub.settings import load

BOX = Sandbox(image="dlab/cpu:latest", grading_volume="dlab-grading", memory="2G", cpus=1.5, processes=500,
              tmp="1G", timeout=600, cell_timeout=300, at_once=1)


def config(**settings):
    _, parsed, problems, _ = load(settings, applies=("hub", "both"))
    assert problems == []
    return configure(parsed, Engine(images=frozenset({"dlab/cpu:latest"}), cpus=8))[0]


def test_the_sandbox_has_no_network_no_privilege_and_the_classs_limits():
    options = container_options(BOX, "ps1.ipynb", 30)
    assert options["network_mode"] == "none" and options["read_only"] is True
    assert options["cap_drop"] == ["ALL"] and "cap_add" not in options
    assert options["security_opt"] == ["no-new-privileges:true"] and options["user"] == "1000:100"
    assert (options["mem_limit"], options["memswap_limit"], options["pids_limit"]) == ("2G", "2G", 500)
    assert options["nano_cpus"] == 1_500_000_000
    assert options["tmpfs"] == {"/tmp": "size=1G,mode=1777,nosuid,nodev", "/opt/dlab/assignments": EMPTY_FOLDER,
                                "/opt/dlab/solutions": EMPTY_FOLDER}  # the image's answers covered
    # Nothing of the machine or the class is mounted: only the job's own anonymous volume.
    assert options["mounts"] == [{"Target": "/job", "Type": "volume", "ReadOnly": False}]
    assert "volumes" not in options and "privileged" not in options and "devices" not in options
    assert options["command"][-3:] == ["ps1.ipynb", "30", str(sandbox.MAX_RESULT_BYTES)]
    assert options["log_config"]["config"]["max-file"] == "1"
    assert options["labels"]["org.dlab.grading"] == "dlab-grading"  # a restarted hub removes what is left of it


def test_the_class_configures_the_sandbox_from_its_settings_and_gives_instructors_the_scope():
    c = config(DLAB_PREFIX="ml101", DLAB_MEM_LIMIT="3G", DLAB_GRADE_TIMEOUT="120", DLAB_ADMIN="Teacher")
    box = c.DlabGrading.sandbox
    assert (box.grading_volume, box.memory, box.timeout, box.cell_timeout, box.at_once) == ("ml101-grading", "3G", 120, 120, 4)
    assert box.image == "dlab/cpu:latest"
    assert GRADE_SCOPE in c.JupyterHub.custom_scopes and GRADE_SCOPE in c.Spawner.server_token_scopes
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "grader")
    assert role == {"name": "grader", "scopes": [GRADE_SCOPE], "users": ["teacher"], "groups": ["instructors"]}
    assert config(DLAB_GRADE_TIMEOUT="900").DlabGrading.sandbox.cell_timeout == 300


def archive(top, entries):
    """An engine-style archive of folder `top`: entries (name, kind, data)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(f"{top}/{name}" if name else top)
            info.uid = info.gid = 1000
            info.mode = 0o4777 if kind == tarfile.REGTYPE else 0o777
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = data
                tar.addfile(info)
            elif kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    data = out.getvalue()
    return [data[i:i + 1000] for i in range(0, len(data), 1000)]


def members(job):
    with tarfile.open(fileobj=job) as tar:
        return {m.name: (m.type, m.uid, m.mode, tar.extractfile(m).read() if m.isfile() else None) for m in tar}


def test_the_job_holds_the_submissions_files_and_folders_owned_by_root_and_read_only():
    job = job_archive(archive("ps1", [
        ("", tarfile.DIRTYPE, None), ("ps1.ipynb", tarfile.REGTYPE, b"{}"), ("data", tarfile.DIRTYPE, None),
        ("data/x.csv", tarfile.REGTYPE, b"1,2"), ("gradebook", tarfile.SYMTYPE, "/grading/gradebook.db"),
        ("hard", tarfile.LNKTYPE, None), ("fifo", tarfile.FIFOTYPE, None), ("dev", tarfile.CHRTYPE, None),
    ]), "ps1")
    assert members(job) == {"ps1.ipynb": (tarfile.REGTYPE, 0, 0o644, b"{}"), "data": (tarfile.DIRTYPE, 0, 0o755, None),
                            "data/x.csv": (tarfile.REGTYPE, 0, 0o644, b"1,2")}


def test_the_job_is_bounded(monkeypatch):
    monkeypatch.setattr(sandbox, "MAX_JOB_FILES", 3)
    with pytest.raises(ValueError, match="more than 3 files"):
        job_archive(archive("ps1", [(f"f{i}", tarfile.REGTYPE, b"x") for i in range(4)]), "ps1")
    monkeypatch.setattr(sandbox, "MAX_JOB_BYTES", 10_000)
    with pytest.raises(ValueError, match="larger than"):
        job_archive(archive("ps1", [("big", tarfile.REGTYPE, b"x" * 30_000)]), "ps1")


def test_each_class_has_one_course_its_exchange_and_grading_folder_sized_like_its_folders():
    c = config(DLAB_PREFIX="ml101", DLAB_COURSE_SIZE="2G", DLAB_GRADING_SIZE="5G")
    spawner = c.DlabSpawner
    assert (spawner.course_id, spawner.exchange_volume, spawner.grading_volume) == ("ml101", "ml101-exchange", "ml101-grading")
    assert (spawner.exchange_size, spawner.grading_size) == ("2G", "5G")
    assert c.DlabGrading.sandbox.grading_volume == spawner.grading_volume  # said once (config.assignment_volumes)
    plain = config(DLAB_HOME_SIZE="0").DlabSpawner
    assert (plain.exchange_size, plain.grading_size) == ("", "")
    swarm = config(DLAB_SWARM_SHARED="/srv/dlab", DLAB_SWARM_REGISTRY="registry.local:5000").DlabSpawner
    assert "course_id" not in swarm  # not on a swarm yet (docs/assignments.md)
