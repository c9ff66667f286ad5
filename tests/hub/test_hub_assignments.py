"""A graded course on a real class (nbgrader, hub/dlab_hub/assignments.py, images/base/dlab_nbgrader.py):
the organizer writes an assignment with a solution and hidden tests, sets a deadline and releases
it; four students fetch it, one hands in a right answer (after a wrong one), one a wrong one, one
after the deadline, one nothing; the organizer collects, autogrades in the sandbox, releases
feedback and exports the grades. Each student sees their own feedback and nobody else's; nobody
sees the solutions or another's work; what a student plants in a hand-in is left out.

nbgrader's commands here are the ones its JupyterLab panels run (the assignment list, the
formgrader), run in each server's container as its user."""
import csv
import datetime
import io
import json
import shlex

import pytest

from conftest import docker
from hubstack import PREFIX, auth

COURSE = PREFIX  # the class's prefix names its course
EXCHANGE = f"/srv/nbgrader/exchange/{COURSE}"
STUDENTS = ["rhea", "wren", "leda", "nell"]  # right, wrong, late, never


def cell(source, **nbgrader):
    meta = {"nbgrader": {"schema_version": 3, "grade": False, "solution": False, "locked": False, "task": False, **nbgrader}}
    return {"cell_type": "code", "id": nbgrader.get("grade_id", "intro"), "metadata": meta, "source": source,
            "outputs": [], "execution_count": None}


SOURCE = {
    "cells": [
        cell("import math", grade_id="setup", locked=True),
        cell("def area(r):\n    ### BEGIN SOLUTION\n    return math.pi * r * r\n    ### END SOLUTION",
             grade_id="answer", solution=True),
        cell("assert round(area(2), 2) == 12.57\n### BEGIN HIDDEN TESTS\nassert abs(area(1) - math.pi) < 1e-9\n"
             "### END HIDDEN TESTS", grade_id="test_area", grade=True, locked=True, points=2),
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}
RIGHT = "def area(r):\n    return math.pi * r ** 2"
WRONG = "def area(r):\n    return 2 * math.pi * r"


def run(hub, user, command, check=True):
    """A shell command in user's server, as jovyan in the home (what JupyterLab's terminal runs)."""
    out = docker("exec", "-u", "1000", "-w", "/home/jovyan", hub.container_name(user), "bash", "-c", command,
                 check=False, timeout=600)
    if check:
        assert out.returncode == 0, f"{user}: {command}\n{out.stdout}\n{out.stderr}"
    return out


EDIT = ("import json; p = 'PATH'; nb = json.load(open(p))\n"
        "for c in nb['cells']:\n"
        "    if c['metadata'].get('nbgrader', {}).get('grade_id') == 'answer': c['source'] = SOURCE\n"
        "json.dump(nb, open(p, 'w'))")


def answer(hub, user, source, path="ps1/ps1.ipynb"):
    """The student writes `source` into the answer cell of their copy."""
    run(hub, user, f"python -c {shlex.quote(EDIT.replace('PATH', path).replace('SOURCE', repr(source)))}")


@pytest.fixture(scope="module")
def course(hub):
    hub.restart()
    for name in STUDENTS:
        hub.api("POST", f"/users/{name}")
    organizer = hub.admin
    for name in STUDENTS:  # first: an instructor's server shows the hand-in folders there are at its start
        hub.start_server(name)
    hub.start_server(organizer)
    yield hub
    for name in [organizer, *STUDENTS]:
        hub.stop_server(name)


def test_a_graded_course_end_to_end(course):
    hub, organizer = course, course.admin
    # The organizer: the assignment's source, the class in the gradebook, a deadline, the release.
    source = json.dumps(SOURCE)
    run(hub, organizer, f"mkdir -p ~/grading/source/ps1 && cat > ~/grading/source/ps1/ps1.ipynb <<'EOF'\n{source}\nEOF")
    due = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    run(hub, organizer, f"nbgrader db assignment add ps1 --duedate='{due:%Y-%m-%d %H:%M:%S} UTC' && "
                        + " && ".join(f"nbgrader db student add {name}" for name in STUDENTS))
    run(hub, organizer, "nbgrader generate_assignment ps1 && nbgrader release_assignment ps1")
    # The graded labs the image ships wait in the course's source, ready to release as they are.
    assert set(run(hub, organizer, "ls ~/grading/source").stdout.split()) == {"adam", "backprop", "classifier", "ps1"}

    # The students fetch it: the solution and the hidden tests are not in their copy.
    for name in STUDENTS:
        run(hub, name, "nbgrader fetch_assignment ps1")
        released = run(hub, name, "cat ps1/ps1.ipynb").stdout
        assert "raise NotImplementedError" in released and "HIDDEN" not in released and "math.pi * r * r" not in released
    # rhea hands in a wrong answer, then the right one; wren a wrong one, and plants a link to the
    # gradebook and a hand-in that says it is rhea's.
    answer(hub, "rhea", WRONG)
    run(hub, "rhea", "nbgrader submit ps1")
    answer(hub, "rhea", RIGHT)
    run(hub, "rhea", "nbgrader submit ps1")
    answer(hub, "wren", WRONG)
    # ... and a script in her markdown and in a page beside the notebook, for the organizer's browser.
    run(hub, "wren", "python -c " + shlex.quote(
        "import json; p = 'ps1/ps1.ipynb'; nb = json.load(open(p)); nb['cells'].append({'cell_type': 'markdown', "
        "'id': 'mine', 'metadata': {}, 'source': 'See <img src=x onerror=\"fetch(1)\"><script>fetch(2)</script>'}); "
        "json.dump(nb, open(p, 'w'))") + " && echo '<script>fetch(3)</script>' > ps1/notes.html")
    run(hub, "wren", f"nbgrader submit ps1 && cd {EXCHANGE}/inbound/wren+ps1+* && "
                      "ln -s /home/jovyan/grading/gradebook.db gradebook.db && ln -s /home/jovyan/grading/source solutions")
    run(hub, "wren", f"cp -r ps1 '{EXCHANGE}/inbound/rhea+ps1+2020-01-01 00:00:00.000000 UTC+forged'")
    # The deadline passes; leda hands in the right answer, and dates it before the deadline.
    run(hub, organizer, "nbgrader db assignment add ps1 --duedate='2020-01-01 00:00:00 UTC'")
    answer(hub, "leda", RIGHT)
    run(hub, "leda", f"nbgrader submit ps1 && for t in {EXCHANGE}/inbound/leda+ps1+*/timestamp.txt; do "
                     "echo '2020-01-01 00:00:00.000000 UTC' > \"$t\"; touch -d 2020-01-01 \"$t\"; done")

    # The organizer collects, autogrades (in the sandbox), releases the feedback, exports the grades.
    run(hub, organizer, "nbgrader collect ps1 && nbgrader autograde ps1 && nbgrader generate_feedback ps1 && "
                        "nbgrader release_feedback ps1 && nbgrader export --to /tmp/grades.csv")
    said = hub.logs()  # each submission's notebook ran in the sandbox, none in the organizer's server
    for name in ("rhea", "wren", "leda"):
        assert f"graded {name}/ps1/ps1.ipynb for {organizer}: done" in said, said[-3000:]
    grades = {row["student_id"]: row for row in csv.DictReader(io.StringIO(run(hub, organizer, "cat /tmp/grades.csv").stdout))}
    assert {name: float(grades[name]["score"]) for name in STUDENTS} == {"rhea": 2.0, "wren": 0.0, "leda": 2.0, "nell": 0.0}
    assert grades["leda"]["timestamp"] > grades["leda"]["duedate"], "leda's hand-in is not marked late"
    assert grades["rhea"]["timestamp"] < str(due) and grades["rhea"]["timestamp"] > "2021", grades["rhea"]
    # wren's link and the hand-in she made for rhea were left out.
    submitted = run(hub, organizer, "ls -A ~/grading/submitted/wren/ps1 ~/grading/submitted/rhea/ps1").stdout
    assert "gradebook.db" not in submitted and "solutions" not in submitted and "notes.html" not in submitted, submitted
    shown = run(hub, organizer, "cat ~/grading/autograded/wren/ps1/ps1.ipynb ~/grading/feedback/wren/ps1/ps1.html").stdout
    assert "See " in shown and "<img src=x onerror" not in shown and "<script>fetch(2)" not in shown, "a student's script reaches the formgrader"
    assert "forged" not in run(hub, organizer, "cat ~/grading/submitted/rhea/ps1/timestamp.txt").stdout

    # Each student fetches their own feedback, and nobody else's exists for them.
    for name in ("rhea", "wren", "leda"):
        run(hub, name, "nbgrader fetch_feedback ps1")
        feedback = run(hub, name, "cat ps1/feedback/*/ps1.html").stdout
        score = "0.0" if name == "wren" else "2.0"
        assert f"ps1 (Score: {score} / 2.0)" in feedback, (name, feedback[:2000])
    assert run(hub, "nell", "nbgrader fetch_feedback ps1; ls ps1/feedback", check=False).returncode != 0

    # What a student can reach: their own hand-ins, the released assignment, and no more.
    for name in ("rhea", "nell"):
        said = run(hub, name, f"ls {EXCHANGE}/feedback", check=False)
        assert said.returncode != 0 and "Permission denied" in said.stderr, said  # nobody's feedback listed
        assert run(hub, name, f"touch {EXCHANGE}/outbound/ps1/x", check=False).returncode != 0  # the release is read-only
        assert run(hub, name, "ls /srv/grading /srv/handins ~/grading", check=False).returncode != 0
    inbound = run(hub, "rhea", f"ls {EXCHANGE}/inbound").stdout.split("\n")
    assert inbound and all(line.startswith("rhea+ps1+") for line in inbound if line), inbound


def test_students_jupyterlab_lists_assignments_but_holds_no_formgrader(course):
    hub = course
    for name, formgrader in (("rhea", 404), (hub.admin, 200)):
        token = hub.admin_token if name == hub.admin else hub.user_token(name)
        r = hub.request("GET", f"{hub.url}/user/{name}/formgrader", headers=auth(token), timeout=60)
        assert r.status_code == formgrader, (name, r.status_code)
    # The organizer's formgrader reads the course (~/grading): who handed in, what was autograded.
    r = hub.request("GET", f"{hub.url}/user/{hub.admin}/formgrader/api/assignments", headers=auth(hub.admin_token), timeout=60)
    assignments = {a["name"]: a for a in r.json()}
    assert assignments["ps1"]["num_submissions"] == 3 and assignments["ps1"]["status"] == "released", assignments
    # The assignment list's panel: what rhea fetched and handed in, from the class's exchange.
    r = hub.request("GET", f"{hub.url}/user/rhea/assignments?course_id={COURSE}", headers=auth(hub.user_token("rhea")), timeout=60)
    assert r.status_code == 200, r.text
    listed = {(a["assignment_id"], a["status"]) for a in r.json()["value"]}
    assert ("ps1", "submitted") in listed, r.json()
    # Her file browser (the contents API) has no course folder, and no way up to one.
    for path in ("grading", "grading/source/ps1/ps1.ipynb", "../grading", "%2E%2E/%2E%2E/srv/grading"):
        r = hub.request("GET", f"{hub.url}/user/rhea/api/contents/{path}", headers=auth(hub.user_token("rhea")), timeout=60)
        assert r.status_code in (400, 403, 404), (path, r.status_code, r.text[:300])
    r = hub.request("GET", f"{hub.url}/user/rhea/api/contents/handin", headers=auth(hub.user_token("rhea")), timeout=60)
    assert r.ok and all(item["name"].startswith("rhea+") for item in r.json()["content"]), r.text[:500]
    # nor does the student's JupyterLab load the formgrader's or the assignment maker's panels
    said = run(hub, "rhea", "jupyter labextension list 2>&1").stdout
    for plugin in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment"):
        assert plugin in said.split("Disabled extensions:")[-1], said


def test_bad_input_gets_a_message_that_says_what_to_do_and_loses_no_work(course):
    hub, organizer = course, course.admin
    broken = json.loads(json.dumps(SOURCE).replace("### END HIDDEN TESTS", "assert (\\n### END HIDDEN TESTS"))
    run(hub, organizer, f"mkdir -p ~/grading/source/ps2 && cat > ~/grading/source/ps2/ps2.ipynb <<'EOF'\n"
                        f"{json.dumps(broken)}\nEOF")
    # A hidden test that does not parse stops the assignment before any student gets it.
    said = run(hub, organizer, "nbgrader generate_assignment ps2", check=False)
    assert said.returncode != 0 and "cell test_area, line" in said.stdout + said.stderr, said.stdout + said.stderr
    assert "Fix the source (hidden tests included)" in said.stdout + said.stderr
    run(hub, organizer, f"cat > ~/grading/source/ps2/ps2.ipynb <<'EOF'\n{json.dumps(SOURCE)}\nEOF")
    # A deadline already past: released, and said.
    said = run(hub, organizer, "nbgrader db assignment add ps2 --duedate='2021-01-01 00:00:00 UTC' && "
                               "nbgrader generate_assignment ps2 && nbgrader release_assignment ps2")
    assert "has passed: every submission will be marked late" in said.stdout + said.stderr, said.stderr
    # A submission that is not a notebook, one too large to hand in, one right, one from an account
    # the gradebook does not list.
    hub.api("POST", "/users/zeke")
    hub.start_server("zeke")
    hub.stop_server(organizer)  # an instructor's server shows the hand-in folders made before its start
    hub.start_server(organizer)
    for name in ("rhea", "leda", "nell", "zeke"):
        run(hub, name, "nbgrader fetch_assignment ps2")
    run(hub, "rhea", "echo 'my answer is 42' > ps2/ps2.ipynb && nbgrader submit ps2")
    too_large = run(hub, "leda", "head -c 110M /dev/zero > ps2/weights.bin && nbgrader submit ps2", check=False)
    assert too_large.returncode != 0 and "too big" in (too_large.stdout + too_large.stderr).lower(), too_large.stderr
    run(hub, "leda", "rm ps2/weights.bin")
    for name in ("nell", "zeke"):
        answer(hub, name, RIGHT, "ps2/ps2.ipynb")
        run(hub, name, "nbgrader submit ps2")
    collected = run(hub, organizer, "nbgrader collect ps2")
    assert "zeke handed in ps2 but is not in the gradebook" in collected.stdout + collected.stderr, collected.stderr
    graded = run(hub, organizer, "nbgrader autograde ps2", check=False)
    assert "rhea" in graded.stdout + graded.stderr  # the notebook that is not one is named...
    run(hub, organizer, "nbgrader export --to /tmp/ps2.csv")
    rows = list(csv.DictReader(io.StringIO(run(hub, organizer, "cat /tmp/ps2.csv").stdout)))
    scores = {row["student_id"]: float(row["score"]) for row in rows if row["assignment"] == "ps2"}
    assert scores["nell"] == 2.0 and scores["zeke"] == 2.0 and scores["rhea"] == 0.0, scores  # ...and the others graded
    # Nobody's work is lost: rhea's hand-in and her own copy are as she left them.
    assert run(hub, "rhea", "cat ps2/ps2.ipynb").stdout == "my answer is 42\n"
    assert "my answer is 42" in run(hub, organizer, "cat ~/grading/submitted/rhea/ps2/ps2.ipynb").stdout
    hub.stop_server("zeke")


def test_the_course_survives_make_down_up_an_image_upgrade_and_a_backup_restored(course, tmp_path):
    """The gradebook, the solutions, the submissions and the released feedback outlive the hub and
    the servers: make backup, then the volumes lost (a new disk), make restore, and make up with a
    newer students' image (an image that says it is the upgrade)."""
    hub, organizer = course, course.admin
    before = run(hub, organizer, "nbgrader export --to /tmp/before.csv && cat /tmp/before.csv").stdout
    assert ",rhea," in before and ",wren," in before, before
    hub.stop_all_servers()  # every server mounts the exchange; make restore refuses a volume in use
    backup = tmp_path / "backups"
    said = hub.script(["backup", str(backup)], timeout=900)
    course_archives = [backup / f"{PREFIX}-{volume}.tar.gz" for volume in ("exchange", "grading")]
    assert all(archive.exists() for archive in course_archives), said.stderr
    hub.script("down")
    docker("volume", "rm", f"{PREFIX}-exchange", f"{PREFIX}-grading")
    # make restore from a folder of the two (the test hub's homes, other tests', stay as they are).
    restore = tmp_path / "restore"
    restore.mkdir()
    for archive in course_archives:
        archive.rename(restore / archive.name)
    said = hub.script(["restore", str(restore)])
    assert said.stderr.count("restored") == 2, said.stderr

    upgraded = "dlab-test/cpu-upgraded:latest"
    docker("build", "-q", "-t", upgraded, "-", input="FROM dlab/cpu:latest\nLABEL org.dlab.test=upgraded\n", timeout=300)
    try:
        hub.restart(DLAB_IMAGE=upgraded)
        for name in ("rhea", organizer):
            hub.start_server(name)
        assert docker("inspect", "-f", "{{.Config.Image}}", hub.container_name(organizer)).stdout.strip() == upgraded
        # The gradebook and the course, as they were: the same grades, the solutions, the submissions.
        after = run(hub, organizer, "nbgrader export --to /tmp/after.csv && cat /tmp/after.csv").stdout
        assert after == before
        assert "math.pi * r * r" in run(hub, organizer, "cat ~/grading/source/ps1/ps1.ipynb").stdout
        assert "math.pi * r ** 2" in run(hub, organizer, "cat ~/grading/submitted/rhea/ps1/ps1.ipynb").stdout
        # rhea's feedback and the release are still hers to fetch; the feedback folder still hides the others'.
        run(hub, "rhea", "rm -rf ps1/feedback && nbgrader fetch_feedback ps1")
        assert "ps1 (Score: 2.0 / 2.0)" in run(hub, "rhea", "cat ps1/feedback/*/ps1.html").stdout
        assert run(hub, "rhea", f"ls {EXCHANGE}/feedback", check=False).returncode != 0
        assert "ps1" in run(hub, "rhea", f"ls {EXCHANGE}/outbound").stdout.split()
    finally:
        for name in ("rhea", organizer):
            if hub.server(name):
                hub.stop_server(name)
        hub.restart()  # the class's own image again, for what follows
        docker("image", "rm", upgraded, check=False)
