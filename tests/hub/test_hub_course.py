"""What an organizer runs a course with, driven as the organizer and the students would: course
material by link (nbgitpuller), the course and hand-in folders, the resource meters, %tensorboard
through the hub, a message to the class, and GPUs spread over the cards."""
import json
import re
import subprocess
import urllib.parse

import pytest

from conftest import ROOT, docker, nvidia_runtime
from hubstack import PREFIX, log_in, outside_namespace, wait_until, xsrf

PASSWORD = "a-long-course-password"
GIT_ADDRESS = "203.0.113.8"  # a documentation address, standing in for the organizer's git host
GIT_PORT = 8218


def approved(hub, name):
    """An approved account with PASSWORD (signed up, approved by the organizer)."""
    if hub.api("GET", f"/users/{name}").status_code == 404:
        hub.signup(name, PASSWORD)
        hub.approve(name)
        hub.api("POST", f"/users/{name}")  # JupyterHub learns of it (else at the first login)
    return name


def sh(command, cwd):
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, check=True, timeout=60)


def in_home(hub, name, command):
    """A shell command in the student's running container, as jovyan; its output."""
    return docker("exec", "--user", "1000", hub.container(name)["Id"], "bash", "-c", f"cd /home/jovyan && {command}").stdout


# --- Course material by link ---------------------------------------------------------------------

@pytest.fixture
def git_host(tmp_path):
    """The organizer's repository, served over HTTP (git http-backend, tests/data/git_server.py) from
    a network namespace of the test's own at a documentation address (the students' firewall lets
    the internet through, never a private address); yields (its URL, a working copy, the served folder)."""
    served, work = tmp_path / "served", tmp_path / "work"
    served.mkdir()
    sh("git init -q --bare -b main course.git", served)
    sh("git init -q -b main . && git config user.email teacher@example.org && git config user.name Teacher", work.mkdir() or work)
    (work / "lab1.py").write_text("# Lab 1\nlearning_rate = 0.1\n")
    (work / "lab2.py").write_text("# Lab 2\nepochs = 5\n")
    (work / "data.txt").write_text("the data\n")
    sh(f"git add -A && git commit -qm week1 && git push -q {served}/course.git main", work)
    with outside_namespace(f"{PREFIX}-git", "dlt-git0", "10.213.8", [GIT_ADDRESS],
                           ["python3", str(ROOT / "tests" / "data" / "git_server.py"), str(served), str(GIT_PORT)]):
        yield f"http://{GIT_ADDRESS}:{GIT_PORT}/course.git", work, served


def wait_for_lab(page, url, seconds):
    try:
        page.wait_for_url(url, timeout=seconds * 1000)
    except Exception:
        pytest.fail(f"not at {url} after {seconds} s but at {page.url}, which says:\n{page.inner_text('body')[-2000:]}")


def test_course_material_by_link_keeps_the_students_edits(hub, browser, git_host):
    repo, work, served = git_host
    hub.restart()
    student = approved(hub, "puller-ada")
    link = hub.script(["link", repo, "main", "lab1.py"]).stdout.strip()
    # The repository is called "course", like the class's course folder: its copy goes beside it.
    assert "/hub/user-redirect/git-pull?repo=http%3A%2F%2F203.0.113.8" in link and "branch=main" in link
    assert "targetpath=course-material&urlpath=lab%2Ftree%2Fcourse-material%2Flab1.py" in link
    link = hub.url + link[link.index("/hub/"):]  # the organizer's host name, as this test reaches it

    # The student clicks the link: log in, the server starts, nbgitpuller clones, JupyterLab opens lab1.py.
    page = browser.new_context().new_page()
    page.goto(link)
    page.fill("#username_input", student)
    page.fill("#password_input", PASSWORD)
    page.click("input[type=submit]")
    wait_for_lab(page, "**/user/puller-ada/lab/tree/course-material/lab1.py**", 300)
    assert in_home(hub, student, "cat course-material/lab2.py") == "# Lab 2\nepochs = 5\n"

    # The student edits lab1.py and deletes data.txt; the organizer changes lab1.py and lab2.py.
    in_home(hub, student, "printf 'my_note = \"the student keeps this\"\\n' >> course-material/lab1.py && rm course-material/data.txt")
    (work / "lab1.py").write_text("# Lab 1, corrected\nlearning_rate = 0.1\n")
    (work / "lab2.py").write_text("# Lab 2\nepochs = 20\n")
    sh(f"git commit -qam week2 && git push -q {served}/course.git main", work)

    # The same link again: the untouched file is updated, the deleted one comes back, the student's
    # line stays (and the organizer's change to another line of the same file arrives).
    page.goto(link)
    wait_for_lab(page, "**/user/puller-ada/lab/tree/course-material/lab1.py**", 120)
    assert in_home(hub, student, "cat course-material/lab2.py") == "# Lab 2\nepochs = 20\n"
    assert in_home(hub, student, "cat course-material/data.txt") == "the data\n"
    lab1 = in_home(hub, student, "cat course-material/lab1.py")
    assert 'my_note = "the student keeps this"' in lab1 and "# Lab 1, corrected" in lab1, lab1
    hub.stop_server(student)


def test_a_link_a_student_sends_plants_nothing_and_runs_no_script(hub, browser, git_host):
    """A student writes course links and sends them to an instructor, who clicks each one in
    chromium: a link to the repository the student handed in, links that put the organizer's
    material into the folders Python and Jupyter start from, and a link whose page name is a script.
    Each is refused (or shown escaped), and nothing lands in the instructor's home."""
    repo, _, _ = git_host
    hub.restart()
    mallory, tutor = approved(hub, "link-mallory"), approved(hub, "link-tutor")
    make_instructor(hub, tutor)
    for name in (mallory, tutor):
        if not hub.server(name):
            hub.start_server(name)
    in_home(hub, tutor, "rm -rf planted course-copy .ipython/profile_default/startup/lab1.py .local/share/jupyter/kernels/planted"
                        " && mkdir -p grades && echo 'ana,1.0' > grades/marks.csv")
    # The student hands in a repository whose Python file writes a mark wherever it runs.
    in_home(hub, mallory, "mkdir -p handin/planted && cd handin/planted && git init -q -b main && "
                          "echo \"open('/home/jovyan/PLANTED', 'w')\" > 00-planted.py && git add -A && "
                          "git -c user.email=m@example.org -c user.name=M commit -qm planted")
    assert "00-planted.py" in in_home(hub, tutor, "ls handins/link-mallory/planted")

    context = browser.new_context()
    scripts_run = []
    context.expose_binding("planted", lambda source: scripts_run.append(source["page"].url))
    page = context.new_page()
    log_in(page, hub.url, tutor, PASSWORD, next_page="home")
    page.wait_for_url("**/hub/home**", timeout=60_000)

    def click(query):
        page.goto(f"{hub.url}/hub/user-redirect/git-pull?{query}")
        return page.content()

    quote = urllib.parse.quote
    for query, why in [
        (f"repo={quote('/srv/handins/link-mallory/planted')}&targetpath=planted", "is not an https:// URL"),
        (f"repo={quote(repo)}&targetpath={quote('.ipython/profile_default/startup')}", "hidden folder (.ipython)"),
        (f"repo={quote(repo)}&targetpath={quote('.local/share/jupyter/kernels/planted')}", "hidden folder (.local)"),
        (f"repo={quote(repo)}&targetpath={quote('../../../srv/handins')}", "climbs out"),
        (f"repo={quote(repo)}&targetpath=handins", "passes through handins"),
        # nbgitpuller's backup moves a folder aside and puts the link's in its place; an existing
        # folder it would update from its own origin, committing the work in it.
        (f"repo={quote(repo)}&targetpath=grades&backup=true", "does not take: backup"),
        (f"repo={quote(repo)}&targetpath=grades", "exists and is not a copy of"),
    ]:
        html = click(query)
        assert "This course link was refused" in html and why in html, (query, page.inner_text("body")[:500])
    # nbgitpuller's event stream, opened directly, refuses the same.
    api = context.request.get(f"{hub.user_url(tutor)}/git-pull/api?repo={quote(repo)}"
                              f"&targetpath={quote('.ipython/profile_default/startup')}", timeout=120_000)
    assert api.status == 400, (api.status, api.text()[:300])
    page.wait_for_timeout(3000)  # a clone that was let through would be done by now
    assert in_home(hub, tutor, r"find . \( -name lab1.py -o -name 00-planted.py -o -name planted \) -print") == ""
    assert in_home(hub, tutor, "ls -a grades").split() == [".", "..", "marks.csv"]

    # A page name that is markup: the status page shows it as text, and its script never runs.
    query = f"repo={quote(repo)}&targetpath=course-copy&urlpath={quote('lab/tree/<img src=x onerror=planted()>')}"
    status_page = context.request.get(f"{hub.user_url(tutor)}/git-pull?{query}", timeout=60_000).text()
    assert "<img src=x" not in status_page and "&lt;img src=x onerror=planted()&gt;" in status_page, status_page[-3000:]
    page.goto(f"{hub.url}/hub/user-redirect/git-pull?{query}")
    page.wait_for_timeout(3000)
    assert scripts_run == [], scripts_run
    assert "PLANTED" not in in_home(hub, tutor, "ls")
    context.close()
    hub.stop_server(mallory)
    hub.stop_server(tutor)


def test_a_link_to_something_that_is_not_a_repository_is_refused(hub):
    hub.restart()
    out = hub.script(["link", "course.git"], check=False)
    assert out.returncode != 0 and "is not a git repository's https:// URL" in out.stderr
    out = hub.script(["link", ""], check=False)
    assert out.returncode == 2 and "which repository?" in out.stderr
    # The organizer who named the hosts links may take from: make link says so before students would.
    out = hub.script(["link", "https://gitlab.example.org/t/course"], settings={"DLAB_LINK_HOSTS": "github.com"}, check=False)
    assert out.returncode != 0 and "gitlab.example.org is not in DLAB_LINK_HOSTS (github.com)" in out.stderr


# --- The course folder and the hand-in folders -------------------------------------------------------

def make_instructor(hub, name):
    if hub.api("GET", f"/users/{name}").status_code == 404:
        hub.api("POST", f"/users/{name}")
    if hub.api("GET", "/groups/instructors").status_code == 404:
        assert hub.api("POST", "/groups/instructors").status_code == 201
    assert hub.api("POST", "/groups/instructors/users", json={"users": [name]}).ok


def test_instructors_write_the_course_students_hand_in_and_see_only_their_own(hub):
    hub.restart()
    tutor, ana, ben = "tutor-ina", "hand-ana", "hand-ben"
    make_instructor(hub, tutor)
    for name in (ana, ben):
        if hub.api("GET", f"/users/{name}").status_code == 404:
            hub.api("POST", f"/users/{name}")
    # The students first: an instructor's server holds the hand-in folders made before it started.
    for name in (ana, ben, tutor):
        if not hub.server(name):
            hub.start_server(name)

    # The folders are mounted outside the home and linked into it.
    assert in_home(hub, ana, "readlink course handin").split() == ["/srv/course", "/srv/handin"]
    assert in_home(hub, tutor, "readlink course handins").split() == ["/srv/course", "/srv/handins"]
    # The instructor's kernel writes the course folder.
    out, error = hub.run_code(tutor, "open('/home/jovyan/course/week1.md', 'w').write('Read chapter 3')")
    assert error is None, error
    # A student's kernel reads it, and cannot write there.
    out, error = hub.run_code(ana, "print(open('/home/jovyan/course/week1.md').read())\n"
                                   "open('/home/jovyan/course/week1.md', 'w').write('mine now')")
    assert out.strip() == "Read chapter 3" and error.startswith("OSError: [Errno 30] Read-only file system"), (out, error)

    # Each student hands in; neither finds the other's work, anywhere in their container.
    for name in (ana, ben):
        out, error = hub.run_code(name, f"open('/home/jovyan/handin/lab1.txt', 'w').write('answer of {name}')")
        assert error is None, error
    out, error = hub.run_code(ben, "import os, subprocess\n"
                                   "print(sorted(os.listdir('/home/jovyan/handin')))\n"
                                   "print(subprocess.run('grep -rl \"answer of hand-ana\" /home /srv/course /srv/handin /srv/data /tmp /mnt 2>/dev/null', shell=True,\n"
                                   "      capture_output=True, text=True).stdout or 'nowhere')")
    assert error is None and out.split() == ["['lab1.txt']", "nowhere"], out
    mounts = in_home(hub, ben, "grep ' /srv/handin ' /proc/self/mountinfo")
    assert len(mounts.splitlines()) == 1 and "handin" in mounts

    # The instructor reads both hand-ins (and cannot change them).
    out, error = hub.run_code(tutor, "import os\nh = '/home/jovyan/handins'\n"
                                     "for d in sorted(os.listdir(h)):\n"
                                     "    if d.startswith('hand-'): print(d, open(f'{h}/{d}/lab1.txt').read())\n"
                                     "open(f'{h}/hand-ana/lab1.txt', 'w')")
    assert out.splitlines() == ["hand-ana answer of hand-ana", "hand-ben answer of hand-ben"], out
    assert error.startswith("OSError: [Errno 30] Read-only file system"), error

    # Both folders survive make down / make up.
    hub.script("down")
    hub.restart()
    hub.start_server(tutor)
    out, error = hub.run_code(tutor, "print(open('/home/jovyan/course/week1.md').read(),"
                                     " open('/home/jovyan/handins/hand-ben/lab1.txt').read())")
    assert error is None and out.strip() == "Read chapter 3 answer of hand-ben", (out, error)
    hub.stop_server(tutor)


# --- Resource meters ---------------------------------------------------------------------------------

def test_the_memory_meter_shows_the_students_real_limit(hub, browser):
    hub.restart()
    name = approved(hub, "meter-mo")
    if not hub.server(name):
        hub.start_server(name)
    token = hub.user_token(name)

    def metrics():
        r = hub.request("GET", f"{hub.user_url(name)}/api/metrics/v1", headers={"Authorization": f"token {token}"}, timeout=30)
        r.raise_for_status()
        return r.json()
    before = metrics()
    # The test hub's DLAB_MEM_LIMIT=1536M and DLAB_CPU_LIMIT=1.5, as Docker enforces them.
    limit = int(docker("inspect", "-f", "{{.HostConfig.Memory}}", hub.container(name)["Id"]).stdout)
    assert limit == 1536 * 1024**2 and before["limits"]["memory"]["rss"] == limit, before
    assert before["limits"]["cpu"]["cpu"] == 1.5 and "cpu_percent" in before

    # A kernel that holds 400 MB: the meter follows.
    kernel = hub.new_kernel(name, token)
    out, error = hub.execute(name, kernel, "import numpy as np\nheld = np.ones(400 * 2**20, dtype=np.uint8)\nprint(held.sum())",
                             token)
    assert error is None, error
    after = metrics()
    assert after["rss"] - before["rss"] > 350 * 2**20, (before["rss"], after["rss"])

    # The student sees it in JupyterLab's status bar.
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(page, hub.url, name, PASSWORD)
    page.wait_for_url("**/user/meter-mo/lab**", timeout=300_000)
    # "Mem: 612 / 1536 MB" (or "0.60 / 1.50 GB"), refreshed every few seconds.
    meter = re.compile(r"Mem:\s*[\d.]+\s*/\s*(1536(\.\d+)?\s*MB|1\.50?\s*GB)")
    wait_until(lambda: meter.search(page.inner_text("body")), 90, "the memory meter in JupyterLab")
    screenshots = ROOT / ".build" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=screenshots / "resource-meter.png")
    hub.stop_server(name)


# --- %tensorboard behind the hub ---------------------------------------------------------------------

def test_tensorboard_in_a_notebook_is_served_through_the_hub(hub):
    hub.restart()
    name = "board-tia"
    if hub.api("GET", f"/users/{name}").status_code == 404:
        hub.api("POST", f"/users/{name}")
    hub.start_server(name)
    token = hub.user_token(name)
    kernel = hub.new_kernel(name, token)
    out, error = hub.execute(name, kernel, "import os\nprint(os.environ['TENSORBOARD_PROXY_URL'])\n"
                             "%load_ext tensorboard\n%tensorboard --logdir /tmp/runs --port 6006", token, timeout=180)
    assert error is None and out.splitlines()[0] == f"/user/{name}/proxy/%PORT%/", (out, error)
    shown = json.dumps(hub.last_displays)
    assert f"/user/{name}/proxy/6006/" in shown, shown[:2000]  # the frame the notebook shows

    # The browser's request for that frame goes through the hub's proxy to TensorBoard.
    headers = {"Authorization": f"token {token}"}
    r = hub.request("GET", f"{hub.url}/user/{name}/proxy/6006/data/logdir", headers=headers, timeout=60)
    assert r.status_code == 200 and r.json() == {"logdir": "/tmp/runs"}, r.text[:300]
    page = hub.request("GET", f"{hub.url}/user/{name}/proxy/6006/", headers=headers, timeout=60)
    assert page.status_code == 200 and "<tb-webapp>" in page.text
    hub.stop_server(name)


# --- A message to the class --------------------------------------------------------------------------

def test_a_message_to_the_class_shows_on_every_hub_page_without_restarting_a_server(hub):
    hub.restart()
    name = approved(hub, "msg-max")
    if not hub.server(name):
        hub.start_server(name)
    started = hub.container(name)["State"]["StartedAt"]
    out = hub.script(["message", "Lab 4 starts at 14:00 <b>in room 2</b>"])
    assert "every hub page now shows" in out.stderr
    shown = "Lab 4 starts at 14:00 &lt;b&gt;in room 2&lt;/b&gt;"
    assert shown in hub.request("GET", hub.url + "/hub/login", timeout=30).text
    assert shown in hub.session(name, PASSWORD).get(hub.url + "/hub/home", timeout=30).text
    assert hub.container(name)["State"]["StartedAt"] == started, "the student's server was restarted"
    hub.script(["message", ""])
    assert "Lab 4" not in hub.request("GET", hub.url + "/hub/login", timeout=30).text
    hub.stop_server(name)


# --- GPUs shared fairly ------------------------------------------------------------------------------

def test_a_gpu_student_gets_the_least_used_card(hub):
    """DLAB_GPUS=1 over cards 0 and 1, card 0 held by a classmate's server: the next GPU student's
    container asks Docker for card 1 (its label says so, and, without a GPU here, Docker's refusal
    of that request is in the hub's log)."""
    if nvidia_runtime():
        pytest.skip("this engine has GPUs: tests/images run the GPU profile for real")
    hub.restart(DLAB_GPUS="1", DLAB_GPU_IDS="0,1", DLAB_GPU_IMAGE="dlab/cpu:latest")
    holder = docker("run", "-d", "--label", f"org.dlab.hub={PREFIX}", "--label", "org.dlab.user=gpu-holder",
                    "--label", "org.dlab.gpus=0", "--network", "none", "--entrypoint", "sleep", "dlab/hub:latest",
                    "300").stdout.strip()
    try:
        hub.api("POST", "/users/gpu-gus")
        r = hub.api("POST", "/users/gpu-gus/server", json={"profile": "gpu"})
        assert r.status_code == 202 or r.status_code >= 500
        wait_until(lambda: hub.server("gpu-gus") is None, 120, "the GPU start to end")
        log = hub.logs()
        assert "gpu-gus's GPU server gets card 1 of 0,1 (the least used)" in log
        assert "capabilities: [[gpu]]" in log  # Docker's answer to that device request
        assert "each GPU server gets 1 of the cards 0,1" in log
    finally:
        docker("rm", "-f", holder, check=False)
        hub.restart()


# --- Accounts for a class ----------------------------------------------------------------------------

def roster_lines():
    good = [f"roster-{n:02d},Student {n},s{n}@uni.example" for n in range(1, 31)]
    bad = {34: "bad name,Bad Name,", 35: "roster-05,Again,", 36: "roster-99,Dora,not-an-email",
           37: "organizer,The organizer,", 38: "roster-98,Eve,e@uni.example,extra"}
    lines = ["username,name,email", "# the class of 2026", *good[:29], "", *good[29:]]  # lines 1 to 33
    lines += [bad[n] for n in sorted(bad)]
    return "\n".join(lines) + "\n", bad


def test_a_roster_becomes_accounts_and_its_bad_lines_are_named(hub, tmp_path):
    hub.restart()
    text, bad = roster_lines()
    roster = tmp_path / "class.csv"
    roster.write_text(text)
    names = [f"roster-{n:02d}" for n in range(1, 31)]
    try:
        out = hub.script(["accounts", str(roster)], check=False)
        assert out.returncode == 1, out.stderr  # some lines were skipped
        for line in bad:
            assert f"line {line}: " in out.stderr, f"line {line} not reported:\n{out.stderr}"
        assert "line 35: 'roster-05' is on line 7 already" in out.stderr
        assert "30 accounts made" in out.stderr and "5 lines skipped" in out.stderr
        sheet = tmp_path / "class-passwords.html"
        assert oct(sheet.stat().st_mode & 0o777) == "0o600"
        slips = re.findall(r"<h2>(.*?)</h2>.*?Username: <code>(.*?)</code>.*?password: <code>(.*?)</code>", sheet.read_text())
        assert [(name, user) for name, user, _ in slips] == [(f"Student {n}", f"roster-{n:02d}") for n in range(1, 31)]
        passwords = {user: password for _, user, password in slips}

        # Every account is approved and known to the hub; no one else's appeared.
        assert all(hub.api("GET", f"/users/{name}").status_code == 200 for name in names)
        assert hub.api("GET", "/users/roster-99").status_code == 404

        # The first login asks for a password of the student's own; then logins go to the server.
        s = hub.new_session()
        page = s.get(hub.url + "/hub/login", timeout=10)
        r = s.post(hub.url + "/hub/login", data={"username": "roster-07", "password": passwords["roster-07"],
                                                 "_xsrf": xsrf(page.text)},
                   allow_redirects=False, timeout=30)
        assert r.status_code == 302 and r.headers["Location"].endswith("/hub/change-password"), r.headers
        form = s.get(hub.url + "/hub/change-password", timeout=30)
        r = s.post(hub.url + "/hub/change-password", timeout=30, data={
            "old_password": passwords["roster-07"], "new_password": "my-own-password-7",
            "new_password_confirmation": "my-own-password-7",
            "_xsrf": xsrf(form.text)})
        assert "changed successfully" in r.text
        ok, _ = hub.try_login("roster-07", "my-own-password-7")
        assert ok and not hub.try_login("roster-07", passwords["roster-07"])[0]

        # The same roster again changes nothing, and keeps the sheet.
        again = hub.script(["accounts", str(roster)], check=False)
        assert "0 accounts made" in again.stderr and "line 3: roster-01 has an account already" in again.stderr
        assert sheet.read_text().count('class="slip"') == 30

        # The end of the course: accounts removed, servers stopped, a home archived then deleted.
        hub.start_server("roster-07")
        archive = tmp_path / "archive"
        out = hub.script(["remove-accounts", str(roster), "archive"], settings={**(hub.settings or {}), "BACKUP_DIR": str(archive)},
                         check=False)
        assert "30 accounts removed" in out.stderr, out.stderr
        assert all(hub.api("GET", f"/users/{name}").status_code == 404 for name in names)
        assert hub.container("roster-07") is None and not hub.try_login("roster-07", "my-own-password-7")[0]
        assert sorted(p.name for p in archive.iterdir()) == [f"{PREFIX}-handin-roster-2d07.tar.gz",
                                                            f"{PREFIX}-home-roster-2d07.tar.gz"]
        assert docker("volume", "inspect", f"{PREFIX}-home-roster-2d07", check=False).returncode != 0
    finally:
        hub.script(["remove-accounts", str(roster), "delete"], check=False)


def test_a_missing_roster_is_said(hub, tmp_path):
    hub.restart()
    out = hub.script(["accounts", str(tmp_path / "nope.csv")], check=False)
    assert out.returncode == 2 and "cannot read the roster" in out.stderr
    out = hub.script(["accounts", ""], check=False)
    assert out.returncode == 2 and "which roster?" in out.stderr
