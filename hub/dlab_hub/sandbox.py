"""Student code graded in a sandbox: one autograded submission's notebook run in a throwaway
container of the students' image, its outputs sent back (dlab_hub.grading is the hub's API that
asks for it). Standard library only, the engine passed in: the container's options and the job's
archive are pure functions, tested by make check.

The sandbox: no network at all (the kernel talks to its client over loopback), the class's memory,
CPU and process limits, a wall-clock limit, nothing writable but memory, no capability, uid 1000.
It holds a copy of that one submission's folder (files and folders only, owned by root, so nothing
it writes outlives it) and nothing else: not the grading volume, no home, no hand-in. What comes
back is its standard output, bounded; the instructor's nbgrader keeps only the outputs of cells
whose source it already has (the grades are never the submission's to write).
"""
import json
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass

from dlab_hub.policy import EMPTY_FOLDER, UID, hidden_folders

GRADE_SCOPE = "custom:dlab:grade"
# A folder or file name of nbgrader's (an assignment, a notebook): no path, nothing hidden.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
MAX_JOB_BYTES = 100 * 1024**2   # a submission's folder (nbgrader's own max_dir_size is 100 MB)
MAX_JOB_FILES = 10_000
MAX_RESULT_BYTES = 16 * 1024**2  # the executed notebook sent back
JOB = "/job"  # the submission's copy in the sandbox, read-only to it (it runs from a copy in /tmp)


@dataclass(frozen=True)
class Sandbox:
    """What every grading container gets (dlab_hub.config fills it from the class's policy)."""
    image: str
    grading_volume: str
    memory: str
    cpus: float
    processes: int
    tmp: str
    timeout: int         # seconds for the whole notebook
    cell_timeout: int    # seconds for one cell
    at_once: int         # jobs side by side; the others wait their turn


def container_options(box, name, cell_timeout):
    """The docker SDK's create() arguments of a sandbox that runs notebook `name`, each cell for at
    most `cell_timeout` seconds (a pure function, tested by make check)."""
    return {
        "image": box.image,
        "entrypoint": ["tini", "-g", "--"],  # reaps what the notebook leaves, forwards the kill
        "command": ["python", "-c", RUNNER, name, str(cell_timeout), str(MAX_RESULT_BYTES)],
        "user": f"{UID}:100",
        "working_dir": "/tmp",
        "environment": {"HOME": "/tmp/home", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/runtime",
                        "JUPYTER_DATA_DIR": "/tmp/data", "MPLCONFIGDIR": "/tmp/matplotlib", "PYTHONDONTWRITEBYTECODE": "1"},
        "network_mode": "none",
        "read_only": True,
        # and none of the image's answers (the sample assignments' hidden tests, the exercises'
        # solutions), whatever the class shows its students: a submission that read them could
        # copy them into its answer or print them into its feedback.
        "tmpfs": {"/tmp": f"size={box.tmp},mode=1777,nosuid,nodev",
                  **dict.fromkeys(hidden_folders(lab_solutions=False, instructor=False), EMPTY_FOLDER)},
        "mounts": [{"Target": JOB, "Type": "volume", "ReadOnly": False}],  # anonymous: removed with the container
        "mem_limit": box.memory,
        "memswap_limit": box.memory,  # no swap beyond the memory limit
        "nano_cpus": int(box.cpus * 1e9) if box.cpus else 0,
        "pids_limit": box.processes,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "healthcheck": {"test": ["NONE"]},
        "log_config": {"type": "json-file", "config": {"max-size": f"{MAX_RESULT_BYTES // 1024**2 + 4}m", "max-file": "1"}},
        "labels": {"org.dlab.grading": box.grading_volume, "org.dlab.notebook": name},
        "detach": True,
    }


# Runs in the sandbox (python -c RUNNER NAME CELL_TIMEOUT MAX_BYTES): the copy of the submission
# into memory, then the notebook, every cell even after an error (as nbgrader's own Execute), then
# one JSON document on the container's standard output, which only this process writes: the kernel
# (the submission's code) gets /dev/null there, and this process, not dumpable, cannot be reached
# through /proc by the kernel's uid.
RUNNER = r"""
import ctypes, json, os, shutil, sys
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
answer = os.fdopen(os.dup(1), "w")  # not inherited by the kernel
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
name, cell_timeout, most = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
shutil.copytree("/job", "/tmp/work")
nb = nbformat.read("/tmp/work/" + name, as_version=4)
status = "done"
try:
    NotebookClient(nb, timeout=cell_timeout, allow_errors=True, interrupt_on_timeout=True, kernel_name="python3",
                   extra_arguments=["--HistoryManager.hist_file=:memory:"],
                   resources={"metadata": {"path": "/tmp/work"}}).execute()
except DeadKernelError:
    status = "kernel died"
result = json.dumps({"status": status, "notebook": nb})
if len(result) > most:
    result = json.dumps({"status": "output too large", "notebook": None})
answer.write(result)
answer.close()
"""


def job_archive(chunks, top):
    """The submission's folder, from the engine's archive of it (chunks, its top folder `top`), as
    the tar the sandbox gets: files and folders only (a link would point into the sandbox anyway,
    but a copy has no surprises), owned by root and read-only to everyone, bounded in size and
    count. Returns a file object, or raises ValueError with what is wrong."""
    received = tempfile.SpooledTemporaryFile(max_size=8 * 1024**2)
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_JOB_BYTES + 10 * 1024**2:  # the tar's own headers on top of the files
            raise ValueError(f"the submission is larger than {MAX_JOB_BYTES // 1024**2} MB")
        received.write(chunk)
    received.seek(0)
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024**2)
    total, count = 0, 0
    with tarfile.open(fileobj=received, mode="r|") as source, tarfile.open(fileobj=out, mode="w") as job:
        for member in source:
            path = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.name.split("/", 1)[0] != top or not path or not (member.isfile() or member.isdir()):
                continue
            count, total = count + 1, total + (member.size if member.isfile() else 0)
            if count > MAX_JOB_FILES:
                raise ValueError(f"the submission holds more than {MAX_JOB_FILES} files")
            if total > MAX_JOB_BYTES:
                raise ValueError(f"the submission is larger than {MAX_JOB_BYTES // 1024**2} MB")
            clean = tarfile.TarInfo(path)
            clean.type, clean.size, clean.mtime = member.type, member.size if member.isfile() else 0, member.mtime
            clean.uid = clean.gid = 0
            clean.mode = 0o755 if member.isdir() else 0o644
            job.addfile(clean, source.extractfile(member) if member.isfile() else None)
    out.seek(0)
    return out


def remove_leftovers(client, box):
    """Sandboxes (and their anonymous volumes) an earlier hub process left running or made: a hub
    restarted in the middle of a job does not wait for it."""
    for container in client.containers.list(all=True, filters={"label": f"org.dlab.grading={box.grading_volume}"}):
        container.remove(force=True, v=True)


def grade(client, box, student, assignment, notebook, cell_timeout):
    """Run autograded/STUDENT/ASSIGNMENT/NOTEBOOK of the grading volume in a sandbox; returns
    (status, notebook or None, seconds). Blocking: the handler runs it in a thread."""
    started = time.monotonic()
    folder = f"/grading/autograded/{student}/{assignment}"
    # The engine reads the folder out of a container that never starts: a link on the way resolves
    # inside that container, never on this machine.
    reader = client.containers.create(box.image, command=["true"], network_mode="none", user=f"{UID}:100",
                                      mounts=[{"Target": "/grading", "Source": box.grading_volume, "Type": "volume",
                                               "ReadOnly": True}], labels={"org.dlab.grading": box.grading_volume})
    try:
        try:
            chunks, _ = reader.get_archive(folder)
        except Exception as error:  # noqa: BLE001 - the engine's NotFound, or a volume not made yet
            raise LookupError(f"no autograded submission {student}/{assignment} in the grading folder: "
                              "nbgrader's autograde makes it") from error
        archive = job_archive(chunks, assignment)
    finally:
        reader.remove(force=True)
    sandbox = client.containers.create(**container_options(box, notebook, cell_timeout))
    try:
        sandbox.put_archive(JOB, archive)
        sandbox.start()
        try:
            exit_code = sandbox.wait(timeout=box.timeout)["StatusCode"]
        except Exception:  # noqa: BLE001 - the wait's read timed out: the notebook ran past its time
            sandbox.kill()
            return "timed out", None, time.monotonic() - started
        sandbox.reload()
        if sandbox.attrs["State"].get("OOMKilled"):
            return "out of memory", None, time.monotonic() - started
        if exit_code != 0:
            return f"failed (exit code {exit_code})", None, time.monotonic() - started
        # All of standard output (the engine joins the log's 16 KB pieces), bounded by the log's size.
        said = sandbox.logs(stdout=True, stderr=False)
        try:
            result = json.loads(said)
            return str(result["status"]), result["notebook"], time.monotonic() - started
        except (ValueError, KeyError, TypeError):
            return "failed (no answer)", None, time.monotonic() - started
    finally:
        sandbox.remove(force=True, v=True)


