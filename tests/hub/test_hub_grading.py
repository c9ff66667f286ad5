"""Autograding runs student code in a sandbox (hub/dlab_hub/sandbox.py, the hub's API
/hub/api/dlab/grade): submissions that try to read the gradebook and the other submissions, reach
the network, fork without end, loop for ever, eat the memory or write their own grade get nothing
of it, and a correct one run beside them is graded right. Only the organizer and the instructors
(and their servers' tokens) may ask."""
import io
import json
import re
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import dlab_home, docker
from hubstack import HOMES_DIR, PREFIX, auth

GRADING = f"{PREFIX}-grading"
ASSIGNMENT = "ps1"
SECRET = "the-solutions-and-every-grade"


def notebook(*cells):
    return {"cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": source, "outputs": [],
                       "execution_count": None} for i, source in enumerate(cells)],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


# What nbgrader's autograde leaves in the grading folder before it runs the notebooks: each
# student's copy (hidden tests put back), beside the solutions and the gradebook.
SUBMISSIONS = {
    "ana": notebook("def area(r):\n    return 3.14159 * r * r", "print(round(area(2), 2))"),
    # (/opt/venv left out of the search: nbgrader ships a gradebook.db of its own tests there)
    "snoop": notebook(
        "import os, subprocess\nprint([p for p in ('/grading', '/srv/grading', '/home/jovyan/grading', '/srv/course') if os.path.exists(p)])\n"
        "print(subprocess.run('find / \\\\( -path /proc -o -path /sys -o -path /opt/venv \\\\) -prune -o -name gradebook.db -print', shell=True,"
        " capture_output=True, text=True).stdout.split())",
        "print(open('/grading/gradebook.db').read())",
        "print(os.path.exists('/srv/handins'), os.path.exists('/home/jovyan/grading'), os.listdir('/job'),\n"
        "      os.listdir('/opt/dlab/assignments'), os.listdir('/opt/dlab/solutions'))"),
    "netty": notebook(f"import socket\nsocket.create_connection(('{PREFIX}-hub', 8081), timeout=3)",
                      "socket.create_connection((HUB_ADDRESS, 8081), timeout=3)"),
    "forky": notebook("import os\nwhile True:\n    os.fork()", "print('after the fork bomb')"),
    "loopy": notebook("while True:\n    pass", "print('after the loop')"),
    "stubborn": notebook("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
    # Answers for the sandbox's runner, written where the runner writes its own, and its memory sought.
    "mimic": notebook(
        "import os\nos.write(1, b'{\"status\": \"done\", \"notebook\": {\"cells\": []}}\\n')\n"
        "try:\n    print(os.listdir(f'/proc/{os.getppid()}/fd'))\nexcept OSError as error:\n    print(type(error).__name__)",
        "print('x' * 200_000)"),
    "greedy": notebook("hog = b'x' * (3 * 1024**3)", "print(len(hog))"),
    "forger": notebook(
        "import json, pathlib\nfor path in ('/job/ps1.ipynb', '/job/grades.json', '/grading/gradebook.db'):\n"
        "    try:\n        pathlib.Path(path).write_text('{\"score\": 100}')\n        print('wrote', path)\n"
        "    except OSError as error:\n        print(type(error).__name__, path)",
        "pathlib.Path('/tmp/work/ps1.ipynb').write_text('{}')\nprint('rewrote my own copy')"),
}


def tar_of(files):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = len(data), 1000, 100, 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture(scope="module")
def grading(hub):
    hub.restart()  # DLAB_GRADE_TIMEOUT is 40 s in every test class (hubstack.py)
    hub_address = docker("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{PREFIX}\").IPAddress}}}}",
                         f"{PREFIX}-hub").stdout.strip()
    files = {"gradebook.db": SECRET.encode(), f"source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb": SECRET.encode()}
    for name, nb in SUBMISSIONS.items():
        hub.api("POST", f"/users/{name}")
        text = json.dumps(nb).replace("HUB_ADDRESS", repr(hub_address))
        files[f"autograded/{name}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"] = text.encode()
        files[f"submitted/{name}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"] = text.encode()
    files[f"autograded/ana/{ASSIGNMENT}/data.csv"] = b"r\n2\n"
    docker("volume", "create", GRADING)
    subprocess.run(["docker", "run", "--rm", "-i", "--user", "0", "--network", "none", "-v", f"{GRADING}:/grading",
                    "--entrypoint", "sh", "dlab/base:latest", "-c", "tar -x -C /grading && chown 1000:100 /grading"],
                   input=tar_of(files), check=True, capture_output=True, timeout=120)
    yield hub
    # The class's own grading folder (an instructor's start below made it a file system of its own):
    # gone with its image, so the next test's course starts from nothing.
    hub.stop_server("ana")
    docker("volume", "rm", "-f", GRADING, check=False)
    dlab_home(HOMES_DIR, f"dlab-home forget {GRADING}")


def volume_listing():
    out = docker("run", "--rm", "--network", "none", "-v", f"{GRADING}:/grading:ro", "--entrypoint", "sh",
                 "dlab/base:latest", "-c", "cd /grading && find . -printf '%p %s %T@\\n' | sort && cat gradebook.db")
    return out.stdout


def grade(hub, student, token=None, cell_timeout=10, **fields):
    body = {"student": student, "assignment": ASSIGNMENT, "notebook": f"{ASSIGNMENT}.ipynb",
            "cell_timeout": cell_timeout, **fields}
    return hub.request("POST", f"{hub.url}/hub/api/dlab/grade", headers=auth(token or hub.admin_token),
                       json=body, timeout=300)


def outputs(answer):
    """Each code cell's text: its stream outputs and errors, in order."""
    said = []
    for cell in answer["notebook"]["cells"]:
        text = ""
        for out in cell.get("outputs", []):
            text += out.get("text", "") if out["output_type"] == "stream" else f"{out.get('ename', '')}: {out.get('evalue', '')}"
        said.append(text)
    return said


def test_every_submission_runs_in_a_sandbox_and_gets_nothing_of_the_class(grading):
    hub = grading
    before = volume_listing()
    # A fork bomb, an endless loop and a correct submission at once: the correct one is graded right.
    with ThreadPoolExecutor(3) as pool:
        answers = dict(zip(("forky", "loopy", "ana"), pool.map(lambda name: grade(hub, name), ("forky", "loopy", "ana"))))
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.status_code, r.text[:500])
    ana = answers["ana"].json()
    assert ana["status"] == "done" and outputs(ana) == ["", "12.57\n"], ana
    forky, loopy = answers["forky"].json(), answers["loopy"].json()
    # The bomb meets the process limit, then its copies the memory limit, or the time: stopped, said.
    assert forky["status"] in ("done", "timed out", "out of memory"), forky["status"]
    if forky["status"] == "done":  # interrupted at its cell's time, the notebook went on
        assert "after the fork bomb" in outputs(forky)[1]
    assert loopy["status"] == "done" and outputs(loopy)[1] == "after the loop\n", outputs(loopy)

    snoop = grade(hub, "snoop", cell_timeout=30).json()
    assert snoop["status"] == "done"
    listing, gradebook, elsewhere = outputs(snoop)
    assert listing == "[]\n[]\n", listing  # no grading folder, no gradebook anywhere
    assert "FileNotFoundError" in gradebook and SECRET not in json.dumps(snoop)
    # its own notebook, and nothing else: not the image's answers either (hidden tests, solutions)
    assert elsewhere == "False False ['ps1.ipynb'] [] []\n", elsewhere

    netty = grade(hub, "netty").json()
    by_name, by_address = outputs(netty)
    assert "gaierror" in by_name, by_name  # no name service: no network at all
    assert "OSError" in by_address and "unreachable" in by_address, by_address

    # What the submission writes to the sandbox's output is not its answer; a large result comes whole.
    mimic = grade(hub, "mimic").json()
    assert mimic["status"] == "done", mimic["status"]
    reached, large = outputs(mimic)
    # (the kernel's own output, captured by it, shows the forged answer as the cell's output: no more;
    # ipykernel forwards what reaches its descriptor 1 when it comes, so it may fall mid-line)
    assert "PermissionError" in reached and not re.search(r"\['\d+'", reached), reached  # the runner's descriptors are not the kernel's
    assert large == "x" * 200_000 + "\n"

    forger = grade(hub, "forger").json()
    wrote, rewrote = outputs(forger)
    assert "wrote" not in wrote.replace("rewrote", ""), wrote
    assert wrote.count("PermissionError") + wrote.count("FileNotFoundError") + wrote.count("OSError") == 3, wrote
    assert rewrote == "rewrote my own copy\n"  # its own copy, in memory, gone with the sandbox
    assert volume_listing() == before, "a submission changed the grading folder"


def test_what_ignores_the_time_or_eats_the_memory_is_stopped_and_said(grading):
    hub = grading
    started = time.monotonic()
    stubborn = grade(hub, "stubborn", cell_timeout=30).json()
    assert stubborn["status"] == "timed out" and stubborn["notebook"] is None, stubborn["status"]
    assert time.monotonic() - started < 40 + 30, "the sandbox outlived DLAB_GRADE_TIMEOUT"
    greedy = grade(hub, "greedy").json()
    assert greedy["status"] in ("out of memory", "kernel died"), greedy["status"]
    # Nothing of either is left running.
    left = docker("ps", "-aq", "--filter", "label=org.dlab.grading").stdout.split()
    assert left == [], "sandboxes outlived their job"


def test_only_instructors_may_grade_and_only_a_submission_by_its_names(grading):
    hub = grading
    # A student's own token, and the token of the student's server, are refused.
    student_token = hub.user_token("ana")
    assert grade(hub, "snoop", token=student_token).status_code == 403
    # Names are names: no path, no hidden folder, an account of the class, a folder that is there.
    for fields, status in (({"assignment": "../source"}, 400), ({"assignment": ".ps1"}, 400),
                           ({"notebook": "../../gradebook.db"}, 400), ({"notebook": "ps1.py"}, 400),
                           ({"student": "nobody-here"}, 400), ({"student": "../ana"}, 400),
                           ({"assignment": "ps9"}, 404)):
        r = grade(hub, fields.pop("student", "ana"), **fields)
        assert r.status_code == status, (fields, r.status_code, r.text)
    # An instructor's server carries the scope in its token; a student's server does not.
    hub.api("POST", "/groups/instructors/users", json={"users": ["ana"]}) if hub.api("GET", "/groups/instructors").ok \
        else hub.api("POST", "/groups/instructors", json={"users": ["ana"]})
    try:
        for name, status in (("snoop", 403), ("ana", 200)):
            hub.start_server(name)
            token = docker("exec", hub.container_name(name), "printenv", "JUPYTERHUB_API_TOKEN").stdout.strip()
            assert grade(hub, "ana", token=token).status_code == status, name
    finally:
        hub.api("DELETE", "/groups/instructors/users", json={"users": ["ana"]})
        hub.stop_server("ana")
        hub.stop_server("snoop")
